// Package arm is gitopsim's in-memory Azure Resource Manager: an HTTPS
// server that the official Azure SDK for Go (and az, and ARM templates)
// talk to unmodified, with only the endpoint, the CA and the credential
// changed.
//
// It serves, on one listener:
//   - a token issuer for one tenant (OIDC discovery and a v2 token endpoint
//     for the client-credentials grant), so azidentity credentials work,
//     and the same issuer as an ADFS authority under /adfs, which the
//     Azure CLI's MSAL accepts without asking login.microsoftonline.com;
//   - ARM: subscriptions, tenants, locations, resource groups, provider
//     registration reads, tags, the /resources catalog (catalog.go),
//     /metadata/endpoints, Microsoft.Kubernetes/connectedClusters (a
//     long-running PUT and DELETE), a minimal
//     Microsoft.ContainerService/managedClusters, and
//     Microsoft.KubernetesConfiguration/sourceControlConfigurations under
//     either parent, validated as the spec describes.
//
// Each api-version answers in its own shape: clusterDialect and
// configDialect say which members and values a version has, and the
// conformance package checks every version against its swagger.
//
// Layers, outermost first: the HTTP server (TLS, request log with secrets
// redacted, fault hooks, panic recovery), authentication, the router (ARM
// URL grammar, matched case-insensitively, api-version checks), handlers per
// resource provider, and the store. Every error leaves through one function
// (writeError) in the ARM error envelope with x-ms-error-code.
//
// Everything time-driven (token expiry, the 15-minute Offline rule, the
// 90-day identity expiry, the 48-hour purge of protected settings) reads
// the injected clock, and is evaluated when state is read, so a Virtual
// clock needs no background work.
//
// Protected settings (configurationProtectedSettings) are write-only: no
// response, log line or request log ever carries them.
package arm

// Package conformance checks gitopsim's ARM provider against the official
// REST API specification (Azure/azure-rest-api-specs) of
// Microsoft.KubernetesConfiguration/sourceControlConfigurations and
// Microsoft.Kubernetes/connectedClusters, api-version by api-version.
//
// The package holds three things:
//   - a small schema model (Schema) and, in spec_*.go, the definitions of
//     every api-version written from the swagger files as compact Go data,
//     each citing the spec file and JSON pointer it encodes (the swagger
//     files themselves are not copied here);
//   - a validator (Validate) that walks a JSON document against a schema
//     and reports what breaks it: unknown members, missing required
//     members, wrong types and formats, enum values, nulls where x-nullable
//     is not set; plus helpers for the read-only check (a PUT that carries
//     read-only values must not change what is stored);
//   - the suite itself (conformance_test.go), which starts the ARM server
//     in process, sends raw HTTP requests built from the documented
//     operations for every api-version gitopsim accepts, and reports each
//     violation with its api-version, operation, JSON pointer and rule.
//
// It is not a general OpenAPI validator: it knows only the keywords these
// two swaggers use, and it reads no swagger at run time.
package conformance

// Package engine evaluates Azure Policy definitions the way Azure does, for
// gitopsim's policy provider: the policy rule language (allOf, anyOf, not;
// field, value and count conditions with Azure's operators and
// case-insensitive comparisons), the ARM template language expressions of
// rules and deployment templates ("[concat(parameters('x'), '/y')]"), the
// existence check of auditIfNotExists and deployIfNotExists rules, and the
// rendering of a deployIfNotExists deployment into the resource PUTs it
// makes.
//
// It is pure: no HTTP, no clock, no store. The provider parses a
// definition once (ParseDefinition), checks an assignment's parameters
// (Definition.ResolveParameters), then for each resource in scope calls
// Engine.Evaluate with a Related function that reads its store, and
// Engine.Deployment when a remediation or an automatic DINE must deploy.
// Validation errors are *Error values carrying the ARM error code and
// message Azure returns and the JSON path of the offending member.
//
// BuiltIns serves the three Flux v1 GitOps built-in definitions byte for
// byte as Azure/azure-policy publishes them.
//
// What the engine does not do: it does not call reference(), list*(),
// utcNow() or uniqueString(); it does not run copy loops or nested
// deployments; aliases come from a small explicit table (complete for
// sourceControlConfigurations) and a generic mapping, not from Azure's
// per-api-version alias catalogue. See Options for the one deliberate
// departure from a literal reading of the built-ins (ReadOnlyNormalisation).
package engine

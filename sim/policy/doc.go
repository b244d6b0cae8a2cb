// Package policy is the simulator's Microsoft.Authorization resource
// provider: Azure Policy definitions (the built-in Flux v1 GitOps ones and
// custom ones), policy set definitions, policy assignments, role
// definitions and role assignments, hosted by the ARM server of sim/arm.
//
// It stores and validates these resources the way ARM does, and answers
// whether a principal holds a role at a scope (HasRole). It does not
// evaluate policy rules, report compliance or remediate: the evaluation
// engine lives in sim/policy/engine and Microsoft.PolicyInsights is a
// separate concern. Role assignments are never created automatically,
// as with the REST API and SDKs of real Azure (only the portal grants
// roles to an assignment's identity).
package policy

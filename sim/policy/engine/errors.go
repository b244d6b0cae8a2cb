package engine

import (
	"errors"
	"fmt"
)

// Error codes Azure Policy and ARM return for the mistakes this package
// detects. The provider answers them as HTTP 400 with the code in the ARM
// error envelope. Sources: InvalidPolicyRule, InvalidPolicyRuleEffect,
// InvalidPolicyRuleEffectDetails, InvalidPolicyAlias and
// InvalidProviderNameInPolicyAlias from issues Azure/azure-policy#201,
// #880, #363 and Azure/AzureStack-Tools#236; InvalidPolicyParameters from
// Azure/Enterprise-Scale#399 and Azure/azure-policy#94; the assignment codes
// from hashicorp/terraform-provider-azurerm and Azure/azure-sdk-for-net#39734;
// PolicyParameterValueNotAllowed from
// Azure/terraform-azurerm-caf-enterprise-scale#1313;
// PolicyParameterAllowedAndDefaultValuesMismatch from
// Azure/azure-monitor-baseline-alerts#917.
const (
	// CodeInvalidRequestContent: the body is not JSON of the right shape.
	CodeInvalidRequestContent = "InvalidRequestContent"
	// CodeInvalidPolicyRule: policyRule does not deserialize (unknown
	// member, wrong JSON type, missing if/then, malformed condition).
	CodeInvalidPolicyRule = "InvalidPolicyRule"
	// CodeInvalidPolicyRuleEffect: the literal effect is not an effect.
	CodeInvalidPolicyRuleEffect = "InvalidPolicyRuleEffect"
	// CodeInvalidPolicyRuleEffectDetails: then.details is missing or wrong
	// for the effect.
	CodeInvalidPolicyRuleEffectDetails = "InvalidPolicyRuleEffectDetails"
	// CodeInvalidPolicyAlias: a field names no alias of its resource type.
	CodeInvalidPolicyAlias = "InvalidPolicyAlias"
	// CodeInvalidProviderNameInPolicyAlias: a field's namespace is unknown.
	CodeInvalidProviderNameInPolicyAlias = "InvalidProviderNameInPolicyAlias"
	// CodeInvalidPolicyParameters: a parameter definition, a template
	// function or a parameter reference in the rule cannot be validated.
	CodeInvalidPolicyParameters = "InvalidPolicyParameters"
	// CodePolicyParameterAllowedAndDefaultValuesMismatch: defaultValue is
	// not among allowedValues.
	CodePolicyParameterAllowedAndDefaultValuesMismatch = "PolicyParameterAllowedAndDefaultValuesMismatch"
	// CodeUndefinedPolicyParameter: an assignment sets a parameter the
	// definition does not declare.
	CodeUndefinedPolicyParameter = "UndefinedPolicyParameter"
	// CodeMissingPolicyParameter: an assignment leaves out a parameter that
	// has no default.
	CodeMissingPolicyParameter = "MissingPolicyParameter"
	// CodePolicyParameterValueNotAllowed: an assigned value is not among the
	// parameter's allowedValues.
	CodePolicyParameterValueNotAllowed = "PolicyParameterValueNotAllowed"
	// CodeInvalidTemplate: the DINE deployment's template fails ARM's
	// template validation or evaluation.
	CodeInvalidTemplate = "InvalidTemplate"
)

// Error is a validation error with the ARM code and message Azure uses, and
// the JSON path of the offending member so a caller can point at it.
type Error struct {
	// Code is the ARM error code, one of the Code constants.
	Code string
	// Message is the message Azure returns, as close as the sources allow.
	Message string
	// Path is the JSON path of the offending member in the document that
	// was checked, e.g. "properties.policyRule.if.allOf[1].field".
	Path string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("%s: %s (at %s)", e.Code, e.Message, e.Path)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel errors for callers that branch on the kind of failure.
var (
	// ErrSyntax marks a template language expression that does not parse.
	ErrSyntax = errors.New("invalid template language expression")
	// ErrEvaluation marks an expression or condition that fails while it is
	// evaluated. Azure treats a failed evaluation as an implicit deny.
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrUnresolvedReference marks a Key Vault reference that the caller
	// gave no way to resolve.
	ErrUnresolvedReference = errors.New("key vault reference not resolved")
	// ErrUnsupported marks a template feature the engine does not implement.
	ErrUnsupported = errors.New("not supported by the engine")
	// ErrNoDeployment marks a definition without a DINE deployment.
	ErrNoDeployment = errors.New("definition has no deployment")
)

package policy

// Error codes of Microsoft.Authorization that this provider returns, as
// real Azure spells them. Codes marked (inferred) were not seen in a
// public transcript; their situation is documented, their spelling is a
// guess that follows the provider's naming.
const (
	CodePolicyDefinitionNotFound       = "PolicyDefinitionNotFound"
	CodePolicySetDefinitionNotFound    = "PolicySetDefinitionNotFound"
	CodePolicyAssignmentNotFound       = "PolicyAssignmentNotFound"
	CodeResourceIdentityRequired       = "ResourceIdentityRequired"
	CodeUndefinedPolicyParameter       = "UndefinedPolicyParameter"
	CodeMissingPolicyParameter         = "MissingPolicyParameter"
	CodeInvalidPolicyParameters        = "InvalidPolicyParameters"
	CodeParameterValueNotAllowed       = "PolicyParameterValueNotAllowed"
	CodeAllowedAndDefaultMismatch      = "PolicyParameterAllowedAndDefaultValuesMismatch"
	CodeInvalidPolicyAssignmentName    = "InvalidPolicyAssignmentName"
	CodeInvalidPolicyRule              = "InvalidPolicyRule"
	CodeInvalidPolicyDefinitionName    = "InvalidPolicyDefinitionName"             // (inferred)
	CodeInvalidPolicySetDefinition     = "InvalidCreatePolicySetDefinitionRequest" // (inferred)
	CodeInvalidLocationUpdate          = "InvalidLocationUpdate"
	CodeLocationRequired               = "LocationRequired" // (inferred) for an identity without location
	CodeRoleDefinitionNotFound         = "RoleDefinitionDoesNotExist"
	CodeRoleAssignmentNotFound         = "RoleAssignmentNotFound"
	CodeRoleAssignmentExists           = "RoleAssignmentExists"
	CodeRoleAssignmentUpdateNotAllowed = "RoleAssignmentUpdateNotPermitted"
	CodeInvalidRoleAssignmentID        = "InvalidRoleAssignmentId"
	CodeInvalidPrincipalID             = "InvalidPrincipalId"
)

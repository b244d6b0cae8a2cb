package conformance

// Definitions shared by both resource types: ARM's common types.

const (
	// commonV2 is common-types/resource-management/v2, which the
	// hand-written swaggers reference.
	commonV2 = "specification/common-types/resource-management/v2/types.json"
	// commonV3 is common-types/resource-management/v3, which the
	// TypeSpec-generated swaggers reference.
	commonV3 = "specification/common-types/resource-management/v3/types.json"
)

// errorResponse is common-types ErrorResponse {error: ErrorDetail}; v2
// and v3 have the same shape.
//
//	<common>#/definitions/ErrorResponse
//	<common>#/definitions/ErrorDetail: code, message, target (strings),
//	  details [ErrorDetail], additionalInfo [ErrorAdditionalInfo], all readOnly
//	<common>#/definitions/ErrorAdditionalInfo: type (string), info (object)
//
// "error", "code" and "message" are required as in the v2 revision
// 59d681ea; later revisions and v3 dropped the "required" lists, but the ARM
// RPC error contract still requires them, and every client reads them.
func errorResponse(common string) *Schema {
	info := object(map[string]*Schema{
		"type": str().ro(),
		"info": freeForm().ro(),
	}).ref(common + "#/definitions/ErrorAdditionalInfo")
	detail := object(map[string]*Schema{
		"code":           str().ro(),
		"message":        str().ro(),
		"target":         str().ro(),
		"additionalInfo": arrayOf(info).ro(),
	}, "code", "message").ref(common + "#/definitions/ErrorDetail")
	detail.Properties["details"] = arrayOf(detail).ro()
	return object(map[string]*Schema{"error": detail}, "error").ref(common + "#/definitions/ErrorResponse")
}

// systemData is common-types systemData (v2: "systemData", v3:
// "SystemData"), which the connectedClusters swaggers also copy locally as
// #/definitions/SystemData: a read-only object whose *ByType members are a
// modelAsString enum.
func systemData(ref string) *Schema {
	by := enum(true, "User", "Application", "ManagedIdentity", "Key")
	return object(map[string]*Schema{
		"createdBy":          str(),
		"createdByType":      by,
		"createdAt":          dateTime(),
		"lastModifiedBy":     str(),
		"lastModifiedByType": by,
		"lastModifiedAt":     dateTime(),
	}).ro().ref(ref)
}

// operationV3 is common-types v3 #/definitions/Operation (with
// #/definitions/OperationDisplay, Origin and ActionType inlined).
func operationV3() *Schema {
	return object(map[string]*Schema{
		"name":         str().ro(),
		"isDataAction": boolean().ro(),
		"display": object(map[string]*Schema{
			"provider":    str().ro(),
			"resource":    str().ro(),
			"operation":   str().ro(),
			"description": str().ro(),
		}).ref(commonV3 + "#/definitions/OperationDisplay"),
		"origin":     enum(true, "user", "system", "user,system").ro(),
		"actionType": enum(true, "Internal").ro(),
	}).ref(commonV3 + "#/definitions/Operation")
}

// resourceMembers are the members of common-types Resource: id, name and
// type, all read-only. systemData is added by each resource type, because
// where it comes from differs by version.
func resourceMembers() map[string]*Schema {
	return map[string]*Schema{
		"id":   str().ro(),
		"name": str().ro(),
		"type": str().ro(),
	}
}

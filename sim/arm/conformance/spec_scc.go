package conformance

import "net/http"

// Microsoft.KubernetesConfiguration/sourceControlConfigurations, written
// from specification/kubernetesconfiguration/resource-manager/
// Microsoft.KubernetesConfiguration/. The model barely moved: what differs
// between versions is where systemData and the error envelope come from,
// the 2019-11-01-preview request model, and the operations list.

const sccRoot = "specification/kubernetesconfiguration/resource-manager/Microsoft.KubernetesConfiguration/"

// sccEra groups the versions that share definitions.
type sccEra int

const (
	// scc2019: SourceControlConfiguration has creationTime and
	// lastModifiedTime and no configurationProtectedSettings; PUT takes
	// SourceControlConfigurationForCreate; enableHelmOperator is
	// #/definitions/EnableHelmOperatorDefinition; local SystemData,
	// ErrorResponse and ResourceProviderOperation (without isDataAction).
	scc2019 sccEra = iota
	// sccLocal: the model of 2021-03-01 with local SystemData (every member
	// readOnly, createdByType a plain string), local ErrorResponse
	// {error: ErrorDefinition{code, message}} and ResourceProviderOperation
	// with isDataAction.
	sccLocal
	// sccV2: the same model with common-types v2 systemData and
	// ErrorResponse; ResourceProviderOperation gains origin.
	sccV2
)

// sccVersion is one api-version: its swagger file (relative to sccRoot),
// its era, and notes.
type sccVersion struct {
	version string
	file    string
	era     sccEra
	// opsOrigin: the operations list's items have "origin".
	opsOrigin bool
	// opsFile is where Operations_List is documented, when not in file.
	opsFile string
	note    string
}

// sccTable lists every api-version whose swagger defines
// sourceControlConfigurations. The commit is the stored revision read;
// versions without one were not re-read for this suite (the issue 15
// research found their models equal to 2022-03-01's, through the SDKs and
// the readme tags), and they sit between versions that were.
var sccTable = []sccVersion{
	// 0ecbfce2. SourceControlConfigurationForCreate is the PUT body.
	{version: "2019-11-01-preview", file: "preview/2019-11-01-preview/kubernetesconfiguration.json", era: scc2019},
	// b2f74197 (an older revision, 0cf5e13b, had string enums for
	// enableHelmOperator and no systemData).
	{version: "2020-07-01-preview", file: "preview/2020-07-01-preview/kubernetesconfiguration.json", era: sccLocal},
	// b2f74197. Older revisions (67f016b0, 72692680) still had
	// creationTime/lastModifiedTime or EnableHelmOperatorDefinition; the
	// newest one has the 2021-03-01 model, as the SDKs generated from it do.
	{version: "2020-10-01-preview", file: "preview/2020-10-01-preview/kubernetesconfiguration.json", era: sccLocal},
	// 075193cb.
	{version: "2021-03-01", file: "stable/2021-03-01/kubernetesconfiguration.json", era: sccLocal},
	// 43e84f37.
	{version: "2021-05-01-preview", file: "preview/2021-05-01-preview/kubernetesconfiguration.json", era: sccV2, opsOrigin: true},
	{version: "2021-11-01-preview", file: "preview/2021-11-01-preview/kubernetesconfiguration.json", era: sccV2, opsOrigin: true},
	{version: "2022-01-01-preview", file: "preview/2022-01-01-preview/kubernetesconfiguration.json", era: sccV2, opsOrigin: true},
	// 5b92864b. Its operations have no "origin".
	{version: "2022-01-15-preview", file: "preview/2022-01-15-preview/kubernetesconfiguration.json", era: sccV2,
		note: "the file exists in the spec's history, but the readme tag package-preview-2022-01-15 takes sourceControlConfigurations from 2022-01-01-preview"},
	// f7b84a5c; Operations_List in operations.json, items in
	// common/2022-03-01/definitions.json#/definitions/ResourceProviderOperation.
	{version: "2022-03-01", file: "stable/2022-03-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json"},
	{version: "2022-04-01", file: "stable/2022-04-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json",
		note:    "the folder exists in the spec's history but no readme tag includes it"},
	{version: "2022-07-01", file: "stable/2022-07-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json"},
	// Listed by the readme tag package-2022-11; the index holds only its
	// examples, which match the 2022-07-01 model.
	{version: "2022-11-01", file: "stable/2022-11-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json"},
	// 837bb905.
	{version: "2023-05-01", file: "stable/2023-05-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json"},
	// 38a10af5, the split layout. The file documents no Operations_List;
	// the list is checked against the 2022-03-01 common definition.
	{version: "2024-11-01", file: "sourceControlConfigurations/stable/2024-11-01/kubernetesconfiguration.json", era: sccV2, opsOrigin: true,
		opsFile: "common/2022-03-01/definitions.json"},
}

// sccSpec writes the definitions of one version.
func sccSpec(v sccVersion) *Spec {
	file := sccRoot + v.file
	def := func(name string) string { return file + "#/definitions/" + name }

	// #/definitions/ComplianceStatus: readOnly as a whole.
	compliance := object(map[string]*Schema{
		"complianceState":   enum(true, "Pending", "Compliant", "Noncompliant", "Installed", "Failed").ro(),
		"lastConfigApplied": dateTime(),
		"message":           str(),
		"messageLevel":      enum(true, "Error", "Warning", "Information"),
	}).ro().ref(def("ComplianceStatus"))

	// #/definitions/SourceControlConfiguration/properties/properties, with
	// OperatorTypeDefinition, OperatorScopeDefinition,
	// ConfigurationProtectedSettings and HelmOperatorProperties inlined.
	props := object(map[string]*Schema{
		"repositoryUrl":                  str(),
		"operatorNamespace":              str(),
		"operatorInstanceName":           str(),
		"operatorType":                   enum(true, "Flux"),
		"operatorParams":                 str(),
		"configurationProtectedSettings": mapOf(str()),
		"operatorScope":                  enum(true, "cluster", "namespace"),
		"repositoryPublicKey":            str().ro(),
		"sshKnownHostsContents":          str(),
		// EnableHelmOperatorDefinition in 2019-11-01-preview is
		// "type": "boolean" with a string enum ["true", "false"] that no
		// boolean can match; the enum is left out.
		"enableHelmOperator": boolean(),
		"helmOperatorProperties": object(map[string]*Schema{
			"chartVersion": str(),
			"chartValues":  str(),
		}).ref(def("HelmOperatorProperties")),
		"provisioningState": enum(true, "Accepted", "Deleting", "Running", "Succeeded", "Failed").ro(),
		"complianceStatus":  compliance,
	}).ref(def("SourceControlConfiguration") + "/properties/properties")

	var sys, errs, ops *Schema
	switch v.era {
	case scc2019, sccLocal:
		// #/definitions/SystemData: every member readOnly, no enums.
		sys = object(map[string]*Schema{
			"createdBy":          str().ro(),
			"createdByType":      str().ro(),
			"createdAt":          dateTime().ro(),
			"lastModifiedBy":     str().ro(),
			"lastModifiedByType": str().ro(),
			"lastModifiedAt":     dateTime().ro(),
		}).ref(def("SystemData"))
		// #/definitions/ErrorResponse and ErrorDefinition (readOnly;
		// "code" oddly carries minimum/maximum, ignored for a string).
		errs = object(map[string]*Schema{
			"error": object(map[string]*Schema{
				"code":    str(),
				"message": str(),
			}, "message", "code").ro().ref(def("ErrorDefinition")),
		}).ref(def("ErrorResponse"))
	default:
		sys = systemData(commonV2 + "#/definitions/systemData")
		errs = errorResponse(commonV2)
	}

	// #/definitions/ResourceProviderOperation (readOnly as a whole).
	opsDef := file
	if v.opsFile != "" {
		opsDef = sccRoot + v.opsFile
	}
	op := object(map[string]*Schema{
		"name": str(),
		"display": object(map[string]*Schema{
			"provider":    str(),
			"resource":    str(),
			"operation":   str(),
			"description": str(),
		}),
	}).ro().ref(opsDef + "#/definitions/ResourceProviderOperation")
	if v.era != scc2019 {
		op.Properties["isDataAction"] = boolean().ro()
	}
	if v.opsOrigin {
		op.Properties["origin"] = str().ro()
	}
	ops = object(map[string]*Schema{
		"value":    arrayOf(op),
		"nextLink": str().ro(),
	}).ro().ref(opsDef + "#/definitions/ResourceProviderOperationList")

	resource := func(p *Schema, name string) *Schema {
		m := resourceMembers()
		m["systemData"] = sys
		m["properties"] = p
		return object(m).ref(def(name))
	}
	res := resource(props, "SourceControlConfiguration")
	req := res
	if v.era == scc2019 {
		res = resource(props.without("configurationProtectedSettings").with(map[string]*Schema{
			"creationTime":     str().ro(),
			"lastModifiedTime": str().ro(),
		}), "SourceControlConfiguration")
		// #/definitions/SourceControlConfigurationForCreate.
		req = resource(props.without("provisioningState", "complianceStatus").ref(def("SourceControlConfigurationForCreate")+"/properties/properties"),
			"SourceControlConfigurationForCreate")
	}

	return &Spec{
		Type:           "sourceControlConfigurations",
		Version:        v.version,
		File:           file,
		Note:           v.note,
		ResourceGroups: "resourceGroups",
		Resource:       res,
		Request:        req,
		// #/definitions/SourceControlConfigurationList.
		List: object(map[string]*Schema{
			"value":    arrayOf(res).ro(),
			"nextLink": str().ro(),
		}).ref(def("SourceControlConfigurationList")),
		Error:            errs,
		Operations:       ops,
		OperationsErrors: v.era != scc2019,
		Statuses: map[Op][]int{
			OpCreateOrUpdate: {http.StatusOK, http.StatusCreated},
			OpGet:            {http.StatusOK},
			OpList:           {http.StatusOK},
			OpDelete:         {http.StatusOK, http.StatusNoContent},
			OpOperations:     {http.StatusOK},
		},
		// DELETE is x-ms-long-running-operation with no options and no 202.
		LRO: map[Op]FinalState{OpDelete: Sync},
	}
}

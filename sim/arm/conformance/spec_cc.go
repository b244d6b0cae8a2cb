package conformance

import "net/http"

// Microsoft.Kubernetes/connectedClusters, written from
// specification/hybridkubernetes/resource-manager/Microsoft.Kubernetes/.
// The model grew version by version; ccVersion records, for each version,
// which members and shapes its swagger has, and ccSpec writes the
// definitions from that.

const ccRoot = "specification/hybridkubernetes/resource-manager/Microsoft.Kubernetes/"

// ccVersion is what one api-version's connectedClusters.json defines.
type ccVersion struct {
	version string
	// file is relative to ccRoot.
	file string
	// typeSpec: generated from TypeSpec, on common-types v3: paths spell
	// "resourceGroups", ConnectedClusterList and OperationList require
	// "value", nextLink is format uri, operations are v3 Operation.
	typeSpec bool
	// kind is #/definitions/ConnectedClusterKind; nil when there is no kind.
	kind []string
	// aad2020: properties.aadProfile is the required
	// ConnectedClusterAADProfile {tenantId, clientAppId, serverAppId}.
	aad2020 bool
	// aad: properties.aadProfile is AadProfile {enableAzureRBAC,
	// adminGroupObjectIDs, tenantID}.
	aad bool
	// writableStatus: connectivityStatus is not readOnly.
	writableStatus bool
	// noSystemData: the resource has no systemData.
	noSystemData        bool
	distributionVersion bool
	privateLink         bool // privateLinkState, privateLinkScopeResourceId
	hybridBenefit       bool // azureHybridBenefit
	misc                bool // miscellaneousProperties (readOnly map)
	// agent is properties.arcAgentProfile: 0 none; 1 desiredAgentVersion,
	// agentAutoUpgrade; 2 also systemComponents and agentErrors; 3 also
	// agentState.
	agent int
	// identity: securityProfile and oidcIssuerProfile.
	identity bool
	// gateway: 0 none; 1 Gateway {enabled, resourceId (arm-id)}; 2 Gateway
	// {enabled}. Both x-nullable, with arcAgentryConfigurations.
	gateway           int
	agentNotInstalled bool // ConnectivityStatus has AgentNotInstalled
	inbound           bool // inboundConnectivityState
	nodeCountInt32    bool // totalNodeCount has format int32
	relayTenant       bool // HybridConnectionConfig has relayTid, relayType
	// patch lists ConnectedClusterPatchProperties.
	patch []string
	// patchLRO: PATCH may answer 202 with a Location (final-state-via
	// location).
	patchLRO bool
	// credentials is the list-credentials action; "" for none.
	credentials string
	note        string
}

var (
	kind1    = []string{"ProvisionedCluster"}
	kind2    = []string{"ProvisionedCluster", "AWS"}
	kind3    = []string{"ProvisionedCluster", "AWS", "GCP"}
	patch22  = []string{"distribution", "distributionVersion", "azureHybridBenefit"}
	patchGW  = []string{"distribution", "distributionVersion", "azureHybridBenefit", "gateway"}
	singular = "listClusterUserCredential"
	plural   = "listClusterUserCredentials"
)

// ccTable lists every api-version of connectedClusters. Files are relative
// to ccRoot; the commit is the stored revision read. Versions without a
// commit were not re-read for this suite: their members come from the
// per-version table of the issue 15 research, and they sit between two
// versions that were read.
var ccTable = []ccVersion{
	// 8c34ad94. No systemData; aadProfile required; connectivityStatus and
	// provisioningState writable; the credentials action takes
	// ?ClientProxy= and an optional AuthenticationDetails body.
	{version: "2020-01-01-preview", file: "HybridKubernetes/preview/2020-01-01-preview/connectedClusters.json",
		aad2020: true, writableStatus: true, noSystemData: true, patch: []string{"agentPublicKeyCertificate"}, credentials: plural},
	// f1b3ea5d. No credentials action; PATCH properties empty.
	{version: "2021-03-01", file: "HybridKubernetes/stable/2021-03-01/connectedClusters.json"},
	// cd5326d0.
	{version: "2021-04-01-preview", file: "HybridKubernetes/preview/2021-04-01-preview/connectedClusters.json",
		privateLink: true, patch: []string{"privateLinkState", "privateLinkScopeResourceId"}, credentials: plural},
	// 54ac77f7.
	{version: "2021-10-01", file: "HybridKubernetes/stable/2021-10-01/connectedClusters.json", credentials: singular},
	{version: "2022-05-01-preview", file: "HybridKubernetes/preview/2022-05-01-preview/connectedClusters.json",
		privateLink: true, credentials: singular},
	// cd5326d0.
	{version: "2022-10-01-preview", file: "HybridKubernetes/preview/2022-10-01-preview/connectedClusters.json",
		distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, patch: patch22, credentials: singular},
	{version: "2023-11-01-preview", file: "HybridKubernetes/preview/2023-11-01-preview/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 1,
		patch: patch22, credentials: singular},
	// 8c34ad94.
	{version: "2024-01-01", file: "HybridKubernetes/stable/2024-01-01/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 1,
		patch: patch22, credentials: singular},
	// 346c11af.
	{version: "2024-02-01-preview", file: "HybridKubernetes/preview/2024-02-01-preview/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 2,
		patch: patch22, credentials: singular},
	{version: "2024-06-01-preview", file: "HybridKubernetes/preview/2024-06-01-preview/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, patch: patch22, credentials: singular},
	// f1b3ea5d. Already has gateway and arcAgentryConfigurations, not yet
	// relayTid/relayType.
	{version: "2024-07-01-preview", file: "HybridKubernetes/preview/2024-07-01-preview/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 1, patch: patch22, credentials: singular},
	// 9fa87e3a.
	{version: "2024-07-15-preview", file: "HybridKubernetes/preview/2024-07-15-preview/connectedClusters.json",
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 1, relayTenant: true, patch: patch22, credentials: singular},
	// 8c34ad94, TypeSpec.
	{version: "2024-12-01-preview", file: "HybridKubernetes/preview/2024-12-01-preview/connectedClusters.json", typeSpec: true,
		kind: kind2, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 1, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, patch: patch22, credentials: singular},
	// f1b3ea5d, TypeSpec. Gateway is {enabled} only.
	{version: "2025-08-01-preview", file: "HybridKubernetes/preview/2025-08-01-preview/connectedClusters.json", typeSpec: true,
		kind: kind2, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 2, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, patch: patch22, credentials: singular},
	// f6dcf2bc, TypeSpec. PATCH becomes a long-running operation and
	// patches gateway.
	{version: "2025-12-01-preview", file: "HybridKubernetes/preview/2025-12-01-preview/connectedClusters.json", typeSpec: true,
		kind: kind3, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 2, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, patch: patchGW, patchLRO: true,
		credentials: singular},
	// 0006c246, TypeSpec. Adds inboundConnectivityState.
	{version: "2026-02-01-preview", file: "HybridKubernetes/preview/2026-02-01-preview/connectedClusters.json", typeSpec: true,
		kind: kind3, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 2, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, inbound: true,
		patch: patchGW, patchLRO: true, credentials: singular},
	// ec15ab2d, TypeSpec, in the old layout only.
	{version: "2026-03-01", file: "stable/2026-03-01/connectedClusters.json", typeSpec: true,
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 2, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, patch: patchGW, patchLRO: true,
		credentials: singular,
		note:        "in the spec's old folder layout only; the HybridKubernetes readme has no tag for it"},
	// 4aee256d, TypeSpec; the readme's default tag.
	{version: "2026-05-01", file: "HybridKubernetes/stable/2026-05-01/connectedClusters.json", typeSpec: true,
		kind: kind1, aad: true, distributionVersion: true, privateLink: true, hybridBenefit: true, misc: true, agent: 3,
		identity: true, gateway: 2, agentNotInstalled: true, nodeCountInt32: true, relayTenant: true, patch: patchGW, patchLRO: true,
		credentials: singular},
}

// ccSpec writes the definitions of one version.
func ccSpec(v ccVersion) *Spec {
	file := ccRoot + v.file
	def := func(name string) string { return file + "#/definitions/" + name }
	common := commonV2
	if v.typeSpec {
		common = commonV3
	}

	status := []string{"Connecting", "Connected", "Offline", "Expired"}
	if v.agentNotInstalled {
		status = append(status, "AgentNotInstalled")
	}
	nodeCount := integer("")
	if v.nodeCountInt32 {
		nodeCount = integer(FormatInt32)
	}
	// #/definitions/ConnectedClusterProperties.
	props := map[string]*Schema{
		"agentPublicKeyCertificate": str(),
		"kubernetesVersion":         str().ro(),
		"totalNodeCount":            nodeCount.ro(),
		"totalCoreCount":            integer(FormatInt32).ro(),
		"agentVersion":              str().ro(),
		// #/definitions/ConnectedClusterProvisioningState (TypeSpec:
		// ProvisioningState); not readOnly in any version.
		"provisioningState": enum(true, "Succeeded", "Failed", "Canceled", "Provisioning", "Updating", "Deleting", "Accepted"),
		"distribution":      str(),
		"infrastructure":    str(),
		"offering":          str().ro(),
		"managedIdentityCertificateExpirationTime": dateTime().ro(),
		"lastConnectivityTime":                     dateTime().ro(),
		"connectivityStatus":                       enum(true, status...).ro(),
	}
	required := []string{"agentPublicKeyCertificate"}
	if v.writableStatus {
		props["connectivityStatus"] = enum(true, status...)
	}
	if v.aad2020 {
		// #/definitions/ConnectedClusterAADProfile.
		props["aadProfile"] = object(map[string]*Schema{
			"tenantId":    str(),
			"clientAppId": str(),
			"serverAppId": str(),
		}, "tenantId", "clientAppId", "serverAppId").ref(def("ConnectedClusterAADProfile"))
		required = append(required, "aadProfile")
	}
	if v.aad {
		props["aadProfile"] = object(map[string]*Schema{
			"enableAzureRBAC":     boolean(),
			"adminGroupObjectIDs": arrayOf(str()),
			"tenantID":            str(),
		}).ref(def("AadProfile"))
	}
	if v.distributionVersion {
		props["distributionVersion"] = str()
	}
	if v.privateLink {
		props["privateLinkState"] = enum(true, "Enabled", "Disabled")
		props["privateLinkScopeResourceId"] = str()
	}
	if v.hybridBenefit {
		props["azureHybridBenefit"] = enum(true, "True", "False", "NotApplicable")
	}
	if v.misc {
		props["miscellaneousProperties"] = mapOf(str()).ro()
	}
	if v.agent > 0 {
		// #/definitions/ArcAgentProfile.
		agent := object(map[string]*Schema{
			"desiredAgentVersion": str(),
			"agentAutoUpgrade":    enum(true, "Enabled", "Disabled"),
		}).ref(def("ArcAgentProfile"))
		if v.agent >= 2 {
			// #/definitions/SystemComponent and #/definitions/AgentError.
			agent.Properties["systemComponents"] = arrayOf(object(map[string]*Schema{
				"type":                 str(),
				"userSpecifiedVersion": str(),
				"majorVersion":         integer(FormatInt32),
				"currentVersion":       str().ro(),
			}).ref(def("SystemComponent")))
			agent.Properties["agentErrors"] = arrayOf(object(map[string]*Schema{
				"message":   str().ro(),
				"severity":  str().ro(),
				"component": str().ro(),
				"time":      dateTime().ro(),
			}).ref(def("AgentError")))
		}
		if v.agent >= 3 {
			agent.Properties["agentState"] = str().ro()
		}
		props["arcAgentProfile"] = agent
	}
	if v.identity {
		// #/definitions/SecurityProfile and #/definitions/OidcIssuerProfile.
		props["securityProfile"] = object(map[string]*Schema{
			"workloadIdentity": object(map[string]*Schema{"enabled": boolean()}),
		}).ref(def("SecurityProfile"))
		props["oidcIssuerProfile"] = object(map[string]*Schema{
			"enabled":             boolean(),
			"issuerUrl":           str().ro(),
			"selfHostedIssuerUrl": str(),
		}).ref(def("OidcIssuerProfile"))
	}
	var gateway *Schema
	if v.gateway > 0 {
		// #/definitions/Gateway and #/definitions/ArcAgentryConfigurations.
		gateway = object(map[string]*Schema{"enabled": boolean()}).ref(def("Gateway"))
		if v.gateway == 1 {
			gateway.Properties["resourceId"] = strFormat(FormatARMID)
		}
		props["gateway"] = gateway.nullable()
		props["arcAgentryConfigurations"] = arrayOf(object(map[string]*Schema{
			"feature":           str(),
			"settings":          mapOf(str()).nullable(),
			"protectedSettings": mapOf(str()).nullable(),
		}).ref(def("ArcAgentryConfigurations"))).nullable()
	}
	if v.inbound {
		// #/definitions/InboundConnectivityState.
		props["inboundConnectivityState"] = enum(true, "Connected", "Disconnected", "Unknown").ro()
	}
	properties := object(props, required...).ref(def("ConnectedClusterProperties"))

	// #/definitions/ConnectedCluster: allOf TrackedResource (tags,
	// location required) and Resource (id, name, type readOnly).
	members := resourceMembers()
	members["tags"] = mapOf(str())
	members["location"] = str()
	// #/definitions/ConnectedClusterIdentity; type is modelAsString false.
	members["identity"] = object(map[string]*Schema{
		"principalId": str().ro(),
		"tenantId":    str().ro(),
		"type":        enum(false, "None", "SystemAssigned"),
	}, "type").ref(def("ConnectedClusterIdentity"))
	members["properties"] = properties
	switch {
	case v.typeSpec:
		members["systemData"] = systemData(common + "#/definitions/SystemData")
	case !v.noSystemData:
		members["systemData"] = systemData(def("SystemData"))
	}
	if v.kind != nil {
		members["kind"] = enum(true, v.kind...)
	}
	resource := object(members, "location", "properties", "identity").ref(def("ConnectedCluster"))

	// #/definitions/ConnectedClusterList.
	list := object(map[string]*Schema{
		"value":    arrayOf(resource),
		"nextLink": str(),
	}).ref(def("ConnectedClusterList"))
	// #/definitions/OperationList and Operation.
	op := object(map[string]*Schema{
		"name": str().ro(),
		"display": object(map[string]*Schema{
			"provider":    str(),
			"resource":    str(),
			"operation":   str(),
			"description": str(),
		}).ro(),
	}).ref(def("Operation"))
	if v.typeSpec {
		list = list.with(map[string]*Schema{"nextLink": strFormat(FormatURI)}).require("value")
		op = operationV3()
	}
	ops := object(map[string]*Schema{
		"value":    arrayOf(op).ro(),
		"nextLink": str(),
	}).ref(def("OperationList"))
	if v.typeSpec {
		ops = ops.require("value")
	}

	// #/definitions/ConnectedClusterPatch and ConnectedClusterPatchProperties.
	patchProps := map[string]*Schema{}
	for _, p := range v.patch {
		switch p {
		case "gateway":
			patchProps[p] = gateway
		case "azureHybridBenefit":
			patchProps[p] = props[p]
		default:
			patchProps[p] = str()
		}
	}
	patch := object(map[string]*Schema{
		"tags":       mapOf(str()),
		"properties": object(patchProps).ref(def("ConnectedClusterPatchProperties")),
	}).ref(def("ConnectedClusterPatch"))

	// #/definitions/CredentialResults, CredentialResult and
	// HybridConnectionConfig.
	hybrid := map[string]*Schema{
		"expirationTime":       integer(FormatInt64).ro(),
		"hybridConnectionName": str().ro(),
		"relay":                str().ro(),
		"token":                str().ro(),
	}
	if v.relayTenant {
		hybrid["relayTid"] = str().ro()
		hybrid["relayType"] = str().ro()
	}
	creds := object(map[string]*Schema{
		"hybridConnectionConfig": object(hybrid).ro().ref(def("HybridConnectionConfig")),
		"kubeconfigs": arrayOf(object(map[string]*Schema{
			"name":  str().ro(),
			"value": strFormat(FormatByte).ro(),
		}).ref(def("CredentialResult"))).ro(),
	}).ref(def("CredentialResults"))
	var credsReq *Schema
	switch {
	case v.credentials == "":
	case v.aad2020:
		// #/definitions/AuthenticationDetails, optional.
		credsReq = object(map[string]*Schema{
			"authenticationMethod": enum(true, "Token"),
			"value":                object(map[string]*Schema{"token": str()}),
		}, "authenticationMethod", "value").ref(def("AuthenticationDetails"))
	default:
		// #/definitions/ListClusterUserCredentialProperties (2021-04-01-preview:
		// ListClusterUserCredentialsProperties).
		credsReq = object(map[string]*Schema{
			"authenticationMethod": enum(true, "Token", "AAD"),
			"clientProxy":          boolean(),
		}, "authenticationMethod", "clientProxy")
	}

	rg := "resourcegroups"
	if v.typeSpec {
		rg = "resourceGroups"
	}
	s := &Spec{
		Type:               "connectedClusters",
		Version:            v.version,
		File:               file,
		Note:               v.note,
		ResourceGroups:     rg,
		Resource:           resource,
		Request:            resource,
		List:               list,
		Patch:              patch,
		Error:              errorResponse(common),
		Operations:         ops,
		OperationsErrors:   true,
		CredentialsAction:  v.credentials,
		CredentialsRequest: credsReq,
		Credentials:        creds,
		Statuses: map[Op][]int{
			OpCreateOrUpdate:     {http.StatusOK, http.StatusCreated},
			OpGet:                {http.StatusOK},
			OpList:               {http.StatusOK},
			OpListBySubscription: {http.StatusOK},
			OpUpdate:             {http.StatusOK},
			OpDelete:             {http.StatusOK, http.StatusAccepted, http.StatusNoContent},
			OpListCredentials:    {http.StatusOK},
			OpOperations:         {http.StatusOK},
		},
		LRO: map[Op]FinalState{OpCreateOrUpdate: AzureAsyncOperation, OpDelete: Location},
	}
	if v.patchLRO {
		s.Statuses[OpUpdate] = []int{http.StatusOK, http.StatusAccepted}
		s.LRO[OpUpdate] = Location
	}
	return s
}

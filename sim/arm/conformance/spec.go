package conformance

import (
	"maps"
	"slices"
	"sync"
)

// Op is one documented operation of a resource type.
type Op string

// The operations the suite exercises, named as the swaggers' operationIds
// say them.
const (
	OpCreateOrUpdate     Op = "PUT"                  // *_CreateOrUpdate, ConnectedCluster_Create(OrReplace)
	OpGet                Op = "GET"                  // *_Get
	OpList               Op = "LIST"                 // *_List, ConnectedCluster_ListByResourceGroup
	OpListBySubscription Op = "LIST by subscription" // ConnectedCluster_ListBySubscription
	OpUpdate             Op = "PATCH"                // ConnectedCluster_Update
	OpDelete             Op = "DELETE"               // *_Delete
	OpListCredentials    Op = "POST credentials"     // ConnectedCluster_ListClusterUserCredential(s)
	OpOperations         Op = "operations"           // Operations_List, Operations_Get
)

// FinalState is how a long-running operation reports its end
// (x-ms-long-running-operation-options final-state-via).
type FinalState string

// The final-state-via values the two swaggers use. Sync marks
// x-ms-long-running-operation without options and without a 202: the
// operation ends with its first response.
const (
	Sync                FinalState = "sync"
	AzureAsyncOperation FinalState = "azure-async-operation"
	Location            FinalState = "location"
)

// Spec is what one api-version of one resource type documents: the
// schemas of the bodies its operations take and return, and their status
// codes.
type Spec struct {
	// Type is "sourceControlConfigurations" or "connectedClusters".
	Type string
	// Version is the api-version (the swagger's info.version).
	Version string
	// File is the swagger file the schemas were written from, relative to
	// the root of Azure/azure-rest-api-specs.
	File string
	// Note says what is special about this version's publication, such as
	// "never in a readme tag"; empty for a published version.
	Note string
	// ResourceGroups is how the spec's paths spell the resource group
	// segment ("resourcegroups" in the older connectedClusters swaggers).
	ResourceGroups string

	// Resource is the resource as GET, PUT and PATCH return it.
	Resource *Schema
	// Request is the PUT body.
	Request *Schema
	// List is a page of the LIST operations.
	List *Schema
	// Patch is the PATCH body; nil when there is no PATCH.
	Patch *Schema
	// Error is the default (error) response.
	Error *Schema
	// Operations is the provider's operations list.
	Operations *Schema
	// OperationsErrors says whether the operations list documents an error
	// response (2019-11-01-preview's does not).
	OperationsErrors bool
	// CredentialsAction is the POST action that lists cluster user
	// credentials ("listClusterUserCredential", or the plural of the early
	// previews); empty when the version has none.
	CredentialsAction string
	// CredentialsRequest is the action's body; nil for none.
	CredentialsRequest *Schema
	// Credentials is the action's response.
	Credentials *Schema

	// Statuses lists the success codes of each operation.
	Statuses map[Op][]int
	// LRO says how each long-running operation ends; operations not in it
	// are not long-running.
	LRO map[Op]FinalState
}

var (
	sccSpecs = sync.OnceValue(func() map[string]*Spec { return index(sccTable, sccSpec) })
	ccSpecs  = sync.OnceValue(func() map[string]*Spec { return index(ccTable, ccSpec) })
)

func index[V any](table []V, build func(V) *Spec) map[string]*Spec {
	m := map[string]*Spec{}
	for _, v := range table {
		s := build(v)
		m[s.Version] = s
	}
	return m
}

// SourceControlConfigurations returns what api-version version documents
// for Microsoft.KubernetesConfiguration/sourceControlConfigurations.
func SourceControlConfigurations(version string) (*Spec, bool) {
	s, ok := sccSpecs()[version]
	return s, ok
}

// ConnectedClusters returns what api-version version documents for
// Microsoft.Kubernetes/connectedClusters.
func ConnectedClusters(version string) (*Spec, bool) {
	s, ok := ccSpecs()[version]
	return s, ok
}

// SourceControlConfigurationVersions lists the api-versions encoded for
// sourceControlConfigurations, oldest first.
func SourceControlConfigurationVersions() []string { return slices.Sorted(maps.Keys(sccSpecs())) }

// ConnectedClusterVersions lists the api-versions encoded for
// connectedClusters, oldest first.
func ConnectedClusterVersions() []string { return slices.Sorted(maps.Keys(ccSpecs())) }

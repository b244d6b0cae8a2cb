package arm

import "strings"

// rpOperationsList is one provider's Operations_List: its operations, and
// which members an item has in a given api-version.
type rpOperationsList struct {
	namespace, resource string
	ops                 [][2]string // operation, description
	// members reports whether items carry isDataAction and origin.
	members func(apiVersion string) (isDataAction, origin bool)
}

// configOperations: ResourceProviderOperation has isDataAction from
// 2020-07-01-preview and origin from 2021-05-01-preview
// (kubernetesconfiguration.json per version; common/2022-03-01/
// definitions.json later).
var configOperations = rpOperationsList{
	namespace: "Microsoft.KubernetesConfiguration", resource: "sourceControlConfigurations",
	ops: [][2]string{
		{"read", "Read Source Control Configuration"},
		{"write", "Create or update Source Control Configuration"},
		{"delete", "Delete Source Control Configuration"},
	},
	members: func(v string) (bool, bool) {
		v = strings.ToLower(v)
		return v >= "2020-07-01-preview", v >= "2021-05-01-preview"
	},
}

// clusterOperations: connectedClusters.json's own Operation is {name,
// display} until the TypeSpec-generated versions (2024-12-01-preview on)
// take common-types v3's, which adds isDataAction and origin.
var clusterOperations = rpOperationsList{
	namespace: "Microsoft.Kubernetes", resource: "connectedClusters",
	ops: [][2]string{
		{"read", "Read connected cluster"},
		{"write", "Create or update connected cluster"},
		{"delete", "Delete connected cluster"},
	},
	members: func(v string) (bool, bool) {
		newer := strings.ToLower(v) >= "2024-12-01-preview"
		return newer, newer
	},
}

func (s *Server) rpOperations(l rpOperationsList) handler {
	return func(c *call) *Error {
		dataAction, origin := l.members(c.apiVersion)
		var items []any
		for _, op := range l.ops {
			item := map[string]any{
				"name":    l.namespace + "/" + l.resource + "/" + op[0],
				"display": map[string]string{"provider": l.namespace, "resource": l.resource, "operation": op[1], "description": op[1]},
			}
			if dataAction {
				item["isDataAction"] = false
			}
			if origin {
				item["origin"] = "user,system"
			}
			items = append(items, item)
		}
		return s.writePage(c, items)
	}
}

package ui

import (
	"strings"

	"github.com/gitopsim/gitopsim/sim/agent"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// resourceID is what the view needs from an ARM resource id.
type resourceID struct {
	// cluster is the connected cluster's key, "resourceGroup/name", when
	// the id is the cluster or below it; clusterName its name.
	cluster, clusterName string
	// config is the sourceControlConfiguration's name, when it is one.
	config string
	// rest is what follows the cluster in the id ("" for the cluster).
	rest string
	// typ and name are the last type segment (lower case) and name.
	typ, name string
}

// clusterKey names a connected cluster in the view: "resourcegroup/name",
// lower case, because ARM ids compare case-insensitively and callers spell
// them as they like.
func clusterKey(resourceGroup, name string) string {
	return strings.ToLower(resourceGroup + "/" + name)
}

// parseID reads an ARM id (any case, with or without a leading slash).
func parseID(id string) resourceID {
	var out resourceID
	segs := strings.Split(strings.Trim(id, "/"), "/")
	rg := ""
	for i := 0; i+1 < len(segs); i += 2 {
		t, n := strings.ToLower(segs[i]), segs[i+1]
		switch t {
		case "resourcegroups":
			rg = n
		case "connectedclusters":
			if rg != "" && out.cluster == "" {
				out.cluster, out.clusterName = clusterKey(rg, n), n
				out.rest = strings.Join(segs[i+2:], "/")
			}
		case "sourcecontrolconfigurations":
			out.config = n
		case "providers":
			continue // providers/<namespace> is a pair of its own
		}
		out.typ, out.name = t, n
	}
	return out
}

// describe names what an id is about, for messages.
func (id resourceID) describe() string {
	switch {
	case id.config != "":
		return "configuration " + id.config + " on " + id.clusterName
	case id.cluster != "":
		return "cluster " + id.clusterName
	case id.name != "":
		return id.name
	}
	return "a resource"
}

// follower is a configuration that follows a repo's branch.
type follower struct{ cluster, config string }

// followersOf returns the configurations, of all clusters, whose
// repository is repo and whose operator follows branch.
func followersOf(clusters []arm.ClusterOverview, repo, branch string) []follower {
	var out []follower
	for _, cl := range clusters {
		key := clusterKey(cl.ResourceGroup, cl.Name)
		for _, c := range cl.Configs {
			if repoPath(c.RepositoryURL) == repo && agent.GitBranch(c.OperatorParams) == branch {
				out = append(out, follower{key, c.Name})
			}
		}
	}
	return out
}

// repoPath is the repository a git URL names on its server, without
// ".git": "team/demo" for ssh://git@host:2222/team/demo.git,
// https://host/team/demo and git@host:team/demo.git.
func repoPath(raw string) string {
	p := strings.TrimSuffix(strings.TrimSuffix(raw, "/"), ".git")
	if _, rest, ok := strings.Cut(p, "://"); ok {
		_, p, _ = strings.Cut(rest, "/") // drop the host
	} else if _, rest, ok := strings.Cut(p, ":"); ok {
		p = rest // scp-like user@host:path
	}
	return strings.TrimPrefix(p, "/")
}

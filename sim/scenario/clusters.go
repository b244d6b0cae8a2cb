package scenario

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gitopsim/gitopsim/sim"
)

// namePatternRE is the placeholder of a group's namePattern: {n}, or
// {n:03} for a zero-padded number.
var namePatternRE = regexp.MustCompile(`\{n(?::(0[1-9]))?\}`)

// resourceGroupRE is Azure's rule for resource group names.
var resourceGroupRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)

// clusterDecl is one concrete connected cluster of the spec: a single
// cluster entry, or one member of a group.
type clusterDecl struct {
	Name string
	// Group is the entry's name when it declared a group ("" otherwise).
	Group         string
	ResourceGroup string
	Location      string
	Entry         *Cluster
}

// later reports whether the cluster waits for an onboard step.
func (c *clusterDecl) later() bool { return c.Entry.Onboard == "later" }

// expandPattern names member n (1-based) of a group, as `gitopsim up
// --clusters` names a fleet; the validator has checked the pattern.
func expandPattern(pattern string, n int) string {
	name, err := sim.FleetName(pattern, n)
	if err != nil {
		return pattern
	}
	return name
}

// clusterDecls expands the spec's cluster entries, in declaration order;
// defaultRG is the scenario's resource group. Entries the validator
// refuses expand to what can be made of them.
func clusterDecls(spec *Spec, defaultRG string) []*clusterDecl {
	var out []*clusterDecl
	for i := range spec.Clusters {
		c := &spec.Clusters[i]
		rgs := c.ResourceGroups
		if len(rgs) == 0 {
			rg := c.ResourceGroup
			if rg == "" {
				rg = defaultRG
			}
			rgs = []string{rg}
		}
		loc := c.Location
		if loc == "" {
			loc = "eastus"
		}
		if c.Count == 0 {
			out = append(out, &clusterDecl{Name: c.Name, ResourceGroup: rgs[0], Location: loc, Entry: c})
			continue
		}
		for n := 1; n <= c.Count; n++ {
			out = append(out, &clusterDecl{Name: expandPattern(c.NamePattern, n), Group: c.Name, ResourceGroup: rgs[(n-1)%len(rgs)], Location: loc, Entry: c})
		}
	}
	return out
}

// maxClusters bounds a group: each cluster runs an agent.
const maxClusters = 500

// clusterEntry checks one entry of spec.clusters and records the names it
// declares.
func (v *validator) clusterEntry(c *Cluster, f string) {
	if c.Count == 0 && c.NamePattern == "" {
		v.unique(v.clusters, c.Name, c.Pos, f, "cluster")
		if c.Name != "" && (!dnsLabel.MatchString(c.Name) || len(c.Name) > 63) {
			v.fail(c.Pos, f+".name", "must be a DNS label, got %q", c.Name)
		}
		if len(c.ResourceGroups) > 0 {
			v.fail(c.Pos, f+".resourceGroups", "spreads a group: give count and namePattern, or use resourceGroup for one cluster")
		}
	} else {
		switch {
		case c.Count < 1 || c.Count > maxClusters:
			v.fail(c.Pos, f+".count", "must be between 1 and %d, got %d", maxClusters, c.Count)
		case len(namePatternRE.FindAllString(c.NamePattern, -1)) != 1:
			v.fail(c.Pos, f+".namePattern", `must hold the number once, as {n} or {n:02} (zero-padded), got %q`, c.NamePattern)
		default:
			for n := 1; n <= c.Count; n++ {
				name := expandPattern(c.NamePattern, n)
				if !dnsLabel.MatchString(name) || len(name) > 63 {
					v.fail(c.Pos, f+".namePattern", "makes %q, which is not a DNS label", name)
					break
				}
				if v.clusters[name] || v.groups[name] {
					v.fail(c.Pos, f+".namePattern", "makes %q, which is declared twice", name)
					break
				}
				v.clusters[name] = true
			}
		}
		if c.Name != "" {
			if !dnsLabel.MatchString(c.Name) {
				v.fail(c.Pos, f+".name", "must be a DNS label, got %q", c.Name)
			}
			if v.clusters[c.Name] || v.groups[c.Name] {
				v.fail(c.Pos, f+".name", "cluster %q is declared twice", c.Name)
			}
			v.groups[c.Name] = true
		}
		if c.ResourceGroup != "" && len(c.ResourceGroups) > 0 {
			v.fail(c.Pos, f+".resourceGroups", "resourceGroup and resourceGroups exclude each other")
		}
	}
	for j, rg := range append([]string{c.ResourceGroup}, c.ResourceGroups...) {
		if rg == "" && j == 0 {
			continue
		}
		if !resourceGroupRE.MatchString(rg) || strings.HasSuffix(rg, ".") {
			field := f + ".resourceGroup"
			if j > 0 {
				field = fmt.Sprintf("%s.resourceGroups[%d]", f, j-1)
			}
			v.fail(c.Pos, field, "not a resource group name (letters, digits, '-', '_', '.', '(', ')', at most 90): %q", rg)
		}
	}
	if !oneOf(c.Onboard, "", "start", "later") {
		v.fail(c.Pos, f+".onboard", "must be start or later, got %q", c.Onboard)
	}
}

// clusterOrGroup checks a reference that may name a cluster or a group.
func (v *validator) clusterOrGroup(name string, p Pos, field string) {
	if name != "" && v.groups[name] {
		return
	}
	v.ref(v.clusters, name, p, field, "cluster")
}

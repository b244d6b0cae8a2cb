package scenario

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// onboard steps: declared clusters with onboard: later join, as
// `az connectedk8s connect` does.
func summaryOnboard(r *run, s *Step) string {
	name := s.Onboard.Cluster
	if g := r.groups[name]; len(g) > 0 {
		return fmt.Sprintf("onboard %d clusters of %s (%s … %s)", len(g), name, g[0].Name, g[len(g)-1].Name)
	}
	return "onboard cluster " + name
}

func doOnboard(r *run, s *Step) (string, error) {
	name := s.Onboard.Cluster
	members := r.groups[name]
	if len(members) == 0 {
		members = []*clusterDecl{r.decls[name]}
	}
	for _, d := range members {
		if _, ok := r.clusters[d.Name]; ok {
			return "", failf("cluster %s is onboarded already", d.Name)
		}
		if err := r.onboard(d); err != nil {
			return "", err
		}
	}
	rgs := map[string]bool{}
	for _, d := range members {
		rgs[d.ResourceGroup] = true
	}
	return "in " + strings.Join(sortedKeys(rgs), ", "), nil
}

// updateCluster steps: PATCH of a connected cluster's tags.
func summaryUpdateCluster(r *run, s *Step) string {
	u := s.UpdateCluster
	var tags []string
	for _, k := range sortedKeys(u.Tags) {
		tags = append(tags, k+"="+u.Tags[k])
	}
	return fmt.Sprintf("PATCH connected cluster %s tags %s", u.Cluster, strings.Join(tags, ", "))
}

func doUpdateCluster(r *run, s *Step) (string, error) {
	u := s.UpdateCluster
	tags := map[string]string{}
	for k, v := range u.Tags {
		tags[k] = r.expand(v)
	}
	body, err := json.Marshal(map[string]any{"tags": tags})
	if err != nil {
		return "", err
	}
	return r.armCall(http.MethodPatch, r.clusterPath(u.Cluster), clusterAPIVersion, body, u.Expect)
}

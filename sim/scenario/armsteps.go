package scenario

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// arm steps: any request on the ARM API.
func summaryARM(r *run, s *Step) string {
	return fmt.Sprintf("%s %s", strings.ToUpper(s.ARM.Method), s.ARM.Path)
}

func doARM(r *run, s *Step) (string, error) {
	a := s.ARM
	var body []byte
	if a.Body != nil {
		b, err := json.Marshal(r.expandAny(jsonable(a.Body)))
		if err != nil {
			return "", failf("body: %v", err)
		}
		body = b
	}
	ver := a.APIVersion
	if ver == "" {
		ver = configAPIVersion
	}
	return r.armCall(strings.ToUpper(a.Method), r.expand(a.Path), ver, body, a.Expect)
}

// configuration steps: PUT of a configuration.
func summaryConfiguration(r *run, s *Step) string {
	c := s.Configuration
	return fmt.Sprintf("PUT configuration %s/%s", c.Cluster, c.Name)
}

func doConfiguration(r *run, s *Step) (string, error) {
	return r.putConfiguration(s.Configuration)
}

// deleteConfiguration steps: DELETE of a configuration.
func summaryDeleteConfiguration(r *run, s *Step) string {
	return fmt.Sprintf("DELETE configuration %s/%s", s.DeleteConfiguration.Cluster, s.DeleteConfiguration.Name)
}

func doDeleteConfiguration(r *run, s *Step) (string, error) {
	d := s.DeleteConfiguration
	return r.armCall(http.MethodDelete, r.configPath(d.Cluster, d.Name), configAPIVersion, nil, d.Expect)
}

// deleteCluster steps: DELETE of a connected cluster.
func summaryDeleteCluster(r *run, s *Step) string {
	return "DELETE connected cluster " + s.DeleteCluster.Name
}

func doDeleteCluster(r *run, s *Step) (string, error) {
	return r.armCall(http.MethodDelete, r.clusterPath(s.DeleteCluster.Name), clusterAPIVersion, nil, s.DeleteCluster.Expect)
}

// armFault steps: faults on ARM routes.
func summaryARMFault(r *run, s *Step) string {
	a := s.ARMFault
	if a.Clear {
		return "ARM faults cleared"
	}
	route := a.Route
	if route == "" {
		route = "every route"
	}
	return fmt.Sprintf("ARM fault on %s: %d %s", route, a.Status, a.Code)
}

func doARMFault(r *run, s *Step) (string, error) {
	a := s.ARMFault
	if a.Clear {
		r.env.sim.ARM().ClearFaults()
		return "", nil
	}
	if a.Route != "" && !containsFold(r.env.sim.ARM().RouteNames(), a.Route) {
		return "", failf("no ARM route %q (routes: %s)", a.Route, strings.Join(r.env.sim.ARM().RouteNames(), ", "))
	}
	r.env.sim.ARM().InjectFault(arm.Fault{Route: a.Route, Method: strings.ToUpper(a.Method), Status: a.Status, Code: a.Code, Message: a.Message, Times: a.Times})
	return "", nil
}

package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/policy"
)

// diagnosticKinds are dumped for every namespace a scenario touches.
var diagnosticKinds = []schema.GroupVersionResource{
	agent.GitConfigGVR,
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "serviceaccounts"},
	{Version: "v1", Resource: "secrets"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
}

// writeDiagnostics bundles what explains a failure into dir: the ARM
// request log, the simulator's log, each agent's events, the git refs and
// the cluster objects of the namespaces the scenario touched. Secrets are
// listed by name only.
func writeDiagnostics(ctx context.Context, dir, workdir string, s *sim.Sim, sc *Scenario, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, dst), b, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	cp(filepath.Join(workdir, "arm", "requests.jsonl"), "arm-requests.jsonl")
	cp(filepath.Join(workdir, "gitopsim.log"), "gitopsim.log")

	var ev bytes.Buffer
	for _, c := range s.Connected() {
		fmt.Fprintf(&ev, "# cluster %s (%s)\n", c.Name, c.ID)
		for _, e := range c.Agent.Events() {
			fmt.Fprintf(&ev, "%s %-24s %-20s %s\n", e.Time.UTC().Format("2006-01-02T15:04:05Z"), e.Reason, e.Configuration, e.Message)
		}
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "agent-events.txt"), ev.Bytes(), 0o644))

	var refs bytes.Buffer
	for _, rp := range sc.Spec.Repos {
		m, err := s.Git().Refs(rp.Name)
		if err != nil {
			fmt.Fprintf(&refs, "# %s: %v\n", rp.Name, err)
			continue
		}
		fmt.Fprintf(&refs, "# %s\n", rp.Name)
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&refs, "%s %s\n", m[n], n)
		}
	}
	// What the git server served and what failed, with causes: a failed
	// clone or push explains an agent stuck on an old revision.
	st := s.Git().Stats()
	fmt.Fprintf(&refs, "# git server requests\n")
	for _, k := range slices.Sorted(maps.Keys(st.Requests)) {
		fmt.Fprintf(&refs, "%-32s %d\n", k, st.Requests[k])
	}
	fmt.Fprintf(&refs, "# git server failures\n")
	for _, k := range slices.Sorted(maps.Keys(st.Failures)) {
		fmt.Fprintf(&refs, "%-40s %d\n", k, st.Failures[k])
	}
	for _, f := range st.Recent {
		fmt.Fprintf(&refs, "%s %s %s %s %q %s: %s\n", f.Time.UTC().Format(time.RFC3339), f.Protocol, f.Service, f.Repo, f.Who, f.Kind, f.Error)
	}
	errs = append(errs, os.WriteFile(filepath.Join(dir, "git-refs.txt"), refs.Bytes(), 0o644))
	errs = append(errs, dumpObjects(ctx, filepath.Join(dir, "cluster-objects.yaml"), s, sc))
	if p := s.Policy(); p != nil && len(p.Events()) > 0 {
		errs = append(errs, os.WriteFile(filepath.Join(dir, "policy.txt"), policyDump(p), 0o644))
	}
	return errors.Join(errs...)
}

// policyDump lists what Azure Policy did (events, with deployment
// errors) and the latest compliance states.
func policyDump(p *policy.Provider) []byte {
	var b bytes.Buffer
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	fmt.Fprintf(&b, "# events\n")
	for _, e := range p.Events() {
		fmt.Fprintf(&b, "%s %-20s %-14s %s %s", ts(e.Time), e.Kind, e.State, e.AssignmentID, e.ResourceID)
		if e.Remediation != "" {
			fmt.Fprintf(&b, " remediation=%s", e.Remediation)
		}
		if e.Error != "" {
			fmt.Fprintf(&b, " error=%q", e.Error)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "# latest states\n")
	for _, st := range p.States() {
		fmt.Fprintf(&b, "%s %-12s %s %s\n", ts(st.Timestamp), st.ComplianceState, st.PolicyAssignmentID, st.ResourceID)
	}
	return b.Bytes()
}

// namespaces lists the namespaces a scenario names (operator namespaces
// and expected objects'), sorted.
func namespaces(sc *Scenario) []string {
	set := map[string]bool{}
	var walk func([]Step)
	walk = func(steps []Step) {
		for _, st := range steps {
			switch {
			case st.Configuration != nil:
				ns := st.Configuration.Namespace
				if ns == "" {
					ns = "default"
				}
				set[ns] = true
			case st.Expect != nil && st.Expect.Object != nil && st.Expect.Object.Namespace != "":
				set[st.Expect.Object.Namespace] = true
			case st.AssignPolicy != nil:
				// What the policy deploys installs an operator there.
				if ns, ok := st.AssignPolicy.Parameters["operatorNamespace"].(string); ok && ns != "" {
					set[ns] = true
				}
			case st.Try != nil:
				walk(st.Try.Steps)
				walk(st.Try.Catch)
				walk(st.Try.Finally)
			}
		}
	}
	walk(sc.Spec.Steps)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dumpObjects(ctx context.Context, path string, s *sim.Sim, sc *Scenario) error {
	var buf bytes.Buffer
	seen := map[any]bool{}
	for _, c := range s.Connected() {
		if seen[c.Backend] {
			continue
		}
		seen[c.Backend] = true
		dyn, err := dynamic.NewForConfig(c.Backend.AdminConfig())
		if err != nil {
			return err
		}
		for _, ns := range namespaces(sc) {
			for _, gvr := range diagnosticKinds {
				list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					fmt.Fprintf(&buf, "# %s in %s: %v\n", gvr.Resource, ns, err)
					continue
				}
				for _, it := range list.Items {
					writeObject(&buf, it, gvr.Resource == "secrets")
				}
			}
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeObject(buf *bytes.Buffer, u unstructured.Unstructured, secret bool) {
	u.SetManagedFields(nil)
	obj := u.Object
	if secret {
		// Names and keys only: the values are credentials.
		keys := []string{}
		data, _ := u.Object["data"].(map[string]any)
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		obj = map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace()}, "dataKeys": keys}
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return
	}
	buf.WriteString("---\n")
	buf.Write(b)
}

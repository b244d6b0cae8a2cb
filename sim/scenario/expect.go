package scenario

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

// check evaluates an expectation once: "" when it holds, otherwise what
// was expected and what was found.
type check func() string

// expect evaluates e. With within, the clock moves event by event until
// the check holds or the deadline passes; with during, the check must hold
// at every event until the deadline.
func (r *run) expect(e *Expect) (string, error) {
	c := r.checker(e)
	start := r.env.clk.Now()
	if e.During != nil {
		deadline := start.Add(e.During.D())
		q := quantum(e.During.D())
		for {
			if msg := c(); msg != "" {
				return "", failf("stopped holding after %s: %s", fmtDur(r.env.clk.Since(start)), msg)
			}
			if !r.env.clk.Now().Before(deadline) {
				return "held for " + fmtDur(e.During.D()), nil
			}
			if err := r.stepTo(deadline, q); err != nil {
				return "", err
			}
		}
	}
	var within time.Duration
	if e.Within != nil {
		within = e.Within.D()
	}
	deadline := start.Add(within)
	q := quantum(within)
	for {
		msg := c()
		if msg == "" {
			break
		}
		if !r.env.clk.Now().Before(deadline) {
			if within == 0 {
				return "", failf("%s", msg)
			}
			return "", failf("not within %s: %s", fmtDur(within), msg)
		}
		if err := r.stepTo(deadline, q); err != nil {
			return "", err
		}
	}
	var detail []string
	if e.Within != nil {
		detail = append(detail, "after "+fmtDur(r.env.clk.Since(start)))
	}
	if e.Since != "" {
		detail = append(detail, fmt.Sprintf("%s since %q", fmtDur(r.env.clk.Since(r.stepAt[e.Since])), e.Since))
	}
	return strings.Join(detail, ", "), nil
}

// quantum is the finest virtual-time step between two evaluations of an
// expectation over window: a thousandth of it, so that a two-day window
// is checked every three minutes rather than after each of its thousands
// of agent events, while windows up to about 16 minutes stay exact to
// the event.
func quantum(window time.Duration) time.Duration {
	return (window / 1000).Truncate(time.Second)
}

// stepTo moves time towards deadline: on a virtual clock to the next
// scheduled event, but at least q ahead (so the time an expectation
// starts holding is exact to q), on a wall clock by a short sleep.
func (r *run) stepTo(deadline time.Time, q time.Duration) error {
	if r.virt != nil {
		next, ok := r.virt.NextAt()
		if floor := r.virt.Now().Add(q); !ok || next.Before(floor) {
			next = floor
		}
		if !ok || next.After(deadline) {
			next = deadline
		}
		r.virt.AdvanceTo(next)
		return nil
	}
	return r.env.clk.Sleep(r.ctx, max(min(time.Second, deadline.Sub(r.env.clk.Now())), time.Millisecond))
}

// expectKind checks one kind of expectation: each check field of Expect
// (its YAML key) has a row in expectKinds, so a new kind is a new row and
// its functions, not another case in a switch.
type expectKind struct {
	// summary describes the check for the timeline, without the window.
	summary func(r *run, e *Expect) string
	// check builds the check, evaluated once or over a window.
	check func(r *run, e *Expect) check
}

// expectKinds maps an expectation's check to how it runs.
var expectKinds = map[string]expectKind{
	"compliance":       {summaryCompliance, func(r *run, e *Expect) check { return r.checkCompliance(e.Compliance) }},
	"connectivity":     {summaryConnectivity, checkConnectivity},
	"arm":              {summaryARMExpect, checkARMExpect},
	"object":           {summaryObject, func(r *run, e *Expect) check { return r.checkObject(e.Object) }},
	"gitRef":           {summaryGitRef, func(r *run, e *Expect) check { return r.checkGitRef(e.GitRef) }},
	"event":            {summaryEvent, func(r *run, e *Expect) check { return r.checkEvent(e.Event) }},
	"policyCompliance": {summaryPolicyCompliance, checkPolicyCompliance},
	"policySummary":    {summaryPolicySummary, checkPolicySummary},
	"remediation":      {summaryRemediation, checkRemediation},
	"policyDeployment": {summaryPolicyDeployment, checkPolicyDeployment},
}

// expectChecks lists Expect's check fields by YAML name, in declaration
// order.
func expectChecks() []string {
	var out []string
	t := reflect.TypeFor[Expect]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if t.Field(i).Type.Kind() == reflect.Pointer && name != "within" && name != "during" {
			out = append(out, name)
		}
	}
	return out
}

// expectKindOf is the expectation's check, its first non-empty check
// field.
func expectKindOf(e *Expect) string {
	rv := reflect.ValueOf(e).Elem()
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ",")
		if rv.Field(i).Kind() == reflect.Pointer && !rv.Field(i).IsNil() && name != "within" && name != "during" {
			return name
		}
	}
	return ""
}

func (r *run) expectSummary(e *Expect) string {
	var s string
	if k, ok := expectKinds[expectKindOf(e)]; ok {
		s = k.summary(r, e)
	}
	switch {
	case e.Within != nil:
		s += " within " + fmtDur(e.Within.D())
	case e.During != nil:
		s += " during " + fmtDur(e.During.D())
	}
	return "expect " + s
}

func summaryCompliance(r *run, e *Expect) string {
	c := e.Compliance
	s := fmt.Sprintf("compliance %s/%s", r.who(c.Cluster), c.Configuration)
	if c.State != "" {
		s += " " + c.State
	}
	if c.MessageLevel != "" {
		s += " level " + c.MessageLevel
	}
	if c.Message != "" {
		s += fmt.Sprintf(" message ~ %q", c.Message)
	}
	if c.RepositoryPublicKey != "" {
		s += " repositoryPublicKey " + c.RepositoryPublicKey
	}
	return s
}

func summaryConnectivity(r *run, e *Expect) string {
	return fmt.Sprintf("connectivity %s %s", e.Connectivity.Cluster, e.Connectivity.Status)
}

func summaryARMExpect(r *run, e *Expect) string {
	status := e.ARM.Status
	if status == 0 {
		status = http.StatusOK
	}
	s := fmt.Sprintf("GET %s %d", e.ARM.Path, status)
	if e.ARM.Match != nil || len(e.ARM.Fields) > 0 {
		s += " matching"
	}
	return s
}

func summaryObject(r *run, e *Expect) string {
	o := e.Object
	state := o.State
	if state == "" {
		state = "present"
	}
	s := fmt.Sprintf("%s %s on %s %s", o.Kind, nsName(o.Namespace, o.Name), o.Cluster, state)
	if o.As != "" {
		s += " as " + o.As
	}
	if o.Match != nil {
		s += " matching"
	}
	return s
}

func summaryGitRef(r *run, e *Expect) string {
	g := e.GitRef
	switch {
	case g.Exists != nil && !*g.Exists:
		return fmt.Sprintf("git %s %s absent", g.Repo, g.Ref)
	case g.Equals != "":
		return fmt.Sprintf("git %s %s = %s", g.Repo, g.Ref, g.Equals)
	}
	return fmt.Sprintf("git %s %s exists", g.Repo, g.Ref)
}

func summaryEvent(r *run, e *Expect) string {
	ev := e.Event
	s := "event " + ev.Cluster
	if ev.Configuration != "" {
		s += "/" + ev.Configuration
	}
	if ev.Reason != "" {
		s += " " + ev.Reason
	}
	if ev.Message != "" {
		s += fmt.Sprintf(" ~ %q", ev.Message)
	}
	if ev.Absent {
		s = "no " + s
	}
	return s
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func (r *run) checker(e *Expect) check {
	if k, ok := expectKinds[expectKindOf(e)]; ok {
		return k.check(r, e)
	}
	return func() string { return "nothing to check" }
}

func checkConnectivity(r *run, e *Expect) check {
	c := e.Connectivity
	return r.checkARM(r.clusterPath(c.Cluster), clusterAPIVersion, http.StatusOK, nil, map[string]any{"properties.connectivityStatus": c.Status})
}

func checkARMExpect(r *run, e *Expect) check {
	a := e.ARM
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	ver := a.APIVersion
	if ver == "" {
		ver = configAPIVersion
	}
	var match any
	if a.Match != nil {
		match = jsonable(r.expandAny(a.Match))
	}
	fields := map[string]any{}
	for k, v := range a.Fields {
		fields[k] = jsonable(r.expandAny(v))
	}
	return r.checkARM(r.expand(a.Path), ver, status, match, fields)
}

func (r *run) getJSON(path, apiVersion string) (int, any, string) {
	status, b, err := r.armDo(http.MethodGet, path, apiVersion, nil)
	if err != nil {
		return 0, nil, err.Error()
	}
	var v any
	if len(b) > 0 && json.Unmarshal(b, &v) != nil {
		return status, nil, fmt.Sprintf("GET %s: answer is not JSON: %.200s", path, b)
	}
	return status, v, ""
}

func (r *run) checkARM(path, apiVersion string, status int, match any, fields map[string]any) check {
	return func() string {
		got, doc, msg := r.getJSON(path, apiVersion)
		if msg != "" {
			return msg
		}
		if got != status {
			code, _ := lookup(doc, "error.code")
			return fmt.Sprintf("GET %s: expected status %d, got %d %v", path, status, got, orEmpty(code))
		}
		if match != nil {
			if m := matchPartial(match, doc, ""); m != "" {
				return fmt.Sprintf("GET %s: %s", path, m)
			}
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, ok := lookup(doc, k)
			if !ok {
				return fmt.Sprintf("%s: expected %s, but the field is missing", k, show(fields[k]))
			}
			if m := matchPartial(fields[k], v, k); m != "" {
				return m
			}
		}
		return ""
	}
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// checkCompliance checks a configuration's compliance on a cluster, or
// on every cluster of a group.
func (r *run) checkCompliance(c *ComplianceExpect) check {
	g := r.groups[c.Cluster]
	if len(g) == 0 {
		return r.checkClusterCompliance(c)
	}
	checks := make([]check, len(g))
	for i, d := range g {
		one := *c
		one.Cluster = d.Name
		checks[i] = r.checkClusterCompliance(&one)
	}
	return func() string {
		failed, first := 0, ""
		for i, ch := range checks {
			if msg := ch(); msg != "" {
				if failed == 0 {
					first = g[i].Name + ": " + msg
				}
				failed++
			}
		}
		if failed == 0 {
			return ""
		}
		return fmt.Sprintf("%d of %s of %s not as expected; %s", failed, plural(len(g), "cluster"), c.Cluster, first)
	}
}

func (r *run) checkClusterCompliance(c *ComplianceExpect) check {
	path := r.configPath(c.Cluster, c.Configuration)
	return func() string {
		status, doc, msg := r.getJSON(path, configAPIVersion)
		if msg != "" {
			return msg
		}
		if status != http.StatusOK {
			code, _ := lookup(doc, "error.code")
			return fmt.Sprintf("configuration %s/%s: GET answered %d %v", c.Cluster, c.Configuration, status, orEmpty(code))
		}
		state, _ := lookup(doc, "properties.complianceStatus.complianceState")
		message, _ := lookup(doc, "properties.complianceStatus.message")
		level, _ := lookup(doc, "properties.complianceStatus.messageLevel")
		pk, _ := lookup(doc, "properties.repositoryPublicKey")
		ms, _ := message.(string)
		var parts struct{ OperatorMessage, ClusterState string }
		_ = json.Unmarshal([]byte(ms), &parts)
		seen := fmt.Sprintf("(state %s, level %s, message %s)", show(state), show(level), show(message))
		switch {
		case c.State != "" && state != c.State:
			return fmt.Sprintf("complianceState: expected %q, got %s %s", c.State, show(state), seen)
		case c.MessageLevel != "" && level != c.MessageLevel:
			return fmt.Sprintf("messageLevel: expected %q, got %s %s", c.MessageLevel, show(level), seen)
		case c.Message != "" && !strings.Contains(ms, c.Message) && !strings.Contains(parts.OperatorMessage, c.Message) && !strings.Contains(parts.ClusterState, c.Message):
			return fmt.Sprintf("message: expected it to contain %q, got %s", c.Message, show(message))
		case c.RepositoryPublicKey == "set" && (pk == nil || pk == ""):
			return "repositoryPublicKey: expected it set, it is empty " + seen
		case c.RepositoryPublicKey == "empty" && pk != nil && pk != "":
			return "repositoryPublicKey: expected it empty, it is set"
		}
		return ""
	}
}

func (r *run) checkGitRef(g *GitRefExpect) check {
	git := r.env.sim.Git()
	want := g.Exists == nil || *g.Exists
	return func() string {
		h, err := git.Ref(g.Repo, g.Ref+"^{}")
		switch {
		case err != nil && want:
			return fmt.Sprintf("%s %s: expected it to exist, it does not", g.Repo, g.Ref)
		case err == nil && !want:
			return fmt.Sprintf("%s %s: expected it absent, it points at %s", g.Repo, g.Ref, h.String()[:7])
		case err == nil && g.Equals != "":
			o, oerr := git.Ref(g.Repo, g.Equals+"^{}")
			if oerr != nil {
				return fmt.Sprintf("%s %s: cannot compare with %s: %v", g.Repo, g.Ref, g.Equals, oerr)
			}
			if o != h {
				return fmt.Sprintf("%s %s: expected %s (%s), got %s", g.Repo, g.Ref, o.String()[:7], g.Equals, h.String()[:7])
			}
		}
		return ""
	}
}

func (r *run) checkEvent(ev *EventExpect) check {
	return func() string {
		c, ok := r.clusters[ev.Cluster]
		if !ok {
			return notOnboarded(ev.Cluster)
		}
		ag := c.Agent
		var last string
		for _, e := range ag.Events() {
			if (ev.Configuration == "" || e.Configuration == ev.Configuration) && (ev.Reason == "" || e.Reason == ev.Reason) && strings.Contains(e.Message, ev.Message) {
				if ev.Absent {
					return fmt.Sprintf("expected no such event, got %s %s: %s", r.offset(e.Time), e.Reason, e.Message)
				}
				return ""
			}
			if ev.Configuration == "" || e.Configuration == ev.Configuration {
				last = fmt.Sprintf("%s %s", e.Reason, e.Message)
			}
		}
		if ev.Absent {
			return ""
		}
		if last == "" {
			return "no matching event; the agent recorded none for this configuration"
		}
		return "no matching event; the latest was: " + last
	}
}

// notOnboarded explains a check on a cluster that waits for its onboard
// step.
func notOnboarded(name string) string {
	return fmt.Sprintf("cluster %s is not onboarded yet (it is declared with onboard: later)", name)
}

// kubeClients caches REST mappers and dynamic clients per backend and
// identity.
type kubeClients struct {
	mu      sync.Mutex
	mappers map[cluster.Backend]*restmapper.DeferredDiscoveryRESTMapper
	dyn     map[string]dynamic.Interface
}

func newKubeClients() *kubeClients {
	return &kubeClients{mappers: map[cluster.Backend]*restmapper.DeferredDiscoveryRESTMapper{}, dyn: map[string]dynamic.Interface{}}
}

func (k *kubeClients) mapper(b cluster.Backend) (*restmapper.DeferredDiscoveryRESTMapper, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if m, ok := k.mappers[b]; ok {
		return m, nil
	}
	dc, err := discovery.NewDiscoveryClientForConfig(b.AdminConfig())
	if err != nil {
		return nil, err
	}
	m := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	k.mappers[b] = m
	return m, nil
}

func (k *kubeClients) client(b cluster.Backend, as string, groups []string) (dynamic.Interface, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := fmt.Sprintf("%p|%s|%s", b, as, strings.Join(groups, ","))
	if c, ok := k.dyn[key]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(b.AdminConfig())
	if as != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: as, Groups: groups}
		if strings.HasPrefix(as, "system:serviceaccount:") && len(groups) == 0 {
			parts := strings.Split(as, ":")
			cfg.Impersonate.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + parts[2], "system:authenticated"}
		}
	}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k.dyn[key] = c
	return c, nil
}

func (r *run) checkObject(o *ObjectExpect) check {
	want := o.State
	if want == "" {
		want = "present"
	}
	var match any
	if o.Match != nil {
		match = jsonable(o.Match)
	}
	what := fmt.Sprintf("%s %s", o.Kind, nsName(o.Namespace, o.Name))
	return func() string {
		c, ok := r.clusters[o.Cluster]
		if !ok {
			return notOnboarded(o.Cluster)
		}
		got, obj, detail := r.getObject(c.Backend, o)
		if got != want {
			if detail != "" {
				detail = " (" + detail + ")"
			}
			return fmt.Sprintf("%s: expected %s, got %s%s", what, want, got, detail)
		}
		if got == "present" && match != nil {
			if m := matchPartial(match, obj, ""); m != "" {
				return fmt.Sprintf("%s: %s", what, m)
			}
		}
		return ""
	}
}

// getObject reads an object: present (with its content), absent,
// forbidden or error (with why).
func (r *run) getObject(b cluster.Backend, o *ObjectExpect) (string, map[string]any, string) {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return "error", nil, err.Error()
	}
	m, err := r.kube.mapper(b)
	if err != nil {
		return "error", nil, err.Error()
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: o.Kind}
	mapping, err := m.RESTMapping(gk, gv.Version)
	if meta.IsNoMatchError(err) {
		m.Reset() // a CRD may have arrived since discovery was cached
		mapping, err = m.RESTMapping(gk, gv.Version)
	}
	if meta.IsNoMatchError(err) {
		return "absent", nil, "the cluster has no kind " + o.Kind + " in " + o.APIVersion
	}
	if err != nil {
		return "error", nil, err.Error()
	}
	c, err := r.kube.client(b, o.As, o.Groups)
	if err != nil {
		return "error", nil, err.Error()
	}
	var ri dynamic.ResourceInterface = c.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := o.Namespace
		if ns == "" {
			ns = "default"
		}
		ri = c.Resource(mapping.Resource).Namespace(ns)
	}
	obj, err := ri.Get(r.ctx, o.Name, metav1.GetOptions{})
	switch {
	case err == nil:
		return "present", obj.Object, ""
	case apierrors.IsNotFound(err):
		return "absent", nil, ""
	case apierrors.IsForbidden(err):
		return "forbidden", nil, err.Error()
	}
	return "error", nil, err.Error()
}

// matchPartial reports the first place where actual does not contain
// expected: maps need the expected keys (others may exist), lists the
// same length, scalars equal values.
func matchPartial(expected, actual any, path string) string {
	at := path
	if at == "" {
		at = "(document)"
	}
	switch e := expected.(type) {
	case map[string]any:
		a, ok := actual.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: expected a mapping, got %s", at, show(actual))
		}
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, ok := a[k]
			if !ok {
				return fmt.Sprintf("%s: expected %s, but the field is missing", joinPath(path, k), show(e[k]))
			}
			if m := matchPartial(e[k], av, joinPath(path, k)); m != "" {
				return m
			}
		}
		return ""
	case []any:
		a, ok := actual.([]any)
		if !ok || len(a) != len(e) {
			return fmt.Sprintf("%s: expected %s, got %s", at, show(expected), show(actual))
		}
		for i := range e {
			if m := matchPartial(e[i], a[i], fmt.Sprintf("%s[%d]", path, i)); m != "" {
				return m
			}
		}
		return ""
	}
	if !sameScalar(expected, actual) {
		return fmt.Sprintf("%s: expected %s, got %s", at, show(expected), show(actual))
	}
	return ""
}

// sameScalar compares scalars, numbers by value whatever their Go type
// (YAML and JSON give float64, Kubernetes objects int64).
func sameScalar(a, b any) bool {
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}

// lookup follows a field path: a.b[0].c, with ["key.with.dots"] for keys
// that contain dots.
func lookup(doc any, path string) (any, bool) {
	cur := doc
	for path != "" {
		var key string
		idx := -1
		switch {
		case strings.HasPrefix(path, "[\""):
			end := strings.Index(path, "\"]")
			if end < 0 {
				return nil, false
			}
			key, path = path[2:end], path[end+2:]
		case strings.HasPrefix(path, "["):
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return nil, false
			}
			n, err := strconv.Atoi(path[1:end])
			if err != nil {
				return nil, false
			}
			idx, path = n, path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			key, path = path[:end], path[end:]
		}
		path = strings.TrimPrefix(path, ".")
		if idx >= 0 {
			l, ok := cur.([]any)
			if !ok || idx >= len(l) {
				return nil, false
			}
			cur = l[idx]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// show prints a value compactly for expected-vs-actual messages.
func show(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

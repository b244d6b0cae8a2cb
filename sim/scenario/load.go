package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// Load reads and strictly decodes one scenario file, then checks it: every
// problem found is returned, each with file, line and field path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a file already in memory; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	sc := &Scenario{}
	if err := decodeFile(file, data, sc); err != nil {
		return nil, err
	}
	sc.Pos = Pos{File: file, Line: 1, Col: 1}
	v := &validator{sc: sc, file: file, clusters: map[string]bool{}, groups: map[string]bool{}, repos: map[string]bool{}, keys: map[string]bool{}, tokens: map[string]bool{},
		names: map[string]bool{}, assignments: map[string]bool{}, remediations: map[string]bool{}}
	v.check()
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return sc, nil
}

// Files expands files, directories (their *.yaml and *.yml, sorted) and
// glob patterns into scenario file paths.
func Files(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		switch {
		case err == nil && st.IsDir():
			var found []string
			for _, ext := range []string{"*.yaml", "*.yml"} {
				m, _ := filepath.Glob(filepath.Join(a, ext))
				found = append(found, m...)
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%s: no *.yaml scenario files in this directory", a)
			}
			sort.Strings(found)
			out = append(out, found...)
		case err == nil:
			out = append(out, a)
		default:
			m, gerr := filepath.Glob(a)
			if gerr != nil || len(m) == 0 {
				return nil, fmt.Errorf("%s: no such scenario file", a)
			}
			out = append(out, m...)
		}
	}
	return out, nil
}

// FixturePath finds a repo fixture: a .txtar path relative to the scenario
// file, or fixtures/repos/<name>.txtar in the scenario's directory or any
// directory above it.
func FixturePath(scenarioFile, fixture string) (string, error) {
	dir := filepath.Dir(scenarioFile)
	if strings.HasSuffix(fixture, ".txtar") {
		p := fixture
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("fixture %s not found", p)
		}
		return p, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "fixtures", "repos", fixture+".txtar")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("fixture %q not found: no fixtures/repos/%s.txtar above %s", fixture, fixture, dir)
		}
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

type validator struct {
	sc                            *Scenario
	file                          string
	errs                          []error
	clusters, repos, keys, tokens map[string]bool
	// groups are the names of cluster entries with a count.
	groups map[string]bool
	names  map[string]bool // step names seen so far
	// assignments and remediations are the names earlier steps created.
	assignments, remediations map[string]bool
}

func (v *validator) fail(p Pos, field, format string, args ...any) {
	v.errs = append(v.errs, &Error{Pos: p, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) check() {
	sc := v.sc
	if sc.APIVersion != APIVersion {
		v.fail(sc.Pos, "apiVersion", "must be %s, got %q", APIVersion, sc.APIVersion)
	}
	if sc.Kind != Kind {
		v.fail(sc.Pos, "kind", "must be %s, got %q", Kind, sc.Kind)
	}
	if !dnsLabel.MatchString(sc.Metadata.Name) || len(sc.Metadata.Name) > 63 {
		v.fail(sc.Metadata.Pos, "metadata.name", "must be a DNS label (lower-case letters, digits and '-', at most 63), got %q", sc.Metadata.Name)
	}
	if sc.Spec.ResourceGroup != "" && (!resourceGroupRE.MatchString(sc.Spec.ResourceGroup) || strings.HasSuffix(sc.Spec.ResourceGroup, ".")) {
		v.fail(sc.Spec.Pos, "spec.resourceGroup", "not a resource group name (letters, digits, '-', '_', '.', '(', ')', at most 90): %q", sc.Spec.ResourceGroup)
	}
	if sc.Spec.Policy != nil {
		v.policySpec(sc.Spec.Policy)
	}
	for i := range sc.Spec.Clusters {
		c := &sc.Spec.Clusters[i]
		f := fmt.Sprintf("spec.clusters[%d]", i)
		v.clusterEntry(c, f)
		if !oneOf(c.Profile, "", "realistic", "fast") {
			v.fail(c.Pos, f+".profile", "must be realistic or fast, got %q", c.Profile)
		}
		if !oneOf(c.Backend, "", "shared", "dedicated", "fleet") {
			v.fail(c.Pos, f+".backend", "must be shared, dedicated or fleet, got %q", c.Backend)
		}
	}
	for i, r := range sc.Spec.Repos {
		f := fmt.Sprintf("spec.repos[%d]", i)
		v.unique(v.repos, r.Name, r.Pos, f, "repo")
		if _, err := gitserver.CleanRepoName(r.Name); r.Name != "" && err != nil {
			v.fail(r.Pos, f+".name", "%v", err)
		}
		if r.Fixture != "" {
			if _, err := FixturePath(v.file, r.Fixture); err != nil {
				v.fail(r.Pos, f+".fixture", "%v", err)
			}
		}
	}
	for i, k := range sc.Spec.Keys {
		f := fmt.Sprintf("spec.keys[%d]", i)
		v.unique(v.keys, k.Name, k.Pos, f, "key")
		if k.DeployKey != nil {
			v.ref(v.repos, k.DeployKey.Repo, k.DeployKey.Pos, f+".deployKey.repo", "repo")
		}
	}
	for i, t := range sc.Spec.Tokens {
		f := fmt.Sprintf("spec.tokens[%d]", i)
		v.unique(v.tokens, t.Name, t.Pos, f, "token")
		v.ref(v.repos, t.Repo, t.Pos, f+".repo", "repo")
	}
	if len(sc.Spec.Steps) == 0 {
		v.fail(sc.Spec.Pos, "spec.steps", "a scenario needs at least one step")
	}
	v.steps(sc.Spec.Steps, "spec.steps")
}

func (v *validator) unique(set map[string]bool, name string, p Pos, field, what string) {
	switch {
	case name == "":
		v.fail(p, field+".name", "a %s needs a name", what)
	case set[name]:
		v.fail(p, field+".name", "%s %q is declared twice", what, name)
	default:
		set[name] = true
	}
}

func (v *validator) ref(set map[string]bool, name string, p Pos, field, what string) {
	if name == "" {
		v.fail(p, field, "required: the name of a %s declared in spec", what)
		return
	}
	if !set[name] {
		known := make([]string, 0, len(set))
		for k := range set {
			known = append(known, k)
		}
		sort.Strings(known)
		if len(known) > 10 {
			known = append(known[:10], fmt.Sprintf("… %d more", len(known)-10))
		}
		v.fail(p, field, "no %s %q in spec (declared: %s)", what, name, strings.Join(known, ", "))
	}
}

// actions lists a Step's action fields by YAML name.
func actions(s *Step) []string {
	var out []string
	rv := reflect.ValueOf(s).Elem()
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.Type.Kind() == reflect.Pointer && !rv.Field(i).IsNil() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			out = append(out, name)
		}
	}
	return out
}

func allActions() []string {
	var out []string
	t := reflect.TypeFor[Step]()
	for i := range t.NumField() {
		if t.Field(i).Type.Kind() == reflect.Pointer {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			out = append(out, name)
		}
	}
	return out
}

func (v *validator) steps(steps []Step, path string) {
	for i := range steps {
		s := &steps[i]
		f := fmt.Sprintf("%s[%d]", path, i)
		acts := actions(s)
		switch len(acts) {
		case 0:
			v.fail(s.Pos, f, "a step needs one action: %s", strings.Join(allActions(), ", "))
		case 1:
		default:
			v.fail(s.Pos, f, "a step has exactly one action, this one has %s: split it into steps", strings.Join(acts, " and "))
		}
		v.step(s, f)
		if s.Name != "" {
			if v.names[s.Name] {
				v.fail(s.Pos, f+".name", "step name %q is used twice (since: needs it unique)", s.Name)
			}
			v.names[s.Name] = true
		}
	}
}

// armPath reports whether p is a path, or starts with a variable that is
// one (${cluster.<name>.id}).
func armPath(p string) bool { return strings.HasPrefix(p, "/") || strings.HasPrefix(p, "${") }

func (v *validator) armStatus(e ARMStatus, field string) {
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		v.fail(e.Pos, field+".status", "not an HTTP status: %d", e.Status)
	}
}

func (v *validator) step(s *Step, f string) {
	switch {
	case s.ARM != nil:
		a := s.ARM
		if !oneOf(strings.ToUpper(a.Method), "GET", "PUT", "PATCH", "DELETE", "POST", "HEAD") {
			v.fail(a.Pos, f+".arm.method", "must be GET, PUT, PATCH, DELETE, POST or HEAD, got %q", a.Method)
		}
		if !armPath(a.Path) {
			v.fail(a.Pos, f+".arm.path", "must start with / (or a ${...} id), got %q", a.Path)
		}
		v.armStatus(a.Expect, f+".arm.expect")
	case s.Configuration != nil:
		c := s.Configuration
		g := f + ".configuration"
		v.ref(v.clusters, c.Cluster, c.Pos, g+".cluster", "cluster")
		if !dnsLabel.MatchString(c.Name) {
			v.fail(c.Pos, g+".name", "must be a DNS label, got %q", c.Name)
		}
		switch {
		case c.Repo != "" && c.URL != "":
			v.fail(c.Pos, g, "repo and url exclude each other")
		case c.Repo != "":
			v.ref(v.repos, c.Repo, c.Pos, g+".repo", "repo")
		case c.URL == "":
			v.fail(c.Pos, g+".repo", "required: a declared repo (or url)")
		}
		if !oneOf(c.Transport, "", "ssh", "https") {
			v.fail(c.Pos, g+".transport", "must be ssh or https, got %q", c.Transport)
		}
		if !oneOf(c.Scope, "", "cluster", "namespace") {
			v.fail(c.Pos, g+".scope", "must be cluster or namespace, got %q", c.Scope)
		}
		if c.SSHKey != "" {
			v.ref(v.keys, c.SSHKey, c.Pos, g+".sshKey", "key")
		}
		if c.Token != "" {
			v.ref(v.tokens, c.Token, c.Pos, g+".token", "token")
		}
		if k, ok := strings.CutPrefix(c.KnownHosts, "key:"); ok {
			v.ref(v.keys, k, c.Pos, g+".knownHosts", "key")
		} else if !oneOf(c.KnownHosts, "", "gitopsim") {
			v.fail(c.Pos, g+".knownHosts", `must be "gitopsim" or "key:<declared key>", got %q`, c.KnownHosts)
		}
		v.armStatus(c.Expect, g+".expect")
	case s.DeleteConfiguration != nil:
		c := s.DeleteConfiguration
		v.ref(v.clusters, c.Cluster, c.Pos, f+".deleteConfiguration.cluster", "cluster")
		if c.Name == "" {
			v.fail(c.Pos, f+".deleteConfiguration.name", "required")
		}
	case s.DeleteCluster != nil:
		v.ref(v.clusters, s.DeleteCluster.Name, s.DeleteCluster.Pos, f+".deleteCluster.name", "cluster")
	case s.Git != nil:
		g := s.Git
		v.ref(v.repos, g.Repo, g.Pos, f+".git.repo", "repo")
		if g.Fixture != "" {
			if _, err := FixturePath(v.file, g.Fixture); err != nil {
				v.fail(g.Pos, f+".git.fixture", "%v", err)
			}
		}
		if g.Fixture == "" && len(g.Files) == 0 && len(g.Delete) == 0 {
			v.fail(g.Pos, f+".git", "nothing to commit: give files, fixture or delete")
		}
	case s.SetRef != nil:
		v.ref(v.repos, s.SetRef.Repo, s.SetRef.Pos, f+".setRef.repo", "repo")
		if s.SetRef.Ref == "" {
			v.fail(s.SetRef.Pos, f+".setRef.ref", "required")
		}
	case s.DeployKey != nil:
		d := s.DeployKey
		v.ref(v.repos, d.Repo, d.Pos, f+".deployKey.repo", "repo")
		switch {
		case d.Key != "" && d.FromConfiguration != nil:
			v.fail(d.Pos, f+".deployKey", "key and fromConfiguration exclude each other")
		case d.FromConfiguration != nil:
			v.ref(v.clusters, d.FromConfiguration.Cluster, d.FromConfiguration.Pos, f+".deployKey.fromConfiguration.cluster", "cluster")
		default:
			v.ref(v.keys, d.Key, d.Pos, f+".deployKey.key", "key")
		}
	case s.RevokeKey != nil:
		v.ref(v.keys, s.RevokeKey.Key, s.RevokeKey.Pos, f+".revokeKey.key", "key")
	case s.ExpireToken != nil:
		v.ref(v.tokens, s.ExpireToken.Token, s.ExpireToken.Pos, f+".expireToken.token", "token")
	case s.Network != nil:
		n := s.Network
		v.clusterOrGroup(n.Cluster, n.Pos, f+".network.cluster")
		if !oneOf(n.Link, "", "arm", "git", "all") {
			v.fail(n.Pos, f+".network.link", "must be arm, git or all, got %q", n.Link)
		}
		if n.Offline == nil && n.Delay == nil && n.Flaky == nil {
			v.fail(n.Pos, f+".network", "say what changes: offline, delay or flaky")
		}
	case s.GitServer != nil:
		g := s.GitServer
		if g.Down == nil && g.Latency == nil {
			v.fail(g.Pos, f+".gitServer", "say what changes: down or latency")
		}
		if g.Repo != "" {
			v.ref(v.repos, g.Repo, g.Pos, f+".gitServer.repo", "repo")
		}
	case s.ARMFault != nil:
		a := s.ARMFault
		if !a.Clear && a.Status == 0 {
			v.fail(a.Pos, f+".armFault.status", "required unless clear: true")
		}
	case s.Expect != nil:
		v.expect(s.Expect, f+".expect")
	case s.Onboard != nil, s.UpdateCluster != nil, s.AssignPolicy != nil, s.GrantRole != nil, s.Remediate != nil, s.CancelRemediation != nil, s.PolicyScan != nil:
		v.policyStep(s, f)
	case s.Try != nil:
		t := s.Try
		if len(t.Steps) == 0 {
			v.fail(t.Pos, f+".try.steps", "a try block needs steps")
		}
		v.steps(t.Steps, f+".try.steps")
		v.steps(t.Catch, f+".try.catch")
		v.steps(t.Finally, f+".try.finally")
	}
}

func (v *validator) expect(e *Expect, f string) {
	var checks []string
	rv := reflect.ValueOf(e).Elem()
	for i := range rv.NumField() {
		fl := rv.Type().Field(i)
		name, _, _ := strings.Cut(fl.Tag.Get("yaml"), ",")
		if fl.Type.Kind() == reflect.Pointer && !rv.Field(i).IsNil() && !slices.Contains([]string{"within", "during"}, name) {
			checks = append(checks, name)
		}
	}
	if len(checks) != 1 {
		v.fail(e.Pos, f, "an expect step checks exactly one of %s; this one has %d (%s)", strings.Join(expectChecks(), ", "), len(checks), strings.Join(checks, ", "))
	}
	if e.Within != nil && e.During != nil {
		v.fail(e.Pos, f, "within and during exclude each other")
	}
	if e.Since != "" && !v.names[e.Since] {
		v.fail(e.Pos, f+".since", "no earlier step is named %q", e.Since)
	}
	switch {
	case e.Compliance != nil:
		c := e.Compliance
		v.clusterOrGroup(c.Cluster, c.Pos, f+".compliance.cluster")
		if c.Configuration == "" {
			v.fail(c.Pos, f+".compliance.configuration", "required")
		}
		if !oneOf(c.RepositoryPublicKey, "", "set", "empty") {
			v.fail(c.Pos, f+".compliance.repositoryPublicKey", "must be set or empty, got %q", c.RepositoryPublicKey)
		}
	case e.Connectivity != nil:
		v.ref(v.clusters, e.Connectivity.Cluster, e.Connectivity.Pos, f+".connectivity.cluster", "cluster")
		if e.Connectivity.Status == "" {
			v.fail(e.Connectivity.Pos, f+".connectivity.status", "required (Connecting, Connected, Offline or Expired)")
		}
	case e.ARM != nil:
		if !armPath(e.ARM.Path) {
			v.fail(e.ARM.Pos, f+".arm.path", "must start with / (or a ${...} id), got %q", e.ARM.Path)
		}
	case e.Object != nil:
		o := e.Object
		g := f + ".object"
		v.ref(v.clusters, o.Cluster, o.Pos, g+".cluster", "cluster")
		for _, fv := range [][2]string{{"apiVersion", o.APIVersion}, {"kind", o.Kind}, {"name", o.Name}} {
			if fv[1] == "" {
				v.fail(o.Pos, g+"."+fv[0], "required")
			}
		}
		if !oneOf(o.State, "", "present", "absent", "forbidden") {
			v.fail(o.Pos, g+".state", "must be present, absent or forbidden, got %q", o.State)
		}
		if o.State == "forbidden" && o.As == "" {
			v.fail(o.Pos, g+".as", "state forbidden needs as: the identity that is refused")
		}
	case e.GitRef != nil:
		v.ref(v.repos, e.GitRef.Repo, e.GitRef.Pos, f+".gitRef.repo", "repo")
		if e.GitRef.Ref == "" {
			v.fail(e.GitRef.Pos, f+".gitRef.ref", "required")
		}
	case e.Event != nil:
		v.ref(v.clusters, e.Event.Cluster, e.Event.Pos, f+".event.cluster", "cluster")
		if e.Event.Reason == "" && e.Event.Message == "" {
			v.fail(e.Event.Pos, f+".event", "give reason, message or both")
		}
	default:
		v.policyExpect(e, f)
	}
}

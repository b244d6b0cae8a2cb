package scenario

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitopsim/gitopsim/sim/internal/durfmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/tools/txtar"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/agent"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/internal/azclient"
)

// defaultAPIVersion is what configuration and cluster sugar speak unless a
// step says otherwise.
const (
	configAPIVersion  = "2021-03-01"
	clusterAPIVersion = "2021-10-01"
)

// env is what one scenario runs against.
type env struct {
	sim *sim.Sim
	clk clock.Clock
	// newBackend starts a dedicated Kubernetes API for a cluster that asks
	// for one; the runner stops it after the scenario.
	newBackend func(ctx context.Context, name string) (cluster.Backend, error)
	// timeline receives the human timeline as steps finish.
	timeline io.Writer
}

// run is the state of one scenario execution.
type run struct {
	ctx   context.Context
	sc    *Scenario
	env   env
	virt  *clock.Virtual
	start time.Time
	wall  clock.Clock
	rg    string

	az *azclient.Clients
	// decls are the declared clusters by name, groups their members by
	// group name; clusters those onboarded so far.
	decls    map[string]*clusterDecl
	groups   map[string][]*clusterDecl
	clusters map[string]*sim.Connected
	// assignments and remediations are what policy steps created, by the
	// name the scenario gave them.
	assignments  map[string]*assignmentRef
	assignOrder  []string
	remediations map[string]string // name -> id
	keys         map[string]*keyPair
	tokens       map[string]*tokenInfo
	stepAt       map[string]time.Time // step name -> virtual start
	// volatile marks repos whose commits hold this run's URLs (ports), so
	// their hashes are left out of reproducible reports.
	volatile map[string]bool
	kube     *kubeClients

	res *Result
}

type keyPair struct {
	privatePEM, authorized, fingerprint string
	deployed                            []string // fingerprints registered
}

type tokenInfo struct{ user, secret string }

// stepError is a failed step; expected-vs-actual lives in its message.
type stepError struct{ msg string }

func (e *stepError) Error() string { return e.msg }

func failf(format string, args ...any) error { return &stepError{fmt.Sprintf(format, args...)} }

// execute runs sc on e and returns its result; it never panics on bad
// input and records every failure.
func execute(ctx context.Context, e env, sc *Scenario) *Result {
	r := &run{
		ctx: ctx, sc: sc, env: e, start: e.clk.Now(), wall: clock.Real(),
		decls: map[string]*clusterDecl{}, groups: map[string][]*clusterDecl{}, assignments: map[string]*assignmentRef{}, remediations: map[string]string{},
		clusters: map[string]*sim.Connected{}, keys: map[string]*keyPair{}, tokens: map[string]*tokenInfo{}, stepAt: map[string]time.Time{}, volatile: map[string]bool{},
		res: &Result{Name: sc.Metadata.Name, File: sc.Pos.File, Passed: true, Start: e.clk.Now()},
	}
	r.virt, _ = e.clk.(*clock.Virtual)
	r.rg = sc.Spec.ResourceGroup
	if r.rg == "" {
		r.rg = "scenario-" + sc.Metadata.Name
	}
	for _, d := range clusterDecls(&sc.Spec, r.rg) {
		r.decls[d.Name] = d
		if d.Group != "" {
			r.groups[d.Group] = append(r.groups[d.Group], d)
		}
	}
	wallStart := r.wall.Now()
	defer func() {
		r.res.Virtual = e.clk.Since(r.start)
		r.res.Wall = r.wall.Since(wallStart)
	}()
	if err := r.setup(); err != nil {
		r.res.Passed = false
		r.res.Failures = append(r.res.Failures, "setup: "+err.Error())
		r.printf("  setup failed: %v\n", err)
		return r.res
	}
	// Offsets count from the first step: on a wall clock, setup took time.
	r.start = e.clk.Now()
	r.steps(sc.Spec.Steps, "", false)
	r.policyReport()
	r.rolloutReport()
	return r.res
}

func (r *run) printf(format string, args ...any) {
	if r.env.timeline != nil {
		fmt.Fprintf(r.env.timeline, format, args...)
	}
}

// offset is a virtual time as an offset from the scenario's start.
func (r *run) offset(t time.Time) string { return FormatOffset(t.Sub(r.start)) }

// fmtDur prints a duration without zero tails: 15m, 1h45m, 31s.
func fmtDur(d time.Duration) string { return durfmt.Short(d, time.Millisecond) }

// FormatOffset prints a virtual offset as hh:mm:ss, with days in front
// when there are any ("3d02:00:31").
func FormatOffset(d time.Duration) string {
	d = d.Round(time.Millisecond)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	out := fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	if ms := (d % time.Second) / time.Millisecond; ms != 0 {
		out += fmt.Sprintf(".%03d", ms)
	}
	if days > 0 {
		out = fmt.Sprintf("%dd", days) + out
	}
	return out
}

// setup builds the declared world: ARM client, repos, keys, tokens,
// clusters.
func (r *run) setup() error {
	var err error
	ep := r.env.sim.Endpoints().ARM
	if r.az, err = azclient.New(azclient.Endpoint(ep)); err != nil {
		return err
	}
	git := r.env.sim.Git()
	for _, rp := range r.sc.Spec.Repos {
		branch := rp.DefaultBranch
		if branch == "" {
			branch = "main"
		}
		if _, err := git.CreateRepo(rp.Name, gitserver.RepoOptions{Public: rp.Public, DefaultBranch: branch}); err != nil {
			return fmt.Errorf("repo %s: %w", rp.Name, err)
		}
		files, volatile, err := r.files(rp.Name, rp.Fixture, rp.Files, nil)
		r.volatile[rp.Name] = volatile
		if err != nil {
			return fmt.Errorf("repo %s: %w", rp.Name, err)
		}
		if len(files) > 0 {
			if _, err := git.Commit(rp.Name, branch, "seed "+rp.Name, files); err != nil {
				return fmt.Errorf("repo %s: seed: %w", rp.Name, err)
			}
		}
	}
	for _, k := range r.sc.Spec.Keys {
		kp, err := newKeyPair()
		if err != nil {
			return err
		}
		r.keys[k.Name] = kp
		if k.DeployKey != nil {
			if err := r.deploy(kp, k.DeployKey.Repo, k.DeployKey.Write); err != nil {
				return fmt.Errorf("key %s: %w", k.Name, err)
			}
		}
	}
	for _, t := range r.sc.Spec.Tokens {
		if err := git.AddUser(t.Name, false); err != nil {
			return fmt.Errorf("token %s: %w", t.Name, err)
		}
		if err := git.Grant(t.Name, t.Repo, t.Write); err != nil {
			return fmt.Errorf("token %s: %w", t.Name, err)
		}
		o := gitserver.TokenOptions{ReadOnly: !t.Write}
		if t.ExpiresIn > 0 {
			o.Expires = r.env.clk.Now().Add(t.ExpiresIn.D())
		}
		secret, err := git.AddToken(t.Name, o)
		if err != nil {
			return fmt.Errorf("token %s: %w", t.Name, err)
		}
		r.tokens[t.Name] = &tokenInfo{user: t.Name, secret: secret}
	}
	// Resource groups first, so that assignments can be scoped to those
	// whose clusters join later.
	made := map[string]bool{}
	for _, d := range clusterDecls(&r.sc.Spec, r.rg) {
		if made[strings.ToLower(d.ResourceGroup)] {
			continue
		}
		made[strings.ToLower(d.ResourceGroup)] = true
		body, _ := json.Marshal(map[string]string{"location": d.Location})
		if _, err := r.armCall(http.MethodPut, "/subscriptions/"+r.az.SubscriptionID+"/resourcegroups/"+d.ResourceGroup, "2021-04-01", body, ARMStatus{}); err != nil {
			return fmt.Errorf("resource group %s: %w", d.ResourceGroup, err)
		}
	}
	for _, d := range clusterDecls(&r.sc.Spec, r.rg) {
		if d.later() {
			continue
		}
		if err := r.onboard(d); err != nil {
			return err
		}
	}
	r.kube = newKubeClients()
	return nil
}

func newKeyPair() (*keyPair, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		privatePEM:  string(pem.EncodeToMemory(blk)),
		authorized:  strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))),
		fingerprint: gossh.FingerprintSHA256(sp),
	}, nil
}

func (r *run) deploy(kp *keyPair, repo string, write bool) error {
	fp, err := r.env.sim.Git().AddDeployKey(repo, kp.authorized, write)
	if err != nil {
		return err
	}
	kp.deployed = append(kp.deployed, fp)
	return nil
}

// files builds one commit's changes from a fixture, inline files and
// deletions. volatile reports that a variable was expanded into them, so
// the commit's hash differs from run to run (the URLs hold ports).
func (r *run) files(repo, fixture string, inline map[string]string, del []string) (out map[string]*string, volatile bool, err error) {
	out = map[string]*string{}
	// ${repo.self.*} is the repo being committed to, so that a fixture can
	// name itself (a HelmRelease's git chart source).
	expand := func(s string) string {
		e := r.expand(strings.ReplaceAll(s, "${repo.self.", "${repo."+repo+"."))
		volatile = volatile || e != s
		return e
	}
	if fixture != "" {
		p, err := FixturePath(r.sc.Pos.File, fixture)
		if err != nil {
			return nil, false, err
		}
		a, err := txtar.ParseFile(p)
		if err != nil {
			return nil, false, fmt.Errorf("fixture %s: %w", p, err)
		}
		for _, f := range a.Files {
			s := expand(string(f.Data))
			out[f.Name] = &s
		}
	}
	for k, v := range inline {
		v = expand(v)
		out[k] = &v
	}
	for _, k := range del {
		out[k] = nil
	}
	return out, volatile, nil
}

// steps runs a list; after a failure the rest are skipped. It reports
// whether every step passed.
func (r *run) steps(steps []Step, prefix string, skip bool) bool {
	ok := true
	for i := range steps {
		s := &steps[i]
		id := prefix + strconv.Itoa(i+1)
		if skip || !ok {
			r.record(s, id, StepResult{Result: Skipped})
			if s.Try != nil {
				r.steps(s.Try.Steps, id+".try.", true)
			}
			continue
		}
		if !r.step(s, id) {
			ok = false
		}
	}
	return ok
}

// record appends a step's result and prints its timeline line.
func (r *run) record(s *Step, id string, sr StepResult) {
	sr.Step, sr.Name, sr.Line = id, s.Name, s.Pos.Line
	if sr.Action == "" {
		if a := actions(s); len(a) > 0 {
			sr.Action = a[0]
		}
	}
	if sr.Summary == "" {
		sr.Summary = r.summary(s)
	}
	r.res.Steps = append(r.res.Steps, sr)
	r.printf("%s\n", sr.timelineLine())
}

// step runs one step and records it. A try block records itself first and
// then its children.
func (r *run) step(s *Step, id string) bool {
	now := r.env.clk.Now()
	if s.Name != "" {
		r.stepAt[s.Name] = now
	}
	if s.Try != nil {
		return r.try(s, id)
	}
	wall0 := r.wall.Now()
	detail, err := r.do(s)
	sr := StepResult{At: r.offset(now), End: r.offset(r.env.clk.Now()), Detail: detail, Wall: r.wall.Since(wall0), Result: Passed, Summary: r.summary(s)}
	if err != nil {
		sr.Result, sr.Error = Failed, err.Error()
		if !errors.As(err, new(*stepError)) {
			sr.Error = "error: " + err.Error()
		}
		r.res.Passed = false
		name := ""
		if s.Name != "" {
			name = fmt.Sprintf(" %q", s.Name)
		}
		r.res.Failures = append(r.res.Failures, fmt.Sprintf("step %s%s (%s:%d) %s: %s", id, name, r.sc.Pos.File, s.Pos.Line, sr.Summary, sr.Error))
	}
	r.record(s, id, sr)
	return err == nil
}

func (r *run) try(s *Step, id string) bool {
	r.record(s, id, StepResult{At: r.offset(r.env.clk.Now()), Result: Passed, Summary: "try"})
	mark := len(r.res.Failures)
	ok := r.steps(s.Try.Steps, id+".try.", false)
	if !ok && len(s.Try.Catch) > 0 {
		// The catch block handles the failure: it no longer fails the
		// scenario, but the transcript keeps it as caught.
		caught := r.res.Failures[mark:]
		r.res.Caught = append(r.res.Caught, caught...)
		r.res.Failures = r.res.Failures[:mark]
		r.res.Passed = len(r.res.Failures) == 0
		for j := range r.res.Steps {
			if strings.HasPrefix(r.res.Steps[j].Step, id+".try.") && r.res.Steps[j].Result == Failed {
				r.res.Steps[j].Result = Caught
			}
		}
		r.printf("  %-30s %s: %d failure(s) caught by the catch block\n", "", id, len(caught))
		ok = r.steps(s.Try.Catch, id+".catch.", false)
	}
	// finally always runs, even after a failure; its own failures count.
	fin := r.steps(s.Try.Finally, id+".finally.", false)
	return ok && fin
}

// summary is a one-line description of what a step does, for the
// timeline and the transcript. It never contains secrets.
func (r *run) summary(s *Step) string {
	if k, ok := stepKinds[r.kindOf(s)]; ok {
		return k.summary(r, s)
	}
	return ""
}

func (r *run) branch(repo, b string) string {
	if b != "" {
		return b
	}
	for _, rp := range r.sc.Spec.Repos {
		if rp.Name == repo && rp.DefaultBranch != "" {
			return rp.DefaultBranch
		}
	}
	return "main"
}

// do performs a step's action; detail goes to the timeline.
func (r *run) do(s *Step) (string, error) {
	k, ok := stepKinds[r.kindOf(s)]
	if !ok || k.do == nil {
		return "", failf("step has no action")
	}
	return k.do(r, s)
}

type linkSetter interface {
	SetOffline(bool)
	SetDelay(time.Duration)
	SetFlaky(int)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// advance moves the clock: at once on a virtual clock (running everything
// due on the way), by sleeping on a real or scaled one.
func (r *run) advance(d time.Duration) error {
	if r.virt != nil {
		r.virt.Advance(d)
		return nil
	}
	return r.env.clk.Sleep(r.ctx, d)
}

// onboard connects a declared cluster and starts its agent.
func (r *run) onboard(d *clusterDecl) error {
	c := d.Entry
	o := sim.OnboardOptions{Name: d.Name, ResourceGroup: d.ResourceGroup, Location: d.Location, Profile: c.Profile, Intervals: agent.Intervals{
		Heartbeat: c.Intervals.Heartbeat.D(), ConfigPoll: c.Intervals.ConfigPoll.D(), GitPoll: c.Intervals.GitPoll.D(),
		Sync: c.Intervals.Sync.D(), Retry: c.Intervals.Retry.D(),
	}}
	if c.Profile == "" {
		o.Profile = "realistic"
	}
	if c.Backend == "dedicated" {
		if r.env.newBackend == nil {
			return fmt.Errorf("cluster %s: backend dedicated is not available here", d.Name)
		}
		var err error
		if o.Backend, err = r.env.newBackend(r.ctx, d.Name); err != nil {
			return fmt.Errorf("cluster %s: %w", d.Name, err)
		}
	}
	if c.Backend == "fleet" {
		var err error
		if o.Backend, err = r.env.sim.FleetAPI(r.ctx, d.Name); err != nil {
			return fmt.Errorf("cluster %s: %w", d.Name, err)
		}
	}
	conn, err := r.env.sim.Onboard(r.ctx, o)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", d.Name, err)
	}
	if c.Offline {
		conn.Agent.ARMLink().SetOffline(true)
		conn.Agent.GitLink().SetOffline(true)
	}
	r.clusters[d.Name] = conn
	return nil
}

// clusterRG is a declared cluster's resource group.
func (r *run) clusterRG(name string) string {
	if d, ok := r.decls[name]; ok {
		return d.ResourceGroup
	}
	return r.rg
}

func (r *run) clusterPath(name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Kubernetes/connectedClusters/%s", r.az.SubscriptionID, r.clusterRG(name), name)
}

func (r *run) configPath(clusterName, name string) string {
	return r.clusterPath(clusterName) + "/providers/Microsoft.KubernetesConfiguration/sourceControlConfigurations/" + name
}

func (r *run) repoURL(repo, transport string) string {
	if transport == "https" {
		return r.env.sim.Git().HTTPSURL() + "/" + repo + ".git"
	}
	return r.env.sim.Git().SSHURL() + "/" + repo + ".git"
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (r *run) putConfiguration(c *Configuration) (string, error) {
	url := c.URL
	if url == "" {
		url = r.repoURL(c.Repo, c.Transport)
	} else {
		url = r.expand(url)
	}
	scope, ns, inst := c.Scope, c.Namespace, c.Instance
	if scope == "" {
		scope = "cluster"
	}
	if ns == "" {
		ns = "default"
	}
	if inst == "" {
		inst = c.Name
	}
	props := map[string]any{
		"repositoryUrl": url, "operatorNamespace": ns, "operatorInstanceName": inst,
		"operatorType": "Flux", "operatorScope": scope, "operatorParams": r.expand(c.Params),
	}
	prot := map[string]string{}
	if c.SSHKey != "" {
		prot["sshPrivateKey"] = b64(r.keys[c.SSHKey].privatePEM)
	}
	if c.Token != "" {
		t := r.tokens[c.Token]
		prot["httpsUser"], prot["httpsKey"] = b64(t.user), b64(t.secret)
	}
	if len(prot) > 0 {
		props["configurationProtectedSettings"] = prot
	}
	switch k, isKey := strings.CutPrefix(c.KnownHosts, "key:"); {
	case c.KnownHosts == "gitopsim":
		props["sshKnownHostsContents"] = b64(r.env.sim.Git().KnownHosts() + "\n")
	case isKey:
		host, _, _ := strings.Cut(r.env.sim.Git().KnownHosts(), " ")
		props["sshKnownHostsContents"] = b64(host + " " + r.keys[k].authorized + "\n")
	}
	if c.Helm != nil {
		props["enableHelmOperator"] = c.Helm.Enabled
		if c.Helm.ChartVersion != "" || c.Helm.ChartValues != "" {
			props["helmOperatorProperties"] = map[string]string{"chartVersion": c.Helm.ChartVersion, "chartValues": c.Helm.ChartValues}
		}
	}
	body, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return "", err
	}
	ver := c.APIVersion
	if ver == "" {
		ver = configAPIVersion
	}
	return r.armCall(http.MethodPut, r.configPath(c.Cluster, c.Name), ver, body, c.Expect)
}

// armCall sends one request through the public ARM API with a token from
// gitopsim's issuer, as any client does, and checks the answer.
func (r *run) armCall(method, path, apiVersion string, body []byte, want ARMStatus) (string, error) {
	detail, _, err := r.armCallBody(method, path, apiVersion, body, want)
	return detail, err
}

// armCallBody is armCall that also returns the answer's body.
func (r *run) armCallBody(method, path, apiVersion string, body []byte, want ARMStatus) (string, []byte, error) {
	resp, err := r.armRequest(method, path, apiVersion, body)
	if err != nil {
		return "", nil, err
	}
	detail, err := judgeARM(method, path, resp.status, resp.body, want)
	return detail, resp.body, err
}

// judgeARM checks an ARM answer against a step's expectation (default:
// any 2xx) and returns the step's detail: the status and error code.
func judgeARM(method, path string, status int, body []byte, want ARMStatus) (string, error) {
	detail := fmt.Sprintf("%d", status)
	var env struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(body, &env)
	got := strconv.Itoa(status)
	if env.Error.Code != "" {
		detail += " " + env.Error.Code
		got += fmt.Sprintf(" %s: %s", env.Error.Code, env.Error.Message)
	}
	switch {
	case want.Status == 0 && (status < 200 || status > 299):
		return detail, failf("%s %s: expected a 2xx answer, got %s", method, path, got)
	case want.Status != 0 && status != want.Status:
		return detail, failf("%s %s: expected status %d, got %s", method, path, want.Status, got)
	case want.Code != "" && env.Error.Code != want.Code:
		return detail, failf("%s %s: expected error code %q, got %q (%s)", method, path, want.Code, env.Error.Code, env.Error.Message)
	case want.Message != "" && !strings.Contains(env.Error.Message, want.Message):
		return detail, failf("%s %s: expected the error message to contain %q, got %q", method, path, want.Message, env.Error.Message)
	}
	return detail, nil
}

func (r *run) armDo(method, path, apiVersion string, body []byte) (int, []byte, error) {
	resp, err := r.armRequest(method, path, apiVersion, body)
	if err != nil {
		return 0, nil, err
	}
	return resp.status, resp.body, nil
}

// armResponse is an ARM answer read whole.
type armResponse struct {
	status int
	header http.Header
	body   []byte
}

// armRequest sends one request to path (or to an absolute URL on the ARM
// server, such as a Location header's) with a token.
func (r *run) armRequest(method, path, apiVersion string, body []byte) (*armResponse, error) {
	tok, err := r.az.Credential.GetToken(r.ctx, policy.TokenRequestOptions{Scopes: []string{azclient.Audience + "/.default"}})
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	u := path
	if strings.HasPrefix(path, "/") {
		u = r.env.sim.ARM().URL() + path
	}
	if apiVersion != "" && !strings.Contains(path, "api-version=") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + apiVersion
	}
	req, err := http.NewRequestWithContext(r.ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("User-Agent", "gitopsim-scenario/"+r.sc.Metadata.Name)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.az.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &armResponse{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (r *run) repositoryPublicKey(clusterName, name string) (string, error) {
	status, b, err := r.armDo(http.MethodGet, r.configPath(clusterName, name), configAPIVersion, nil)
	if err != nil {
		return "", err
	}
	var got struct {
		Properties struct {
			RepositoryPublicKey string `json:"repositoryPublicKey"`
		} `json:"properties"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &got) != nil {
		return "", failf("GET configuration %s/%s: status %d", clusterName, name, status)
	}
	if got.Properties.RepositoryPublicKey == "" {
		return "", failf("configuration %s/%s has no repositoryPublicKey yet (expect it first)", clusterName, name)
	}
	pk, err := base64.StdEncoding.DecodeString(got.Properties.RepositoryPublicKey)
	if err != nil {
		// Some clients store it as the plain authorized_keys line.
		return got.Properties.RepositoryPublicKey, nil
	}
	return strings.TrimSpace(string(pk)), nil
}

var varRE = regexp.MustCompile(`\$\{([^}]+)\}`)

// expand replaces ${...} variables (see scenarios/README.md). Unknown
// names are left as they are, so a typo shows in the request.
func (r *run) expand(s string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := r.variable(m[2 : len(m)-1]); ok {
			return v
		}
		return m
	})
}

func (r *run) variable(name string) (string, bool) {
	git := r.env.sim.Git()
	switch name {
	case "subscription":
		return r.az.SubscriptionID, true
	case "resourceGroup":
		return r.rg, true
	case "knownHosts":
		return git.KnownHosts(), true
	case "knownHostsBase64":
		return b64(git.KnownHosts() + "\n"), true
	case "helm.repositoryUrl":
		return r.env.sim.HelmRepo().URL(), true
	}
	kind, rest, _ := strings.Cut(name, ".")
	obj, field, ok := cutLast(rest, ".")
	if !ok {
		return "", false
	}
	switch kind {
	case "cluster":
		if _, ok := r.decls[obj]; ok {
			switch field {
			case "id":
				return r.clusterPath(obj), true
			case "resourceGroup":
				return r.clusterRG(obj), true
			}
		}
	case "assignment":
		if a, ok := r.assignments[obj]; ok {
			switch field {
			case "id":
				return a.id, true
			case "principalId":
				return a.principalID, true
			}
		}
	case "remediation":
		if id, ok := r.remediations[obj]; ok && field == "id" {
			return id, true
		}
	case "repo":
		switch field {
		case "sshUrl":
			return r.repoURL(obj, "ssh"), true
		case "httpsUrl":
			return r.repoURL(obj, "https"), true
		}
	case "key":
		if kp, ok := r.keys[obj]; ok {
			switch field {
			case "publicKey":
				return kp.authorized, true
			case "privateKeyBase64":
				return b64(kp.privatePEM), true
			}
		}
	case "token":
		if t, ok := r.tokens[obj]; ok {
			switch field {
			case "userBase64":
				return b64(t.user), true
			case "secretBase64":
				return b64(t.secret), true
			}
		}
	}
	return "", false
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

func (r *run) expandAny(v any) any {
	switch x := v.(type) {
	case string:
		return r.expand(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.expandAny(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.expandAny(e)
		}
		return out
	}
	return v
}

// jsonable turns YAML-decoded values into what encoding/json produces, so
// expected and actual compare alike (numbers as float64, string keys).
func jsonable(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

package conformance

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// The harness of the suite: an ARM server in process, a raw HTTPS client,
// and a checker that turns what it sees into findings.

// ledger keeps every violation of one test for the closing summary.
type ledger struct {
	mu         sync.Mutex
	violations []entry
	notes      []entry
	notServed  []string
}

type entry struct {
	version, op string
	Finding
}

// arrayIndex finds array indices in a pointer, to group list items.
var arrayIndex = regexp.MustCompile(`/[0-9]+(/|$)`)

// summary logs the findings grouped by JSON pointer (list items folded
// into their resource) and rule, with the operations and api-versions they
// occur in; ran is every api-version the test ran.
func (l *ledger) summary(t *testing.T, typ string, ran []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	group := func(es []entry) []string {
		type key struct{ ptr, rule string }
		type seen struct {
			ops, versions []string
			detail        string
		}
		groups := map[key]*seen{}
		for _, e := range es {
			p := arrayIndex.ReplaceAllString(e.Pointer, "/*$1")
			if rest, ok := strings.CutPrefix(p, "/value/*"); ok && rest != "" {
				p = rest // a list item is the resource
			}
			if p == "" {
				p = "/"
			}
			k := key{p, string(e.Rule)}
			g := groups[k]
			if g == nil {
				g = &seen{detail: e.Detail}
				groups[k] = g
			}
			if !slices.Contains(g.ops, e.op) {
				g.ops = append(g.ops, e.op)
			}
			if !slices.Contains(g.versions, e.version) {
				g.versions = append(g.versions, e.version)
			}
		}
		var lines []string
		for _, k := range slices.SortedFunc(maps.Keys(groups), func(a, b key) int {
			return strings.Compare(a.ptr+" "+a.rule, b.ptr+" "+b.rule)
		}) {
			g := groups[k]
			versions := strings.Join(g.versions, ", ")
			if len(g.versions) == len(ran) {
				versions = "every api-version"
			}
			slices.Sort(g.ops)
			lines = append(lines, fmt.Sprintf("  %s: %s\n      e.g. %s\n      in %s; %s",
				k.ptr, k.rule, g.detail, strings.Join(g.ops, ", "), versions))
		}
		return lines
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d violations in %d api-versions", typ, len(l.violations), len(ran))
	if lines := group(l.violations); len(lines) > 0 {
		fmt.Fprintf(&b, ", by JSON pointer and rule:\n%s", strings.Join(lines, "\n"))
	}
	if lines := group(l.notes); len(lines) > 0 {
		fmt.Fprintf(&b, "\nnotes (legal, worth knowing):\n%s", strings.Join(lines, "\n"))
	}
	if len(l.notServed) > 0 {
		fmt.Fprintf(&b, "\nnot served by gitopsim (skipped): %s", strings.Join(l.notServed, "; "))
	}
	t.Log(b.String())
}

// harness is an ARM server started in process, with a raw HTTPS client.
type harness struct {
	t      *testing.T
	srv    *arm.Server
	client *http.Client
	token  string
	sub    string
	ledger *ledger
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv, err := arm.New(arm.Options{
		Workdir: t.TempDir(),
		Clock:   clock.NewVirtual(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(t.Context()) })
	ca, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", srv.CAFile())
	}
	h := &harness{
		t:   t,
		srv: srv,
		client: &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
			Timeout:   30 * time.Second,
		},
		sub:    srv.SubscriptionID(),
		ledger: &ledger{},
	}
	t.Cleanup(h.client.CloseIdleConnections)
	h.token = h.getToken()
	return h
}

// getToken runs the client-credentials grant against the server's issuer.
func (h *harness) getToken() string {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {h.srv.ClientID()},
		"client_secret": {h.srv.ClientSecret()},
		"scope":         {"https://management.azure.com/.default"},
	}
	resp, err := h.client.PostForm(h.srv.AuthorityHost()+h.srv.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		h.t.Fatalf("token: status %d, %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// response is one exchange as seen on the wire.
type response struct {
	method string
	url    string
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%s %s: %d %s", r.method, r.url, r.status, bytes.TrimSpace(r.body))
}

// errorText is the ARM error code and message of a body, if it has them.
func (r response) errorText() string {
	if r.status == 0 {
		return " (" + string(r.body) + ")"
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(r.body, &e) == nil && e.Error.Code != "" {
		return fmt.Sprintf(" (%s: %s)", e.Error.Code, e.Error.Message)
	}
	return ""
}

// do sends a request. target is a path (with its query) on the server, or
// an absolute URL; body is marshalled unless it is []byte. Subtests call
// it, so it never stops the test: a request that cannot be made comes back
// as status 0 with the error as its body, and fails the status check.
func (h *harness) do(method, target string, body any) response {
	if !strings.HasPrefix(target, "https://") {
		target = h.srv.URL() + target
	}
	r := response{method: method, url: target, header: http.Header{}}
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				r.body = []byte(err.Error())
				return r
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, target, rd)
	if err != nil {
		r.body = []byte(err.Error())
		return r
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		r.body = []byte(err.Error())
		return r
	}
	defer resp.Body.Close()
	r.status, r.header = resp.StatusCode, resp.Header
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		r.status, r.body = 0, []byte(err.Error())
	}
	return r
}

func withVersion(path, version string) string {
	return path + "?api-version=" + url.QueryEscape(version)
}

// advertised reads the api-versions the provider registration lists for
// a resource type, as clients discover them.
func (h *harness) advertised(namespace, typ string) []string {
	h.t.Helper()
	r := h.do(http.MethodGet, withVersion("/subscriptions/"+h.sub+"/providers/"+namespace, "2021-04-01"), nil)
	var p struct {
		ResourceTypes []struct {
			ResourceType string   `json:"resourceType"`
			APIVersions  []string `json:"apiVersions"`
		} `json:"resourceTypes"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil {
		h.t.Fatalf("provider: %v", r)
	}
	for _, rt := range p.ResourceTypes {
		if strings.EqualFold(rt.ResourceType, typ) {
			v := slices.Clone(rt.APIVersions)
			slices.Sort(v)
			return v
		}
	}
	h.t.Fatalf("provider %s does not list %s", namespace, typ)
	return nil
}

// reporter is the part of testing.T a checker reports through.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// checker reports the findings of one operation of one api-version.
type checker struct {
	t    reporter
	h    *harness
	spec *Spec
	op   string
}

func (h *harness) checker(t reporter, spec *Spec, op string) *checker {
	return &checker{t: t, h: h, spec: spec, op: op}
}

func (c *checker) report(fs ...Finding) {
	c.t.Helper()
	for _, f := range fs {
		if why := deviationFor(c.spec.Type, c.spec.Version, f); why != "" {
			c.t.Logf("%s %s: %s (deviation: %s)", c.spec.Version, c.op, f, why)
			continue
		}
		c.t.Errorf("%s %s: %s", c.spec.Version, c.op, f)
		c.h.ledger.mu.Lock()
		c.h.ledger.violations = append(c.h.ledger.violations, entry{c.spec.Version, c.op, f})
		c.h.ledger.mu.Unlock()
	}
}

func (c *checker) note(fs ...Finding) {
	c.t.Helper()
	for _, f := range fs {
		c.t.Logf("%s %s: note: %s", c.spec.Version, c.op, f)
		c.h.ledger.mu.Lock()
		c.h.ledger.notes = append(c.h.ledger.notes, entry{c.spec.Version, c.op, f})
		c.h.ledger.mu.Unlock()
	}
}

func (c *checker) fail(ptr string, rule Rule, format string, args ...any) {
	c.t.Helper()
	c.report(Finding{Pointer: ptr, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

// status checks that r has one of the operation's documented codes. A
// response with another code is checked against the error definition
// (swagger's "default"), since that is what it must be then.
func (c *checker) status(r response, op Op) bool {
	c.t.Helper()
	allowed := c.spec.Statuses[op]
	if slices.Contains(allowed, r.status) {
		return true
	}
	c.fail("", RuleStatus, "%s answered %d, the spec documents %v%s", r.method, r.status, allowed, r.errorText())
	if r.status >= 400 {
		c.errorBody(r)
	}
	return false
}

// body validates a JSON body against s and returns it decoded.
func (c *checker) body(r response, s *Schema) any {
	c.t.Helper()
	if mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type")); err != nil || mt != "application/json" {
		c.fail("", RuleHeader, "Content-Type %q, the operation produces application/json", r.header.Get("Content-Type"))
	}
	v, err := Decode(r.body)
	if err != nil {
		c.fail("", RuleJSON, "%v: %.200s", err, r.body)
		return nil
	}
	res := ValidateValue(v, s)
	c.report(res.Violations...)
	c.note(res.Notes...)
	return v
}

// noBody checks a response the spec documents without a schema.
func (c *checker) noBody(r response) {
	c.t.Helper()
	if len(bytes.TrimSpace(r.body)) > 0 {
		c.fail("", RuleBody, "%d has a body, the spec documents none: %.200s", r.status, r.body)
	}
}

// errorBody checks an error response against the version's ErrorResponse.
func (c *checker) errorBody(r response) {
	c.t.Helper()
	c.body(r, c.spec.Error)
}

// wantError checks that a request the server must refuse is answered with
// want and the error envelope.
func (c *checker) wantError(r response, want int) {
	c.t.Helper()
	if r.status != want {
		c.fail("", RuleStatus, "%s answered %d, want %d with the error envelope%s", r.method, r.status, want, r.errorText())
	}
	if r.status >= 400 {
		c.errorBody(r)
	}
}

// pages validates a pageable LIST and every page behind its nextLink.
func (c *checker) pages(first response, op Op, s *Schema) {
	c.t.Helper()
	r := first
	for range 20 {
		if !c.status(r, op) {
			return
		}
		v := c.body(r, s)
		m, _ := v.(map[string]any)
		next, _ := m["nextLink"].(string)
		if next == "" {
			return
		}
		r = c.h.do(http.MethodGet, next, nil)
	}
	c.fail("/nextLink", RuleBody, "more than 20 pages")
}

// roundTrip checks that the writable values sent came back.
func (c *checker) roundTrip(sent any, got any, skip ...string) {
	c.t.Helper()
	if got == nil {
		return
	}
	c.report(RoundTrip(sent, got, skip...)...)
}

// sentinels checks that no read-only value of the request was stored.
func (c *checker) sentinels(v any) {
	c.t.Helper()
	c.report(FindSentinels(v)...)
}

// asyncStatus is ARM's Azure-AsyncOperation status resource (RPC; the
// common-types v3 #/definitions/OperationStatusResult).
var asyncStatus = object(map[string]*Schema{
	"id":              str(),
	"name":            str(),
	"status":          str(),
	"percentComplete": {Kind: Number},
	"startTime":       dateTime(),
	"endTime":         dateTime(),
	"operations":      arrayOf(freeForm()),
	"error":           errorResponse(commonV3).Properties["error"],
}, "status").ref(commonV3 + "#/definitions/OperationStatusResult")

// awaitAsync follows an Azure-AsyncOperation header to a terminal status.
// The resource's own provisioningState decides whether one is needed.
func (c *checker) awaitAsync(r response, resource any) {
	c.t.Helper()
	state := provisioningState(resource)
	link := r.header.Get("Azure-AsyncOperation")
	if link == "" {
		if !terminal(state) {
			c.fail("", RuleHeader, "%d with provisioningState %q and no Azure-AsyncOperation header (final-state-via azure-async-operation)", r.status, state)
		}
		return
	}
	if u, err := url.Parse(link); err != nil || !u.IsAbs() {
		c.fail("", RuleHeader, "Azure-AsyncOperation %q is not an absolute URL", link)
		return
	}
	for range 20 {
		p := c.h.do(http.MethodGet, link, nil)
		if p.status != http.StatusOK {
			c.fail("", RuleStatus, "polling Azure-AsyncOperation answered %d%s", p.status, p.errorText())
			return
		}
		v, err := Decode(p.body)
		if err != nil {
			c.fail("", RuleJSON, "Azure-AsyncOperation status: %v", err)
			return
		}
		res := ValidateValue(v, asyncStatus)
		for i := range res.Violations {
			res.Violations[i].Detail = "in the Azure-AsyncOperation status: " + res.Violations[i].Detail
		}
		c.report(res.Violations...)
		if s, _ := v.(map[string]any)["status"].(string); terminal(s) {
			return
		}
	}
	c.fail("", RuleHeader, "the Azure-AsyncOperation never reached a terminal status")
}

// awaitLocation follows a 202's Location header until 200 or 204.
func (c *checker) awaitLocation(r response) {
	c.t.Helper()
	link := r.header.Get("Location")
	if u, err := url.Parse(link); link == "" || err != nil || !u.IsAbs() {
		c.fail("", RuleHeader, "202 with Location %q, want an absolute URL (final-state-via location)", link)
		return
	}
	for range 20 {
		p := c.h.do(http.MethodGet, link, nil)
		switch p.status {
		case http.StatusAccepted:
			if next := p.header.Get("Location"); next != "" {
				link = next
			}
			continue
		case http.StatusOK, http.StatusNoContent:
			return
		}
		c.fail("", RuleStatus, "polling Location answered %d%s", p.status, p.errorText())
		return
	}
	c.fail("", RuleHeader, "the Location never answered 200 or 204")
}

func provisioningState(resource any) string {
	m, _ := resource.(map[string]any)
	p, _ := m["properties"].(map[string]any)
	s, _ := p["provisioningState"].(string)
	return s
}

func terminal(state string) bool {
	return state == "Succeeded" || state == "Failed" || state == "Canceled"
}

// decoded turns a request body into what Decode gives for the same JSON,
// for comparing.
func decoded(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// selfCheck makes sure a request body the suite builds conforms to the
// version's request definition: the suite sends only what is documented.
func selfCheck(t *testing.T, spec *Spec, body any, s *Schema) {
	t.Helper()
	res := ValidateValue(decoded(t, body), s)
	if len(res.Violations) > 0 {
		t.Fatalf("suite bug: the %s request body does not conform to %s: %v", spec.Version, s.Ref, res.Violations)
	}
}

// coverage compares the advertised api-versions with the encoded specs.
func coverage(t *testing.T, typ string, advertised, encoded []string, note func(string) string) []string {
	t.Helper()
	var run []string
	for _, v := range advertised {
		if !slices.Contains(encoded, v) {
			t.Errorf("%s: gitopsim advertises api-version %s, but no swagger defines %s there", typ, v, typ)
			continue
		}
		if n := note(v); n != "" {
			t.Logf("%s %s is served; note: %s", typ, v, n)
		}
		run = append(run, v)
	}
	for _, v := range encoded {
		if !slices.Contains(advertised, v) {
			t.Logf("%s: the spec defines api-version %s, which gitopsim does not accept", typ, v)
		}
	}
	return run
}

func (h *harness) resourceGroup(name string) {
	h.t.Helper()
	r := h.do(http.MethodPut, withVersion("/subscriptions/"+h.sub+"/resourcegroups/"+name, "2021-04-01"), map[string]any{"location": "eastus"})
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		h.t.Fatalf("resource group: %v", r)
	}
}

// notServed tells a route gitopsim lacks from a refusal by one it has: the
// router answers unknown paths with 404 NotFound, 405, or 400
// InvalidResourceType.
func notServed(r response) bool {
	switch r.status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return !strings.Contains(r.errorText(), "ResourceNotFound")
	case http.StatusBadRequest:
		return r.header.Get("x-ms-error-code") == "InvalidResourceType"
	}
	return false
}

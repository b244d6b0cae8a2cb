package arm_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/arm"
	"github.com/gitopsim/gitopsim/sim/azsdk"
	"github.com/gitopsim/gitopsim/sim/clock"
)

// notes is a hosted provider for the contract's tests: named notes under
// a subscription, with a secret member that must not reach the log.
type notes struct {
	mu    sync.Mutex
	notes map[string]string
	srv   *arm.Server
	// panics makes Snapshot panic, as a provider's bug would.
	panics atomic.Bool
}

func (n *notes) Name() string { return "Test.Notes" }

func (n *notes) Routes() []arm.Route {
	const p = "subscriptions/{sub}/providers/Test.Notes/notes"
	return []arm.Route{
		{Name: "notes", Pattern: p, Methods: map[string]arm.Handler{http.MethodGet: n.list}},
		{Name: "note", Pattern: p + "/{name}", APIVersions: []string{"2024-01-01"}, Methods: map[string]arm.Handler{
			http.MethodGet: n.get, http.MethodPut: n.put,
		}},
		// A literal path where this package serves subscriptions/{sub}/providers/{namespace}/register.
		{Name: "register", Pattern: "subscriptions/{sub}/providers/Test.Notes/register", Methods: map[string]arm.Handler{
			http.MethodPost: func(r *arm.Request) *arm.Error { r.JSON(http.StatusOK, map[string]string{"by": "notes"}); return nil },
		}},
	}
}

func (n *notes) Snapshot() (json.RawMessage, error) {
	if n.panics.Load() {
		panic("notes: snapshot bug")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return json.Marshal(n.notes)
}

func (n *notes) Restore(raw json.RawMessage) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return json.Unmarshal(raw, &n.notes)
}

func (n *notes) list(r *arm.Request) *arm.Error {
	n.mu.Lock()
	var items []any
	for k, v := range n.notes {
		items = append(items, map[string]string{"name": k, "text": v})
	}
	n.mu.Unlock()
	return r.Page(items, 0)
}

func (n *notes) get(r *arm.Request) *arm.Error {
	n.mu.Lock()
	v, ok := n.notes[r.Var("name")]
	n.mu.Unlock()
	if !ok {
		return &arm.Error{Status: http.StatusNotFound, Code: arm.CodeResourceNotFound, Message: "no note " + r.Var("name")}
	}
	r.JSON(http.StatusOK, map[string]string{"name": r.Var("name"), "text": v, "caller": r.Caller()})
	return nil
}

func (n *notes) put(r *arm.Request) *arm.Error {
	raw, e := r.Body(func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"text":"[redacted]"}`) })
	if e != nil {
		return e
	}
	var body struct{ Text string }
	if err := json.Unmarshal(raw, &body); err != nil {
		return &arm.Error{Status: http.StatusBadRequest, Code: arm.CodeInvalidRequestContent, Message: err.Error()}
	}
	n.mu.Lock()
	n.notes[r.Var("name")] = body.Text
	n.mu.Unlock()
	if e := n.srv.Persist(); e != nil {
		return e
	}
	r.JSON(http.StatusCreated, map[string]string{"name": r.Var("name")})
	return nil
}

// TestHostedProvider checks the provider contract: routes through the
// server's authentication, api-version checks, error envelope and request
// log; literal routes win; state survives a restart; Dispatch acts as a
// principal without a token; writes are announced.
func TestHostedProvider(t *testing.T) {
	workdir, state := t.TempDir(), t.TempDir()
	clk := clock.NewVirtual(time.Time{})
	boot := func() (*arm.Server, *notes) {
		srv, err := arm.New(arm.Options{Workdir: workdir, StateDir: state, Clock: clk, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			t.Fatal(err)
		}
		n := &notes{notes: map[string]string{}, srv: srv}
		if err := srv.Host(n); err != nil {
			t.Fatal(err)
		}
		if err := srv.Host(n); err == nil {
			t.Fatal("hosting a provider twice was accepted")
		}
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return srv, n
	}
	srv, _ := boot()
	var changes []arm.ResourceChange
	srv.Watch(func(c arm.ResourceChange) { changes = append(changes, c) })
	az, err := azsdk.New(sim.ARMEndpoint{
		URL: srv.URL(), CAFile: srv.CAFile(), TenantID: srv.TenantID(), SubscriptionID: srv.SubscriptionID(),
		AuthorityHost: srv.AuthorityHost(), ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := az.Credential.GetToken(t.Context(), policyScope())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string, auth bool) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok.Token)
		}
		resp, err := az.HTTPClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	sub := "/subscriptions/" + srv.SubscriptionID() + "/providers/Test.Notes"

	if code, body, _ := do(http.MethodPut, sub+"/notes/a?api-version=2024-01-01", `{"text":"secret-text"}`, false); code != 401 || !strings.Contains(body, "AuthenticationFailed") {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodPut, sub+"/notes/a?api-version=2023-01-01", `{"text":"x"}`, true); code != 400 || !strings.Contains(body, "InvalidApiVersionParameter") {
		t.Errorf("bad api-version: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodGet, sub+"/notes", "", true); code != 400 || !strings.Contains(body, "MissingApiVersionParameter") {
		t.Errorf("no api-version on an any-version route: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodPut, sub+"/notes/a?api-version=2024-01-01", `{"text":"secret-text"}`, true); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, body, h := do(http.MethodGet, sub+"/notes/b?api-version=2024-01-01", "", true); code != 404 || h.Get("x-ms-error-code") != "ResourceNotFound" || !strings.Contains(body, `"details":[]`) {
		t.Errorf("handler error: %d %s", code, body)
	}
	if code, body, _ := do(http.MethodPost, sub+"/register?api-version=2021-04-01", "", true); code != 200 || !strings.Contains(body, "notes") {
		t.Errorf("the literal route lost to {namespace}: %d %s", code, body)
	}
	if len(changes) != 1 || changes[0].Method != http.MethodPut || !strings.HasSuffix(changes[0].ID, "/notes/a") {
		t.Errorf("changes = %+v, want the one PUT", changes)
	}
	code, out := srv.Dispatch(t.Context(), http.MethodGet, sub+"/notes/a?api-version=2024-01-01", nil, "identity-1")
	if code != 200 || !strings.Contains(string(out), `"caller":"identity-1"`) {
		t.Errorf("Dispatch: %d %s", code, out)
	}
	srv.Stop(context.Background())

	srv2, n2 := boot()
	defer srv2.Stop(context.Background())
	if n2.notes["a"] != "secret-text" {
		t.Errorf("state after restart = %v", n2.notes)
	}
	logBytes, err := os.ReadFile(workdir + "/arm/requests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if log := string(logBytes); strings.Contains(log, "secret-text") || !strings.Contains(log, "[redacted]") {
		t.Errorf("request log does not hold the redacted body only:\n%s", log)
	}
}

// TestSnapshotPanic: a hosted provider whose Snapshot panics fails the
// change being written with a 500 and undoes it, like a failed write, and
// the server goes on.
func TestSnapshotPanic(t *testing.T) {
	srv, err := arm.New(arm.Options{Workdir: t.TempDir(), StateDir: t.TempDir(), Clock: clock.NewVirtual(time.Time{}), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := &notes{notes: map[string]string{}, srv: srv}
	if err := srv.Host(n); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	put := func(rg string) int {
		code, _ := srv.Dispatch(t.Context(), http.MethodPut, "/subscriptions/"+srv.SubscriptionID()+"/resourcegroups/"+rg+"?api-version=2021-04-01", []byte(`{"location":"eastus"}`), "")
		return code
	}
	n.panics.Store(true)
	if code := put("rg1"); code != http.StatusInternalServerError {
		t.Errorf("a change whose snapshot panics: %d, want 500", code)
	}
	n.panics.Store(false)
	if code := put("rg2"); code != http.StatusCreated {
		t.Errorf("the next change: %d, want 201", code)
	}
	get := func(rg string) int {
		code, _ := srv.Dispatch(t.Context(), http.MethodGet, "/subscriptions/"+srv.SubscriptionID()+"/resourcegroups/"+rg+"?api-version=2021-04-01", nil, "")
		return code
	}
	if code := get("rg1"); code != http.StatusNotFound {
		t.Errorf("the change answered 500 is there: GET %d", code)
	}
	if code := get("rg2"); code != http.StatusOK {
		t.Errorf("the change answered 201: GET %d", code)
	}
}

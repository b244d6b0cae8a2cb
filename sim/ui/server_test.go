package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitopsim/gitopsim/sim"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/cluster"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// unusedKubeconfig names an API server nobody calls: the simulators of
// these tests have no connected cluster, so their Kubernetes backend is
// never asked anything.
const unusedKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`

// newTestServer starts a simulator (ARM, git, policy; no cluster) on a
// paused controlled clock, with a recorder and the web view's handler.
func newTestServer(t testing.TB) (*Server, *sim.Sim, *clock.Controlled, http.Handler) {
	t.Helper()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(unusedKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	backend, err := cluster.New(cluster.Options{Backend: cluster.KubeconfigKind, Kubeconfig: kc, Workdir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := clock.NewControlled(clock.ControlledOptions{Start: clock.Epoch, Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	sm, err := sim.New(sim.Options{Workdir: filepath.Join(dir, "sim"), Clock: ctl, SharedCluster: backend, Local: sim.LocalCluster{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(RecorderOptions{})
	detach := rec.Attach(sm)
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sm.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		detach()
	})
	srv, err := New(Options{Sim: sm, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	return srv, sm, ctl, srv.routes()
}

// call sends a request to h and decodes a JSON answer into out (if not nil).
func call(t testing.TB, h http.Handler, method, path, body string, out any) int {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "127.0.0.1:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, rec.Body.String())
		}
	}
	return rec.Code
}

type apiError struct {
	Error struct{ Code, Message string }
}

func TestServerClockControls(t *testing.T) {
	_, _, ctl, h := newTestServer(t)
	var v ClockView
	if code := call(t, h, "POST", "/api/clock/jump", `{"by": "90m"}`, &v); code != 200 || v.Ran == nil {
		t.Fatalf("jump: %d %+v", code, v)
	}
	if got := v.Now.Sub(clock.Epoch); got != 90*time.Minute || !v.Paused || !v.Controllable {
		t.Errorf("after a 90m jump of a paused clock: %+v", v)
	}
	if code := call(t, h, "POST", "/api/clock/scale", `{"scale": 3600}`, &v); code != 200 || v.Scale != 3600 {
		t.Errorf("scale: %d %+v", code, v)
	}
	if code := call(t, h, "POST", "/api/clock/resume", "", &v); code != 200 || v.Paused || ctl.State().Paused {
		t.Errorf("resume: %d %+v", code, v)
	}
	if code := call(t, h, "POST", "/api/clock/pause", "", &v); code != 200 || !v.Paused {
		t.Errorf("pause: %d %+v", code, v)
	}
	for _, c := range []struct{ method, path, body, code string }{
		{"POST", "/api/clock/jump", `{"by": "-5m"}`, "BadRequest"},
		{"POST", "/api/clock/jump", `{"by": "1h"} {"by": "1h"}`, "BadRequest"},
		{"POST", "/api/clock/scale", `{"scale": "fast"}`, "BadRequest"},
		{"POST", "/api/clock/scale", `{}`, "BadRequest"},
		{"POST", "/api/clock/rewind", `{}`, "NotFound"},
		{"GET", "/api/clock/pause", ``, "MethodNotAllowed"},
		{"POST", "/api/state", ``, "MethodNotAllowed"},
		{"GET", "/api/nothing", ``, "NotFound"},
		{"GET", "/api/events?after=x", ``, "BadRequest"},
	} {
		var e apiError
		call(t, h, c.method, c.path, c.body, &e)
		if e.Error.Code != c.code || e.Error.Message == "" {
			t.Errorf("%s %s %s: %+v, want %s", c.method, c.path, c.body, e, c.code)
		}
	}
	if st := ctl.State(); st.Scale != 3600 || !st.Paused || st.Now.Sub(clock.Epoch) < 90*time.Minute {
		t.Errorf("rejected controls changed the clock: %+v", st)
	}
}

// A scenario's clock is shown but not steerable: its controls answer 409
// with the reason, and the state says so.
func TestServerClockNotControllable(t *testing.T) {
	srv, _, ctl, _ := newTestServer(t)
	srv.opts.ClockReason = "a scenario's virtual clock"
	srv.ctl = nil
	h := srv.routes()
	var e apiError
	if code := call(t, h, "POST", "/api/clock/resume", "", &e); code != http.StatusConflict || e.Error.Message != "a scenario's virtual clock" {
		t.Errorf("resume: %d %+v", code, e)
	}
	var st State
	call(t, h, "GET", "/api/state", "", &st)
	if st.Clock.Controllable || st.Clock.Reason == "" || !ctl.State().Paused {
		t.Errorf("state clock %+v", st.Clock)
	}
}

func TestServerPushAndFaults(t *testing.T) {
	_, sm, _, h := newTestServer(t)
	if _, err := sm.Git().CreateRepo("team/demo", gitserver.RepoOptions{DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	var pushed struct{ Repo, Branch, Revision string }
	for i := range 2 {
		if code := call(t, h, "POST", "/api/repos/team/demo/push", `{}`, &pushed); code != 200 || pushed.Branch != "main" || len(pushed.Revision) != 40 {
			t.Fatalf("demo push %d: %d %+v", i, code, pushed)
		}
	}
	if code := call(t, h, "POST", "/api/repos/team%2Fdemo/push", `{"files": {"apps/web.yaml": "kind: ConfigMap\n", "gitopsim-demo.yaml": null}}`, &pushed); code != 200 {
		t.Fatalf("push of files (repo name escaped): %d", code)
	}
	// Pushes reach the timeline through the git server's subscription,
	// on its own goroutine.
	var st State
	for deadline := time.Now().Add(10 * time.Second); ; {
		st = State{}
		call(t, h, "GET", "/api/state", "", &st)
		pushes := 0
		for _, e := range st.Events {
			if e.Kind == KindPush {
				pushes++
			}
		}
		if pushes == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d push events on the timeline, want 3", pushes)
		}
		<-time.After(10 * time.Millisecond)
	}
	if len(st.Repos) != 1 || st.Repos[0].Branches["main"] != pushed.Revision {
		t.Errorf("repos %+v, want main at %s", st.Repos, pushed.Revision)
	}
	for _, c := range []struct{ path, body, code string }{
		{"/api/repos/team/demo/push", `{"files": {"../escape": "x"}}`, "BadRequest"},
		{"/api/repos/team/demo/push", `{"files": {".git/config": "x"}}`, "BadRequest"},
		{"/api/repos/team/demo/push", `{"branch": "no such/..branch"}`, "BadRequest"},
		{"/api/repos/nope/push", `{}`, "NotFound"},
		{"/api/repos/nope", `{"down": true}`, "NotFound"},
		{"/api/repos/team/demo", `{}`, "BadRequest"},
		{"/api/git", `{"down": 1}`, "BadRequest"},
		{"/api/clusters/rg/none/links", `{"offline": true}`, "NotFound"},
	} {
		var e apiError
		call(t, h, "POST", c.path, c.body, &e)
		if e.Error.Code != c.code || e.Error.Message == "" {
			t.Errorf("POST %s %s: %+v, want %s", c.path, c.body, e, c.code)
		}
	}
	if code := call(t, h, "POST", "/api/repos/team/demo", `{"down": true}`, &st); code != 200 || !st.Repos[0].Down {
		t.Errorf("repo down: %d %+v", code, st.Repos)
	}
	if code := call(t, h, "POST", "/api/git", `{"down": true}`, &st); code != 200 || !st.GitDown {
		t.Errorf("git down: %d", code)
	}
	if down, repos := sm.Git().Down(); !down || len(repos) != 1 {
		t.Errorf("git server down %v, repos down %v", down, repos)
	}
}

// The stream starts with the clock, every cluster and the repos, then
// sends timeline events with ids; a reconnect with Last-Event-ID gets
// what it missed.
func TestServerStream(t *testing.T) {
	srv, _, _, _ := newTestServer(t)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	open := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest("GET", srv.URL()+"api/stream", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	next := func(r *bufio.Reader) (event, id, data string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && event != "":
				return
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}
	r, closeStream := open("")
	var first []string
	for range 3 {
		ev, _, _ := next(r)
		first = append(first, ev)
	}
	if strings.Join(first, " ") != "clock clusters repos" {
		t.Fatalf("stream began with %v", first)
	}
	resp, err := http.Post(srv.URL()+"api/clock/jump", "application/json", strings.NewReader(`{"by": "1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var got []string
	var lastID string
	for len(got) < 2 {
		ev, id, data := next(r)
		if ev == msgTimeline {
			lastID = id
			got = append(got, ev+":"+id)
			if !strings.Contains(data, `"jumped"`) {
				t.Errorf("timeline message %s", data)
			}
		}
		if ev == msgClock {
			got = append(got, ev)
		}
	}
	closeStream()
	r, closeStream = open("0")
	defer closeStream()
	if ev, id, _ := next(r); ev != msgTimeline || id != lastID {
		t.Errorf("reconnect after 0 replayed %s %s first, want timeline %s", ev, id, lastID)
	}
}

// FuzzControls sends any method, path and body to the API: every answer
// is JSON, a failure is a 4xx with code and message, nothing panics or
// answers 5xx, and the simulator keeps serving.
func FuzzControls(f *testing.F) {
	for _, s := range [][3]string{
		{"POST", "clock/jump", `{"by":"1h"}`}, {"POST", "clock/scale", `{"scale":1e308}`}, {"POST", "clock/pause", `[]`},
		{"POST", "repos/demo/push", `{"files":{"a/../b":"x"}}`}, {"POST", "repos/demo/push", `{"branch":"` + strings.Repeat("x", 300) + `"}`},
		{"POST", "clusters/a/b/links", `{"offline":null}`}, {"GET", "events?after=99999999999999999999", ""},
		{"POST", "git", `{"down":true,"down":false}`}, {"DELETE", "state", ""}, {"GET", "clusters/%00/x", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	_, sm, _, h := newTestServer(f)
	if _, err := sm.Git().CreateRepo("demo", gitserver.RepoOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if method != "GET" && method != "POST" && method != "PUT" && method != "DELETE" {
			method = "POST"
		}
		if strings.HasPrefix(path, "stream") {
			return // a stream never ends
		}
		req, err := http.NewRequest(method, "/api/"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Host = "localhost:8080"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s /api/%s %q: %d %s", method, path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && rec.Code != http.StatusNotFound || rec.Code == http.StatusNotFound && strings.HasPrefix(req.URL.Path, "/api/") {
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s /api/%s %q: %d without an error envelope: %s", method, path, body, rec.Code, rec.Body.String())
			}
		}
		// Still serving, with a sane clock.
		var st State
		if code := call(t, h, "GET", "/api/state", "", &st); code != 200 || st.Clock.Scale <= 0 {
			t.Fatalf("after %s /api/%s %q: state %d %+v", method, path, body, code, st.Clock)
		}
	})
}

// Stop ends open streams at once: a page left open does not hold the
// server for the shutdown grace (which would log a warning).
func TestServerStopEndsStreams(t *testing.T) {
	srv, _, _, _ := newTestServer(t)
	var logs strings.Builder
	var mu sync.Mutex
	srv.log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL() + "api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("stream ended with %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "in flight") {
		t.Errorf("Stop waited for an open stream:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Another site open in the browser, or one whose name resolves to
// 127.0.0.1, gets nothing; the page itself and tools without an Origin do.
func TestServerRefusesOtherSites(t *testing.T) {
	_, _, ctl, h := newTestServer(t)
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"127.0.0.1:8080", "", 200},
		{"localhost:8080", "http://localhost:8080", 200},
		{"[::1]:8080", "", 200},
		{"127.0.0.1:8080", "https://evil.example", 403},
		{"127.0.0.1:8080", "http://127.0.0.1:9999", 403},
		{"evil.example:8080", "", 403},
		{"evil.example", "http://evil.example", 403},
	} {
		req := httptest.NewRequest("POST", "/api/clock/jump", strings.NewReader(`{"by": "1h"}`))
		req.Host = c.host
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("host %s origin %q: %d, want %d", c.host, c.origin, rec.Code, c.want)
		}
	}
	if got := ctl.Now().Sub(clock.Epoch); got != 3*time.Hour {
		t.Errorf("clock jumped %v, want the 3 accepted jumps", got)
	}
}

// Prepared changes: a directory of files and a txtar archive (with a
// deletion), listed by GET /api/changes and pushed by name; what is not
// a change is listed as a problem, and an unknown name is a 404.
func TestServerPreparedChanges(t *testing.T) {
	srv, sm, _, _ := newTestServer(t)
	dir := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("scale-web/apps/web.yaml", "replicas: 3\n")
	write("rollback.txtar", "roll web back\n-- apps/web.yaml --\nreplicas: 1\n-- -apps/extra.yaml --\n")
	write("broken.txtar", "-- ../escape --\nx\n")
	write("notes.md", "not a change")
	srv.opts.Changes = dir
	h := srv.routes()
	var set struct {
		Changes  []Change
		Problems []string
	}
	call(t, h, "GET", "/api/changes", "", &set)
	if len(set.Changes) != 2 || set.Changes[0].Name != "rollback" || set.Changes[0].Message != "roll web back" ||
		!slices.Equal(set.Changes[0].Deletes, []string{"apps/extra.yaml"}) || set.Changes[1].Name != "scale-web" {
		t.Errorf("changes %+v", set.Changes)
	}
	if len(set.Problems) != 1 || !strings.HasPrefix(set.Problems[0], "broken.txtar:") {
		t.Errorf("problems %v", set.Problems)
	}
	if _, err := sm.Git().CreateRepo("app", gitserver.RepoOptions{DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	extra := "kind: ConfigMap\n"
	if _, err := sm.Git().Commit("app", "main", "seed", map[string]*string{"apps/extra.yaml": &extra}); err != nil {
		t.Fatal(err)
	}
	for _, change := range []string{"scale-web", "rollback"} {
		var pushed struct{ Revision string }
		if code := call(t, h, "POST", "/api/repos/app/push", `{"change": "`+change+`"}`, &pushed); code != 200 {
			t.Fatalf("push %s: %d", change, code)
		}
	}
	// What was pushed, read back with a git client: the rollback's
	// message and files on top of scale-web's.
	ca, err := os.ReadFile(sm.Git().CAFile())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: sm.Git().HTTPSURL() + "/app.git", CABundle: ca,
		Auth: &githttp.BasicAuth{Username: gitserver.AdminUser, Password: sm.Git().AdminToken()}})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := repo.Head()
	top, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	parent, err := top.Parent(0)
	if err != nil {
		t.Fatal(err)
	}
	file := func(c *object.Commit, name string) string {
		f, err := c.File(name)
		if err != nil {
			return "<absent>"
		}
		content, _ := f.Contents()
		return content
	}
	if top.Message != "roll web back\n" || file(top, "apps/web.yaml") != "replicas: 1\n" || file(top, "apps/extra.yaml") != "<absent>" {
		t.Errorf("rollback commit %q: web %q, extra %q", top.Message, file(top, "apps/web.yaml"), file(top, "apps/extra.yaml"))
	}
	if parent.Message != "scale-web\n" || file(parent, "apps/web.yaml") != "replicas: 3\n" || file(parent, "apps/extra.yaml") != extra {
		t.Errorf("scale-web commit %q: web %q", parent.Message, file(parent, "apps/web.yaml"))
	}
	var e apiError
	if code := call(t, h, "POST", "/api/repos/app/push", `{"change": "nope"}`, &e); code != 404 {
		t.Errorf("unknown change: %d %+v", code, e)
	}
	if code := call(t, h, "POST", "/api/repos/app/push", `{"change": "rollback", "files": {"a": "b"}}`, &e); code != 400 {
		t.Errorf("change and files: %d %+v", code, e)
	}
}

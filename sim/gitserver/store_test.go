package gitserver_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

func TestDiskStoreKeepsPushesAcrossRestart(t *testing.T) {
	workdir, state := t.TempDir(), t.TempDir()
	srv, err := gitserver.New(gitserver.Options{Workdir: workdir, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, dir: t.TempDir(), proto: "ssh"}
	src := h.dir + "/src"
	os.MkdirAll(src, 0o755)
	h.must(src, "init", "-q", "-b", "main")
	tip := h.commitFile(src, "a.txt", "a\n")
	h.must(src, "push", "-q", h.url("team/kept"), "main")
	token := srv.AdminToken()
	srv.Stop(context.Background())

	again, err := gitserver.New(gitserver.Options{Workdir: workdir, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Ref("team/kept", "main"); err != nil || got.String() != tip {
		t.Fatalf("after restart: %v %v, want %s", got, err, tip)
	}
	if again.AdminToken() != token {
		t.Error("the admin token changed across a restart")
	}
	if err := again.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer again.Stop(context.Background())
	h.srv = again
	dst := h.clone("team/kept")
	if got := h.must(dst, "rev-parse", "HEAD"); got != tip {
		t.Errorf("clone after restart at %s", got)
	}
}

func TestFaults(t *testing.T) {
	srv, _ := newServer(t, gitserver.Native)
	seed(t, srv)
	h := &harness{t: t, srv: srv, dir: t.TempDir(), proto: "ssh"}
	srv.SetRepoDown("team/app", true)
	h.mustFail(h.adminEnv(), h.dir, "unavailable (injected fault)", "ls-remote", h.url("team/app"))
	h.proto = "https"
	h.mustFail(h.adminEnv(), h.dir, "503", "ls-remote", h.url("team/app"))
	srv.SetRepoDown("team/app", false)
	h.must(h.dir, "ls-remote", h.url("team/app"))

	srv.SetDown(true)
	h.mustFail(h.adminEnv(), h.dir, "503", "ls-remote", h.url("team/app"))
	h.proto = "ssh"
	if out, err := h.gitIn(h.adminEnv(), h.dir, "ls-remote", h.url("team/app")); err == nil {
		t.Errorf("SSH served while down:\n%s", out)
	}
	srv.SetDown(false)

	srv.SetLatency(300 * time.Millisecond)
	caPEM := readFile(t, srv.CAFile())
	t0 := time.Now()
	if _, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.HTTPSURL() + "/team/app",
		Auth: &githttp.BasicAuth{Username: gitserver.AdminUser, Password: srv.AdminToken()}, CABundle: caPEM, Depth: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 600*time.Millisecond {
		t.Errorf("clone with 300ms latency per request took %v (two requests)", d)
	}
	srv.SetLatency(0)
	if !strings.HasPrefix(srv.KnownHosts(), "[127.0.0.1]:") {
		t.Errorf("known_hosts line %q", srv.KnownHosts())
	}
}

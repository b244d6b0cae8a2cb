package gitserver_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	gossh "golang.org/x/crypto/ssh"

	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/internal/fulldisk"
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

// TestIdentitiesSurviveAFreshWorkdir: with a state dir, a restart with a new
// work dir (make clean) keeps users and grants, tokens (working, revoked and
// expired alike), user and deploy keys, which repos are public, and the SSH
// host key, checked with the real git client over both fronts.
func TestIdentitiesSurviveAFreshWorkdir(t *testing.T) {
	state := t.TempDir()
	start := func() *gitserver.Server {
		t.Helper()
		srv, err := gitserver.New(gitserver.Options{Workdir: t.TempDir(), StateDir: state})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	h := &harness{t: t, srv: srv, dir: t.TempDir(), proto: "https"}
	src := h.dir + "/src"
	os.MkdirAll(src, 0o755)
	h.must(src, "init", "-q", "-b", "main")
	tip := h.commitFile(src, "a.txt", "a\n")
	for _, repo := range []string{"team/private", "team/open"} {
		h.must(src, "push", "-q", h.url(repo), "main")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.SetPublic("team/open", true))
	must(srv.AddUser("reader", false))
	must(srv.Grant("reader", "team/private", false))
	token, err := srv.AddToken("reader", gitserver.TokenOptions{})
	must(err)
	revoked, err := srv.AddToken("reader", gitserver.TokenOptions{})
	must(err)
	expired, err := srv.AddToken("reader", gitserver.TokenOptions{})
	must(err)
	if ok, err := srv.RevokeToken(revoked); !ok || err != nil {
		t.Fatalf("revoke token: %v, %v", ok, err)
	}
	if ok, err := srv.ExpireToken(expired); !ok || err != nil {
		t.Fatalf("expire token: %v, %v", ok, err)
	}
	deployPriv, deployPub := newKey(t, h.dir, "deploy")
	_, err = srv.AddDeployKey("team/private", deployPub, false)
	must(err)
	hostKey := string(gossh.MarshalAuthorizedKey(srv.HostKey()))
	adminToken := srv.AdminToken()
	adminKey, err := os.ReadFile(srv.AdminKeyFile())
	must(err)
	srv.Stop(context.Background())

	srv = start()
	defer srv.Stop(context.Background())
	h.srv = srv
	if got := string(gossh.MarshalAuthorizedKey(srv.HostKey())); got != hostKey {
		t.Errorf("host key changed across the restart:\n%s%s", hostKey, got)
	}
	// The admin keeps one key and one token, not one more per work dir.
	if got := srv.AdminToken(); got != adminToken {
		t.Error("the admin's token changed across the restart")
	}
	if got, err := os.ReadFile(srv.AdminKeyFile()); err != nil || !bytes.Equal(got, adminKey) {
		t.Errorf("the admin's key changed across the restart (%v)", err)
	}
	reader := h.env(srv.AdminKeyFile(), "reader", token)
	if out, err := h.gitIn(reader, h.dir, "clone", "-q", h.url("team/private"), h.dir+"/by-token"); err != nil {
		t.Errorf("the reader's token after the restart: %v\n%s", err, out)
	}
	for what, tok := range map[string]string{"revoked": revoked, "expired": expired} {
		if out, err := h.gitIn(h.env(srv.AdminKeyFile(), "reader", tok), h.dir, "clone", "-q", h.url("team/private"), h.dir+"/"+what); err == nil {
			t.Errorf("a %s token works after the restart:\n%s", what, out)
		}
	}
	anon := h.env(srv.AdminKeyFile(), "nobody", "wrong")
	if out, err := h.gitIn(anon, h.dir, "clone", "-q", h.url("team/open"), h.dir+"/open"); err != nil {
		t.Errorf("the public repo is not public after the restart: %v\n%s", err, out)
	}
	h.proto = "ssh"
	if out, err := h.gitIn(h.env(deployPriv, "x", "x"), h.dir, "clone", "-q", h.url("team/private"), h.dir+"/by-deploy-key"); err != nil {
		t.Errorf("the deploy key after the restart (host key checked against the old known_hosts line): %v\n%s", err, out)
	} else if got := h.must(h.dir+"/by-deploy-key", "rev-parse", "HEAD"); got != tip {
		t.Errorf("clone at %s, want %s", got, tip)
	}
	if b, _ := os.ReadFile(state + "/identities.bin"); strings.Contains(string(b), token) || strings.Contains(string(b), "reader") {
		t.Error("identities.bin holds the token or a user name in clear")
	}
}

// TestIdentitiesFileRefusedNotReplaced: a damaged identities file stops the
// server with a message naming it, and is left as it was.
func TestIdentitiesFileRefusedNotReplaced(t *testing.T) {
	state := t.TempDir()
	srv, err := gitserver.New(gitserver.Options{Workdir: t.TempDir(), StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddUser("someone", false); err != nil {
		t.Fatal(err)
	}
	path := state + "/identities.bin"
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, damaged := range map[string][]byte{
		"flipped":   append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1),
		"truncated": good[:len(good)/2],
		"foreign":   []byte("not ours\n"),
	} {
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := gitserver.New(gitserver.Options{Workdir: t.TempDir(), StateDir: state})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want a refusal naming %s", name, err, path)
		}
		if b, _ := os.ReadFile(path); string(b) != string(damaged) {
			t.Errorf("%s: the file was changed", name)
		}
	}
	if err := os.Remove(state + "/state.key"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := gitserver.New(gitserver.Options{Workdir: t.TempDir(), StateDir: state}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("without its key: err = %v, want a refusal about the key", err)
	}
}

// TestIdentitiesDiskFull: an identity change that cannot be saved (the
// state dir's disk is full) fails and is undone; once there is room it
// works. Needs root (mount); skips, saying so, otherwise.
func TestIdentitiesDiskFull(t *testing.T) {
	state := fulldisk.Mount(t, "128k")
	srv, err := gitserver.New(gitserver.Options{Workdir: t.TempDir(), StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddUser("kept", false); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.AddToken("kept", gitserver.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	free := fulldisk.Fill(t, state)
	// A revocation that cannot be saved says so, and the token stays.
	if _, err := srv.RevokeToken(tok); err == nil {
		t.Error("RevokeToken on a full disk reported success")
	}
	if _, err := srv.ExpireToken(tok); err == nil {
		t.Error("ExpireToken on a full disk reported success")
	}
	if known, err := srv.RevokeToken(tok); known != true || err == nil {
		t.Errorf("after failed revocations the token is gone: known %v, %v", known, err)
	}
	if err := srv.AddUser("lost", false); err == nil || !strings.Contains(err.Error(), "could not be saved") {
		t.Errorf("AddUser on a full disk: %v", err)
	}
	if _, err := srv.AddToken("lost", gitserver.TokenOptions{}); !errors.Is(err, gitserver.ErrUnknownUser) {
		t.Errorf("the user whose creation failed exists: %v", err)
	}
	if _, err := srv.AddToken("kept", gitserver.TokenOptions{}); err == nil {
		t.Error("a token was made on a full disk")
	}
	free()
	if _, err := srv.AddToken("kept", gitserver.TokenOptions{}); err != nil {
		t.Errorf("once there is room again: %v", err)
	}
}

// TestUnreadableOldKeyRefused: a key the work dir kept that cannot be read
// stops the server, naming it, instead of being replaced by a new one
// (which would break every known_hosts line given out).
func TestUnreadableOldKeyRefused(t *testing.T) {
	wd := t.TempDir()
	old := filepath.Join(wd, "git", "ssh_host_ed25519_key")
	if err := os.MkdirAll(old, 0o700); err != nil { // a directory: unreadable as a file
		t.Fatal(err)
	}
	_, err := gitserver.New(gitserver.Options{Workdir: wd, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), old) {
		t.Errorf("New with an unreadable old host key: %v", err)
	}
}

package gitserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// harness runs the real git CLI against a server, hermetically: no user or
// system git config, strict host key checking against the exported
// known_hosts, the gitopsim CA for HTTPS.
type harness struct {
	t     *testing.T
	srv   *gitserver.Server
	clk   *clock.Virtual
	dir   string
	proto string // "ssh" or "https"
}

func newServer(t *testing.T, backend string) (*gitserver.Server, *clock.Virtual) {
	t.Helper()
	clk := clock.NewVirtual(time.Now())
	srv, err := gitserver.New(gitserver.Options{
		Workdir: t.TempDir(), Backend: backend, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv, clk
}

// env is the git environment for a given SSH key file and HTTPS token.
func (h *harness) env(keyFile, user, token string) []string {
	ssh := fmt.Sprintf("ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o LogLevel=ERROR",
		keyFile, h.srv.KnownHostsFile())
	askpass := filepath.Join(h.dir, "askpass-"+user)
	script := fmt.Sprintf("#!/bin/sh\ncase \"$1\" in Username*) echo %q;; *) echo %q;; esac\n", user, token)
	if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
		h.t.Fatal(err)
	}
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + h.dir, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=" + ssh, "GIT_SSL_CAINFO=" + h.srv.CAFile(), "GIT_ASKPASS=" + askpass,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_PROTOCOL_FROM_USER=0",
	}
}

func (h *harness) adminEnv() []string {
	return h.env(h.srv.AdminKeyFile(), gitserver.AdminUser, h.srv.AdminToken())
}

func (h *harness) url(repo string) string {
	if h.proto == "ssh" {
		return h.srv.SSHURL() + "/" + repo + ".git"
	}
	return h.srv.HTTPSURL() + "/" + repo + ".git"
}

// git runs git in dir and returns combined output and error.
func (h *harness) gitIn(env []string, dir string, args ...string) (string, error) {
	if dir == "" {
		// An empty dir would run git in the package directory, inside the
		// project's own repository.
		h.t.Fatalf("git %s without a directory", strings.Join(args, " "))
	}
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, env
	return runSplit(cmd)
}

// runSplit runs cmd with stdout and stderr on separate pipes and returns
// stdout followed by stderr. Not CombinedOutput: git's ssh child shares
// git's stderr, and OpenSSH makes it non-blocking, which on a pipe shared
// with stdout makes git's own output writes fail when the pipe is full:
// ls-remote then prints part of the refs and still exits 0.
func runSplit(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String() + stderr.String(), err
}

func (h *harness) must(dir string, args ...string) string {
	h.t.Helper()
	out, err := h.gitIn(h.adminEnv(), dir, args...)
	if err != nil {
		h.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (h *harness) mustFail(env []string, dir, want string, args ...string) {
	h.t.Helper()
	out, err := h.gitIn(env, dir, args...)
	if err == nil {
		h.t.Fatalf("git %s succeeded, want failure mentioning %q:\n%s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(out, want) {
		h.t.Fatalf("git %s failed without %q:\n%s", strings.Join(args, " "), want, out)
	}
}

func (h *harness) clone(repo string, extra ...string) string {
	h.t.Helper()
	dst, err := os.MkdirTemp(h.dir, "clone-")
	if err != nil {
		h.t.Fatal(err)
	}
	h.must(h.dir, append(append([]string{"clone", "-q"}, extra...), h.url(repo), dst)...)
	return dst
}

func (h *harness) commitFile(dir, name, content string) string {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.must(dir, "add", name)
	h.must(dir, "commit", "-q", "-m", "change "+name)
	return h.must(dir, "rev-parse", "HEAD")
}

func newKey(t *testing.T, dir, name string) (file, authorized string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sg, _ := gossh.NewSignerFromKey(priv)
	return file, string(gossh.MarshalAuthorizedKey(sg.PublicKey()))
}

func ptr(s string) *string { return &s }

// seed makes team/app: 30 commits on main, a dev branch, a lightweight and
// an annotated tag, and a 3000-line file so pushes produce deltas.
func seed(t *testing.T, srv *gitserver.Server) {
	t.Helper()
	var big strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&big, "line %d of a file big enough for deltas\n", i)
	}
	if _, err := srv.CreateRepo("team/app", gitserver.RepoOptions{}); err != nil {
		t.Fatal(err)
	}
	files := map[string]*string{"big.txt": ptr(big.String())}
	for i := range 200 {
		files[fmt.Sprintf("dir%d/file%d.txt", i%10, i)] = ptr(fmt.Sprintf("file %d\n", i))
	}
	if _, err := srv.Commit("team/app", "main", "initial", files); err != nil {
		t.Fatal(err)
	}
	for i := range 29 {
		if _, err := srv.Commit("team/app", "main", fmt.Sprintf("commit %d", i), map[string]*string{fmt.Sprintf("log/%d.txt", i): ptr("x\n")}); err != nil {
			t.Fatal(err)
		}
	}
	tip, _ := srv.Ref("team/app", "main")
	if err := srv.SetRef("team/app", "refs/tags/v0.1", tip); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Tag("team/app", "v1.0", "main", "release 1.0"); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetRef("team/app", "dev", tip); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Commit("team/app", "dev", "on dev", map[string]*string{"dev.txt": ptr("dev\n")}); err != nil {
		t.Fatal(err)
	}
}

func TestRealGitMatrix(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the git CLI is required (make test installs it)")
	}
	for _, backend := range []string{gitserver.Native, gitserver.Reference} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv, clk := newServer(t, backend)
			seed(t, srv)
			for _, proto := range []string{"ssh", "https"} {
				t.Run(proto, func(t *testing.T) {
					h := &harness{t: t, srv: srv, clk: clk, dir: t.TempDir(), proto: proto}
					runMatrix(t, h)
				})
			}
		})
	}
}

func runMatrix(t *testing.T, h *harness) {
	repo := "team/app"
	step := func(name string, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			sub := *h
			sub.t = t
			f(&sub)
		})
	}
	step("clone with HEAD, tags and fsck", func(h *harness) {
		dir := h.clone(repo)
		if got := h.must(dir, "symbolic-ref", "refs/remotes/origin/HEAD"); got != "refs/remotes/origin/main" {
			h.t.Errorf("origin/HEAD = %s", got)
		}
		if got := h.must(dir, "tag", "-l"); !strings.Contains(got, "v0.1") || !strings.Contains(got, "v1.0") {
			h.t.Errorf("tags = %q", got)
		}
		h.must(dir, "fsck", "--strict")
	})
	step("clone and fetch 250 KB of incompressible data (a binary, 210 sealed secrets)", func(h *harness) {
		name := "team/incompressible-" + h.proto
		r := mrand.New(mrand.NewPCG(3, 4))
		rnd := func(n int) string {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return string(b)
		}
		files := map[string]*string{"image.bin": ptr(rnd(100 << 10))}
		for i := range 210 {
			files[fmt.Sprintf("secrets/sealed-%03d.yaml", i)] = ptr(base64.StdEncoding.EncodeToString([]byte(rnd(540))))
		}
		if _, err := h.srv.Commit(name, "main", "incompressible", files); err != nil {
			h.t.Fatal(err)
		}
		dir := h.clone(name)
		h.must(dir, "fsck", "--strict")
		next, err := h.srv.Commit(name, "main", "more", map[string]*string{"image2.bin": ptr(rnd(300 << 10))})
		if err != nil {
			h.t.Fatal(err)
		}
		h.must(dir, "pull", "-q", "--ff-only")
		if got := h.must(dir, "rev-parse", "HEAD"); got != next.String() {
			h.t.Errorf("pulled %s, want %s", got, next)
		}
		h.must(dir, "fsck", "--strict")
		pushed := h.commitFile(dir, "pushed.bin", rnd(200<<10))
		h.must(dir, "push", "-q", "origin", "main")
		if got, _ := h.srv.Ref(name, "main"); got.String() != pushed {
			h.t.Errorf("pushed %s, server has %s", pushed, got)
		}
		h.must(h.clone(name), "fsck", "--strict")
	})
	step("protocol v2, v1 and v0 are each answered in kind", func(h *harness) {
		for v, want := range map[string]string{"2": "version 2", "1": "version 1", "0": "multi_ack_detailed"} {
			trace := filepath.Join(h.dir, "trace-"+v)
			env := append(h.adminEnv(), "GIT_TRACE_PACKET="+trace, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=protocol.version", "GIT_CONFIG_VALUE_0="+v)
			if out, err := h.gitIn(env, h.dir, "ls-remote", h.url(repo)); err != nil {
				h.t.Fatalf("ls-remote over v%s: %v\n%s", v, err, out)
			}
			b, _ := os.ReadFile(trace)
			// The first line the server sends, after the HTTP service line.
			var first string
			for _, l := range strings.Split(string(b), "\n") {
				if _, pkt, ok := strings.Cut(l, "packet: "); ok && strings.Contains(pkt, "< ") && !strings.Contains(pkt, "# service") && !strings.HasSuffix(pkt, "< 0000") {
					first = pkt
					break
				}
			}
			if !strings.Contains(first, want) {
				h.t.Errorf("v%s: the server began with %q, want %q", v, first, want)
			}
		}
	})
	step("3000 tags in one push: status, advertisement, ls-refs and clone", func(h *harness) {
		name := "team/many-refs-" + h.proto
		dir := h.clone(repo)
		var refs []string
		for i := range 3000 {
			refs = append(refs, fmt.Sprintf("refs/tags/many/%04d-%s", i, strings.Repeat("x", i%200)))
		}
		// One update-ref call for all of them.
		cmd := exec.Command("git", "update-ref", "--stdin")
		cmd.Dir, cmd.Env = dir, h.adminEnv()
		var in strings.Builder
		for _, r := range refs {
			fmt.Fprintf(&in, "create %s HEAD\n", r)
		}
		cmd.Stdin = strings.NewReader(in.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			h.t.Fatalf("update-ref: %v\n%s", err, out)
		}
		out := h.must(dir, "push", "--porcelain", h.url(name), "refs/tags/many/*:refs/tags/many/*", "HEAD:refs/heads/main")
		if n := strings.Count(out, "[new tag]"); n != 3000 {
			h.t.Errorf("the push reported %d new tags, want 3000", n)
		}
		for _, v := range []string{"0", "2"} {
			env := append(h.adminEnv(), "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=protocol.version", "GIT_CONFIG_VALUE_0="+v)
			out, err := h.gitIn(env, h.dir, "ls-remote", "--tags", h.url(name))
			if err != nil {
				h.t.Fatalf("ls-remote v%s: %v", v, err)
			}
			if n := strings.Count(out, "refs/tags/many/"); n != 3000 {
				h.t.Errorf("ls-remote over v%s lists %d tags, want 3000", v, n)
			}
		}
		clone := h.clone(name)
		if n := len(strings.Fields(h.must(clone, "tag", "-l"))); n != 3000 {
			h.t.Errorf("the clone has %d tags", n)
		}
	})
	step("push small and delta changes; a second clone sees them", func(h *harness) {
		dir := h.clone(repo)
		h.commitFile(dir, "small-"+h.proto+".txt", "small\n")
		h.must(dir, "push", "-q", "origin", "main")
		big, _ := os.ReadFile(filepath.Join(dir, "big.txt"))
		pushed := h.commitFile(dir, "big.txt", strings.Replace(string(big), "line "+map[string]string{"ssh": "1500", "https": "2500"}[h.proto]+" ", "CHANGED ", 1))
		h.must(dir, "push", "-q", "origin", "main")
		second := h.clone(repo)
		if got := h.must(second, "rev-parse", "HEAD"); got != pushed {
			h.t.Errorf("second clone at %s, pushed %s", got, pushed)
		}
		h.must(second, "fsck", "--strict")
	})
	step("fetch into a stale clone with 20 local commits, then pull", func(h *harness) {
		stale := h.clone(repo)
		pushed, err := h.srv.Commit(repo, "main", "after the stale clone", map[string]*string{"fresh-" + h.proto: ptr("f\n")})
		if err != nil {
			h.t.Fatal(err)
		}
		for i := range 20 {
			h.commitFile(stale, fmt.Sprintf("local-%s-%d.txt", h.proto, i), "local\n")
		}
		h.must(stale, "fetch", "-q", "origin")
		if got := h.must(stale, "rev-parse", "origin/main"); got != pushed.String() {
			h.t.Errorf("origin/main after fetch = %s, want %s", got, pushed)
		}
		fresh := h.clone(repo)
		h.commitFile(h.clone(repo), "noop.txt", "x\n") // a clone nobody pushes from
		h.must(fresh, "pull", "-q", "--ff-only", "origin", "main")
	})
	step("fetch a branch and a tag", func(h *harness) {
		dir := h.clone(repo, "--single-branch", "--no-tags")
		h.must(dir, "fetch", "-q", "origin", "dev")
		h.must(dir, "fetch", "-q", "origin", "tag", "v1.0")
		if got := h.must(dir, "cat-file", "-t", "v1.0"); got != "tag" {
			h.t.Errorf("v1.0 is a %s", got)
		}
	})
	step("annotated tag auto-follow", func(h *harness) {
		dir := h.clone(repo)
		tagName := "auto-" + h.proto
		if _, err := h.srv.Commit(repo, "main", "tagged", map[string]*string{"tagged-" + h.proto: ptr("t\n")}); err != nil {
			h.t.Fatal(err)
		}
		if _, err := h.srv.Tag(repo, tagName, "main", "auto-followed"); err != nil {
			h.t.Fatal(err)
		}
		h.must(dir, "fetch", "-q", "origin")
		if got := h.must(dir, "tag", "-l", tagName); got != tagName {
			h.t.Errorf("tag %s not followed: %q", tagName, got)
		}
	})
	step("push --tags, new branch, branch delete, force push", func(h *harness) {
		dir := h.clone(repo)
		h.must(dir, "tag", "-a", "pushed-"+h.proto, "-m", "pushed")
		h.must(dir, "push", "-q", "--tags", "origin")
		if _, err := h.srv.Ref(repo, "refs/tags/pushed-"+h.proto); err != nil {
			h.t.Errorf("pushed tag missing: %v", err)
		}
		branch := "feature-" + h.proto
		h.must(dir, "checkout", "-q", "-b", branch)
		tip := h.commitFile(dir, "feature.txt", "f\n")
		h.must(dir, "push", "-q", "origin", branch)
		if got, _ := h.srv.Ref(repo, branch); got.String() != tip {
			h.t.Errorf("new branch at %s, want %s", got, tip)
		}
		h.must(dir, "push", "-q", "origin", "--delete", branch)
		if _, err := h.srv.Ref(repo, branch); err == nil {
			h.t.Error("deleted branch still there")
		}
		h.must(dir, "checkout", "-q", "main")
		h.must(dir, "reset", "-q", "--hard", "HEAD~1")
		forced := h.commitFile(dir, "forced-"+h.proto+".txt", "forced\n")
		h.must(dir, "push", "-q", "--force", "origin", "main")
		if got, _ := h.srv.Ref(repo, "main"); got.String() != forced {
			h.t.Errorf("force push: main at %s, want %s", got, forced)
		}
	})
	step("push from a shallow clone: fine where history is, refused where it is not", func(h *harness) {
		dir := h.clone(repo, "--depth", "1")
		tip := h.commitFile(dir, "from-shallow-"+h.proto+".txt", "s\n")
		h.must(dir, "push", "-q", "origin", "HEAD:refs/heads/from-shallow-"+h.proto)
		if got, _ := h.srv.Ref(repo, "from-shallow-"+h.proto); got.String() != tip {
			h.t.Errorf("shallow push: %s, want %s", got, tip)
		}
		empty := "team/shallow-target-" + h.proto
		if _, err := h.srv.CreateRepo(empty, gitserver.RepoOptions{}); err != nil {
			h.t.Fatal(err)
		}
		h.mustFail(h.adminEnv(), dir, "shallow update not allowed", "push", h.url(empty), "HEAD:refs/heads/main")
		if _, err := h.srv.Ref(empty, "main"); err == nil {
			h.t.Error("a push without its history created main")
		}
	})
	step("non-fast-forward push rejected", func(h *harness) {
		dir := h.clone(repo)
		h.must(dir, "reset", "-q", "--hard", "HEAD~1")
		h.commitFile(dir, "diverged.txt", "d\n")
		h.mustFail(h.adminEnv(), dir, "rejected", "push", "origin", "main")
	})
	step("ls-remote", func(h *harness) {
		out := h.must(h.dir, "ls-remote", "--symref", h.url(repo))
		for _, want := range []string{"ref: refs/heads/main\tHEAD", "refs/heads/dev", "refs/tags/v1.0^{}"} {
			if !strings.Contains(out, want) {
				h.t.Errorf("ls-remote lacks %q:\n%s", want, out)
			}
		}
	})
	step("shallow: depth 1, a branch, fetch, unshallow", func(h *harness) {
		dir := h.clone(repo, "--depth", "1")
		if got := h.must(dir, "rev-list", "--count", "HEAD"); got != "1" {
			h.t.Errorf("depth 1 clone has %s commits", got)
		}
		dev := h.clone(repo, "--depth", "1", "--branch", "dev")
		if got := h.must(dev, "rev-parse", "--abbrev-ref", "HEAD"); got != "dev" {
			h.t.Errorf("--branch dev checked out %s", got)
		}
		if _, err := h.srv.Commit(repo, "main", "for shallow fetch", map[string]*string{"shallow-" + h.proto: ptr("s\n")}); err != nil {
			h.t.Fatal(err)
		}
		h.must(dir, "fetch", "-q", "--depth", "1", "origin", "main")
		tip, _ := h.srv.Ref(repo, "main")
		if got := h.must(dir, "rev-parse", "FETCH_HEAD"); got != tip.String() {
			h.t.Errorf("shallow fetch got %s, want %s", got, tip)
		}
		h.must(dir, "fetch", "-q", "--unshallow", "origin")
		if got := h.must(dir, "rev-parse", "--is-shallow-repository"); got != "false" {
			h.t.Errorf("still shallow after --unshallow")
		}
		h.must(dir, "fsck", "--strict")
	})
	step("empty repo, then the first push", func(h *harness) {
		name := "team/empty-" + h.proto
		if _, err := h.srv.CreateRepo(name, gitserver.RepoOptions{}); err != nil {
			h.t.Fatal(err)
		}
		dir := h.clone(name)
		tip := h.commitFile(dir, "README", "hello\n")
		h.must(dir, "push", "-q", "origin", "HEAD:main")
		if got, _ := h.srv.Ref(name, "main"); got.String() != tip {
			h.t.Errorf("first push: main at %s", got)
		}
		again := h.clone(name)
		if got := h.must(again, "rev-parse", "HEAD"); got != tip {
			h.t.Errorf("clone after the first push at %s", got)
		}
	})
	step("admin push to a new path creates the repo", func(h *harness) {
		dir := h.clone(repo)
		name := "team/created-" + h.proto
		h.must(dir, "push", "-q", h.url(name), "main")
		if _, err := h.srv.Ref(name, "main"); err != nil {
			h.t.Errorf("repo not created: %v", err)
		}
	})
	step("unknown repo", func(h *harness) {
		h.mustFail(h.adminEnv(), h.dir, "not found", "ls-remote", h.url("team/nope"))
	})
	step("identities: wrong key, read-only deploy key, expired and read-only tokens", func(h *harness) {
		dir := h.clone(repo)
		h.commitFile(dir, "denied-"+h.proto+".txt", "x\n")
		if h.proto == "ssh" {
			wrong, _ := newKey(h.t, h.dir, "wrong")
			h.mustFail(h.env(wrong, "x", "x"), h.dir, "Permission denied (publickey)", "ls-remote", h.url(repo))
			roFile, roPub := newKey(h.t, h.dir, "deploy-ro")
			if _, err := h.srv.AddDeployKey(repo, roPub, false); err != nil {
				h.t.Fatal(err)
			}
			ro := h.env(roFile, "x", "x")
			if out, err := h.gitIn(ro, h.dir, "ls-remote", h.url(repo)); err != nil {
				h.t.Errorf("read-only deploy key cannot read: %v\n%s", err, out)
			}
			h.mustFail(ro, dir, "read-only", "push", h.url(repo), "HEAD:main")
			h.mustFail(ro, dir, "has no access", "ls-remote", h.url("team/empty-ssh"))
			return
		}
		h.mustFail(h.env(h.srv.AdminKeyFile(), gitserver.AdminUser, "not-the-token"), h.dir, "Authentication failed", "ls-remote", h.url(repo))
		if err := h.srv.AddUser("reader", false); err != nil {
			h.t.Fatal(err)
		}
		if err := h.srv.Grant("reader", repo, true); err != nil {
			h.t.Fatal(err)
		}
		roTok, _ := h.srv.AddToken("reader", gitserver.TokenOptions{ReadOnly: true})
		ro := h.env(h.srv.AdminKeyFile(), "reader", roTok)
		if out, err := h.gitIn(ro, h.dir, "ls-remote", h.url(repo)); err != nil {
			h.t.Errorf("read-only token cannot read: %v\n%s", err, out)
		}
		h.mustFail(ro, dir, "read-only", "push", h.url(repo), "HEAD:main")
		tok, _ := h.srv.AddToken("reader", gitserver.TokenOptions{Expires: h.clk.Now().Add(time.Hour)})
		rw := h.env(h.srv.AdminKeyFile(), "reader", tok)
		if out, err := h.gitIn(rw, h.dir, "ls-remote", h.url(repo)); err != nil {
			h.t.Fatalf("fresh token: %v\n%s", err, out)
		}
		h.clk.Advance(time.Hour)
		h.mustFail(rw, h.dir, "Authentication failed", "ls-remote", h.url(repo))
	})
	step("racing pushes: one wins, the other is rejected", func(h *harness) {
		a, b := h.clone(repo), h.clone(repo)
		h.commitFile(a, "race-a-"+h.proto+".txt", "a\n")
		h.commitFile(b, "race-b-"+h.proto+".txt", "b\n")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		outs := make([]string, 2)
		for i, dir := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = h.gitIn(h.adminEnv(), dir, "push", "origin", "main")
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			h.t.Fatalf("want exactly one push to win:\nA %v %s\nB %v %s", errs[0], outs[0], errs[1], outs[1])
		}
		loser := outs[0]
		if errs[1] != nil {
			loser = outs[1]
		}
		if !strings.Contains(loser, "rejected") {
			h.t.Errorf("the losing push does not say it was rejected:\n%s", loser)
		}
	})
}

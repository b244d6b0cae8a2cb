package gitserver_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	gossh "golang.org/x/crypto/ssh"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

// The flows a Flux-like operator runs with the go-git client: a depth-1
// single-branch clone over SSH with a deploy key and over HTTPS with a
// token, fetching new commits, pushing a tag.
func TestGoGitClientFlows(t *testing.T) {
	srv, _ := newServer(t, gitserver.Native)
	seed(t, srv)
	caPEM, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	sshAuth := deployKeyAuth(t, srv, "team/app")
	if err := srv.AddUser("flux", false); err != nil {
		t.Fatal(err)
	}
	if err := srv.Grant("flux", "team/app", true); err != nil {
		t.Fatal(err)
	}
	tok, _ := srv.AddToken("flux", gitserver.TokenOptions{})
	httpAuth := &githttp.BasicAuth{Username: "flux", Password: tok}

	for _, tc := range []struct {
		name string
		url  string
		auth transport.AuthMethod
	}{
		{"ssh deploy key", srv.SSHURL() + "/team/app.git", sshAuth},
		{"https token", srv.HTTPSURL() + "/team/app.git", httpAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
				URL: tc.url, Auth: tc.auth, CABundle: caPEM, Depth: 1, SingleBranch: true,
				ReferenceName: plumbing.NewBranchReferenceName("main"), Tags: git.NoTags,
			})
			if err != nil {
				t.Fatalf("depth-1 clone: %v", err)
			}
			head, _ := repo.Head()
			want, _ := srv.Ref("team/app", "main")
			if head.Hash() != want {
				t.Fatalf("cloned %s, server has %s", head.Hash(), want)
			}
			next, err := srv.Commit("team/app", "main", "for "+tc.name, map[string]*string{"gogit-" + tc.name: ptr("x\n")})
			if err != nil {
				t.Fatal(err)
			}
			err = repo.FetchContext(ctx, &git.FetchOptions{Auth: tc.auth, CABundle: caPEM, Depth: 1, Tags: git.NoTags,
				RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"}})
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			ref, _ := repo.Reference(plumbing.NewRemoteReferenceName("origin", "main"), true)
			if ref.Hash() != next {
				t.Fatalf("fetched %s, want %s", ref.Hash(), next)
			}
			tag := plumbing.NewHashReference(plumbing.NewTagReferenceName("flux-sync-"+fmt.Sprint(len(tc.name))), next)
			if err := repo.Storer.SetReference(tag); err != nil {
				t.Fatal(err)
			}
			err = repo.PushContext(ctx, &git.PushOptions{Auth: tc.auth, CABundle: caPEM,
				RefSpecs: []config.RefSpec{config.RefSpec("+" + tag.Name() + ":" + tag.Name())}})
			if err != nil {
				t.Fatalf("push tag: %v", err)
			}
			if got, err := srv.Ref("team/app", tag.Name().String()); err != nil || got != next {
				t.Fatalf("tag on server: %v %v", got, err)
			}
		})
	}
}

// 50 clones at once while pushes land: no error, no corrupt repo.
func TestConcurrentClonesAndPushes(t *testing.T) {
	srv, _ := newServer(t, gitserver.Native)
	seed(t, srv)
	caPEM, _ := os.ReadFile(srv.CAFile())
	auth := &githttp.BasicAuth{Username: gitserver.AdminUser, Password: srv.AdminToken()}
	url := srv.HTTPSURL() + "/team/app.git"
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: url, Auth: auth, CABundle: caPEM, Depth: 1 + i%3})
			if err != nil {
				errs <- fmt.Errorf("clone %d: %w", i, err)
				return
			}
			head, err := repo.Head()
			if err != nil {
				errs <- err
				return
			}
			if _, err := repo.CommitObject(head.Hash()); err != nil {
				errs <- fmt.Errorf("clone %d: head commit unreadable: %w", i, err)
			}
		}()
	}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := srv.Commit("team/app", "main", fmt.Sprint("concurrent ", i), map[string]*string{fmt.Sprintf("c/%d", i): ptr("c\n")}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The repo is whole: a full clone checks out every object.
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: url, Auth: auth, CABundle: caPEM})
	if err != nil {
		t.Fatal(err)
	}
	iter, _ := repo.Log(&git.LogOptions{})
	n := 0
	if err := iter.ForEach(func(c *object.Commit) error { n++; _, err := c.Tree(); return err }); err != nil {
		t.Fatal(err)
	}
	if n != 40 {
		t.Errorf("main has %d commits, want the 30 seeded plus the 10 concurrent ones", n)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deployKeyAuth registers a new read-write deploy key on repo and returns
// go-git SSH auth with it, checking the host key against the server's
// own, as the operator does.
func deployKeyAuth(t *testing.T, srv *gitserver.Server, repo string) *gitssh.PublicKeys {
	t.Helper()
	keyFile, pub := newKey(t, t.TempDir(), "deploy")
	if _, err := srv.AddDeployKey(repo, pub, true); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := gitssh.NewPublicKeys("git", keyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	auth.HostKeyCallback = gossh.FixedHostKey(srv.HostKey())
	return auth
}

// adminSSHAuth is go-git SSH auth with the server's admin key.
func adminSSHAuth(t *testing.T, srv *gitserver.Server) *gitssh.PublicKeys {
	t.Helper()
	auth, err := gitssh.NewPublicKeys("git", readFile(t, srv.AdminKeyFile()), "")
	if err != nil {
		t.Fatal(err)
	}
	auth.HostKeyCallback = gossh.FixedHostKey(srv.HostKey())
	return auth
}

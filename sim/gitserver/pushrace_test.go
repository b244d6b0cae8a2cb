package gitserver_test

import (
	"context"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/gitopsim/gitopsim/sim/gitserver"
	"github.com/gitopsim/gitopsim/sim/netfault"
)

// fluxd's write check, many times over: go-git pushes a tag and deletes
// it over SSH through a netfault link, as the operator does. go-git
// closes its input only after writing the request; a server that closes
// the channel first made about 1 push in 400 fail with a bare EOF
// although it had landed.
func TestGoGitPushesNeverSeeEOF(t *testing.T) {
	srv, _ := newServer(t, gitserver.Native)
	seed(t, srv)
	auth := deployKeyAuth(t, srv, "team/app")
	link := netfault.New("git", netfault.Options{})
	if err := link.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = link.Stop(context.Background()) })
	proxy := transport.ProxyOptions{URL: link.ProxyURL()}
	ctx := t.Context()
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: srv.SSHURL() + "/team/app.git", Auth: auth, ProxyOptions: proxy})
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	tag := plumbing.NewHashReference(plumbing.NewTagReferenceName("flux-write-check"), head.Hash())
	push := func(spec string) error {
		return repo.PushContext(ctx, &git.PushOptions{Auth: auth, RefSpecs: []config.RefSpec{config.RefSpec(spec)}, Force: true, ProxyOptions: proxy})
	}
	failures := 0
	for i := range 400 {
		if err := repo.Storer.SetReference(tag); err != nil {
			t.Fatal(err)
		}
		if err := push(tag.Name().String() + ":" + tag.Name().String()); err != nil {
			t.Errorf("push %d (create the tag): %v", i, err)
			failures++
		}
		if err := repo.Storer.RemoveReference(tag.Name()); err != nil {
			t.Fatal(err)
		}
		if err := push(":" + tag.Name().String()); err != nil {
			t.Errorf("push %d (delete the tag): %v", i, err)
			failures++
		}
		if failures > 5 {
			t.FailNow()
		}
	}
	if _, err := srv.Ref("team/app", tag.Name().String()); err == nil {
		t.Error("the tag is still on the server after its delete")
	}
}

package gitserver_test

import (
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/storage/memory"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/gitserver"
)

func TestSeedFromFixtureAndEvents(t *testing.T) {
	srv, clk := newServer(t, gitserver.Native)
	events, cancel := srv.Subscribe()
	defer cancel()
	h, err := srv.CommitTxtar("fleet/config", "main", "../../fixtures/repos/cluster-config.txtar")
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events
	if ev.Repo != "fleet/config" || ev.Ref != "refs/heads/main" || ev.New != h.String() || ev.Time != clk.Now().UTC().Format("2006-01-02T15:04:05.999999999Z07:00") {
		t.Errorf("event = %+v", ev)
	}
	// Clone it anonymously once public, and check every manifest is a
	// Kubernetes object with a kind.
	if err := srv.SetPublic("fleet/config", true); err != nil {
		t.Fatal(err)
	}
	caPEM := readFile(t, srv.CAFile())
	repo, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.HTTPSURL() + "/fleet/config", CABundle: caPEM})
	if err != nil {
		t.Fatalf("anonymous clone of a public repo: %v", err)
	}
	head, _ := repo.Head()
	c, _ := repo.CommitObject(head.Hash())
	if !strings.Contains(c.Message, "two-tenant cluster") {
		t.Errorf("commit message %q is not the archive comment", c.Message)
	}
	tree, _ := c.Tree()
	kinds := map[string]bool{}
	for _, dir := range []string{"namespaces", "team-a", "team-b", "cluster"} {
		sub, err := tree.Tree(dir)
		if err != nil {
			t.Fatalf("%s missing: %v", dir, err)
		}
		for _, e := range sub.Entries {
			f, _ := sub.File(e.Name)
			body, _ := f.Contents()
			var obj struct{ Kind string }
			if err := yaml.Unmarshal([]byte(body), &obj); err != nil || obj.Kind == "" {
				t.Errorf("%s/%s is not a Kubernetes object: %v", dir, e.Name, err)
			}
			kinds[obj.Kind] = true
		}
	}
	for _, k := range []string{"Namespace", "ConfigMap", "Deployment", "ClusterRole"} {
		if !kinds[k] {
			t.Errorf("fixture has no %s", k)
		}
	}
	// Private again: anonymous reads are refused.
	if err := srv.SetPublic("fleet/config", false); err != nil {
		t.Fatal(err)
	}
	if _, err := git.CloneContext(t.Context(), memory.NewStorage(), nil, &git.CloneOptions{URL: srv.HTTPSURL() + "/fleet/config", CABundle: caPEM}); err == nil {
		t.Error("anonymous clone of a private repo succeeded")
	}
	// Deleting a file and moving a branch back are events too.
	if _, err := srv.Commit("fleet/config", "main", "drop team-b", map[string]*string{"team-b/deployment.yaml": nil}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetRef("fleet/config", "main", h); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Events()); n != 3 {
		t.Errorf("%d events, want 3", n)
	}
}

// Commit refuses what git itself refuses: bad branch names, .git in any
// directory and any case, and a path that is both a file and a
// directory; the branch stays where it was.
func TestCommitRefusesBadTrees(t *testing.T) {
	srv, _ := newServer(t, gitserver.Native)
	x := "x"
	before, err := srv.Commit("team/app", "main", "first", map[string]*string{"a": &x})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		branch string
		files  map[string]*string
		want   string
	}{
		{"no such/..branch", map[string]*string{"b": &x}, "not a valid branch name"},
		{"main", map[string]*string{"sub/.GIT/hooks/post-checkout": &x}, ".git is reserved"},
		{"main", map[string]*string{"a/b": &x}, "a is a file"},
		{"main", map[string]*string{"c": &x, "c/d": &x}, "c is a file"},
	} {
		if _, err := srv.Commit("team/app", c.branch, "bad", c.files); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Commit(%q, %v): %v, want %q", c.branch, c.files, err, c.want)
		}
	}
	if h, err := srv.Ref("team/app", "main"); err != nil || h != before {
		t.Errorf("main moved to %v (%v) after refused commits", h, err)
	}
}

package gitserver

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// An atomic push in which one update is stale changes nothing, and says
// why for each ref.
func TestAtomicPushAllOrNothing(t *testing.T) {
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	content := "x\n"
	one, err := srv.Commit("a/b", "main", "one", map[string]*string{"f": &content})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"other", "side"} {
		if err := srv.SetRef("a/b", b, one); err != nil {
			t.Fatal(err)
		}
	}
	repo, _ := srv.store.Get("a/b")
	zero := plumbing.ZeroHash.String()
	stale := strings.Repeat("1", 40)
	var in bytes.Buffer
	pw := pktWriter{&in}
	pw.linef("%s %s refs/heads/side\x00report-status atomic delete-refs\n", one, zero) // a valid delete
	pw.linef("%s %s refs/heads/other\n", stale, zero)                                  // stale old value
	pw.flush()
	var out bytes.Buffer
	if err := srv.receivePack(context.Background(), repo, &in, &out, "test"); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	for _, want := range []string{"unpack ok", "ng refs/heads/side atomic push failure", "ng refs/heads/other failed to update ref: it moved (expected 1111111, found " + one.String()[:7] + ")"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if got, err := srv.Ref("a/b", "side"); err != nil || got != one {
		t.Errorf("side changed by a failed atomic push: %v %v", got, err)
	}
	// Without atomic, the valid delete goes through.
	in.Reset()
	out.Reset()
	pw.linef("%s %s refs/heads/side\x00report-status delete-refs\n", one, zero)
	pw.linef("%s %s refs/heads/other\n", stale, zero)
	pw.flush()
	if err := srv.receivePack(context.Background(), repo, &in, &out, "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok refs/heads/side") {
		t.Errorf("non-atomic report:\n%s", out.String())
	}
	if _, err := srv.Ref("a/b", "side"); err == nil {
		t.Error("side not deleted")
	}
}

// push sends one receive-pack request (commands and a pack) and returns
// the status report.
func push(t *testing.T, srv *Server, repo *Repo, cmds []string, pack []byte) string {
	t.Helper()
	var in bytes.Buffer
	pw := pktWriter{&in}
	for i, c := range cmds {
		if i == 0 {
			c += "\x00report-status delete-refs"
		}
		pw.line(c + "\n")
	}
	pw.flush()
	in.Write(pack)
	var out bytes.Buffer
	_ = srv.receivePack(context.Background(), repo, &in, &out, "test")
	return out.String()
}

// git's own refusals: deleting the branch HEAD names, a ref that would be
// a directory of another, a tip the pack did not bring, and a pack whose
// commit lacks its tree.
func TestReceivePackRefusesAsGitDoes(t *testing.T) {
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	content := "x\n"
	one, err := srv.Commit("r/p", "main", "one", map[string]*string{"f": &content})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := srv.store.Get("r/p")
	zero := plumbing.ZeroHash.String()
	emptyPack := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00\x02\x9d\x08\x82\x3b\xd8\xa8\xea\xb5\x10\xad\x6a\xc7\x5c\x82\x3c\xfd\x3e\xd3\x1e")
	for _, tc := range []struct {
		name string
		cmds []string
		pack []byte
		want string
	}{
		{"the current branch", []string{one.String() + " " + zero + " refs/heads/main"}, nil, "ng refs/heads/main deletion of the current branch prohibited"},
		{"a file where a directory is", []string{zero + " " + one.String() + " refs/heads/main/sub"}, emptyPack, "ng refs/heads/main/sub failed to update ref: 'refs/heads/main' exists"},
		{"two refs of one push", []string{zero + " " + one.String() + " refs/heads/x", zero + " " + one.String() + " refs/heads/x/y"}, emptyPack, "ng refs/heads/x failed to update ref: 'refs/heads/x/y' is pushed too"},
		{"a tip the pack did not bring", []string{zero + " " + strings.Repeat("ab", 20) + " refs/heads/new"}, emptyPack, "ng refs/heads/new missing necessary objects"},
		{"funny refname", []string{zero + " " + one.String() + " refs/heads/a..b"}, emptyPack, "ng refs/heads/a..b funny refname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := push(t, srv, repo, tc.cmds, tc.pack); !strings.Contains(got, tc.want) {
				t.Errorf("report:\n%s\nwant %q", got, tc.want)
			}
		})
	}
	if got, _ := srv.Ref("r/p", "main"); got != one {
		t.Errorf("main moved: %s", got)
	}
}

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
	if err := srv.SetRef("a/b", "other", one); err != nil {
		t.Fatal(err)
	}
	repo, _ := srv.store.Get("a/b")
	zero := plumbing.ZeroHash.String()
	stale := strings.Repeat("1", 40)
	var in bytes.Buffer
	pw := pktWriter{&in}
	pw.linef("%s %s refs/heads/main\x00report-status atomic delete-refs\n", one, zero) // a valid delete
	pw.linef("%s %s refs/heads/other\n", stale, zero)                                  // stale old value
	pw.flush()
	var out bytes.Buffer
	if err := srv.receivePack(context.Background(), repo, &in, &out, "test"); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	for _, want := range []string{"unpack ok", "ng refs/heads/main atomic push failed", "ng refs/heads/other failed to update ref: it moved (expected 1111111, found " + one.String()[:7] + ")"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if got, err := srv.Ref("a/b", "main"); err != nil || got != one {
		t.Errorf("main changed by a failed atomic push: %v %v", got, err)
	}
	// Without atomic, the valid delete goes through.
	in.Reset()
	out.Reset()
	pw.linef("%s %s refs/heads/main\x00report-status delete-refs\n", one, zero)
	pw.linef("%s %s refs/heads/other\n", stale, zero)
	pw.flush()
	if err := srv.receivePack(context.Background(), repo, &in, &out, "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok refs/heads/main") {
		t.Errorf("non-atomic report:\n%s", out.String())
	}
	if _, err := srv.Ref("a/b", "main"); err == nil {
		t.Error("main not deleted")
	}
}

package gitserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// incompressible makes a repo of what broke the old server: a 100 KB
// binary file and 210 files of random base64 (about 150 KB), in one pack
// far over 64 KB that does not compress.
func incompressible(t *testing.T, srv *Server, name string) plumbing.Hash {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	files := map[string]*string{}
	bin := string(rnd(100 << 10))
	files["image.bin"] = &bin
	for i := range 210 {
		s := base64.StdEncoding.EncodeToString(rnd(540))
		files[fmt.Sprintf("secrets/sealed-%03d.yaml", i)] = &s
	}
	h, err := srv.Commit(name, "main", "incompressible", files)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// indexPack has the real git check a pack: git index-pack --strict
// verifies every object, its hash and its links.
func indexPack(t *testing.T, pack []byte) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	cmd := exec.Command("git", "index-pack", "--strict", "--stdin")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(pack)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git index-pack refused the pack (%d bytes): %v\n%s", len(pack), err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "objects/pack/*.idx")); len(m) != 1 {
		t.Fatal("no index written")
	}
}

// Every way of taking a pack (side-band-64k, side-band, none; with and
// without ofs-delta) gives git a valid pack of a repo far over 64 KB of
// incompressible data, in packets within each limit.
func TestUploadPackFramings(t *testing.T) {
	for _, disk := range []bool{false, true} {
		opts := Options{Workdir: t.TempDir()}
		if disk {
			opts.StateDir = t.TempDir()
		}
		srv, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		tip := incompressible(t, srv, "big/repo")
		repo, _ := srv.store.Get("big/repo")
		for _, caps := range []string{"side-band-64k ofs-delta", "side-band ofs-delta", "ofs-delta", "side-band-64k", ""} {
			t.Run(fmt.Sprintf("disk=%v/%q", disk, caps), func(t *testing.T) {
				var in bytes.Buffer
				pw := pktWriter{&in}
				pw.line(strings.TrimSpace(fmt.Sprintf("want %s %s", tip, caps)) + "\n")
				pw.flush()
				pw.line("done\n")
				var out bytes.Buffer
				if err := srv.uploadPack(context.Background(), repo, &in, &out, false, map[plumbing.Hash]bool{tip: true}); err != nil {
					t.Fatal(err)
				}
				nak := "0008NAK\n"
				if !strings.HasPrefix(out.String(), nak) {
					t.Fatalf("response starts %q", out.String()[:min(20, out.Len())])
				}
				rest := out.Bytes()[len(nak):]
				var pack []byte
				switch {
				case strings.Contains(caps, "side-band-64k"):
					pack = demux(t, rest, largePacketMax)[bandData]
				case strings.Contains(caps, "side-band"):
					pack = demux(t, rest, defaultPacketMax)[bandData]
				default:
					pack = rest
				}
				if len(pack) < 200<<10 {
					t.Fatalf("pack of %d bytes: the data did not all go", len(pack))
				}
				indexPack(t, pack)
			})
		}
	}
}

// Requests are counted, and a failed one is logged with the repo, the
// protocol, the client and the cause, as a WARN for the client's doing.
func TestFailuresAreCountedAndLogged(t *testing.T) {
	var log bytes.Buffer
	srv, err := New(Options{Workdir: t.TempDir(), Logger: newTextLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	incompressible(t, srv, "big/repo")
	repo, _ := srv.store.Get("big/repo")
	var in bytes.Buffer
	pktWriter{&in}.line("want " + strings.Repeat("0", 40) + " side-band-64k\n")
	pktWriter{&in}.flush()
	var out bytes.Buffer
	err = srv.uploadPack(context.Background(), repo, &in, &out, false, nil)
	srv.finish(request{proto: "ssh", service: UploadPack, repo: "big/repo", who: "user alice"}, err)
	if !strings.Contains(out.String(), "ERR upload-pack: not our ref") {
		t.Errorf("client got %q", out.String())
	}
	st := srv.Stats()
	if st.Requests["ssh git-upload-pack"] != 1 || st.Failures["ssh git-upload-pack protocol"] != 1 || len(st.Recent) != 1 {
		t.Errorf("stats %+v", st)
	}
	for _, want := range []string{"level=WARN", "git request failed", "protocol=ssh", "service=git-upload-pack", "repo=big/repo", `who="user alice"`, "kind=protocol", "not our ref"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func newTextLogger(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// v0Fetch sends one v0 upload-pack request (wants, then done) and returns
// the response.
func v0Fetch(t *testing.T, srv *Server, repo *Repo, stateless bool, advertised map[plumbing.Hash]bool, wants ...plumbing.Hash) string {
	t.Helper()
	var in bytes.Buffer
	pw := pktWriter{&in}
	for i, w := range wants {
		if i == 0 {
			pw.linef("want %s multi_ack_detailed side-band-64k ofs-delta\n", w)
		} else {
			pw.linef("want %s\n", w)
		}
	}
	pw.flush()
	pw.line("done\n")
	var out bytes.Buffer
	_ = srv.uploadPack(context.Background(), repo, &in, &out, stateless, advertised)
	return out.String()
}

// A want must be what git's v0 upload-pack would give: an advertised tip
// over SSH; over stateless HTTP also a commit reachable from a ref, but
// not one force-pushed away.
func TestWantsAreOurRefs(t *testing.T) {
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := "a\n", "b\n", "c\n"
	first, _ := srv.Commit("w/r", "main", "first", map[string]*string{"a": &a})
	second, _ := srv.Commit("w/r", "main", "second", map[string]*string{"b": &b})
	gone, _ := srv.Commit("w/r", "main", "gone", map[string]*string{"c": &c})
	if err := srv.SetRef("w/r", "main", second); err != nil { // force-push gone away
		t.Fatal(err)
	}
	repo, _ := srv.store.Get("w/r")
	tips := map[plumbing.Hash]bool{second: true}
	for _, tc := range []struct {
		name      string
		stateless bool
		want      plumbing.Hash
		ok        bool
	}{
		{"ssh: the tip", false, second, true},
		{"ssh: an ancestor", false, first, false},
		{"http: the tip", true, second, true},
		{"http: an ancestor (the ref moved since the advertisement)", true, first, true},
		{"http: a commit no ref reaches", true, gone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := v0Fetch(t, srv, repo, tc.stateless, tips, tc.want)
			refused := strings.Contains(out, "ERR upload-pack: not our ref "+tc.want.String())
			if refused == tc.ok {
				t.Errorf("refused=%v, want %v:\n%.200q", refused, !tc.ok, out)
			}
		})
	}
}

// include-tag brings an annotated tag whose object goes out, whatever its
// type (a tag of a tree here), and the tags it wraps; not one whose
// object stays behind.
func TestIncludeTagFollowsAnyObject(t *testing.T) {
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := "a\n"
	tip, _ := srv.Commit("t/r", "main", "one", map[string]*string{"dir/a": &a})
	repo, _ := srv.store.Get("t/r")
	w := &walker{st: repo.st}
	tree, _, _ := w.commit(tip)
	treeTag := tagObject(t, repo, "tree-tag", tree, plumbing.TreeObject)
	outer := tagObject(t, repo, "outer", treeTag, plumbing.TagObject)
	if err := srv.SetRef("t/r", "refs/tags/outer", outer); err != nil {
		t.Fatal(err)
	}
	plan, err := planPack(repo.st, &packRequest{wants: []plumbing.Hash{tip}, includeTag: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []plumbing.Hash{outer, treeTag} {
		if !slices.Contains(plan.objects, h) {
			t.Errorf("tag %s not included", h)
		}
	}
	// Without the commit, its tree stays home and so do the tags.
	blob := plumbing.ComputeHash(plumbing.BlobObject, []byte(a))
	plan, _ = planPack(repo.st, &packRequest{wants: []plumbing.Hash{blob}, includeTag: true})
	if slices.Contains(plan.objects, outer) {
		t.Error("a tag of a tree that is not sent was included")
	}
}

func tagObject(t *testing.T, repo *Repo, name string, target plumbing.Hash, typ plumbing.ObjectType) plumbing.Hash {
	t.Helper()
	tag := &object.Tag{Name: name, Target: target, TargetType: typ, Message: "m\n",
		Tagger: object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0).UTC()}}
	o := repo.st.NewEncodedObject()
	if err := tag.Encode(o); err != nil {
		t.Fatal(err)
	}
	h, err := repo.st.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A repo deleted and made again under its name does not get the old
// one's cached packs.
func TestPackCacheTellsRecreatedRepos(t *testing.T) {
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := "a\n"
	tip, _ := srv.Commit("c/r", "main", "one", map[string]*string{"a": &a})
	repo, _ := srv.store.Get("c/r")
	k1 := packKey(repo, 1, &packRequest{wants: []plumbing.Hash{tip}}, true, false)
	if err := srv.DeleteRepo("c/r"); err != nil {
		t.Fatal(err)
	}
	srv.Commit("c/r", "main", "one", map[string]*string{"a": &a})
	again, _ := srv.store.Get("c/r")
	if k2 := packKey(again, 1, &packRequest{wants: []plumbing.Hash{tip}}, true, false); k1 == k2 {
		t.Errorf("the same key for two repos: %q", k1)
	}
}

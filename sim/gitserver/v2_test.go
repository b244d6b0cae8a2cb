package gitserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// v2Session sends one v2 command and returns the response's packets as
// text, with "0000", "0001" for the special ones and "<pack>" for the
// packfile's band-1 data.
func v2Session(t *testing.T, srv *Server, repo *Repo, command string, args ...string) []string {
	t.Helper()
	var in bytes.Buffer
	pw := pktWriter{&in}
	pw.line("command=" + command + "\n")
	pw.line("agent=git/2.39.5\n")
	pw.delim()
	for _, a := range args {
		pw.line(a + "\n")
	}
	pw.flush()
	var out bytes.Buffer
	if err := srv.uploadPackV2(context.Background(), repo, &in, &out, true); err != nil && !strings.Contains(out.String(), "ERR") {
		t.Fatal(err)
	}
	var got []string
	pr := newPktReader(&out)
	inPack := false
	for {
		b, kind, err := pr.packet()
		if err != nil {
			break
		}
		switch {
		case kind == pktFlush:
			got = append(got, "0000")
		case kind == pktDelim:
			got = append(got, "0001")
		case inPack && b[0] == bandData:
			if got[len(got)-1] != "<pack>" {
				got = append(got, "<pack>")
			}
		case inPack && b[0] == bandProgress:
		default:
			got = append(got, trimLF(b))
			inPack = inPack || trimLF(b) == "packfile"
		}
	}
	return got
}

func v2Server(t *testing.T) (*Server, *Repo, plumbing.Hash, plumbing.Hash) {
	t.Helper()
	srv, err := New(Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, b := "a\n", "b\n"
	first, err := srv.Commit("v2/repo", "main", "first", map[string]*string{"a": &a})
	if err != nil {
		t.Fatal(err)
	}
	second, err := srv.Commit("v2/repo", "main", "second", map[string]*string{"b": &b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Tag("v2/repo", "v1", "main", "one"); err != nil {
		t.Fatal(err)
	}
	repo, _ := srv.store.Get("v2/repo")
	return srv, repo, first, second
}

func TestV2LsRefs(t *testing.T) {
	srv, repo, _, second := v2Server(t)
	tag, _ := srv.Ref("v2/repo", "refs/tags/v1")
	got := strings.Join(v2Session(t, srv, repo, "ls-refs", "peel", "symrefs", "unborn", "ref-prefix HEAD", "ref-prefix refs/tags/"), "\n")
	want := strings.Join([]string{
		second.String() + " HEAD symref-target:refs/heads/main",
		tag.String() + " refs/tags/v1 peeled:" + second.String(),
		"0000",
	}, "\n")
	if got != want {
		t.Errorf("ls-refs:\n%s\nwant:\n%s", got, want)
	}
	// An empty repo: HEAD is unborn, and said so only when asked.
	empty, _ := srv.CreateRepo("v2/empty", RepoOptions{DefaultBranch: "trunk"})
	if got := v2Session(t, srv, empty, "ls-refs", "symrefs", "unborn"); strings.Join(got, "|") != "unborn HEAD symref-target:refs/heads/trunk|0000" {
		t.Errorf("unborn: %q", got)
	}
	if got := v2Session(t, srv, empty, "ls-refs", "symrefs"); strings.Join(got, "|") != "0000" {
		t.Errorf("unborn without asking: %q", got)
	}
	if got := v2Session(t, srv, repo, "ls-refs", "bogus"); len(got) == 0 || !strings.HasPrefix(got[0], "ERR unexpected line: 'bogus'") {
		t.Errorf("bad argument: %q", got)
	}
}

func TestV2Fetch(t *testing.T) {
	srv, repo, first, second := v2Server(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"clone: no haves, the pack at once", []string{"want " + second.String(), "ofs-delta", "done"},
			"packfile|<pack>|0000"},
		{"a common have that covers the want: ready, then the pack", []string{"want " + second.String(), "have " + first.String()},
			"acknowledgments|ACK " + first.String() + "|ready|0001|packfile|<pack>|0000"},
		{"wait-for-done: acknowledgments only", []string{"want " + second.String(), "have " + first.String(), "wait-for-done"},
			"acknowledgments|ACK " + first.String() + "|0000"},
		{"unknown haves: NAK", []string{"want " + second.String(), "have " + strings.Repeat("1", 40)},
			"acknowledgments|NAK|0000"},
		{"done after negotiation: no acknowledgments", []string{"want " + second.String(), "have " + first.String(), "done"},
			"packfile|<pack>|0000"},
		{"deepen: shallow-info first", []string{"want " + second.String(), "deepen 1", "done"},
			"shallow-info|shallow " + second.String() + "|0001|packfile|<pack>|0000"},
		{"a shallow client without deepen: an empty shallow-info", []string{"want " + second.String(), "shallow " + first.String(), "done"},
			"shallow-info|0001|packfile|<pack>|0000"},
		{"nothing wanted: nothing said", []string{"have " + first.String()}, ""},
		{"deepen-since is refused by name", []string{"want " + second.String(), "deepen-since 1700000000", "done"},
			"ERR deepen-since and deepen-not (--shallow-since, --shallow-exclude) are not supported by gitopsim's git server; use --depth"},
		{"an unknown argument is refused", []string{"want " + second.String(), "sideband-all"}, "ERR unexpected line: 'sideband-all'"},
		{"an unknown want", []string{"want " + strings.Repeat("2", 40), "done"}, "ERR upload-pack: not our ref " + strings.Repeat("2", 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(v2Session(t, srv, repo, "fetch", tc.args...), "|"); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	if got := v2Session(t, srv, repo, "push"); len(got) == 0 || got[0] != "ERR invalid command 'push'" {
		t.Errorf("unknown command: %q", got)
	}
}

// FuzzUploadPackV2 feeds arbitrary v2 sessions to a repo: no panic, and
// every response is well-formed pkt-lines.
func FuzzUploadPackV2(f *testing.F) {
	srv, err := New(Options{Workdir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	a := "a\n"
	tip, err := srv.Commit("fuzz/v2", "main", "one", map[string]*string{"a": &a})
	if err != nil {
		f.Fatal(err)
	}
	repo, _ := srv.store.Get("fuzz/v2")
	for _, seed := range []string{
		"0014command=ls-refs\n00010009peel\n000csymrefs\n0000",
		"0012command=fetch\n00010032want " + tip.String() + "\n000ddeepen 1\n0009done\n0000",
		"0012command=fetch\n0001000ddeepen x\n0000", "0000", "0001", "0002", "0013command=bogus\n0000",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		_ = srv.uploadPackV2(context.Background(), repo, bytes.NewReader(data), &out, false)
		pr := newPktReader(&out)
		for {
			_, _, err := pr.packet()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("malformed response %q: %v", out.String(), err)
				}
				return
			}
		}
	})
}

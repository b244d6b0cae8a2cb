package odb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

	"github.com/gitopsim/gitopsim/sim/gitserver/gitgen"
)

func gitEnv() []string { return gitgen.Env() }

// gitObjects reads every object of a repository with git cat-file
// --batch: the oracle for what the DB must return.
func gitObjects(t *testing.T, dir string) map[plumbing.Hash]gitObject {
	t.Helper()
	cmd := exec.Command("git", "--git-dir", dir, "cat-file", "--batch-all-objects", "--batch", "--unordered")
	cmd.Env = gitEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	objs := map[plumbing.Hash]gitObject{}
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		size, _ := strconv.Atoi(f[2])
		data := make([]byte, size+1)
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatal(err)
		}
		typ, _ := plumbing.ParseObjectType(f[1])
		objs[plumbing.NewHash(f[0])] = gitObject{typ, data[:size]}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return objs
}

type gitObject struct {
	typ  plumbing.ObjectType
	data []byte
}

// repack has git write all objects into one pack with deltas (as a push
// or gc leaves a repo), keeping loose ones as they are when loose.
func repack(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir", dir, "repack", "-q"}, args...)...)
	cmd.Env = gitEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git repack: %v\n%s", err, out)
	}
}

func seedRepo(t *testing.T, seed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	o := gitgen.Random(seed)
	if _, err := gitgen.Generate(context.Background(), dir, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: %s", seed, o)
	return dir
}

// Every object of random repositories, packed by git with deep delta
// chains, loose, or both, reads back exactly as git cat-file gives it.
func TestReadsWhatGitWrote(t *testing.T) {
	for _, seed := range []uint64{1, 2, 5} {
		for _, layout := range []string{"fast-import", "repack -adf --depth=50 --window=50", "repack -d --depth=4095"} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, layout), func(t *testing.T) {
				dir := seedRepo(t, seed)
				if layout != "fast-import" {
					repack(t, dir, strings.Fields(layout)[1:]...)
				}
				want := gitObjects(t, dir)
				db, err := Open(osfs.New(dir), Options{Cache: NewCache(1 << 20)})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for id, w := range want {
					o, err := db.EncodedObject(plumbing.AnyObject, id)
					if err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					r, _ := o.Reader()
					got, _ := io.ReadAll(r)
					if o.Type() != w.typ || !bytes.Equal(got, w.data) {
						t.Fatalf("%s: got %s of %d bytes, git has %s of %d", id, o.Type(), len(got), w.typ, len(w.data))
					}
					if o.Hash() != id || plumbing.ComputeHash(o.Type(), got) != id {
						t.Fatalf("%s: content hashes to %s", id, plumbing.ComputeHash(o.Type(), got))
					}
					if err := db.HasEncodedObject(id); err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					if n, err := db.EncodedObjectSize(id); err != nil || n != int64(len(w.data)) {
						t.Fatalf("%s: size %d %v", id, n, err)
					}
				}
				if err := db.HasEncodedObject(plumbing.NewHash(strings.Repeat("ab", 20))); err != plumbing.ErrObjectNotFound {
					t.Fatalf("a missing object: %v", err)
				}
			})
		}
	}
}

// Packs written from random repositories, with every combination of
// options and a random subset of objects taken as held by the client,
// are accepted by git index-pack --strict (thin ones completed with
// --fix-thin against a repo holding those objects), and hold exactly the
// objects asked for, with the contents git has.
func TestWritePackGitAccepts(t *testing.T) {
	seed := rand.Uint64() >> 20
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	dir := seedRepo(t, 1+seed%50)
	repack(t, dir, "-adf", "--depth=20")
	want := gitObjects(t, dir)
	ids := make([]plumbing.Hash, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	db, err := Open(osfs.New(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name string
		opts PackOptions
		thin bool
	}{
		{"ofs-delta", PackOptions{OfsDelta: true}, false},
		{"ref-delta", PackOptions{}, false},
		{"thin ofs-delta", PackOptions{OfsDelta: true}, true},
		{"thin ref-delta", PackOptions{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send, held := ids, map[plumbing.Hash]bool{}
			if tc.thin {
				send = nil
				for _, id := range ids {
					if r.IntN(3) == 0 {
						held[id] = true
					} else {
						send = append(send, id)
					}
				}
				tc.opts.Has = func(h plumbing.Hash) bool { return held[h] }
			}
			var buf bytes.Buffer
			st, err := db.WritePack(context.Background(), &buf, send, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Objects != len(send) || int64(buf.Len()) != st.Bytes {
				t.Fatalf("stats %+v for %d objects, %d bytes", st, len(send), buf.Len())
			}
			if st.Copied+st.Deltas+st.ThinDeltas+st.Deflated != st.Objects {
				t.Fatalf("stats do not add up: %+v", st)
			}
			if st.Deltas == 0 {
				t.Errorf("no stored delta was reused: %+v", st)
			}
			if tc.thin && st.ThinDeltas == 0 {
				t.Errorf("a thin pack without a thin delta: %+v", st)
			}
			got := indexAndRead(t, buf.Bytes(), dir, tc.thin)
			for _, id := range send {
				w := want[id]
				g, ok := got[id]
				if !ok || g.typ != w.typ || !bytes.Equal(g.data, w.data) {
					t.Fatalf("%s differs after the round trip", id)
				}
			}
		})
	}
}

// indexAndRead feeds a pack to git index-pack in a fresh repository (with
// dir's objects as an alternate for a thin pack to complete against) and
// reads back every object.
func indexAndRead(t *testing.T, pack []byte, dir string, thin bool) map[plumbing.Hash]gitObject {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst.git")
	run := func(stdin io.Reader, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Env, cmd.Stdin = gitEnv(), stdin
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(nil, "init", "-q", "--bare", dst)
	args := []string{"--git-dir", dst, "index-pack", "--strict", "--stdin"}
	if thin {
		if err := os.WriteFile(filepath.Join(dst, "objects/info/alternates"), []byte(filepath.Join(dir, "objects")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--fix-thin")
	}
	run(bytes.NewReader(pack), args...)
	if thin {
		os.Remove(filepath.Join(dst, "objects/info/alternates"))
	}
	// What index-pack stored, and nothing from elsewhere.
	if packs, _ := filepath.Glob(filepath.Join(dst, "objects/pack/*.pack")); len(packs) != 1 {
		t.Fatalf("%d packs", len(packs))
	}
	return gitObjects(t, dst)
}

// The delta decoder agrees with go-git's on random deltas made by go-git's
// encoder from random edits, and refuses what is cut short.
func TestApplyDeltaAgreesWithGoGit(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 9))
	for range 300 {
		base := make([]byte, 1+r.IntN(200_000))
		for i := range base {
			base[i] = byte(r.IntN(4) + 'a')
		}
		target := append([]byte(nil), base...)
		for range r.IntN(20) {
			i := r.IntN(len(target))
			j := min(len(target), i+r.IntN(5000))
			ins := make([]byte, r.IntN(3000))
			for k := range ins {
				ins[k] = byte(r.Uint32())
			}
			target = append(append(append([]byte(nil), target[:i]...), ins...), target[j:]...)
		}
		delta := packfile.DiffDelta(base, target)
		got, err := applyDelta(base, delta)
		if err != nil || !bytes.Equal(got, target) {
			t.Fatalf("seed %d: applyDelta: %v", seed, err)
		}
		if _, err := applyDelta(base, delta[:len(delta)-1]); err == nil && len(delta) > 2 {
			t.Fatalf("seed %d: a truncated delta applied", seed)
		}
	}
}

// A pack git wrote, stored in an empty in-memory repository the way a
// push does, in reads of awkward sizes: every object comes back, and the
// ids reported are exactly the pack's.
func TestStorePack(t *testing.T) {
	dir := seedRepo(t, 7)
	repack(t, dir, "-adf")
	want := gitObjects(t, dir)
	packs, _ := filepath.Glob(filepath.Join(dir, "objects/pack/*.pack"))
	if len(packs) != 1 {
		t.Fatalf("%d packs", len(packs))
	}
	data, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	fs := NewMemoryFS()
	for _, d := range []string{"objects/pack", "refs/heads"} {
		fs.MkdirAll(d, 0o755)
	}
	db, err := Open(fs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := db.StorePack(&chunkyReader{data: data, r: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(want) {
		t.Fatalf("StorePack reported %d ids, the pack holds %d objects", len(ids), len(want))
	}
	for _, id := range ids {
		typ, got, err := db.Read(id)
		if err != nil || typ != want[id].typ || !bytes.Equal(got, want[id].data) {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if st := db.Stats(); st.Packs != 1 || st.PackedObjects != len(want) {
		t.Errorf("stats %+v", st)
	}
}

// chunkyReader returns data in reads of random sizes, 1 byte to 64 KB.
type chunkyReader struct {
	data []byte
	r    *rand.Rand
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.r.IntN(64<<10))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

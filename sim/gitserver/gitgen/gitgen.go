// Package gitgen generates random git repositories, reproducibly from a
// seed, with the real git CLI (git fast-import). Differential tests of the
// git server push them to the native and the reference backends and
// compare what comes back; benchmarks use them as big repos.
//
// A generated repo is shaped like what users keep in GitOps repos and
// what git allows but our fixtures never had: blobs from empty to several
// MB (compressible text, Kubernetes manifests, random binary, base64 of
// random data as sealed secrets are, single very long lines), hundreds of
// files, deep trees, unicode and space-containing paths, executable bits,
// symlinks, a submodule entry, renames, deletions, long histories, side
// branches and merges, annotated and lightweight tags, and a tag of a tag
// and of a blob.
//
// It is not a fuzzer of git itself: everything it makes passes
// git fsck --strict.
package gitgen

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
)

// Options shapes a generated repository. Zero fields take the defaults of
// Random(seed), so Options{Seed: s} alone is a complete random profile.
type Options struct {
	// Seed makes the repository: the same seed and options give the same
	// objects, byte for byte.
	Seed uint64
	// Files in the first commit.
	Files int
	// Commits on main after the first one (side branches add more).
	Commits int
	// Branches besides main; some are merged back into main.
	Branches int
	// Tags, annotated and lightweight, on commits of main and branches.
	Tags int
	// MaxBlob is the size of the largest blobs, in bytes.
	MaxBlob int
	// BigBlobs is how many blobs are drawn near MaxBlob.
	BigBlobs int
	// MaxDepth of directories.
	MaxDepth int
	// Exotic turns on the rare shapes: a submodule entry, a tag of a blob,
	// a tag of a tag, an empty commit.
	Exotic bool
}

// Random is a random profile for seed: small to medium repos, with the
// rare shapes on, for differential tests.
func Random(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x67697467656e))
	return Options{
		Seed:     seed,
		Files:    1 + r.IntN(300),
		Commits:  r.IntN(60),
		Branches: r.IntN(4),
		Tags:     r.IntN(6),
		MaxBlob:  []int{1 << 10, 64 << 10, 300 << 10, 3 << 20}[r.IntN(4)],
		BigBlobs: r.IntN(4),
		MaxDepth: 1 + r.IntN(12),
		Exotic:   r.IntN(2) == 0,
	}
}

func (o Options) withDefaults() Options {
	d := Random(o.Seed)
	if o.Files == 0 {
		o.Files = d.Files
	}
	if o.MaxBlob == 0 {
		o.MaxBlob = d.MaxBlob
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = d.MaxDepth
	}
	return o
}

// String is the profile in one line, for test logs.
func (o Options) String() string {
	return fmt.Sprintf("seed=%d files=%d commits=%d branches=%d tags=%d maxBlob=%d bigBlobs=%d depth=%d exotic=%v",
		o.Seed, o.Files, o.Commits, o.Branches, o.Tags, o.MaxBlob, o.BigBlobs, o.MaxDepth, o.Exotic)
}

// Repo is a generated bare repository that can grow.
type Repo struct {
	// Dir is the bare repository.
	Dir  string
	opts Options
	env  []string
	rnd  *rand.Rand
	// files is main's tree as the generator knows it; branches keep their
	// own copies while they are built.
	files map[string]file
	paths []string // sorted keys of files
	dirs  []string // directories seen, for new files to join
	clock int64    // commit timestamps, seconds
	mark  int
	tip   int // mark of main's tip
	nTags int
	// pending are the new paths of the commit being made.
	pending []string
	w       *bufio.Writer
}

type file struct {
	mode string // 100644, 100755, 120000, 160000
	data []byte // content; for 160000 the commit id
}

// Env is the environment git runs with: no user or system configuration.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent",
		"GIT_AUTHOR_NAME=gitgen", "GIT_AUTHOR_EMAIL=gitgen@example.com",
		"GIT_COMMITTER_NAME=gitgen", "GIT_COMMITTER_EMAIL=gitgen@example.com")
}

// Generate makes a bare repository in dir (created; it must not exist or
// be empty) with main as HEAD.
func Generate(ctx context.Context, dir string, o Options) (*Repo, error) {
	o = o.withDefaults()
	r := &Repo{
		Dir: dir, opts: o, env: Env(),
		rnd:   rand.New(rand.NewPCG(o.Seed, 0x7265706f)),
		files: map[string]file{}, clock: 1700000000,
	}
	if out, err := r.git(ctx, nil, "init", "-q", "--bare", "--initial-branch=main", dir); err != nil {
		return nil, fmt.Errorf("gitgen: git init: %v: %s", err, out)
	}
	err := r.fastImport(ctx, func() error { return r.history() })
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Options is the profile the repo was made with, defaults filled in.
func (r *Repo) Options() Options { return r.opts }

// Grow adds commits on top of main: each changes a few files, and one
// of them adds bigBytes of new random data (0 for none). It returns main's
// new tip.
func (r *Repo) Grow(ctx context.Context, commits, bigBytes int) (string, error) {
	err := r.fastImport(ctx, func() error {
		for i := range commits {
			big := 0
			if i == commits-1 {
				big = bigBytes
			}
			if err := r.commit("refs/heads/main", r.tip, 0, r.mainChanges(big)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	out, err := r.git(ctx, nil, "--git-dir", r.Dir, "rev-parse", "refs/heads/main")
	if err != nil {
		return "", fmt.Errorf("gitgen: %v: %s", err, out)
	}
	return strings.TrimSpace(out), nil
}

// Refs lists every ref with what it points at, as git for-each-ref shows
// them.
func (r *Repo) Refs(ctx context.Context) (map[string]string, error) {
	out, err := r.git(ctx, nil, "--git-dir", r.Dir, "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return nil, fmt.Errorf("gitgen: for-each-ref: %v: %s", err, out)
	}
	refs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if h, name, ok := strings.Cut(l, " "); ok {
			refs[name] = h
		}
	}
	return refs, nil
}

func (r *Repo) git(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env, cmd.Stdin = r.env, stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fastImport runs body with r.w connected to git fast-import on the repo.
// Marks persist across runs in a marks file, so Grow continues from the
// objects Generate made.
func (r *Repo) fastImport(ctx context.Context, body func() error) error {
	marks := path.Join(r.Dir, "gitgen.marks")
	args := []string{"--git-dir", r.Dir, "fast-import", "--quiet", "--done", "--export-marks=" + marks}
	if _, err := os.Stat(marks); err == nil {
		args = append(args, "--import-marks="+marks)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = r.env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("gitgen: fast-import: %w", err)
	}
	r.w = bufio.NewWriterSize(stdin, 1<<20)
	berr := body()
	if berr == nil {
		_, berr = r.w.WriteString("done\n")
	}
	if berr == nil {
		berr = r.w.Flush()
	}
	stdin.Close()
	werr := cmd.Wait()
	r.w = nil
	if berr != nil || werr != nil {
		return fmt.Errorf("gitgen: fast-import (seed %d): %v %v: %s", r.opts.Seed, berr, werr, stderr.String())
	}
	return nil
}

// history writes the whole initial history.
func (r *Repo) history() error {
	o := r.opts
	first := map[string]*file{}
	for range o.Files {
		p := r.newPath()
		f := r.newFile(p)
		first[p] = &f
	}
	if o.Exotic {
		first[".gitmodules"] = &file{mode: "100644", data: []byte("[submodule \"vendor/lib\"]\n\tpath = vendor/lib\n\turl = https://example.com/lib.git\n")}
		first["vendor/lib"] = &file{mode: "160000", data: []byte(r.hexID())}
	}
	if err := r.commit("refs/heads/main", 0, 0, first); err != nil {
		return err
	}
	// Big blobs arrive spread over the history.
	bigAt := map[int]bool{}
	for range o.BigBlobs {
		bigAt[r.rnd.IntN(o.Commits+1)] = true
	}
	type branch struct {
		name  string
		from  int // mark
		files map[string]file
	}
	branchAt := map[int]int{}
	for b := range o.Branches {
		branchAt[r.rnd.IntN(o.Commits+1)] = b
	}
	var tagTargets []int
	tagTargets = append(tagTargets, r.tip)
	for i := range o.Commits {
		big := 0
		if bigAt[i] {
			big = o.MaxBlob/2 + r.rnd.IntN(o.MaxBlob/2+1)
		}
		if b, ok := branchAt[i]; ok {
			if err := r.sideBranch(b); err != nil {
				return err
			}
		}
		if o.Exotic && i == o.Commits/2 {
			// An empty commit: the same tree as its parent.
			if err := r.commit("refs/heads/main", r.tip, 0, nil); err != nil {
				return err
			}
		}
		if err := r.commit("refs/heads/main", r.tip, 0, r.mainChanges(big)); err != nil {
			return err
		}
		tagTargets = append(tagTargets, r.tip)
	}
	for t := range o.Tags {
		target := tagTargets[r.rnd.IntN(len(tagTargets))]
		if err := r.tag(fmt.Sprintf("v0.%d.%d", t, r.rnd.IntN(10)), target, t%2 == 0); err != nil {
			return err
		}
	}
	if o.Exotic {
		// A tag of a tag, and a tag of a blob (git tags the blob of a
		// public key this way).
		r.mark++
		blob := r.mark
		r.blob(blob, []byte("-----BEGIN PUBLIC KEY-----\n"+base64.StdEncoding.EncodeToString(r.bytes(48))+"\n-----END PUBLIC KEY-----\n"))
		if err := r.tag("key-blob", blob, true); err != nil {
			return err
		}
		if err := r.tag("release-candidate", r.tip, true); err != nil {
			return err
		}
		if err := r.tag("release", r.mark, true); err != nil { // the tag just made
			return err
		}
	}
	return nil
}

// sideBranch forks a branch from main's tip, commits on it, and merges it
// back into main for even b; the branch ref stays in both cases.
func (r *Repo) sideBranch(b int) error {
	name := []string{"feature/one", "release-1.x", "fix_ünïcode", "team/a/b"}[b%4]
	if b >= 4 {
		name = fmt.Sprintf("%s-%d", name, b)
	}
	ref := "refs/heads/" + name
	saved, savedPaths, base := r.snapshot(), slices.Clone(r.paths), r.tip
	for i := range 1 + r.rnd.IntN(5) {
		from := 0
		if i == 0 {
			from = base
		}
		if err := r.commit(ref, from, 0, r.mainChanges(0)); err != nil {
			return err
		}
	}
	branchTip, branchFiles := r.mark, r.snapshot()
	// Back to main's tree.
	r.files, r.paths = saved, savedPaths
	r.tip = base
	if b%2 == 1 {
		return nil
	}
	// The merge takes the branch's files over main's.
	changes := map[string]*file{}
	for p, f := range branchFiles {
		if cur, ok := r.files[p]; !ok || cur.mode != f.mode || string(cur.data) != string(f.data) {
			changes[p] = &f
		}
	}
	for p := range r.files {
		if _, ok := branchFiles[p]; !ok {
			changes[p] = nil
		}
	}
	return r.commit("refs/heads/main", base, branchTip, changes)
}

func (r *Repo) snapshot() map[string]file {
	m := make(map[string]file, len(r.files))
	for k, v := range r.files {
		m[k] = v
	}
	return m
}

// mainChanges picks the changes of one commit: edits of text files,
// replacements, new files, deletions, renames, mode flips; plus one new
// file of big random bytes when big > 0. A nil value deletes the path.
func (r *Repo) mainChanges(big int) map[string]*file {
	ch := map[string]*file{}
	n := 1 + r.rnd.IntN(6)
	for range n {
		if len(r.paths) == 0 {
			p := r.newPath()
			f := r.newFile(p)
			ch[p] = &f
			continue
		}
		p := r.paths[r.rnd.IntN(len(r.paths))]
		cur := r.files[p]
		if cur.mode == "160000" || p == ".gitmodules" {
			continue
		}
		switch k := r.rnd.IntN(20); {
		case k < 10 && cur.mode != "120000":
			f := cur
			f.data = r.edit(cur.data)
			ch[p] = &f
		case k < 12:
			f := r.newFile(p)
			ch[p] = &f
		case k < 15:
			np := r.newPath()
			f := r.newFile(np)
			ch[np] = &f
		case k < 17:
			ch[p] = nil
		case k < 19:
			// A rename: same content, new place (git sees it by content).
			np := r.newPath()
			f := cur
			ch[np] = &f
			ch[p] = nil
		case cur.mode == "100644":
			f := cur
			f.mode = "100755"
			ch[p] = &f
		case cur.mode == "100755":
			f := cur
			f.mode = "100644"
			ch[p] = &f
		}
	}
	if big > 0 {
		p := r.newPath()
		ch[p] = &file{mode: "100644", data: r.bytes(big)}
	}
	return ch
}

// commit writes a commit on ref with the changes applied to r.files.
// from (a mark) starts the ref anew; merge adds a second parent.
func (r *Repo) commit(ref string, from, merge int, changes map[string]*file) error {
	keys := make([]string, 0, len(changes))
	for p := range changes {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	type put struct {
		path string
		f    file
		mark int
	}
	var puts []put
	for _, p := range keys {
		f := changes[p]
		if f == nil || f.mode == "160000" {
			continue
		}
		r.mark++
		r.blob(r.mark, f.data)
		puts = append(puts, put{p, *f, r.mark})
	}
	r.mark++
	r.clock += int64(1 + r.rnd.IntN(7200))
	msg := r.message()
	fmt.Fprintf(r.w, "commit %s\nmark :%d\n", ref, r.mark)
	fmt.Fprintf(r.w, "author %s %d +0000\n", r.person(), r.clock)
	fmt.Fprintf(r.w, "committer %s %d +0100\n", r.person(), r.clock)
	fmt.Fprintf(r.w, "data %d\n%s\n", len(msg), msg)
	if from != 0 {
		fmt.Fprintf(r.w, "from :%d\n", from)
	}
	if merge != 0 {
		fmt.Fprintf(r.w, "merge :%d\n", merge)
	}
	// Deletions first: a path may turn from file into directory.
	for _, p := range keys {
		if changes[p] == nil {
			if _, ok := r.files[p]; ok {
				fmt.Fprintf(r.w, "D %s\n", quote(p))
				delete(r.files, p)
			}
		}
	}
	for _, p := range keys {
		if f := changes[p]; f != nil && f.mode == "160000" {
			fmt.Fprintf(r.w, "M 160000 %s %s\n", f.data, quote(p))
			r.files[p] = *f
		}
	}
	for _, pu := range puts {
		fmt.Fprintf(r.w, "M %s :%d %s\n", pu.f.mode, pu.mark, quote(pu.path))
		r.files[pu.path] = pu.f
	}
	r.w.WriteString("\n")
	r.pending = r.pending[:0]
	r.paths = r.paths[:0]
	for p := range r.files {
		r.paths = append(r.paths, p)
	}
	slices.Sort(r.paths)
	if ref == "refs/heads/main" {
		r.tip = r.mark
	}
	return nil
}

func (r *Repo) blob(mark int, data []byte) {
	fmt.Fprintf(r.w, "blob\nmark :%d\ndata %d\n", mark, len(data))
	r.w.Write(data)
	r.w.WriteString("\n")
}

// tag writes an annotated tag (with a mark, so it can be tagged in turn)
// or a lightweight one.
func (r *Repo) tag(name string, target int, annotated bool) error {
	r.nTags++
	if !annotated {
		fmt.Fprintf(r.w, "reset refs/tags/%s\nfrom :%d\n\n", name, target)
		return nil
	}
	r.mark++
	r.clock += 60
	msg := "Release " + name + "\n\n" + r.message()
	fmt.Fprintf(r.w, "tag %s\nmark :%d\nfrom :%d\ntagger %s %d +0000\ndata %d\n%s\n", name, r.mark, target, r.person(), r.clock, len(msg), msg)
	return nil
}

// newPath makes a path that is not taken and does not clash with a file
// as a directory or a directory as a file, in the tree or among the
// changes of the commit being made.
func (r *Repo) newPath() string {
	for {
		var dir string
		if len(r.dirs) > 0 && r.rnd.IntN(3) > 0 {
			dir = r.dirs[r.rnd.IntN(len(r.dirs))]
		} else {
			var parts []string
			for range r.rnd.IntN(r.opts.MaxDepth + 1) {
				parts = append(parts, r.name())
			}
			dir = strings.Join(parts, "/")
		}
		p := r.name() + r.ext()
		if dir != "" {
			p = dir + "/" + p
		}
		if r.clashes(p) {
			continue
		}
		r.pending = append(r.pending, p)
		if dir != "" && !slices.Contains(r.dirs, dir) {
			r.dirs = append(r.dirs, dir)
		}
		return p
	}
}

// clashes: p is taken, or a prefix of p is a file, or p is a directory,
// in the tree or among the paths drawn for the commit being made.
func (r *Repo) clashes(p string) bool {
	if _, ok := r.files[p]; ok {
		return true
	}
	for i := range len(p) {
		if p[i] == '/' {
			if _, ok := r.files[p[:i]]; ok {
				return true
			}
		}
	}
	i, _ := slices.BinarySearch(r.paths, p+"/")
	if i < len(r.paths) && strings.HasPrefix(r.paths[i], p+"/") {
		return true
	}
	for _, q := range r.pending {
		if q == p || strings.HasPrefix(q, p+"/") || strings.HasPrefix(p, q+"/") {
			return true
		}
	}
	return false
}

var (
	words = []string{"apps", "base", "overlays", "clusters", "infra", "charts", "releases", "team-a", "team b", "nginx", "podinfo",
		"redis", "config", "secrets", "crds", "monitoring", "ingress", "cert manager", "kustomize", "flux-system", "namespaces",
		"rbac", "policies", "prod", "staging", "dev", "eu-west", "überall", "日本語", "данные", "café", "a", "x_y", "v1.2.3",
		"-dash", "UPPER", "Mixed.Case", "with space", "emoji-🚀", "tab\there", "quote\"d", "back\\slash", "semi;colon", "#hash"}
	exts = []string{".yaml", ".yml", ".json", ".md", ".txt", ".sh", ".tgz", ".pem", ".bin", "", ".enc.yaml", ".tar.gz"}
)

func (r *Repo) name() string {
	w := words[r.rnd.IntN(len(words))]
	if r.rnd.IntN(8) == 0 {
		w = strings.Repeat(w, 1+r.rnd.IntN(5)) // long names
	}
	if r.rnd.IntN(3) == 0 {
		w += fmt.Sprint(r.rnd.IntN(100))
	}
	return w
}

func (r *Repo) ext() string { return exts[r.rnd.IntN(len(exts))] }

// newFile makes content for a new file at p.
func (r *Repo) newFile(p string) file {
	mode := "100644"
	switch k := r.rnd.IntN(40); {
	case k == 0 && len(r.paths) > 0:
		// A symlink to another file, relative, as users make them.
		return file{mode: "120000", data: []byte(relLink(p, r.paths[r.rnd.IntN(len(r.paths))]))}
	case k == 1:
		return file{mode: "120000", data: []byte("../outside/" + r.name())}
	case k < 5 || strings.HasSuffix(p, ".sh"):
		mode = "100755"
	}
	return file{mode: mode, data: r.content()}
}

func relLink(from, to string) string {
	up := strings.Count(from, "/")
	return strings.Repeat("../", up) + to
}

// content draws a blob: sizes spread from empty to MaxBlob.
func (r *Repo) content() []byte {
	max := r.opts.MaxBlob
	size := 0
	switch k := r.rnd.IntN(20); {
	case k == 0:
		return nil
	case k < 12:
		size = r.rnd.IntN(min(max, 2048) + 1)
	case k < 18:
		size = r.rnd.IntN(min(max, 64<<10) + 1)
	default:
		size = r.rnd.IntN(max + 1)
	}
	switch k := r.rnd.IntN(10); {
	case k < 4:
		return r.text(size)
	case k < 6:
		return r.manifest(size)
	case k < 8:
		return r.base64(size, r.rnd.IntN(4) != 0)
	default:
		return r.bytes(size)
	}
}

func (r *Repo) text(size int) []byte {
	var b strings.Builder
	for b.Len() < size {
		n := 1 + r.rnd.IntN(12)
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.rnd.IntN(len(words))])
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func (r *Repo) manifest(size int) []byte {
	var b strings.Builder
	for b.Len() < size || b.Len() == 0 {
		n := r.rnd.IntN(1000)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\n  namespace: team-%d\n  labels:\n    app: app-%d\ndata:\n  key: \"value %d\"\n  other: |\n    line one\n    line two %d\n",
			n, n%7, n%13, n, r.rnd.IntN(1<<20))
	}
	return []byte(b.String())
}

// base64 is random data in base64, wrapped at 76 columns or as one very
// long line (as sealed secrets and certificates come).
func (r *Repo) base64(size int, wrap bool) []byte {
	s := base64.StdEncoding.EncodeToString(r.bytes(size * 3 / 4))
	if !wrap {
		return []byte(s)
	}
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s + "\n")
	return []byte(b.String())
}

func (r *Repo) bytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.rnd.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// edit changes a few lines of data, or appends, or truncates: what makes
// deltas in packs.
func (r *Repo) edit(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	switch k := r.rnd.IntN(10); {
	case k == 0:
		return nil
	case k < 3 || len(lines) < 2:
		return append(slices.Clone(data), r.text(1+r.rnd.IntN(200))...)
	default:
		for range 1 + r.rnd.IntN(3) {
			i := r.rnd.IntN(len(lines))
			lines[i] = string(r.text(1 + r.rnd.IntN(80)))
		}
		return []byte(strings.Join(lines, ""))
	}
}

func (r *Repo) message() string {
	m := fmt.Sprintf("%s: %s", words[r.rnd.IntN(len(words))], string(r.text(1+r.rnd.IntN(60))))
	if r.rnd.IntN(4) == 0 {
		m += "\n" + string(r.text(r.rnd.IntN(400)))
	}
	return strings.TrimRight(strings.ReplaceAll(m, "\t", " "), "\n")
}

func (r *Repo) person() string {
	return []string{"Ada Lovelace <ada@example.com>", "José Müller <jose@example.org>", "山田太郎 <taro@example.jp>", "ops-bot <ops+bot@example.com>"}[r.rnd.IntN(4)]
}

func (r *Repo) hexID() string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 40)
	for i := range b {
		b[i] = hexd[r.rnd.IntN(16)]
	}
	return string(b)
}

// quote spells a path as fast-import reads it: C-style quoted.
func quote(p string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

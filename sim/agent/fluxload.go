package agent

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"gopkg.in/yaml.v2"

	"github.com/gitopsim/gitopsim/sim/agent/internal/resource"
)

// fluxd syncs from a checkout of the revision (pkg/git, Export) and loads
// it from the filesystem (resource/load.go, Load). The simulated fluxd
// reads the same tree from git, through a checkout of its own that
// answers as the filesystem would: symlinks resolve, a walk does not
// follow them into directories, file names are case-sensitive.

// checkoutDir stands for the directory fluxd exports a revision into
// (ioutil.TempDir(os.TempDir(), "flux-working")); it appears in the
// errors fluxd reports about paths.
const checkoutDir = "/tmp/flux-working000000000"

// checkout is a revision's tree as files, by path below checkoutDir.
type checkout struct {
	files map[string]*object.File // regular files and symlinks
	dirs  map[string]bool
	kids  map[string][]string // directory → entries, sorted
}

func newCheckout(st storer.EncodedObjectStorer, tree *object.Tree) (*checkout, error) {
	c := &checkout{files: map[string]*object.File{}, dirs: map[string]bool{checkoutDir: true}, kids: map[string][]string{}}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			for _, k := range c.kids {
				slices.Sort(k)
			}
			return c, nil
		}
		if err != nil {
			return nil, err
		}
		p := checkoutDir + "/" + name
		c.kids[path.Dir(p)] = append(c.kids[path.Dir(p)], p)
		switch e.Mode {
		case filemode.Dir:
			c.dirs[p] = true
		case filemode.Submodule:
			c.dirs[p] = true // an empty directory in a checkout
		default:
			blob, err := object.GetBlob(st, e.Hash)
			if err != nil {
				return nil, err
			}
			c.files[p] = object.NewFile(name, e.Mode, blob)
		}
	}
}

// fsError is an *os.PathError's text: "<op> <path>: <why>".
type fsError struct{ op, path, why string }

func (e *fsError) Error() string { return e.op + " " + e.path + ": " + e.why }

const (
	errNoEnt = "no such file or directory"
	errIsDir = "is a directory"
	errLoop  = "too many levels of symbolic links"
)

// resolve follows symlinks in p (every component), as the kernel does,
// and returns the final path. A link that leaves the checkout leads
// nowhere here: outside it, fluxd's container has nothing a repo means.
func (c *checkout) resolve(p string, op string) (string, error) {
	// Errors name the path asked for, as an *os.PathError does.
	asked := p
	hops := 0
	for {
		moved := false
		parts := strings.Split(strings.TrimPrefix(p, checkoutDir+"/"), "/")
		if p == checkoutDir {
			return p, nil
		}
		cur := checkoutDir
		for i, part := range parts {
			next := cur + "/" + part
			f, isFile := c.files[next]
			switch {
			case isFile && f.Mode == filemode.Symlink:
				hops++
				if hops > 40 {
					return "", &fsError{op, asked, errLoop}
				}
				target, err := f.Contents()
				if err != nil {
					return "", err
				}
				base := cur
				if strings.HasPrefix(target, "/") {
					base = "/"
				}
				rest := append([]string{target}, parts[i+1:]...)
				p = path.Clean(path.Join(append([]string{base}, rest...)...))
				if p != checkoutDir && !strings.HasPrefix(p, checkoutDir+"/") {
					return "", &fsError{op, asked, errNoEnt}
				}
				moved = true
			case isFile:
				if i < len(parts)-1 {
					return "", &fsError{op, asked, "not a directory"}
				}
			case c.dirs[next]:
			default:
				return "", &fsError{op, asked, errNoEnt}
			}
			if moved {
				break
			}
			cur = next
		}
		if !moved {
			return p, nil
		}
	}
}

// stat is os.Stat: true for a directory, after symlinks.
func (c *checkout) stat(p string) (bool, error) {
	r, err := c.resolve(p, "stat")
	if err != nil {
		return false, err
	}
	return c.dirs[r], nil
}

// readFile is os.ReadFile, through symlinks.
func (c *checkout) readFile(p string) ([]byte, error) {
	r, err := c.resolve(p, "open")
	if err != nil {
		return nil, err
	}
	if c.dirs[r] {
		return nil, &fsError{"read", p, errIsDir}
	}
	s, err := c.files[r].Contents()
	return []byte(s), err
}

// walk is filepath.Walk from root: lexical order, symlinks reported as
// files and never followed, fn's SkipDir honoured for directories.
func (c *checkout) walk(root string, fn func(p string, dir bool) error) error {
	var visit func(p string, dir bool) error
	visit = func(p string, dir bool) error {
		err := fn(p, dir)
		if !dir || err != nil {
			if errors.Is(err, errSkipDir) {
				return nil
			}
			return err
		}
		for _, child := range c.children(p) {
			if err := visit(child, c.dirs[child]); err != nil {
				return err
			}
		}
		return nil
	}
	if _, isFile := c.files[root]; isFile {
		return visit(root, false)
	}
	if !c.dirs[root] {
		return fn(root, false)
	}
	return visit(root, true)
}

var errSkipDir = errors.New("skip this directory")

func (c *checkout) children(dir string) []string { return c.kids[dir] }

// chartDirs finds the directories that look like Helm charts, a
// Chart.yaml and a values.yaml in them (load.go, newChartTracker and
// looksLikeChart): fluxd loads nothing from them.
func (c *checkout) chartDirs() map[string]bool {
	charts := map[string]bool{}
	_ = c.walk(checkoutDir, func(p string, dir bool) error {
		if !dir {
			return nil
		}
		_, e1 := c.stat(p + "/Chart.yaml")
		_, e2 := c.stat(p + "/values.yaml")
		if e1 == nil && e2 == nil {
			charts[p] = true
			return errSkipDir
		}
		return nil
	})
	return charts
}

func inChart(charts map[string]bool, p string) bool {
	for ; p != "/" && p != "."; p = path.Dir(p) {
		if charts[p] {
			return true
		}
	}
	return false
}

// gitPathRoots are the roots fluxd loads from for --git-path values
// (pkg/git/working.go, MakeAbsolutePaths: filepath.Join cleans ".",
// "./x" and "a/../b"; no path means the whole repo).
func gitPathRoots(paths []string) []string {
	if len(paths) == 0 {
		return []string{checkoutDir}
	}
	roots := make([]string, len(paths))
	for i, p := range paths {
		roots[i] = path.Join(checkoutDir, p)
	}
	return roots
}

// loadManifests is fluxd's Load: every .yaml and .yml file (the case
// counts) under each root, or the root itself when it is a file, except
// in chart directories; a document ID defined twice is an error.
func loadManifests(c *checkout, paths []string) (map[string]*resource.Manifest, error) {
	objs := map[string]*resource.Manifest{}
	charts := c.chartDirs()
	for _, root := range gitPathRoots(paths) {
		if _, err := c.stat(root); err != nil {
			return nil, fmt.Errorf("unable to read root path %q: %w", root, err)
		}
		err := c.walk(root, func(p string, dir bool) error {
			if dir {
				if charts[p] {
					return errSkipDir
				}
				return nil
			}
			if ext := path.Ext(p); ext != ".yaml" && ext != ".yml" {
				return nil
			}
			if inChart(charts, p) {
				return nil
			}
			b, err := c.readFile(p)
			if err != nil {
				return fmt.Errorf("unable to read file at %q: %w", p, err)
			}
			source := strings.TrimPrefix(p, checkoutDir+"/")
			docs, err := resource.ParseMultidoc(b, source)
			if err != nil {
				return err
			}
			// In ID order: fluxd ranges over a map here, so which of two
			// duplicates it names first is not defined.
			for _, id := range slices.Sorted(maps.Keys(docs)) {
				if prev, ok := objs[id]; ok {
					return fmt.Errorf(`duplicate definition of '%s' (in %s and %s)`, id, prev.Source(), source)
				}
				objs[id] = docs[id]
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// fluxConfigFile finds the .flux.yaml that manifest generation would
// use for a root: in it or in a directory above it, up to the repo
// (pkg/manifests/configaware.go, findConfigFilePaths). One that only
// says scanForFiles means plain YAML, which is loaded as usual.
func fluxConfigFile(c *checkout, paths []string) (string, bool) {
	for _, root := range gitPathRoots(paths) {
		for dir := root; ; dir = path.Dir(dir) {
			if _, ok := c.files[dir+"/.flux.yaml"]; ok {
				b, _ := c.readFile(dir + "/.flux.yaml")
				var cf map[string]interface{}
				if yaml.Unmarshal(b, &cf) == nil && cf["scanForFiles"] != nil {
					break
				}
				return strings.TrimPrefix(dir+"/.flux.yaml", checkoutDir+"/"), true
			}
			if dir == checkoutDir || !strings.HasPrefix(dir, checkoutDir) {
				break
			}
		}
	}
	return "", false
}

// crdScopes are the scopes of kinds that CRDs in the manifests define,
// for objects whose CRD the cluster does not serve yet (manifests.go,
// getCRDScopes). A CRD that does not parse is left out.
func crdScopes(objs map[string]*resource.Manifest) map[string]string {
	out := map[string]string{}
	for _, m := range objs {
		if m.Kind() != "CustomResourceDefinition" {
			continue
		}
		var crd struct {
			Spec struct {
				Group    string `yaml:"group"`
				Version  string `yaml:"version"`
				Scope    string `yaml:"scope"`
				Versions []struct {
					Name string `yaml:"name"`
				} `yaml:"versions"`
				Names struct {
					Kind string `yaml:"kind"`
				} `yaml:"names"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(m.Bytes(), &crd); err != nil {
			continue
		}
		versions := []string{crd.Spec.Version}
		if len(crd.Spec.Versions) > 0 {
			versions = versions[:0]
			for _, v := range crd.Spec.Versions {
				versions = append(versions, v.Name)
			}
		}
		for _, v := range versions {
			gv := crd.Spec.Group + "/" + v
			if crd.Spec.Group == "" {
				gv = v
			}
			out[gv+"/"+crd.Spec.Names.Kind] = crd.Spec.Scope
		}
	}
	return out
}

// sortedIDs returns a map's keys in order.
func sortedIDs[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

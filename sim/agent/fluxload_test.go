package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
)

// gitTree commits files (a value starting with "-> " is a symlink to the
// rest) with the git CLI and returns the checkout the operator would load
// from.
func gitTree(t *testing.T, files map[string]string) *checkout {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "x"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	r, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := r.Head()
	c, _ := r.CommitObject(head.Hash())
	tree, _ := c.Tree()
	co, err := newCheckout(r.Storer, tree)
	if err != nil {
		t.Fatal(err)
	}
	return co
}

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"

func manifest(name string) string { return strings.ReplaceAll(cm, "%s", name) }

// What fluxd's Load (resource/load.go) makes of a repo: the IDs it loads,
// or its error. Each case names the upstream code that decides it.
func TestLoadManifestsAsFluxd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		paths []string
		ids   []string
		err   string
	}{
		{
			// resource.go, unmarshalKind: a document without kind is nothing.
			name: "CI config, docs and values next to manifests",
			files: map[string]string{
				".github/workflows/ci.yml": "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n",
				"mkdocs.yml":               "site_name: docs\n",
				"apps/cm.yaml":             manifest("app"),
			},
			ids: []string{"<cluster>:configmap/app"},
		},
		{
			// load.go, newChartTracker/looksLikeChart: a directory with
			// Chart.yaml and values.yaml is skipped whole, templates too.
			name: "a Helm chart beside its HelmRelease",
			files: map[string]string{
				"charts/web/Chart.yaml":            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
				"charts/web/values.yaml":           "replicas: 1\n",
				"charts/web/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
				"releases/web.yaml":                "apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  chart:\n    git: x\n    path: charts/web\n",
			},
			ids: []string{"apps:helmrelease/web"},
		},
		{
			// Only Chart.yaml: not a chart, so its YAML is read (and has a kind-less doc).
			name:  "a Chart.yaml alone is not a chart",
			files: map[string]string{"x/Chart.yaml": "apiVersion: v2\nname: x\n", "x/cm.yaml": manifest("x")},
			ids:   []string{"<cluster>:configmap/x"},
		},
		{
			// working.go, MakeAbsolutePaths: filepath.Join cleans paths.
			name:  "--git-path=. and ./apps and apps/../apps",
			files: map[string]string{"apps/a.yaml": manifest("a"), "b.yaml": manifest("b")},
			paths: []string{".", "./apps", "apps/../apps"},
			err:   "duplicate definition of '<cluster>:configmap/a'",
		},
		{
			name:  "--git-path=.",
			files: map[string]string{"apps/a.yaml": manifest("a"), "b.yaml": manifest("b")},
			paths: []string{"."},
			ids:   []string{"<cluster>:configmap/a", "<cluster>:configmap/b"},
		},
		{
			// load.go: "Load takes paths to directories or files".
			name:  "a file as --git-path",
			files: map[string]string{"apps/a.yaml": manifest("a"), "apps/b.yaml": manifest("b")},
			paths: []string{"apps/b.yaml"},
			ids:   []string{"<cluster>:configmap/b"},
		},
		{
			name:  "a missing --git-path",
			files: map[string]string{"a.yaml": manifest("a")},
			paths: []string{"nope"},
			err:   `unable to read root path "/tmp/flux-working000000000/nope": stat /tmp/flux-working000000000/nope: no such file or directory`,
		},
		{
			// ioutil.ReadFile follows a symlinked file; filepath.Walk does
			// not enter a symlinked directory.
			name: "symlinks",
			files: map[string]string{
				"real/a.yaml": manifest("a"),
				"apps/a.yaml": "-> ../real/a.yaml",
				"linked":      "-> real",
				"apps/b.yaml": manifest("b"),
				"real/.keep":  "",
			},
			paths: []string{"apps", "linked"},
			ids:   []string{"<cluster>:configmap/a", "<cluster>:configmap/b"},
		},
		{
			name:  "a dangling symlink fails the load",
			files: map[string]string{"apps/a.yaml": "-> ../gone.yaml"},
			err:   `unable to read file at "/tmp/flux-working000000000/apps/a.yaml": open /tmp/flux-working000000000/apps/a.yaml: no such file or directory`,
		},
		{
			// load.go: filepath.Ext is ".yaml" or ".yml", case-sensitive.
			name:  "only .yaml and .yml, as spelt",
			files: map[string]string{"a.YAML": manifest("a"), "b.yml": manifest("b"), "c.json": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`},
			ids:   []string{"<cluster>:configmap/b"},
		},
		{
			// JSON is YAML: a JSON manifest in a .yaml file loads.
			name:  "JSON in a .yaml file",
			files: map[string]string{"c.yaml": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"n"}}`},
			ids:   []string{"n:configmap/c"},
		},
		{
			// load.go, ParseMultidoc: empty documents are nothing; a List
			// gives its items; any kind ending in List is read as one.
			name: "multi-document files, Lists and empty documents",
			files: map[string]string{"all.yaml": "---\n# nothing\n---\n" + manifest("one") + "---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: two\n    namespace: s\n" +
				"---\napiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: dropped\n"},
			ids: []string{"<cluster>:configmap/one", "s:secret/two"},
		},
		{
			name:  "a top-level sequence fails the load",
			files: map[string]string{"bad.yaml": "- a\n- b\n"},
			err:   `parsing YAML doc from "bad.yaml": yaml: unmarshal errors:` + "\n  line 1: cannot unmarshal !!seq into resource.baseObject",
		},
		{
			name:  "invalid YAML fails the load",
			files: map[string]string{"bad.yaml": "a: [\n"},
			err:   `scanning multidoc from "bad.yaml"`,
		},
		{
			name:  "the same object in two files",
			files: map[string]string{"a.yaml": manifest("x"), "b.yaml": manifest("x")},
			err:   "duplicate definition of '<cluster>:configmap/x' (in a.yaml and b.yaml)",
		},
		{
			// The IDs are taken before namespaces are filled in: these two
			// differ here, and the one applied later wins.
			name:  "with and without a namespace",
			files: map[string]string{"a.yaml": manifest("x"), "b.yaml": strings.Replace(manifest("x"), "name: x", "name: x\n  namespace: default", 1)},
			ids:   []string{"<cluster>:configmap/x", "default:configmap/x"},
		},
		{
			// A kind without a name is still loaded; kubectl refuses it.
			name:  "an object without metadata.name",
			files: map[string]string{"gen.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: x-\n"},
			ids:   []string{"<cluster>:configmap/"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			co := gitTree(t, tc.files)
			objs, err := loadManifests(co, tc.paths)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids := sortedIDs(objs)
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("loaded %q, want %q", ids, tc.ids)
			}
		})
	}
}

// applyMetadata keeps what a manifest already says (mergo without
// override, sync.go applyMetadata) and checksums the re-written bytes.
func TestApplyMetadata(t *testing.T) {
	co := gitTree(t, map[string]string{"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    fluxcd.io/sync-gc-mark: copied\ndata:\n  k: v\n"})
	objs, err := loadManifests(co, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := objs["<cluster>:configmap/a"]
	m.SetNamespace("default")
	b, err := applyMetadata(m, "default:configmap/a", "set", "sum")
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"fluxcd.io/sync-gc-mark: copied", "namespace: default", "fluxcd.io/sync-checksum: sum", "k: v"} {
		if !strings.Contains(got, want) {
			t.Errorf("applied manifest lacks %q:\n%s", want, got)
		}
	}
}

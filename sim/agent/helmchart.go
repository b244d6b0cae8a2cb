package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/repo"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// preparedChart is pkg/release/release.go's chart: the chart, its
// revision (the chart version for a repository source, the commit for a
// git source), whether it changed since status.lastAttemptedRevision, and
// where chartFileRef reads from.
type preparedChart struct {
	chart    *chart.Chart
	loadErr  error // a git chart that does not load: the Helm action fails with it
	revision string
	changed  bool
	// files reads a file relative to the chart's directory: the git
	// export for a git source; nil for a repository source, whose
	// chartPath upstream is the .tgz file.
	files func(p string) ([]byte, error)
}

// Errors of pkg/chartsync.
var errNoMirror = errors.New("no existing git mirror found")

func chartNotReady(err error) error    { return fmt.Errorf("chart not ready: %w", err) }
func chartUnavailable(err error) error { return fmt.Errorf("chart unavailable: %w", err) }

// prepareChart is Release.prepareChart.
func (h *helmOperator) prepareChart(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec, lastAttempted string) (*preparedChart, error) {
	c := sp.Chart
	switch {
	case c.gitSource():
		return h.gitChart(ctx, hr, sp, lastAttempted)
	case c.repoSource():
		ch, err := h.repoChart(ctx, c.Repository, c.Name, c.Version)
		if err != nil {
			return nil, chartUnavailable(err)
		}
		// GetChartRevision: the version in the chart's metadata.
		rev := ch.Metadata.Version
		return &preparedChart{chart: ch, revision: rev, changed: lastAttempted != rev}, nil
	}
	return nil, errors.New("could not find valid chart source configuration for release")
}

// cleanRepoURL is RepoChartSource.CleanRepoURL.
func cleanRepoURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return strings.TrimSuffix(s, "/") + "/"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/"
	u.RawQuery = ""
	return u.String()
}

// repoChart downloads name-version from a chart repository; like
// chartsync.EnsureChartFetched, each is fetched once.
func (h *helmOperator) repoChart(ctx context.Context, repoURL, name, version string) (*chart.Chart, error) {
	base := cleanRepoURL(repoURL)
	key := base + "\x00" + name + "\x00" + version
	if ch, ok := h.charts[key]; ok {
		return ch, nil
	}
	b, err := h.get(ctx, base+"index.yaml")
	if err != nil {
		return nil, fmt.Errorf("looks like %q is not a valid chart repository or cannot be reached: %w", repoURL, err)
	}
	var idx repo.IndexFile
	if err := yaml.Unmarshal(b, &idx); err != nil || idx.APIVersion == "" {
		return nil, fmt.Errorf("looks like %q is not a valid chart repository or cannot be reached: no API version specified", repoURL)
	}
	idx.SortEntries()
	cv, err := idx.Get(name, version)
	if err != nil || len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %q version %q not found in %s repository", name, version, repoURL)
	}
	u, err := repo.ResolveReferenceURL(base, cv.URLs[0])
	if err != nil {
		return nil, err
	}
	b, err = h.get(ctx, u)
	if err != nil {
		return nil, err
	}
	ch, err := loader.LoadArchive(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("chart %s-%s: %w", name, version, err)
	}
	h.charts[key] = ch
	return ch, nil
}

// gitMirror is a helm-operator git mirror (flux pkg/git Repo, read-only,
// no branch): cloned in the background when first asked for, refreshed
// every --git-poll-interval, re-cloned after a failed refresh, tried
// again 10 s after a failed clone.
type gitMirror struct {
	name, url string
	auth      transport.AuthMethod
	repo      *git.Repository
	ready     bool
	err       error
	nextPoll  time.Time
}

// sourceRef is chartsync's book of what a HelmRelease's git source
// pointed at last.
type sourceRef struct {
	mirror, remote, ref, head string
}

// mirrorName is chartsync.mirrorName: the URL, or, with a secretRef,
// <namespace>/<secret>/<URL>.
func mirrorName(hr *unstructured.Unstructured, sp *hrSpec) string {
	if sp.Chart.SecretRef == nil {
		return sp.Chart.Git
	}
	return fmt.Sprintf("%s/%s/%s", hr.GetNamespace(), sp.Chart.SecretRef.Name, sp.Chart.Git)
}

func (h *helmOperator) gitRef(sp *hrSpec) string {
	if sp.Chart.Ref == "" {
		return h.hs.gitDefaultRef
	}
	return sp.Chart.Ref
}

// gitChart is GitChartSync.GetMirrorCopy and the git half of
// prepareChart: the chart at the mirror's head for the ref, and whether
// files under its path changed since lastAttempted.
func (h *helmOperator) gitChart(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec, lastAttempted string) (*preparedChart, error) {
	name := mirrorName(hr, sp)
	m := h.mirrors[name]
	if m == nil {
		// No mirror yet: ask for one and wait for its signal.
		h.maybeMirror(ctx, name, hr, sp)
		return nil, chartNotReady(errNoMirror)
	}
	s, _, err := h.syncSource(hr, sp, m)
	if err != nil {
		return nil, err
	}
	head, err := m.repo.CommitObject(plumbing.NewHash(s.head))
	if err != nil {
		return nil, chartUnavailable(err)
	}
	root, err := head.Tree()
	if err != nil {
		return nil, chartUnavailable(err)
	}
	dir := strings.Trim(path.Clean("/"+sp.Chart.Path), "/")
	changed := false
	if old, err := m.repo.ResolveRevision(plumbing.Revision(lastAttempted)); lastAttempted != "" && err == nil {
		changed = pathChanged(m.repo, *old, root, dir)
	}
	deps := h.hs.updateDeps && !sp.Chart.SkipDepUpdate
	ch, err := loadTreeChart(root, dir)
	if err != nil && deps {
		// downloader.Manager.Update loads the chart before anything else.
		return nil, err
	}
	if err == nil && deps {
		if err := h.dependencyUpdate(ctx, ch, root, dir); err != nil {
			return nil, err
		}
	}
	read := func(p string) ([]byte, error) {
		full := path.Clean(dir + "/" + p)
		if full == ".." || strings.HasPrefix(full, "../") {
			return nil, fmt.Errorf("%s is outside the git repository", p)
		}
		f, err := root.File(full)
		if err != nil {
			return nil, err
		}
		return fileBytes(f)
	}
	// Without a dependency update the chart is loaded only by the Helm
	// action (pkg/helm/v3/upgrade.go:UpgradeFromPath), which fails with
	// the loader's error.
	return &preparedChart{chart: ch, loadErr: err, revision: s.head, changed: changed, files: read}, nil
}

func fileBytes(f *object.File) ([]byte, error) {
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// pathChanged is `git diff --name-only --diff-filter=ACMRT <old> -- dir`
// at the export (flux pkg/git export.ChangedFiles): a file under dir that
// is new or different at head.
func pathChanged(r *git.Repository, old plumbing.Hash, head *object.Tree, dir string) bool {
	c, err := r.CommitObject(old)
	if err != nil {
		return false
	}
	oldRoot, err := c.Tree()
	if err != nil {
		return false
	}
	newDir, oldDir := head, oldRoot
	if dir != "" {
		if newDir, err = head.Tree(dir); err != nil {
			return false
		}
		oldDir, _ = oldRoot.Tree(dir)
	}
	changed := false
	_ = newDir.Files().ForEach(func(f *object.File) error {
		if oldDir == nil {
			changed = true
			return io.EOF
		}
		o, err := oldDir.File(f.Name)
		if err != nil || o.Hash != f.Hash || o.Mode != f.Mode {
			changed = true
			return io.EOF
		}
		return nil
	})
	return changed
}

// maybeMirror is GitChartSync.maybeMirror: start mirroring the source,
// with credentials from secretRef for an HTTPS URL. A secret that cannot
// be read is only logged, as upstream logs its GitAuthError; the release
// keeps reporting that no mirror exists.
func (h *helmOperator) maybeMirror(ctx context.Context, name string, hr *unstructured.Unstructured, sp *hrSpec) {
	auth, err := h.o.authFor(sp.Chart.Git)
	if err != nil {
		h.log.Warn("git auth error", "mirror", name, "err", err)
		return
	}
	if ref := sp.Chart.SecretRef; ref != nil {
		ns := ref.Namespace
		if ns == "" {
			ns = hr.GetNamespace()
		}
		if u, perr := url.Parse(strings.ToLower(sp.Chart.Git)); perr == nil && u.Scheme == "https" {
			user, pass, err := h.authFromSecret(ctx, ns, ref.Name)
			if err != nil {
				h.log.Warn("git auth error: "+err.Error(), "mirror", name)
				h.a.event(h.o.name, "HelmGitAuthError", "configuration %s: helmrelease %s/%s: git auth error: %v", h.o.name, hr.GetNamespace(), hr.GetName(), err)
				return
			}
			auth = &githttp.BasicAuth{Username: user, Password: pass}
		}
	}
	r, err := git.Init(memory.NewStorage(), nil)
	if err == nil {
		_, err = r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{sp.Chart.Git}})
	}
	if err != nil {
		h.log.Warn("start mirror", "mirror", name, "err", err)
		return
	}
	h.mirrors[name] = &gitMirror{name: name, url: sp.Chart.Git, auth: auth, repo: r, nextPoll: h.a.clk.Now()}
	h.log.Info("started mirroring new remote", "remote", safeURL(sp.Chart.Git), "mirror", name)
}

// authFromSecret is GitChartSync.getAuthFromSecret.
func (h *helmOperator) authFromSecret(ctx context.Context, ns, name string) (string, string, error) {
	sec, err := h.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	user, ok := sec.Data["username"]
	if !ok {
		return "", "", fmt.Errorf("could not find username key in secret %s/%s", ns, name)
	}
	pass, ok := sec.Data["password"]
	if !ok {
		return "", "", fmt.Errorf("could not find password key in secret %s/%s", ns, name)
	}
	return string(user), string(pass), nil
}

// fetchMirror brings a mirror up to date with its remote.
func (h *helmOperator) fetchMirror(ctx context.Context, m *gitMirror) error {
	ctx, cancel := context.WithTimeout(ctx, h.hs.gitTimeout)
	defer cancel()
	err := m.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", Auth: m.auth, Force: true, Tags: git.NoTags,
		RefSpecs:     []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		CABundle:     h.a.opts.CAPEM,
		ProxyOptions: h.o.proxy(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("git clone --mirror %s: %v", safeURL(m.url), cleanGitErr(err))
	}
	return nil
}

// refreshMirrors runs the mirrors' loops that are due: a clone (then a
// "changed" signal), a refresh every --git-poll-interval (each a signal),
// a re-clone after a failed refresh, another try 10 s after a failed
// clone.
func (h *helmOperator) refreshMirrors(ctx context.Context, now time.Time) {
	names := make([]string, 0, len(h.mirrors))
	for n := range h.mirrors {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m := h.mirrors[n]
		if now.Before(m.nextPoll) {
			continue
		}
		err := h.fetchMirror(ctx, m)
		if err != nil && m.ready {
			// A failed refresh starts over with a clone at once.
			m.ready = false
			err = h.fetchMirror(ctx, m)
		}
		if err != nil {
			m.ready, m.err, m.nextPoll = false, err, now.Add(10*time.Second)
			continue
		}
		m.ready, m.err, m.nextPoll = true, nil, now.Add(h.hs.gitPoll)
		h.mirrorChanged(m)
	}
}

// syncMirror is GitChartSync.SyncMirror: a refresh of the HelmRelease's
// mirror right away, without a signal.
func (h *helmOperator) syncMirror(ctx context.Context, hr *unstructured.Unstructured) {
	var sp hrSpec
	if decodeSpec(hr, &sp) != nil || sp.Chart.Git == "" {
		return
	}
	if m := h.mirrors[mirrorName(hr, &sp)]; m != nil && m.ready {
		if err := h.fetchMirror(ctx, m); err != nil {
			h.log.Warn("sync git mirror", "mirror", m.name, "err", err)
		}
	}
}

// mirrorChanged is GitChartSync.processChangedMirror: each HelmRelease on
// the mirror whose source moved in its chart path (or is new to the
// books) is queued; a mirror nobody uses any more is stopped.
func (h *helmOperator) mirrorChanged(m *gitMirror) {
	used := false
	for _, key := range h.knownKeys() {
		hr := h.known[key]
		var sp hrSpec
		if decodeSpec(hr, &sp) != nil || !sp.Chart.gitSource() || mirrorName(hr, &sp) != m.name {
			continue
		}
		used = true
		if _, changed, _ := h.syncSource(hr, &sp, m); changed {
			h.enqueue(key)
		}
	}
	if !used {
		delete(h.mirrors, m.name)
	}
}

func (h *helmOperator) knownKeys() []string {
	keys := make([]string, 0, len(h.known))
	for k := range h.known {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// syncSource is GitChartSync.sync: it moves the HelmRelease's record to
// the mirror's head for its ref and reports whether that is news for the
// release (a new record, or commits under its path).
func (h *helmOperator) syncSource(hr *unstructured.Unstructured, sp *hrSpec, m *gitMirror) (sourceRef, bool, error) {
	if !m.ready {
		err := m.err
		if err == nil {
			err = errors.New("git repo has not been cloned yet")
		}
		return sourceRef{}, false, chartNotReady(err)
	}
	id := hrResourceID(hr)
	ref := h.gitRef(sp)
	s, ok := h.sources[id]
	changed := false
	if !ok || s.mirror != m.name || s.remote != sp.Chart.Git || s.ref != ref {
		s, changed = sourceRef{mirror: m.name, remote: sp.Chart.Git, ref: ref}, true
	}
	head, err := revision(m.repo, ref)
	if err != nil {
		return sourceRef{}, false, chartUnavailable(err)
	}
	if !changed {
		if s.head == head.String() {
			return s, false, nil
		}
		n, err := commitsBetween(m.repo, plumbing.NewHash(s.head), head, strings.Trim(path.Clean("/"+sp.Chart.Path), "/"))
		if err != nil {
			return sourceRef{}, false, chartUnavailable(err)
		}
		changed = n > 0
	}
	s.head = head.String()
	h.sources[id] = s
	return s, changed, nil
}

// deleteSource is GitChartSync.Delete.
func (h *helmOperator) deleteSource(hr *unstructured.Unstructured) {
	id := hrResourceID(hr)
	s, ok := h.sources[id]
	if !ok {
		return
	}
	delete(h.sources, id)
	// The mirror stops when no HelmRelease the informer knows uses it (a
	// deleted one is already gone from it; one whose install failed is
	// not).
	for _, key := range h.knownKeys() {
		other := h.known[key]
		var sp hrSpec
		if decodeSpec(other, &sp) == nil && sp.Chart.gitSource() && mirrorName(other, &sp) == s.mirror {
			return
		}
	}
	delete(h.mirrors, s.mirror)
}

// revision is `git rev-list --max-count 1 <ref>` in the mirror: a
// branch, a tag or a commit.
func revision(r *git.Repository, ref string) (plumbing.Hash, error) {
	h, err := r.ResolveRevision(plumbing.Revision(ref))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fatal: ambiguous argument '%s': unknown revision or path not in the working tree", ref)
	}
	if c, err := r.CommitObject(*h); err == nil {
		return c.Hash, nil
	}
	if t, err := r.TagObject(*h); err == nil {
		if c, err := t.Commit(); err == nil {
			return c.Hash, nil
		}
	}
	return *h, nil
}

// commitsBetween counts `git rev-list from..to -- dir`.
func commitsBetween(r *git.Repository, from, to plumbing.Hash, dir string) (int, error) {
	seen := map[plumbing.Hash]bool{}
	iter, err := r.Log(&git.LogOptions{From: from})
	if err != nil {
		return 0, err
	}
	_ = iter.ForEach(func(c *object.Commit) error { seen[c.Hash] = true; return nil })
	filter := func(p string) bool { return dir == "" || p == dir || strings.HasPrefix(p, dir+"/") }
	iter, err = r.Log(&git.LogOptions{From: to, PathFilter: filter})
	if err != nil {
		return 0, err
	}
	n := 0
	err = iter.ForEach(func(c *object.Commit) error {
		if !seen[c.Hash] {
			n++
		}
		return nil
	})
	return n, err
}

// dependencyUpdate stands for `helm dependency update` on a git chart
// (--update-chart-deps, unless chart.skipDepUpdate): each dependency in
// Chart.yaml is resolved from its repository (an HTTPS chart repository,
// or a file:// path in the same git tree) and replaces what charts/
// holds. Repository names (@name, alias:name) need the operator's
// repositories.yaml, which gitopsim does not simulate.
func (h *helmOperator) dependencyUpdate(ctx context.Context, ch *chart.Chart, root *object.Tree, dir string) error {
	deps := ch.Metadata.Dependencies
	if len(deps) == 0 {
		return nil
	}
	var out []*chart.Chart
	for _, d := range deps {
		var dc *chart.Chart
		var err error
		switch {
		case strings.HasPrefix(d.Repository, "https://") || strings.HasPrefix(d.Repository, "http://"):
			dc, err = h.repoChart(ctx, d.Repository, d.Name, d.Version)
		case strings.HasPrefix(d.Repository, "file://"):
			dc, err = loadTreeChart(root, path.Clean(dir+"/"+strings.TrimPrefix(d.Repository, "file://")))
		case d.Repository == "":
			// Nothing to download: the chart must already be in charts/.
			for _, v := range ch.Dependencies() {
				if v.Name() == d.Name {
					dc = v
				}
			}
			if dc == nil {
				err = fmt.Errorf("dependency %q has no repository and is not in charts/", d.Name)
			}
		default:
			err = fmt.Errorf("no repository definition for %s (gitopsim does not simulate the operator's repositories.yaml)", d.Repository)
		}
		if err != nil {
			return err
		}
		out = append(out, dc)
	}
	ch.SetDependencies(out...)
	return nil
}

// loadTreeChart loads the chart in dir of a git tree (loader.Load of the
// export's directory).
func loadTreeChart(root *object.Tree, dir string) (*chart.Chart, error) {
	tree := root
	if dir = strings.Trim(dir, "/"); dir != "" && dir != "." {
		var err error
		if tree, err = root.Tree(dir); err != nil {
			return nil, fmt.Errorf("could not find %s: stat %s: no such file or directory", dir, dir)
		}
	}
	var files []*loader.BufferedFile
	err := tree.Files().ForEach(func(f *object.File) error {
		b, err := fileBytes(f)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: f.Name, Data: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

// composeValues is pkg/release/values.go:composeValues: valueFileSecrets
// and valuesFrom in order, then spec.values on top, with upstream's error
// texts. An optional source that is missing or not valid YAML is skipped.
func (h *helmOperator) composeValues(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec, ch *preparedChart) (map[string]any, error) {
	sources := make([]valuesFrom, 0, len(sp.ValueFileSecrets)+len(sp.ValuesFrom))
	for _, s := range sp.ValueFileSecrets {
		sources = append(sources, valuesFrom{SecretKeyRef: &keyRef{Name: s.Name}})
	}
	sources = append(sources, sp.ValuesFrom...)
	result := map[string]any{}
	for _, v := range sources {
		var valueFile map[string]any
		ns := hr.GetNamespace()
		switch {
		case v.ConfigMapKeyRef != nil:
			ref := v.ConfigMapKeyRef
			if ref.Namespace != "" {
				ns = ref.Namespace
			}
			key := ref.Key
			if key == "" {
				key = "values.yaml"
			}
			cm, err := h.kube.CoreV1().ConfigMaps(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, err
			}
			d, ok := cm.Data[key]
			if !ok {
				if ref.Optional {
					continue
				}
				return nil, fmt.Errorf("could not find key %v in ConfigMap %s/%s", key, ns, ref.Name)
			}
			if err := yaml.Unmarshal([]byte(d), &valueFile); err != nil {
				if ref.Optional {
					continue
				}
				return nil, fmt.Errorf("unable to yaml.Unmarshal %v from %s in ConfigMap %s/%s", d, key, ns, ref.Name)
			}
		case v.SecretKeyRef != nil:
			ref := v.SecretKeyRef
			if ref.Namespace != "" {
				ns = ref.Namespace
			}
			key := ref.Key
			if key == "" {
				key = "values.yaml"
			}
			sec, err := h.kube.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ref.Optional {
					continue
				}
				return nil, err
			}
			d, ok := sec.Data[key]
			if !ok {
				if ref.Optional {
					continue
				}
				return nil, fmt.Errorf("could not find key %s in Secret %s/%s", key, ns, ref.Name)
			}
			if err := yaml.Unmarshal(d, &valueFile); err != nil {
				if ref.Optional {
					continue
				}
				return nil, fmt.Errorf("unable to yaml.Unmarshal %v from %s in Secret %s/%s", d, key, ns, ref.Name)
			}
		case v.ExternalSourceRef != nil:
			es := v.ExternalSourceRef
			optional := es.Optional != nil && *es.Optional
			b, err := h.readURL(ctx, es.URL)
			if err != nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("unable to read value file from URL %s", es.URL)
			}
			if err := yaml.Unmarshal(b, &valueFile); err != nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("unable to yaml.Unmarshal %v from URL %s", b, es.URL)
			}
		case v.ChartFileRef != nil:
			cf := v.ChartFileRef
			optional := cf.Optional != nil && *cf.Optional
			var f []byte
			err := errors.New("not a directory")
			if ch.files != nil {
				f, err = ch.files(cf.Path)
			}
			if err != nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("unable to read value file from path %s", cf.Path)
			}
			if err := yaml.Unmarshal(f, &valueFile); err != nil {
				if optional {
					continue
				}
				return nil, fmt.Errorf("unable to yaml.Unmarshal %v from path %s", f, cf.Path)
			}
		}
		result = mergeInto(result, valueFile)
	}
	result = mergeInto(result, sp.values())
	// Values travel to Helm as YAML (Values.YAML, chartutil.ReadValues).
	b, err := yaml.Marshal(result)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// mergeInto is values.go:mergeValues: src over dest, maps merged.
func mergeInto(dest, src map[string]any) map[string]any {
	for k, v := range src {
		if _, exists := dest[k]; !exists {
			dest[k] = v
			continue
		}
		next, ok := v.(map[string]any)
		if !ok {
			dest[k] = v
			continue
		}
		destMap, isMap := dest[k].(map[string]any)
		if !isMap {
			dest[k] = v
			continue
		}
		dest[k] = mergeInto(destMap, next)
	}
	return dest
}

// readURL is values.go:readURL, through the cluster's outbound link.
func (h *helmOperator) readURL(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL scheme should be HTTP(S), got '%s'", u.Scheme)
	}
	return h.get(ctx, u.String())
}

// get fetches a URL through the cluster's outbound link.
func (h *helmOperator) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to retrieve file from URL, status '%s (%d)'", resp.Status, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// getObject reads a live object of a release as the operator (kubectl get).
func (h *helmOperator) getObject(ctx context.Context, o *unstructured.Unstructured, ns string) (*unstructured.Unstructured, error) {
	ri, err := h.resourceFor(o, ns)
	if err != nil {
		return nil, err
	}
	return ri.Get(ctx, o.GetName(), metav1.GetOptions{})
}

// patchObject merge-patches a live object of a release as the operator
// (kubectl annotate --overwrite).
func (h *helmOperator) patchObject(ctx context.Context, o *unstructured.Unstructured, ns string, patch []byte) error {
	ri, err := h.resourceFor(o, ns)
	if err != nil {
		return err
	}
	_, err = ri.Patch(ctx, o.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-annotate"})
	return err
}

func (h *helmOperator) resourceFor(o *unstructured.Unstructured, ns string) (interface {
	Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
	Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*unstructured.Unstructured, error)
}, error) {
	gvk := o.GroupVersionKind()
	m, err := h.a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if apimeta.IsNoMatchError(err) {
		// A kind the release's own CRDs just brought: ask discovery again.
		h.a.mapper.Reset()
		m, err = h.a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == "namespace" {
		return h.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return h.dyn.Resource(m.Resource), nil
}

// cloneChart copies a chart for a Helm action: Helm rewrites a chart's
// values while it processes dependencies, and the cached original must
// keep describing what the repository serves.
func cloneChart(ch *chart.Chart) *chart.Chart {
	c := *ch
	if b, err := yaml.Marshal(ch.Values); err == nil {
		var v map[string]any
		if yaml.Unmarshal(b, &v) == nil {
			c.Values = v
		}
	}
	deps := make([]*chart.Chart, 0, len(ch.Dependencies()))
	for _, d := range ch.Dependencies() {
		deps = append(deps, cloneChart(d))
	}
	c.SetDependencies(deps...)
	return &c
}

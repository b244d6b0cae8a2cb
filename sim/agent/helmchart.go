package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/repo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// fetchChart loads the chart a HelmRelease names and returns it with its
// revision: the chart version for a repository source, the commit for a
// git source (spec §4.7).
func (h *helmOperator) fetchChart(ctx context.Context, hr *unstructured.Unstructured, sp *hrSpec) (*chart.Chart, string, error) {
	c := sp.Chart
	switch {
	case c.Git != "" && c.Path != "":
		ref := c.Ref
		if ref == "" {
			ref = "master"
		}
		return h.gitChart(ctx, c.Git, ref, c.Path)
	case c.Repository != "" && c.Name != "" && c.Version != "":
		ch, err := h.repoChart(ctx, c.Repository, c.Name, c.Version)
		return ch, c.Version, err
	}
	return nil, "", errors.New("could not find valid chart source configuration for release")
}

// repoChart downloads name-version from a chart repository; versions are
// immutable, so each is fetched once.
func (h *helmOperator) repoChart(ctx context.Context, repoURL, name, version string) (*chart.Chart, error) {
	key := repoURL + "\x00" + name + "\x00" + version
	if ch, ok := h.charts[key]; ok {
		return ch, nil
	}
	base := strings.TrimSuffix(repoURL, "/")
	b, err := h.get(ctx, base+"/index.yaml")
	if err != nil {
		return nil, fmt.Errorf("looks like %q is not a valid chart repository or cannot be reached: %w", repoURL, err)
	}
	var idx repo.IndexFile
	if err := yaml.Unmarshal(b, &idx); err != nil || idx.APIVersion == "" {
		return nil, fmt.Errorf("looks like %q is not a valid chart repository: no API version in index.yaml", repoURL)
	}
	cv, err := idx.Get(name, version)
	if err != nil || len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %q version %q not found in %s repository", name, version, repoURL)
	}
	u, err := repo.ResolveReferenceURL(base+"/", cv.URLs[0])
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

// gitChart fetches url (with the configuration's git credentials and
// trust) and loads the chart at dir of ref: a branch, a tag or a commit.
func (h *helmOperator) gitChart(ctx context.Context, url, ref, dir string) (*chart.Chart, string, error) {
	// One mirror per URL, fetched incrementally, as helm-operator keeps
	// its git chart mirrors.
	r := h.gitRepos[url]
	if r == nil {
		var err error
		r, err = git.Init(memory.NewStorage(), nil)
		if err == nil {
			_, err = r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{url}})
		}
		if err != nil {
			return nil, "", err
		}
		h.gitRepos[url] = r
	}
	auth, err := h.o.authFor(url)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.p.GitTimeout)
	defer cancel()
	err = r.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", Auth: auth, Force: true, Tags: git.NoTags, Depth: 0,
		RefSpecs:     []gitconfig.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
		CABundle:     h.a.opts.CAPEM,
		ProxyOptions: h.o.proxy(),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, "", fmt.Errorf("git repo %s not ready: %w", safeURL(url), cleanGitErr(err))
	}
	var hash plumbing.Hash
	for _, name := range []plumbing.ReferenceName{plumbing.NewRemoteReferenceName("origin", ref), plumbing.NewTagReferenceName(ref)} {
		if rf, err := r.Reference(name, true); err == nil {
			hash = rf.Hash()
			break
		}
	}
	if hash.IsZero() && plumbing.IsHash(ref) {
		hash = plumbing.NewHash(ref)
	}
	if hash.IsZero() {
		return nil, "", fmt.Errorf("git ref '%s' not found in %s", ref, safeURL(url))
	}
	commit, err := r.CommitObject(hash)
	if err != nil {
		// An annotated tag points at a tag object.
		if tag, terr := r.TagObject(hash); terr == nil {
			commit, err = tag.Commit()
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("git ref '%s': %w", ref, err)
	}
	tree, err := commit.Tree()
	if err == nil {
		tree, err = tree.Tree(strings.Trim(path.Clean(dir), "/"))
	}
	if err != nil {
		return nil, "", fmt.Errorf("chart path '%s' not found at %s of %s", dir, commit.Hash.String()[:7], safeURL(url))
	}
	var files []*loader.BufferedFile
	err = tree.Files().ForEach(func(f *object.File) error {
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		b, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: f.Name, Data: b})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, "", fmt.Errorf("chart at '%s': %w", dir, err)
	}
	return ch, commit.Hash.String(), nil
}

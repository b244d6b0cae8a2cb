// Package helmrepo is gitopsim's Helm chart repository: an HTTPS server
// with an index.yaml and packaged charts, as `helm repo add` and the Helm
// operator's repository chart source expect. At Start it packages every
// chart of its source (by default the charts shipped in fixtures/charts)
// with the Helm SDK; Publish and Bump add versions while it runs, so a
// test can make "a new chart version was released" happen.
package helmrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/fixtures"
	"github.com/gitopsim/gitopsim/sim/clock"
	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
	"github.com/gitopsim/gitopsim/sim/internal/graceful"
	"github.com/gitopsim/gitopsim/sim/internal/pki"
)

// Options configures a Server.
type Options struct {
	// Charts holds one unpacked chart per top-level directory; nil means
	// the charts shipped with gitopsim (fixtures/charts).
	Charts fs.FS
	// Workdir is where packaged charts are written (Workdir/helm-charts).
	// Required.
	Workdir string
	// StateDir keeps the charts published at run time (Publish, Bump)
	// across restarts; empty means they are forgotten.
	StateDir string
	// Addr is the listen address; empty means 127.0.0.1:0.
	Addr string
	// CA issues the HTTPS certificate. Required.
	CA *pki.CA
	// Clock stamps the index; nil means clock.Real().
	Clock clock.Clock
	// Logger receives request and packaging logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running (or runnable) chart repository.
type Server struct {
	opts Options
	log  *slog.Logger
	dir  string

	mu     sync.Mutex
	charts map[string]map[string]*packaged // name → version → chart
	index  []byte
	srv    *http.Server
	url    string
	done   chan struct{}
}

// packaged is one chart version on offer.
type packaged struct {
	chart *chart.Chart
	file  string // base name under dir
}

// New validates opts; nothing is packaged or served until Start.
func New(opts Options) (*Server, error) {
	if opts.Workdir == "" || opts.CA == nil {
		return nil, errors.New("helmrepo: Workdir and CA are required")
	}
	if opts.Charts == nil {
		sub, err := fs.Sub(fixtures.Charts, "charts")
		if err != nil {
			return nil, fmt.Errorf("helmrepo: %w", err)
		}
		opts.Charts = sub
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	return &Server{
		opts: opts, log: opts.Logger.With("component", "helmrepo"),
		dir: filepath.Join(opts.Workdir, "helm-charts"), charts: map[string]map[string]*packaged{},
	}, nil
}

// Start packages the charts and serves them until Stop.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("helmrepo: %w", err)
	}
	charts, err := LoadAll(s.opts.Charts)
	if err != nil {
		return fmt.Errorf("helmrepo: %w", err)
	}
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("helmrepo: listen on %s (--helm-port): %w", s.opts.Addr, err)
	}
	host, _, _ := net.SplitHostPort(l.Addr().String())
	leaf, err := s.opts.CA.IssueServer("gitopsim-helm", []string{host, "127.0.0.1", "localhost", "::1"}, clock.Real().Now())
	var cert tls.Certificate
	if err == nil {
		cert, err = leaf.TLSCertificate()
	}
	if err != nil {
		l.Close()
		return fmt.Errorf("helmrepo: certificate: %w", err)
	}
	s.mu.Lock()
	s.url = "https://" + l.Addr().String()
	s.mu.Unlock()
	for _, ch := range charts {
		if err := s.publish(ch, false); err != nil {
			l.Close()
			return err
		}
	}
	kept, err := s.loadKept()
	if err != nil {
		l.Close()
		return err
	}
	for _, ch := range kept {
		if err := s.publish(ch, false); err != nil {
			l.Close()
			return err
		}
	}
	charts = append(charts, kept...)
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serve),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("chart repository serving", "url", s.url, "charts", len(charts))
	return nil
}

// Stop ends serving; packaged charts stay in the work dir.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := graceful.Shutdown(ctx, s.srv, graceful.Grace, s.log)
	<-s.done
	return err
}

// URL is the repository URL (add /index.yaml for the index).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Publish packages ch with the Helm SDK and adds it to the index. A
// version already published is replaced (real repositories treat
// versions as immutable; a simulator may need to fix a fixture).
// With a state dir, the chart is kept there before Publish returns.
func (s *Server) Publish(ch *chart.Chart) error { return s.publish(ch, true) }

func (s *Server) publish(ch *chart.Chart, keep bool) error {
	if err := ch.Validate(); err != nil {
		return fmt.Errorf("helmrepo: chart %s: %w", ch.Name(), err)
	}
	file, err := chartutil.Save(ch, s.dir)
	if err != nil {
		return fmt.Errorf("helmrepo: package %s-%s: %w", ch.Name(), ch.Metadata.Version, err)
	}
	if keep && s.opts.StateDir != "" {
		b, err := os.ReadFile(file)
		if err == nil {
			err = atomicfile.WriteFile(filepath.Join(s.opts.StateDir, filepath.Base(file)), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("helmrepo: keep %s-%s in the state dir: %w", ch.Name(), ch.Metadata.Version, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.charts[ch.Name()] == nil {
		s.charts[ch.Name()] = map[string]*packaged{}
	}
	s.charts[ch.Name()][ch.Metadata.Version] = &packaged{chart: ch, file: filepath.Base(file)}
	return s.reindexLocked()
}

// loadKept reads the charts a state dir keeps, in file-name order; one that
// cannot be read stops the start, naming it.
func (s *Server) loadKept() ([]*chart.Chart, error) {
	if s.opts.StateDir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(s.opts.StateDir, "*.tgz"))
	if err != nil {
		return nil, err
	}
	var out []*chart.Chart
	for _, f := range files {
		ch, err := loader.LoadFile(f)
		if err != nil {
			return nil, fmt.Errorf("helmrepo: chart %s in the state dir: %w; it was not changed", f, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// Bump publishes the newest version of chart name again as version, with
// appVersion unchanged: a new release of the same chart.
func (s *Server) Bump(name, version string) error {
	s.mu.Lock()
	latest := s.latestLocked(name)
	s.mu.Unlock()
	if latest == nil {
		return fmt.Errorf("helmrepo: no chart %q to bump", name)
	}
	md := *latest.Metadata
	md.Version = version
	ch := *latest
	ch.Metadata = &md
	return s.Publish(&ch)
}

// Versions lists the published versions of chart name, oldest first.
func (s *Server) Versions(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for v := range s.charts[name] {
		out = append(out, v)
	}
	slices.SortFunc(out, compareVersions)
	return out
}

func (s *Server) latestLocked(name string) *chart.Chart {
	var best *packaged
	for v, p := range s.charts[name] {
		if best == nil || compareVersions(v, best.chart.Metadata.Version) > 0 {
			best = p
		}
	}
	if best == nil {
		return nil
	}
	return best.chart
}

// reindexLocked rebuilds index.yaml from what is published.
func (s *Server) reindexLocked() error {
	idx := repo.NewIndexFile()
	for _, versions := range s.charts {
		for _, p := range versions {
			b, err := os.ReadFile(filepath.Join(s.dir, p.file))
			if err != nil {
				return fmt.Errorf("helmrepo: %w", err)
			}
			sum := sha256.Sum256(b)
			if err := idx.MustAdd(p.chart.Metadata, p.file, s.url+"/charts", hex.EncodeToString(sum[:])); err != nil {
				return fmt.Errorf("helmrepo: index %s: %w", p.file, err)
			}
		}
	}
	idx.SortEntries()
	idx.Generated = s.opts.Clock.Now().UTC()
	// Entry timestamps are when each chart was indexed; the clock keeps
	// them reproducible on a virtual run.
	for _, vs := range idx.Entries {
		for _, v := range vs {
			v.Created = idx.Generated
		}
	}
	b, err := yaml.Marshal(idx)
	if err != nil {
		return fmt.Errorf("helmrepo: encode index: %w", err)
	}
	s.index = b
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case r.URL.Path == "/index.yaml":
		s.mu.Lock()
		b := s.index
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-yaml")
		http.ServeContent(w, r, "index.yaml", time.Time{}, bytes.NewReader(b))
	case strings.HasPrefix(r.URL.Path, "/charts/") && strings.HasSuffix(r.URL.Path, ".tgz"):
		name := path.Base(r.URL.Path)
		s.mu.Lock()
		known := false
		for _, vs := range s.charts {
			for _, p := range vs {
				known = known || p.file == name
			}
		}
		s.mu.Unlock()
		if !known {
			http.Error(w, "chart "+name+" not found in this repository", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		http.ServeFile(w, r, filepath.Join(s.dir, name))
	default:
		http.Error(w, "not found: this Helm repository serves /index.yaml and /charts/<name>-<version>.tgz", http.StatusNotFound)
	}
}

// LoadAll loads every chart directory at the top of fsys with the Helm
// SDK, resolving `file://../<dir>` dependencies from sibling directories
// the way `helm dependency build` would vendor them.
func LoadAll(fsys fs.FS) ([]*chart.Chart, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read charts: %w", err)
	}
	byDir := map[string]*chart.Chart{}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		ch, err := LoadDir(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		byDir[e.Name()] = ch
		dirs = append(dirs, e.Name())
	}
	for _, d := range dirs {
		ch := byDir[d]
		for _, dep := range ch.Metadata.Dependencies {
			if !strings.HasPrefix(dep.Repository, "file://") || slices.ContainsFunc(ch.Dependencies(), func(c *chart.Chart) bool { return c.Name() == dep.Name }) {
				continue
			}
			rel := path.Clean(path.Join(d, strings.TrimPrefix(dep.Repository, "file://")))
			sub, ok := byDir[rel]
			if !ok {
				return nil, fmt.Errorf("chart %s: dependency %s: %s is not a chart directory beside it", d, dep.Name, dep.Repository)
			}
			if dep.Version != "" && dep.Version != sub.Metadata.Version {
				return nil, fmt.Errorf("chart %s: dependency %s wants version %s, %s has %s", d, dep.Name, dep.Version, rel, sub.Metadata.Version)
			}
			ch.AddDependency(sub)
		}
	}
	out := make([]*chart.Chart, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, byDir[d])
	}
	return out, nil
}

// LoadDir loads the chart in directory dir of fsys.
func LoadDir(fsys fs.FS, dir string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, dir+"/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	return ch, nil
}

// compareVersions orders chart versions by SemVer, falling back to plain
// string order for versions that do not parse.
func compareVersions(a, b string) int {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}

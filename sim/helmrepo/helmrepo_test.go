package helmrepo

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/gitopsim/gitopsim/sim/internal/pki"
)

func start(t *testing.T, opts Options) (*Server, *http.Client) {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	opts.CA, opts.Workdir = ca, t.TempDir()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return s, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func get(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func index(t *testing.T, c *http.Client, s *Server) *repo.IndexFile {
	t.Helper()
	code, b := get(t, c, s.URL()+"/index.yaml")
	if code != 200 {
		t.Fatalf("index.yaml: %d %s", code, b)
	}
	var idx repo.IndexFile
	if err := yaml.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return &idx
}

// TestServesShippedChartsOverHTTPS checks what `helm repo add` and a
// chart pull rely on: a valid index over TLS from the CA, digests that
// match the archives, and archives that load with the Helm SDK, the
// webapp fixture carrying its hello dependency.
func TestServesShippedChartsOverHTTPS(t *testing.T) {
	s, c := start(t, Options{})
	idx := index(t, c, s)
	for _, name := range []string{"hello", "webapp"} {
		cv, err := idx.Get(name, "")
		if err != nil {
			t.Fatalf("%s not in index: %v", name, err)
		}
		code, b := get(t, c, cv.URLs[0])
		if code != 200 {
			t.Fatalf("GET %s: %d", cv.URLs[0], code)
		}
		sum := sha256.Sum256(b)
		if cv.Digest != hex.EncodeToString(sum[:]) {
			t.Errorf("%s digest %s does not match the archive", name, cv.Digest)
		}
		ch, err := loader.LoadArchive(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("%s archive: %v", name, err)
		}
		if name == "webapp" && (len(ch.Dependencies()) != 1 || ch.Dependencies()[0].Name() != "hello") {
			t.Errorf("webapp dependencies = %v, want hello packaged in", ch.Dependencies())
		}
	}
	if code, b := get(t, c, s.URL()+"/charts/nope-1.0.0.tgz"); code != 404 || !strings.Contains(string(b), "not found") {
		t.Errorf("unknown chart: %d %s", code, b)
	}
	if code, _ := get(t, c, s.URL()+"/../../etc/passwd"); code != 404 {
		t.Errorf("path outside the repository: %d", code)
	}
}

func TestBumpPublishesANewVersion(t *testing.T) {
	s, c := start(t, Options{})
	if err := s.Bump("hello", "0.2.0"); err != nil {
		t.Fatal(err)
	}
	if got := s.Versions("hello"); strings.Join(got, ",") != "0.1.0,0.2.0" {
		t.Errorf("versions = %v", got)
	}
	cv, err := index(t, c, s).Get("hello", "")
	if err != nil || cv.Version != "0.2.0" {
		t.Fatalf("latest hello = %v, %v", cv, err)
	}
	if err := s.Bump("nope", "1.0.0"); err == nil || !strings.Contains(err.Error(), `no chart "nope"`) {
		t.Errorf("bump of an unknown chart: %v", err)
	}
}

func TestBrokenChartsAreRefusedAtStart(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"missing dependency": {
			"a/Chart.yaml": {Data: []byte("apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: b\n  version: 1.0.0\n  repository: file://../b\n")},
		},
		"no Chart.yaml": {"a/values.yaml": {Data: []byte("x: 1\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			ca, _ := pki.NewCA("test CA", time.Now())
			s, err := New(Options{Charts: files, CA: ca, Workdir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start(t.Context())
			if err == nil {
				_ = s.Stop(context.Background())
				t.Fatal("started with a broken chart")
			}
			if !strings.Contains(err.Error(), "chart a") && !strings.Contains(err.Error(), "load chart a") {
				t.Errorf("error does not name the chart: %v", err)
			}
		})
	}

}

// TestStateDirKeepsPublishedCharts: a chart published at run time is in
// the next run's index when both use one state dir (each with a fresh
// work dir); one that cannot be read stops the start and stays.
func TestStateDirKeepsPublishedCharts(t *testing.T) {
	state := t.TempDir()
	s, _ := start(t, Options{StateDir: state})
	if err := s.Bump("hello", "0.3.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, c := start(t, Options{StateDir: state})
	if got := again.Versions("hello"); strings.Join(got, ",") != "0.1.0,0.3.0" {
		t.Errorf("versions after a restart = %v", got)
	}
	if cv, err := index(t, c, again).Get("hello", "0.3.0"); err != nil || cv.Version != "0.3.0" {
		t.Errorf("index after a restart: %v, %v", cv, err)
	}

	bad := filepath.Join(state, "broken-1.0.0.tgz")
	if err := os.WriteFile(bad, []byte("not a chart"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s3, err := New(Options{StateDir: state, CA: ca, Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Start(t.Context()); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a damaged kept chart: %v", err)
		_ = s3.Stop(context.Background())
	}
	if b, _ := os.ReadFile(bad); string(b) != "not a chart" {
		t.Error("the damaged chart was changed")
	}
}

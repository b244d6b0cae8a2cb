package cluster_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"

	"github.com/gitopsim/gitopsim/sim/cluster"
)

func fakeAssets(t *testing.T, dir string, names ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFindAssetsOrder(t *testing.T) {
	root := t.TempDir()
	flag := fakeAssets(t, filepath.Join(root, "flag"), "kube-apiserver", "etcd", "kube-controller-manager")
	env := fakeAssets(t, filepath.Join(root, "env"), "kube-apiserver", "etcd")
	data := filepath.Join(root, "xdg")
	store := filepath.Join(data, "kubebuilder-envtest", "k8s")
	suffix := "-" + runtime.GOOS + "-" + runtime.GOARCH
	fakeAssets(t, filepath.Join(store, "1.30.0"+suffix), "kube-apiserver", "etcd")
	newest := fakeAssets(t, filepath.Join(store, "1.31.2"+suffix), "kube-apiserver", "etcd")
	fakeAssets(t, filepath.Join(store, "1.99.0-plan9-mips"), "kube-apiserver", "etcd")
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("KUBEBUILDER_ASSETS", env)
	// Run from a directory with no bin/k8s above it.
	t.Chdir(root)

	a, err := cluster.FindAssets(flag)
	if err != nil || a.Dir != flag || a.Source != "--assets-dir" {
		t.Fatalf("with --assets-dir: %+v, %v", a, err)
	}
	if a.ControllerManager != filepath.Join(flag, "kube-controller-manager") {
		t.Errorf("controller-manager = %q", a.ControllerManager)
	}

	a, err = cluster.FindAssets("")
	if err != nil || a.Dir != env {
		t.Fatalf("with KUBEBUILDER_ASSETS: %+v, %v", a, err)
	}

	t.Setenv("KUBEBUILDER_ASSETS", "")
	a, err = cluster.FindAssets("")
	if err != nil || a.Dir != newest {
		t.Fatalf("from the setup-envtest store: %+v, %v; want %s", a, err, newest)
	}

	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	_, err = cluster.FindAssets("")
	if !errors.Is(err, cluster.ErrAssetsNotFound) {
		t.Fatalf("with nothing anywhere: %v", err)
	}

	bin := fakeAssets(t, filepath.Join(root, "bin", "k8s", cluster.KubernetesVersion), "kube-apiserver", "etcd", "kube-controller-manager")
	sub := filepath.Join(root, "deep", "er")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	a, err = cluster.FindAssets("")
	if err != nil || a.Dir != bin {
		t.Fatalf("bin/k8s in a parent directory: %+v, %v", a, err)
	}
}

func TestFindAssetsExplicitDirMustHoldBinaries(t *testing.T) {
	dir := fakeAssets(t, t.TempDir(), "kube-apiserver")
	_, err := cluster.FindAssets(dir)
	if !errors.Is(err, cluster.ErrAssetsNotFound) {
		t.Fatalf("err = %v", err)
	}
	if !regexp.MustCompile(`has no etcd;.*make tools`).MatchString(err.Error()) {
		t.Errorf("error does not say what is missing and what to run: %v", err)
	}
}

// The version gitopsim looks for must be the one `make tools` builds.
func TestKubernetesVersionMatchesToolsModule(t *testing.T) {
	b, err := os.ReadFile("../../tools/controlplane/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := "k8s.io/kubernetes " + cluster.KubernetesVersion
	if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(want) + `\b`).Match(b) {
		t.Errorf("tools/controlplane/go.mod does not require %s", want)
	}
}

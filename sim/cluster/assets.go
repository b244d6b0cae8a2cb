package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// KubernetesVersion is the control-plane version `make tools` builds into
// bin/k8s/<KubernetesVersion>. It must match tools/controlplane/go.mod (a
// test checks).
const KubernetesVersion = "v1.32.13"

// Binary names in an assets directory.
const (
	binAPIServer         = "kube-apiserver"
	binEtcd              = "etcd"
	binControllerManager = "kube-controller-manager"
)

// ErrAssetsNotFound means no directory with kube-apiserver and etcd was found.
var ErrAssetsNotFound = errors.New("control-plane binaries not found")

// Assets are the control-plane binaries the envtest backend runs.
type Assets struct {
	// Dir holds kube-apiserver and etcd.
	Dir string
	// ControllerManager is the kube-controller-manager binary; empty when
	// none was found (namespaces then never finish deleting).
	ControllerManager string
	// Source says where Dir came from, for progress messages.
	Source string
}

// APIServer is the kube-apiserver path.
func (a *Assets) APIServer() string { return filepath.Join(a.Dir, binAPIServer) }

// Etcd is the etcd path.
func (a *Assets) Etcd() string { return filepath.Join(a.Dir, binEtcd) }

// buildHint is what to run when binaries are missing.
const buildHint = "build them with `make tools` in the gitopsim checkout (about 5 minutes the first time; writes bin/k8s/" + KubernetesVersion + ")"

// FindAssets locates the control-plane binaries, in this order:
//  1. dir (the --assets-dir flag), when not empty;
//  2. $KUBEBUILDER_ASSETS;
//  3. the setup-envtest store ($XDG_DATA_HOME or ~/.local/share, then
//     kubebuilder-envtest/k8s/<version>-<os>-<arch>, newest first);
//  4. bin/k8s/<KubernetesVersion> in the working directory or any parent,
//     or beside the gitopsim executable.
//
// An explicit dir or $KUBEBUILDER_ASSETS that lacks a binary is an error
// rather than a reason to look further: the user asked for that directory.
func FindAssets(dir string) (*Assets, error) {
	if dir != "" {
		return assetsIn(dir, "--assets-dir")
	}
	if env, ok := os.LookupEnv("KUBEBUILDER_ASSETS"); ok && env != "" {
		return assetsIn(env, "$KUBEBUILDER_ASSETS")
	}
	var looked []string
	store := envtestStore()
	if store != "" {
		if d := newestStoreVersion(store); d != "" {
			if a, err := assetsIn(d, "the setup-envtest store"); err == nil {
				return a, nil
			}
		}
		looked = append(looked, "the setup-envtest store ("+store+")")
	}
	for _, d := range binCandidates() {
		if a, err := assetsIn(d, "bin/k8s/"+KubernetesVersion); err == nil {
			return a, nil
		}
	}
	looked = append(looked, "bin/k8s/"+KubernetesVersion+" in the working directory, its parents and beside the gitopsim executable")
	return nil, fmt.Errorf("%w: looked in %s (and $KUBEBUILDER_ASSETS is unset); %s, or pass --assets-dir DIR",
		ErrAssetsNotFound, strings.Join(looked, ", "), buildHint)
}

func assetsIn(dir, source string) (*Assets, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", source, dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s %s is not a directory; %s and pass --assets-dir bin/k8s/%s, or leave the flag out to search",
			ErrAssetsNotFound, source, abs, buildHint, KubernetesVersion)
	}
	var missing []string
	for _, b := range []string{binAPIServer, binEtcd} {
		if !isExecutable(filepath.Join(abs, b)) {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s %s has no %s; %s and pass --assets-dir bin/k8s/%s, or leave the flag out to search",
			ErrAssetsNotFound, source, abs, strings.Join(missing, " or "), buildHint, KubernetesVersion)
	}
	a := &Assets{Dir: abs, Source: source}
	if p := filepath.Join(abs, binControllerManager); isExecutable(p) {
		a.ControllerManager = p
	} else {
		// setup-envtest ships no controller-manager; our own build may.
		for _, d := range binCandidates() {
			if p := filepath.Join(d, binControllerManager); isExecutable(p) {
				a.ControllerManager = p
				break
			}
		}
	}
	return a, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func envtestStore() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "kubebuilder-envtest", "k8s")
}

// newestStoreVersion returns the store directory with the highest version
// for this OS and architecture, or "".
func newestStoreVersion(store string) string {
	entries, err := os.ReadDir(store)
	if err != nil {
		return ""
	}
	suffix := "-" + runtime.GOOS + "-" + runtime.GOARCH
	var best *version.Version
	var bestDir string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || !e.IsDir() {
			continue
		}
		v, err := version.ParseGeneric(name)
		if err != nil {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestDir = v, filepath.Join(store, e.Name())
		}
	}
	return bestDir
}

// binCandidates lists bin/k8s/<version> directories from the working
// directory upwards, then beside the executable (bin/gitopsim next to
// bin/k8s, as `make build` lays them out).
func binCandidates() []string {
	rel := filepath.Join("bin", "k8s", KubernetesVersion)
	var out []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			out = append(out, filepath.Join(d, rel))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			out = append(out, filepath.Join(filepath.Dir(exe), "k8s", KubernetesVersion))
		}
	}
	return out
}

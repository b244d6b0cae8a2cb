package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kindDir is the kind module the root go.mod pins, from the module cache.
func kindDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "sigs.k8s.io/kind").Output()
	if err != nil {
		// This module does not require kind; ask the root module.
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "sigs.k8s.io/kind")
		cmd.Dir = "../../.."
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("kind's version from the root go.mod: %v", err)
		}
	}
	v := strings.TrimSpace(string(out))
	cmd := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/kind@"+v)
	cmd.Dir = "../../.."
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("download kind %s: %v", v, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("kind %s: no module dir in %s", v, out)
	}
	return m.Dir
}

func TestWritesKindsStorageManifestAndImages(t *testing.T) {
	out := t.TempDir()
	if err := run(kindDir(t), out); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join(out, "images.env"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(out, "default-storage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		key, image, ok := strings.Cut(line, "=")
		if !ok || !strings.Contains(image, "/") || !strings.Contains(image, ":") {
			t.Errorf("images.env line %q: want KEY=registry/name:tag", line)
			continue
		}
		// The manifest (a concatenation of constants in kind's source)
		// names each image it runs.
		if !strings.Contains(string(manifest), image) {
			t.Errorf("%s %s is not in the storage manifest", key, image)
		}
	}
	if !strings.Contains(string(env), "STORAGE_PROVISIONER_IMAGE=") || !strings.Contains(string(env), "STORAGE_HELPER_IMAGE=") {
		t.Errorf("images.env lacks a storage image:\n%s", env)
	}
	if !strings.Contains(string(manifest), "kind: StorageClass") {
		t.Errorf("the storage manifest has no StorageClass:\n%s", manifest)
	}
}

func TestSaysWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "pkg", "build", "nodeimage")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "const_storage.go"), []byte("package nodeimage\n\nconst storageHelperImage = \"x/y:z\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(dir, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no string constant defaultStorageManifest") {
		t.Errorf("err = %v, want it to name the missing constant", err)
	}
	if err := run(t.TempDir(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "const_storage.go") {
		t.Errorf("no kind source: err = %v, want it to name the file", err)
	}
}

// Tests of the node image's build scripts that need no Docker: the runc
// wrapper's edit of OCI specs. make test runs them.
package kindnode_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// caps is an OCI capabilities object with CAP_SYS_RESOURCE in every set, as
// docker run --privileged asks for it.
func caps() map[string][]string {
	all := []string{"CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"}
	return map[string][]string{"bounding": all, "effective": all, "inheritable": all, "permitted": all, "ambient": all}
}

// wrap runs runc-wrap with args and a fake runc that records its arguments;
// it returns them.
func wrap(t *testing.T, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("runc-wrap needs jq: ", err)
	}
	dir := t.TempDir()
	record := filepath.Join(dir, "args")
	fake := filepath.Join(dir, "runc")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+record+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("./runc-wrap", args...)
	cmd.Env = append(os.Environ(), "GITOPSIM_REAL_RUNC="+fake)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc-wrap %v: %v\n%s", args, err, out)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkCaps(t *testing.T, got map[string][]string) {
	t.Helper()
	for set, list := range got {
		if slices.Contains(list, "CAP_SYS_RESOURCE") {
			t.Errorf("%s still has CAP_SYS_RESOURCE: %v", set, list)
		}
		if !slices.Contains(list, "CAP_NET_ADMIN") || !slices.Contains(list, "CAP_CHOWN") {
			t.Errorf("%s lost another capability: %v", set, list)
		}
	}
	if len(got) != 5 {
		t.Errorf("capability sets %v, want all five kept", got)
	}
}

func TestRuncWrapDropsSysResourceFromBundle(t *testing.T) {
	for _, form := range []string{"--bundle", "-b", "--bundle="} {
		bundle := t.TempDir()
		writeJSON(t, filepath.Join(bundle, "config.json"), map[string]any{
			"ociVersion": "1.0.2", "process": map[string]any{"args": []string{"/sbin/init"}, "capabilities": caps()},
			"hostname": "node",
		})
		args := []string{"--root", "/run/runc", "create", form, bundle, "ctr-1"}
		if form == "--bundle=" {
			args = []string{"--root", "/run/runc", "create", "--bundle=" + bundle, "ctr-1"}
		}
		if got := wrap(t, args...); !slices.Equal(got, args) {
			t.Errorf("%s: runc got %q, want the wrapper's arguments %q unchanged", form, got, args)
		}
		var cfg struct {
			Process struct {
				Args         []string            `json:"args"`
				Capabilities map[string][]string `json:"capabilities"`
			} `json:"process"`
			Hostname string `json:"hostname"`
		}
		b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: config.json after the wrapper: %v\n%s", form, err, b)
		}
		checkCaps(t, cfg.Process.Capabilities)
		if cfg.Hostname != "node" || !slices.Equal(cfg.Process.Args, []string{"/sbin/init"}) {
			t.Errorf("%s: other fields changed: %s", form, b)
		}
	}
}

func TestRuncWrapDropsSysResourceFromExecProcess(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "process.json")
	writeJSON(t, proc, map[string]any{"args": []string{"sh"}, "capabilities": caps()})
	wrap(t, "exec", "--process", proc, "ctr-1")
	var p struct {
		Capabilities map[string][]string `json:"capabilities"`
	}
	b, _ := os.ReadFile(proc)
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	checkCaps(t, p.Capabilities)
}

// Specs without capabilities, and commands without a bundle (runc state,
// delete, ...), pass through untouched.
func TestRuncWrapLeavesOthersAlone(t *testing.T) {
	bundle := t.TempDir()
	orig := `{"ociVersion":"1.0.2","process":{"args":["true"]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	wrap(t, "create", "--bundle", bundle, "ctr-2")
	var a, b any
	got, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if json.Unmarshal([]byte(orig), &a) != nil || json.Unmarshal(got, &b) != nil || !jsonEqual(a, b) {
		t.Errorf("config without capabilities changed:\n%s", got)
	}
	if got := wrap(t, "state", "ctr-2"); !slices.Equal(got, []string{"state", "ctr-2"}) {
		t.Errorf("runc state got %q", got)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

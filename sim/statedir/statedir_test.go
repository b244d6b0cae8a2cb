package statedir_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gitopsim/gitopsim/sim/statedir"
)

func open(t *testing.T, o statedir.Options) *statedir.Dir {
	t.Helper()
	d, err := statedir.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestNewDirGetsFormatKeyAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d := open(t, statedir.Options{Dir: dir})
	if len(d.Key()) != 32 || d.KeyFile() != filepath.Join(dir, "state.key") {
		t.Errorf("key %d bytes in %s", len(d.Key()), d.KeyFile())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "gitopsim-state.json")); err != nil || !strings.Contains(string(b), `"format":1`) {
		t.Errorf("format file: %s %v", b, err)
	}
	// A second holder, even in this process (flock is per open file), is
	// refused with the holder's pid.
	_, err := statedir.Open(statedir.Options{Dir: dir})
	if !errors.Is(err, statedir.ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second open: %v", err)
	}
	key := d.Key()
	d.Close()
	again := open(t, statedir.Options{Dir: dir})
	if !bytes.Equal(again.Key(), key) {
		t.Error("the key changed across opens")
	}
}

func TestKeyFileApart(t *testing.T) {
	dir, vault := t.TempDir(), filepath.Join(t.TempDir(), "vault", "gitopsim.key")
	d := open(t, statedir.Options{Dir: dir, KeyFile: vault})
	if _, err := os.Stat(filepath.Join(dir, "state.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key was written into the state dir too: %v", err)
	}
	if b, err := os.ReadFile(vault); err != nil || !bytes.Equal(b, d.Key()) {
		t.Errorf("key file %s: %v", vault, err)
	}
	st, _ := os.Stat(vault)
	if st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st)
	}
}

// writeState makes dir look like it holds encrypted ARM state.
func writeState(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "arm"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "arm", "arm-state.bin"), []byte("GITOPSIM-ARM-STATE-1\n..."), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A state dir of the layout before format 1 (key in the work dir) gets
// its key moved in; without that key it is refused, saying where it was.
func TestLegacyLayout(t *testing.T) {
	dir, wd := t.TempDir(), t.TempDir()
	writeState(t, dir)
	legacy := filepath.Join(wd, "arm", "state.key")
	_, err := statedir.Open(statedir.Options{Dir: dir, LegacyKey: legacy})
	if err == nil || !strings.Contains(err.Error(), legacy) || !strings.Contains(err.Error(), "--state-key") {
		t.Errorf("legacy state without its key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a new key was made for state encrypted with another")
	}
	key := bytes.Repeat([]byte{7}, 32)
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, key, 0o600); err != nil {
		t.Fatal(err)
	}
	d := open(t, statedir.Options{Dir: dir, LegacyKey: legacy})
	if !bytes.Equal(d.Key(), key) {
		t.Error("the legacy key was not moved in")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "state.key")); !bytes.Equal(b, key) {
		t.Error("state.key is not the legacy key")
	}
}

func TestStateWithoutKeyRefused(t *testing.T) {
	dir := t.TempDir()
	d := open(t, statedir.Options{Dir: dir})
	d.Close()
	writeState(t, dir)
	if err := os.Remove(filepath.Join(dir, "state.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := statedir.Open(statedir.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("state without its key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a new key replaced the lost one")
	}
}

func TestFormatChecks(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"newer":   {`{"format": 9}`, "written by a newer gitopsim (format 9; this one reads up to 1)"},
		"garbage": {"not json", "is not a gitopsim state format file"},
		"zero":    {`{"format": 0}`, "is not a gitopsim state format file"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "gitopsim-state.json")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := statedir.Open(statedir.Options{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
		if b, _ := os.ReadFile(p); string(b) != tc.content {
			t.Errorf("%s: the format file was changed", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "state.key")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a key was made in a directory that was refused", name)
		}
	}
}

func TestBadKeyRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "state.key"), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := statedir.Open(statedir.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "5 bytes, want 32") {
		t.Errorf("short key: %v", err)
	}
}

func TestPortsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := open(t, statedir.Options{Dir: dir})
	if got, err := d.Ports(); len(got) != 0 || err != nil {
		t.Errorf("new dir remembers ports %v (%v)", got, err)
	}
	want := map[string]int{"arm-port": 40001, "git-https-port": 40002}
	if err := d.SavePorts(want); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Ports(); len(got) != 2 || got["arm-port"] != 40001 || got["git-https-port"] != 40002 || err != nil {
		t.Errorf("ports = %v (%v)", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ports.json"), []byte("{arm"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Ports(); len(got) != 0 || err == nil || !strings.Contains(err.Error(), "ports.json") {
		t.Errorf("a damaged ports.json: %v, %v", got, err)
	}
}

// TestComponentKey: a component's own key is made once, read back, moved
// in from where an older gitopsim kept it, and never remade for state it
// encrypted.
func TestComponentKey(t *testing.T) {
	dir := t.TempDir()
	path, sealed := filepath.Join(dir, "state.key"), filepath.Join(dir, "state.bin")
	k, err := statedir.ComponentKey(path, "", sealed)
	if err != nil || len(k) != 32 {
		t.Fatalf("new key: %d bytes, %v", len(k), err)
	}
	if again, err := statedir.ComponentKey(path, "", sealed); err != nil || !bytes.Equal(again, k) {
		t.Errorf("read back: %v", err)
	}
	if err := os.WriteFile(sealed, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, "old.key")
	if err := os.Rename(path, legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := statedir.ComponentKey(path, "", sealed); err == nil || !strings.Contains(err.Error(), "restore the key") {
		t.Errorf("state whose key is gone: %v", err)
	}
	if moved, err := statedir.ComponentKey(path, legacy, sealed); err != nil || !bytes.Equal(moved, k) {
		t.Errorf("legacy key moved in: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, k) {
		t.Errorf("the moved key is not kept at %s: %v", path, err)
	}
}

package cluster

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The wrapper passes a binary's path, its environment and its arguments
// through sh untouched: spaces, quotes, $ and backticks included.
func TestDyingWrapperQuotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir with 'quotes' $HOME `x`")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "echo args")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nprintf '%s|' \"$GITOPSIM_T\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper, err := dyingWrapper(filepath.Join(dir, "w.sh"), bin, []string{"GITOPSIM_T=v 'q' $HOME"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wrapper, "one arg", "$two").Output()
	if err != nil {
		t.Fatalf("%s: %v", wrapper, err)
	}
	if want := "v 'q' $HOME|one arg|$two|"; string(out) != want {
		t.Errorf("the wrapped binary saw %q, want %q", out, want)
	}
}

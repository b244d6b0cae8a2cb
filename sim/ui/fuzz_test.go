package ui

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzChangeTxtar reads any file as a prepared change: it never panics,
// and a change it accepts writes or deletes only clean paths inside the
// repo, each once.
func FuzzChangeTxtar(f *testing.F) {
	for _, s := range []string{
		"msg\n-- a.yaml --\nx\n", "-- -gone.yaml --\n", "-- ../x --\n", "-- .GIT/config --\n", "-- a --\n-- a/b --\n",
		"-- a --\nx\n-- a --\ny\n", "", "no files at all\n", "-- /abs --\n", "-- a//b --\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.txtar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, files, err := readChangeTxtar(p)
		if err != nil {
			return
		}
		if len(files) == 0 || len(files) != len(c.Files)+len(c.Deletes) {
			t.Fatalf("%q: %d files for %v and %v", data, len(files), c.Files, c.Deletes)
		}
		for name := range files {
			if err := validPath(name); err != nil {
				t.Fatalf("%q: accepted %q: %v", data, name, err)
			}
		}
		if !slices.IsSorted(c.Files) || !slices.IsSorted(c.Deletes) {
			t.Fatalf("%q: unsorted %v %v", data, c.Files, c.Deletes)
		}
	})
}

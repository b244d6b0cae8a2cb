package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the scenario decoder and validator,
// seeded with the library and the invalid fixtures: they never panic, and
// every error names the file and a position, as `gitopsim validate`
// promises.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"../../scenarios/*.yaml", "testdata/*.yaml", "testdata/invalid/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file's name: %v", err)
			}
			return
		}
		if sc == nil {
			t.Fatal("no scenario and no error")
		}
	})
}

package ui

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/txtar"
)

// Limits of a prepared change.
const (
	maxChangeFiles = 1000
	maxChangeBytes = 16 << 20
)

// Change is a change prepared before a demo and pushed with one click
// (Options.Changes): a directory whose files are written into the repo,
// or a txtar archive (the fixtures' format) whose comment is the commit
// message and in which a file named "-path" deletes path.
type Change struct {
	Name    string   `json:"name"`
	Message string   `json:"message,omitempty"`
	Files   []string `json:"files"`
	Deletes []string `json:"deletes,omitempty"`
}

// changeSet is what a directory of prepared changes holds now: it is read
// at each request, so a presenter can edit a change during the demo.
type changeSet struct {
	Changes []Change `json:"changes"`
	// Problems are entries that are not a change, with why.
	Problems []string `json:"problems,omitempty"`
	files    map[string]map[string]*string
}

// readChanges reads every change of dir: DIR/NAME/… and DIR/NAME.txtar.
func readChanges(dir string) (changeSet, error) {
	set := changeSet{Changes: []Change{}, files: map[string]map[string]*string{}}
	if dir == "" {
		return set, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return set, fmt.Errorf("prepared changes: %w", err)
	}
	for _, e := range entries {
		name, isTxtar := strings.CutSuffix(e.Name(), ".txtar")
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() && !isTxtar {
			continue
		}
		var c Change
		var files map[string]*string
		if e.IsDir() {
			c, files, err = readChangeDir(filepath.Join(dir, e.Name()))
		} else {
			c, files, err = readChangeTxtar(filepath.Join(dir, e.Name()))
		}
		if err != nil {
			set.Problems = append(set.Problems, fmt.Sprintf("%s: %v", e.Name(), err))
			continue
		}
		c.Name = name
		set.Changes = append(set.Changes, c)
		set.files[name] = files
	}
	return set, nil
}

func readChangeDir(dir string) (Change, map[string]*string, error) {
	files := map[string]*string{}
	var c Change
	total := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(b)
		content := string(b)
		return c.add(filepath.ToSlash(rel), &content, files, total)
	})
	if err == nil && len(files) == 0 {
		err = errors.New("no files")
	}
	return c, files, err
}

func readChangeTxtar(file string) (Change, map[string]*string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Change{}, nil, err
	}
	ar := txtar.Parse(b)
	c := Change{Message: strings.TrimSpace(string(ar.Comment))}
	files := map[string]*string{}
	total := 0
	for _, f := range ar.Files {
		total += len(f.Data)
		var content *string
		name, del := strings.CutPrefix(f.Name, "-")
		if !del {
			s := string(f.Data)
			content = &s
		}
		if err := c.add(name, content, files, total); err != nil {
			return c, nil, err
		}
	}
	if len(files) == 0 {
		return c, nil, errors.New("no files")
	}
	return c, files, nil
}

// add checks one file of a change against the limits and the rules of
// validPath; nil content deletes the path.
func (c *Change) add(p string, content *string, files map[string]*string, total int) error {
	if err := validPath(p); err != nil {
		return err
	}
	if len(files) >= maxChangeFiles || total > maxChangeBytes {
		return fmt.Errorf("more than %d files or %d MiB", maxChangeFiles, maxChangeBytes>>20)
	}
	for other := range files {
		switch {
		case other == p:
			return fmt.Errorf("%s appears twice", p)
		case strings.HasPrefix(p, other+"/") || strings.HasPrefix(other, p+"/"):
			return fmt.Errorf("%s and %s: a path cannot be a file and a directory", other, p)
		}
	}
	files[p] = content
	if content == nil {
		c.Deletes = append(c.Deletes, p)
	} else {
		c.Files = append(c.Files, p)
	}
	slices.Sort(c.Files)
	slices.Sort(c.Deletes)
	return nil
}

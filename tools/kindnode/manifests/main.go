// Command manifests writes the manifests and image names that kind's node
// image build bakes into a node, read from the kind module's own source so
// that they follow the kind version the root go.mod pins.
//
// kind keeps them as Go constants in pkg/build/nodeimage (defaultStorageManifest
// is built by concatenating other constants), so this program type-checks
// those files and prints the constants' values; nothing is copied by hand.
//
// Usage: manifests KIND_MODULE_DIR OUT_DIR
//
// It writes OUT_DIR/default-storage.yaml and OUT_DIR/images.env with
// STORAGE_PROVISIONER_IMAGE and STORAGE_HELPER_IMAGE. kindnetd is left out:
// its source is not on the module proxy, so the image uses a static CNI config.
package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: manifests KIND_MODULE_DIR OUT_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(kindDir, out string) error {
	consts, err := constants(filepath.Join(kindDir, "pkg", "build", "nodeimage"), "const_storage.go")
	if err != nil {
		return err
	}
	get := func(name string) (string, error) {
		v, ok := consts[name]
		if !ok {
			return "", fmt.Errorf("kind's nodeimage package has no string constant %s (did the kind version change its layout?)", name)
		}
		return v, nil
	}
	manifest, err := get("defaultStorageManifest")
	if err != nil {
		return err
	}
	var env strings.Builder
	for _, c := range []struct{ key, name string }{
		{"STORAGE_PROVISIONER_IMAGE", "storageProvisionerImage"},
		{"STORAGE_HELPER_IMAGE", "storageHelperImage"},
	} {
		v, err := get(c.name)
		if err != nil {
			return err
		}
		fmt.Fprintf(&env, "%s=%s\n", c.key, v)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "default-storage.yaml"), []byte(manifest), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "images.env"), []byte(env.String()), 0o644)
}

// constants type-checks the named files of one package and returns its
// package-level string constants.
func constants(dir string, files ...string) (map[string]string, error) {
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, f := range files {
		af, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, 0)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, af)
	}
	conf := types.Config{Importer: importer.Default()}
	pkg, err := conf.Check(parsed[0].Name.Name, fset, parsed, nil)
	if err != nil {
		return nil, fmt.Errorf("type-check %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, name := range pkg.Scope().Names() {
		if c, ok := pkg.Scope().Lookup(name).(*types.Const); ok && c.Val().Kind() == constant.String {
			out[name] = constant.StringVal(c.Val())
		}
	}
	return out, nil
}

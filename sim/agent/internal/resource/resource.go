// Package resource parses manifests as fluxd 1.25.4 does
// (pkg/cluster/kubernetes/resource in fluxcd/flux): YAML documents read
// with gopkg.in/yaml.v2, generically, written back out, and read again
// into a minimal object (apiVersion, kind, metadata name, namespace and
// annotations). What fluxd checksums, applies and reports is these
// re-written bytes, and its errors name this package's types, so the
// package keeps fluxd's name for itself: "cannot unmarshal !!seq into
// resource.baseObject" reads the same here as on a real cluster.
//
// It is not a Kubernetes decoder: a document without kind is nothing, a
// kind the API does not serve is still a manifest, and fields beyond
// metadata are not looked at.
package resource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v2"
)

// ClusterScope is the namespace part of a cluster-scoped object's ID.
const ClusterScope = "<cluster>"

// Policy annotation prefixes, as fluxd reads them.
const (
	PolicyPrefix          = "fluxcd.io/"
	AlternatePolicyPrefix = "flux.weave.works/"
	FilterPolicyPrefix    = "filter.fluxcd.io/"
)

// baseObject is what fluxd reads of every manifest (resource.go,
// baseObject).
type baseObject struct {
	source string
	bytes  []byte

	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Meta       struct {
		Namespace   string            `yaml:"namespace"`
		Name        string            `yaml:"name"`
		Annotations map[string]string `yaml:"annotations,omitempty"`
	} `yaml:"metadata"`
}

// rawList is a List's items, each re-read as a manifest of its own.
type rawList struct {
	Items []map[string]interface{}
}

// Manifest is one object from git.
type Manifest struct {
	base baseObject
}

// Source is the file it came from, relative to the repository.
func (m *Manifest) Source() string { return m.base.source }

// Bytes are the document as fluxd re-wrote it: what it checksums and
// applies.
func (m *Manifest) Bytes() []byte { return m.base.bytes }

// APIVersion, Kind, Name and Namespace are the manifest's own.
func (m *Manifest) APIVersion() string { return m.base.APIVersion }

// Kind is the manifest's kind.
func (m *Manifest) Kind() string { return m.base.Kind }

// Name is metadata.name.
func (m *Manifest) Name() string { return m.base.Meta.Name }

// Namespace is metadata.namespace, or the effective one once set.
func (m *Manifest) Namespace() string { return m.base.Meta.Namespace }

// SetNamespace records the effective namespace ("" for cluster scope).
func (m *Manifest) SetNamespace(ns string) { m.base.Meta.Namespace = ns }

// Annotations are metadata.annotations.
func (m *Manifest) Annotations() map[string]string { return m.base.Meta.Annotations }

// ResourceID is "<namespace>:<kind>/<name>", the kind in lower case and
// "<cluster>" for no namespace (resource.go, baseObject.ResourceID).
func (m *Manifest) ResourceID() string {
	ns := m.base.Meta.Namespace
	if ns == "" {
		ns = ClusterScope
	}
	return MakeID(ns, m.base.Kind, m.base.Meta.Name)
}

// MakeID is fluxd's resource.MakeID.
func MakeID(namespace, kind, name string) string {
	return namespace + ":" + strings.ToLower(kind) + "/" + name
}

// Policies reads fluxd's policy annotations (PoliciesFromAnnotations).
func Policies(annotations map[string]string) map[string]string {
	set := map[string]string{}
	for k, v := range annotations {
		var p string
		switch {
		case strings.HasPrefix(k, PolicyPrefix):
			p = strings.TrimPrefix(k, PolicyPrefix)
		case strings.HasPrefix(k, AlternatePolicyPrefix):
			p = strings.TrimPrefix(k, AlternatePolicyPrefix)
		case strings.HasPrefix(k, FilterPolicyPrefix):
			p = "tag." + strings.TrimPrefix(k, FilterPolicyPrefix)
		default:
			continue
		}
		set[p] = v
	}
	return set
}

// Ignore is fluxd's ignore policy: "true" is not applied and not
// collected; "sync_only" is applied but not collected (pkg/policy,
// Set.Has is true only for "true"; collectGarbage also spares
// "sync_only").
func Ignore(annotations map[string]string) (notApplied, notCollected bool) {
	v, ok := Policies(annotations)["ignore"]
	if !ok {
		return false, false
	}
	return v == "true", v == "true" || v == "sync_only"
}

// wrap is github.com/pkg/errors' Wrapf as fluxd prints it.
func wrap(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// ParseMultidoc reads the documents of one file (load.go,
// ParseMultidoc): empty documents and documents without kind are
// nothing, a List gives its items, and an ID seen twice in the file is an
// error. Manifests are keyed by their ID before any namespace defaulting.
func ParseMultidoc(multidoc []byte, source string) (map[string]*Manifest, error) {
	objs := map[string]*Manifest{}
	decoder := yaml.NewDecoder(bytes.NewReader(multidoc))
	add := func(m *Manifest, where string) error {
		id := m.ResourceID()
		if _, ok := objs[id]; ok {
			return fmt.Errorf(`duplicate definition of '%s' (in %s)`, id, where)
		}
		objs[id] = m
		return nil
	}
	for {
		var val interface{}
		err := decoder.Decode(&val)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return objs, wrap(err, "scanning multidoc from %q", source)
		}
		b, err := yaml.Marshal(val)
		if err != nil {
			return nil, wrap(err, "parsing YAML doc from %q", source)
		}
		obj, list, err := unmarshalObject(source, b)
		if err != nil {
			return nil, wrap(err, "parsing YAML doc from %q", source)
		}
		switch {
		case list != nil:
			for _, item := range list {
				if err := add(item, source); err != nil {
					return nil, err
				}
			}
		case obj != nil:
			if err := add(obj, source); err != nil {
				return nil, err
			}
		}
	}
}

// unmarshalObject reads one document: nil for no kind, the items for a
// kind ending in List (resource.go, unmarshalKind: "not bullet proof",
// a custom kind named *List is read as a list too).
func unmarshalObject(source string, b []byte) (*Manifest, []*Manifest, error) {
	base := baseObject{source: source, bytes: b}
	if err := yaml.Unmarshal(b, &base); err != nil {
		return nil, nil, err
	}
	switch {
	case strings.HasSuffix(base.Kind, "List"):
		var raw rawList
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, nil, err
		}
		items := []*Manifest{}
		for _, item := range raw.Items {
			ib, err := yaml.Marshal(item)
			if err != nil {
				continue // fluxd drops the error (unmarshalList's is ignored)
			}
			m, _, err := unmarshalObject(source, ib)
			if err != nil || m == nil {
				// fluxd keeps a nil item here and would panic on it;
				// the simulation skips it.
				continue
			}
			items = append(items, m)
		}
		return nil, items, nil
	case base.Kind == "":
		return nil, nil, nil
	}
	return &Manifest{base: base}, nil, nil
}

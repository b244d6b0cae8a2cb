package engine

import (
	"fmt"
	"strings"
)

// This file resolves the "field" of a condition: the built-in fields of
// definition-structure-policy-rule.md ("name", "fullName", "kind", "type",
// "location", "id", "identity.type", "tags", "tags['x']", "tags.x",
// "tags[x]") and property aliases.

// fieldRef is a parsed field name.
type fieldRef struct {
	raw   string
	kind  fieldKind
	tag   string // for fieldTag
	alias *alias // for fieldAlias
}

type fieldKind uint8

const (
	fieldAlias fieldKind = iota
	fieldName
	fieldFullName
	fieldKindName
	fieldType
	fieldLocation
	fieldID
	fieldIdentityType
	fieldTags
	fieldTag
)

// builtinFields maps the fixed field names (lower-case) to their kinds.
var builtinFields = map[string]fieldKind{
	"name":          fieldName,
	"fullname":      fieldFullName,
	"kind":          fieldKindName,
	"type":          fieldType,
	"location":      fieldLocation,
	"id":            fieldID,
	"identity.type": fieldIdentityType,
	"tags":          fieldTags,
}

// envelopeFields are the fields that read a top-level member as it is.
var envelopeFields = map[fieldKind]string{
	fieldName: "name", fieldType: "type", fieldKindName: "kind",
	fieldLocation: "location", fieldID: "id", fieldTags: "tags",
}

// parseField reads a field name. Errors are *Error without a path.
func parseField(name, definition string) (*fieldRef, error) {
	if k, ok := builtinFields[strings.ToLower(name)]; ok {
		return &fieldRef{raw: name, kind: k}, nil
	}
	if tag, ok := parseTagField(name); ok {
		return &fieldRef{raw: name, kind: fieldTag, tag: tag}, nil
	}
	if !strings.Contains(name, "/") {
		return nil, &Error{Code: CodeInvalidPolicyAlias,
			Message: fmt.Sprintf("The policy definition '%s' rule is invalid. The 'field' property '%s' of the policy rule is neither a supported field nor an alias.", definition, name)}
	}
	a, err := lookupAlias(name, definition)
	if err != nil {
		return nil, err
	}
	return &fieldRef{raw: name, kind: fieldAlias, alias: a}, nil
}

// parseTagField reads tags['name'] (a doubled quote escapes a quote), tags[name] and
// tags.name; the prefix is case-insensitive.
func parseTagField(name string) (string, bool) {
	if len(name) < 5 || !strings.EqualFold(name[:4], "tags") {
		return "", false
	}
	rest := name[4:]
	switch {
	case strings.HasPrefix(rest, "['") && strings.HasSuffix(rest, "']") && len(rest) >= 4:
		inner := rest[2 : len(rest)-2]
		// Inside the quotes a lone quote is invalid and '' is one quote.
		if strings.Count(strings.ReplaceAll(inner, "''", ""), "'") != 0 {
			return "", false
		}
		return strings.ReplaceAll(inner, "''", "'"), inner != ""
	case strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") && len(rest) > 2:
		return rest[1 : len(rest)-1], true
	case strings.HasPrefix(rest, ".") && len(rest) > 1:
		return rest[1:], true
	}
	return "", false
}

// item is one selected value: present is false when the property is
// missing.
type item struct {
	value   any
	present bool
}

// fieldValue is what a field selects in a resource: one value, or for
// [*] aliases a collection.
type fieldValue struct {
	multi bool
	one   item
	items []item
	path  string // JSON path, for evaluation details
}

// values returns the selected values as field() returns them: the value
// (or "" when missing, per author-policies-for-arrays.md) or an array of
// the present members of a collection.
func (f fieldValue) values() any {
	if !f.multi {
		if !f.one.present {
			return ""
		}
		return f.one.value
	}
	out := []any{}
	for _, it := range f.items {
		if it.present {
			out = append(out, it.value)
		}
	}
	return out
}

// binding is the array member a count expression is enumerating: inside
// its where condition, aliases through path select from value only.
type binding struct {
	path  []pathSeg // the counted alias path, ending with [*]; nil for value count
	alias string    // the counted alias as written, for current()
	name  string    // value count index name (lower-case)
	value any
}

// resolveField selects a field's value in r.
func resolveField(ref *fieldRef, r Resource, bindings []binding) fieldValue {
	get := func(key string) fieldValue {
		_, v, ok := lookupFold(r, key)
		return fieldValue{one: item{v, ok && v != nil}, path: key}
	}
	if key, ok := envelopeFields[ref.kind]; ok {
		return get(key)
	}
	switch ref.kind {
	case fieldFullName:
		if id, ok := parseResourceID(r.ID()); ok && len(id.names) > 0 {
			return fieldValue{one: item{strings.Join(id.names, "/"), true}, path: "fullName"}
		}
		return get("name")
	case fieldIdentityType:
		return selectPath(Resource(r), []pathSeg{{name: "identity"}, {name: "type"}})
	case fieldTag:
		fv := fieldValue{path: "tags['" + ref.tag + "']"}
		if _, tags, ok := lookupFold(r, "tags"); ok {
			if m, ok := tags.(map[string]any); ok {
				if _, v, ok := lookupFold(m, ref.tag); ok && v != nil {
					fv.one = item{v, true}
				}
			}
		}
		return fv
	}
	a := ref.alias
	if !strings.EqualFold(a.typ, r.Type()) && !boundAlias(a, bindings) {
		// An alias of another type selects nothing in this resource.
		return fieldValue{multi: a.wildcard(), path: a.jsonPath()}
	}
	// Inside count, the counted array is the current member only.
	for i := len(bindings) - 1; i >= 0; i-- {
		b := bindings[i]
		if b.path == nil || !hasPathPrefix(a.path, b.path) {
			continue
		}
		rest := a.path[len(b.path):]
		fv := selectPathFrom(b.value, rest)
		fv.path = a.jsonPath()
		if !fv.multi {
			fv = fieldValue{multi: true, items: []item{fv.one}, path: fv.path}
		}
		return fv
	}
	fv := selectPath(r, a.path)
	fv.path = a.jsonPath()
	return fv
}

func boundAlias(a *alias, bindings []binding) bool {
	for _, b := range bindings {
		if b.path != nil && hasPathPrefix(a.path, b.path) {
			return true
		}
	}
	return false
}

func hasPathPrefix(p, prefix []pathSeg) bool {
	if len(p) < len(prefix) {
		return false
	}
	for i, s := range prefix {
		if !strings.EqualFold(s.name, p[i].name) || s.wildcard != p[i].wildcard {
			return false
		}
	}
	return true
}

// selectPath walks a property path through a resource.
func selectPath(r Resource, p []pathSeg) fieldValue {
	return selectPathFrom(map[string]any(r), p)
}

// selectPathFrom walks a property path from a value. A [*] step expands an
// array into its members; a missing array gives an empty collection.
func selectPathFrom(root any, p []pathSeg) fieldValue {
	cur := []item{{root, true}}
	multi := false
	for _, s := range p {
		var next []item
		for _, it := range cur {
			obj, ok := it.value.(map[string]any)
			if !it.present || !ok {
				if !s.wildcard {
					next = append(next, item{})
				}
				continue
			}
			_, v, found := lookupFold(obj, s.name)
			if !s.wildcard {
				next = append(next, item{v, found && v != nil})
				continue
			}
			if arr, ok := v.([]any); ok {
				for _, e := range arr {
					next = append(next, item{e, e != nil})
				}
			}
		}
		if s.wildcard {
			multi = true
		}
		cur = next
	}
	if multi {
		return fieldValue{multi: true, items: cur}
	}
	if len(cur) == 0 {
		return fieldValue{}
	}
	return fieldValue{one: cur[0]}
}

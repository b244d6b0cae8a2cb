package conformance

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Sentinel values a request carries in read-only members. They are unlike
// anything a server makes up, so finding one in a response means the
// server stored a value it must have ignored.
const (
	SentinelString = "conformance-readonly-sentinel"
	SentinelTime   = "2001-02-03T04:05:06Z"
	SentinelInt    = 424242
	// SentinelKey is the member name used in read-only maps.
	SentinelKey = "conformanceReadonlySentinel"
)

// ReadOnlySentinels builds the part of a request body that sets every
// read-only member s defines (and every member beneath a read-only object)
// to a sentinel, for merging into an otherwise valid body with Merge.
// Booleans are left out: a sentinel true or false could be a real value.
// It returns nil when s has no read-only member.
func ReadOnlySentinels(s *Schema) map[string]any {
	v, ok := sentinels(s, false)
	if !ok {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

func sentinels(s *Schema, inReadOnly bool) (any, bool) {
	if s == nil {
		return nil, false
	}
	ro := inReadOnly || s.ReadOnly
	switch s.Kind {
	case Object:
		out := map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
			if v, ok := sentinels(s.Properties[k], ro); ok {
				out[k] = v
			}
		}
		if ro && s.AdditionalProperties != nil {
			if v, ok := sentinels(s.AdditionalProperties, true); ok {
				out[SentinelKey] = v
			}
		}
		return out, len(out) > 0
	case Array:
		if v, ok := sentinels(s.Items, ro); ok {
			return []any{v}, true
		}
	case String:
		if !ro {
			return nil, false
		}
		if s.Format == FormatDateTime {
			return SentinelTime, true
		}
		return SentinelString, true
	case Integer:
		if ro {
			return SentinelInt, true
		}
	}
	return nil, false
}

// Merge copies src into dst, merging objects member by member; src wins
// everywhere else.
func Merge(dst, src map[string]any) {
	for k, v := range src {
		sm, sok := v.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			Merge(dm, sm)
			continue
		}
		dst[k] = v
	}
}

// FindSentinels lists, as findings, the places in a decoded response where
// a sentinel value or key appears.
func FindSentinels(v any) []Finding {
	var out []Finding
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if k == SentinelKey {
					out = append(out, Finding{Pointer: Pointer(ptr, k), Rule: RuleReadOnly, Detail: "the read-only map entry sent in the request was stored"})
				}
				walk(Pointer(ptr, k), x[k])
			}
		case []any:
			for i, item := range x {
				walk(Pointer(ptr, i), item)
			}
		case string:
			if x == SentinelString || x == SentinelTime {
				out = append(out, Finding{Pointer: ptr, Rule: RuleReadOnly, Detail: fmt.Sprintf("the read-only value %q sent in the request was stored", x)})
			}
		case json.Number:
			if x.String() == fmt.Sprint(SentinelInt) {
				out = append(out, Finding{Pointer: ptr, Rule: RuleReadOnly, Detail: fmt.Sprintf("the read-only value %d sent in the request was stored", SentinelInt)})
			}
		}
	}
	walk("", v)
	return out
}

// RoundTrip lists, as findings, the values of sent that got does not hold
// at the same place. Objects are compared member by member (members the
// server adds are fine); arrays and scalars must be equal. Pointers in skip
// (and everything beneath them) are not compared.
func RoundTrip(sent, got any, skip ...string) []Finding {
	var out []Finding
	skipped := func(ptr string) bool {
		return slices.ContainsFunc(skip, func(p string) bool { return ptr == p || strings.HasPrefix(ptr, p+"/") })
	}
	var walk func(ptr string, s, g any)
	walk = func(ptr string, s, g any) {
		if skipped(ptr) {
			return
		}
		if sm, ok := s.(map[string]any); ok {
			gm, ok := g.(map[string]any)
			if !ok {
				out = append(out, Finding{Pointer: ptr, Rule: RuleRoundTrip, Detail: fmt.Sprintf("sent an object, got %s", jsonType(g))})
				return
			}
			for _, k := range slices.Sorted(maps.Keys(sm)) {
				gv, ok := gm[k]
				if !ok && skipped(Pointer(ptr, k)) {
					continue
				}
				if !ok {
					out = append(out, Finding{Pointer: Pointer(ptr, k), Rule: RuleRoundTrip, Detail: "sent, but missing from the response"})
					continue
				}
				walk(Pointer(ptr, k), sm[k], gv)
			}
			return
		}
		if !sameJSON(s, g) {
			out = append(out, Finding{Pointer: ptr, Rule: RuleRoundTrip, Detail: fmt.Sprintf("sent %s, got %s", compact(s), compact(g))})
		}
	}
	walk("", sent, got)
	return out
}

// sameJSON compares two values by their JSON encoding, so that a sent int
// equals a received json.Number.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	va, err1 := Decode(ja)
	vb, err2 := Decode(jb)
	if err1 != nil || err2 != nil {
		return string(ja) == string(jb)
	}
	return reflect.DeepEqual(va, vb)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

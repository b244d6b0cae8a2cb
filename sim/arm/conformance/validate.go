package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rule names what a finding breaks.
type Rule string

// Rules of the validator and of the suite.
const (
	// RuleJSON: the body is not a JSON document.
	RuleJSON Rule = "json"
	// RuleUnknown: a member the definition does not define (for example a
	// member of a newer api-version) and that no additionalProperties allows.
	RuleUnknown Rule = "unknown-member"
	// RuleRequired: a required member is missing.
	RuleRequired Rule = "required"
	// RuleType: the JSON type differs from the schema's.
	RuleType Rule = "type"
	// RuleFormat: a string or integer breaks the schema's format.
	RuleFormat Rule = "format"
	// RuleEnum: a value outside the enum. A violation when the enum is not
	// modelAsString; a note when it is.
	RuleEnum Rule = "enum"
	// RuleNullable: null where the schema does not set x-nullable.
	RuleNullable Rule = "x-nullable"
	// RuleReadOnly: a read-only value sent in a request was stored, or the
	// request carrying it was refused.
	RuleReadOnly Rule = "read-only"
	// RuleRoundTrip: a writable value sent in a PUT or PATCH did not come
	// back in the response or the next GET.
	RuleRoundTrip Rule = "round-trip"
	// RuleStatus: a status code the operation does not document.
	RuleStatus Rule = "status"
	// RuleHeader: a header the operation needs (LRO, content type) is
	// missing or wrong.
	RuleHeader Rule = "header"
	// RuleBody: a body where the operation documents none.
	RuleBody Rule = "body"
)

// Finding is one place where a document departs from its schema.
type Finding struct {
	// Pointer is the RFC 6901 JSON pointer of the offending value; "" is
	// the whole document.
	Pointer string
	Rule    Rule
	Detail  string
}

// String renders "pointer: rule: detail", with "/" for the whole document.
func (f Finding) String() string {
	p := f.Pointer
	if p == "" {
		p = "/"
	}
	return p + ": " + string(f.Rule) + ": " + f.Detail
}

// Result is what validating one document found.
type Result struct {
	// Violations break the schema.
	Violations []Finding
	// Notes are legal but worth knowing: values outside a modelAsString
	// enum.
	Notes []Finding
}

func (r *Result) fail(ptr string, rule Rule, format string, args ...any) {
	r.Violations = append(r.Violations, Finding{Pointer: ptr, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

func (r *Result) note(ptr string, rule Rule, format string, args ...any) {
	r.Notes = append(r.Notes, Finding{Pointer: ptr, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

// Decode parses a JSON document keeping numbers exact (json.Number), as
// Validate needs them.
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON value")
	}
	return v, nil
}

// Validate checks the JSON document doc against s.
func Validate(doc []byte, s *Schema) Result {
	v, err := Decode(doc)
	if err != nil {
		var r Result
		r.fail("", RuleJSON, "not a JSON document: %v", err)
		return r
	}
	return ValidateValue(v, s)
}

// ValidateValue checks a decoded document (from Decode, or any value that
// holds json.Number, float64 or int for numbers) against s.
func ValidateValue(v any, s *Schema) Result {
	var r Result
	r.walk("", v, s)
	return r
}

// Pointer appends a member name or index to a JSON pointer, escaping it.
func Pointer(ptr string, token any) string {
	t := fmt.Sprint(token)
	t = strings.ReplaceAll(t, "~", "~0")
	t = strings.ReplaceAll(t, "/", "~1")
	return ptr + "/" + t
}

func (r *Result) walk(ptr string, v any, s *Schema) {
	if s == nil {
		return
	}
	if v == nil {
		if !s.Nullable {
			r.fail(ptr, RuleNullable, "null, but the schema is not x-nullable (want %s)", kindName(s))
		}
		return
	}
	switch s.Kind {
	case "":
	case Object:
		m, ok := v.(map[string]any)
		if !ok {
			r.fail(ptr, RuleType, "%s, want object", jsonType(v))
			return
		}
		for _, name := range s.Required {
			if _, ok := m[name]; !ok {
				r.fail(Pointer(ptr, name), RuleRequired, "missing required member %q%s", name, defined(s))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			switch ps, ok := s.Properties[k]; {
			case ok:
				r.walk(Pointer(ptr, k), m[k], ps)
			case s.AdditionalProperties != nil:
				r.walk(Pointer(ptr, k), m[k], s.AdditionalProperties)
			case s.FreeForm:
			default:
				r.fail(Pointer(ptr, k), RuleUnknown, "member %q is not defined%s", k, defined(s))
			}
		}
	case Array:
		a, ok := v.([]any)
		if !ok {
			r.fail(ptr, RuleType, "%s, want array", jsonType(v))
			return
		}
		for i, item := range a {
			r.walk(Pointer(ptr, i), item, s.Items)
		}
	case String:
		str, ok := v.(string)
		if !ok {
			r.fail(ptr, RuleType, "%s, want string", jsonType(v))
			return
		}
		if s.Format != "" {
			if err := checkFormat(s.Format, str); err != nil {
				r.fail(ptr, RuleFormat, "%q is not %s: %v", str, s.Format, err)
			}
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
			if s.ModelAsString {
				r.note(ptr, RuleEnum, "%q is outside the enum %v (legal: modelAsString)", str, s.Enum)
			} else {
				r.fail(ptr, RuleEnum, "%q is not one of %v", str, s.Enum)
			}
		}
	case Integer:
		n, ok := integral(v)
		if !ok {
			r.fail(ptr, RuleType, "%s, want integer", jsonType(v))
			return
		}
		switch {
		case s.Format == FormatInt32 && (n.Cmp(math.MinInt32) < 0 || n.Cmp(math.MaxInt32) > 0):
			r.fail(ptr, RuleFormat, "%s is out of the int32 range", n)
		case s.Format == FormatInt64 && !n.fitsInt64:
			r.fail(ptr, RuleFormat, "%s is out of the int64 range", n)
		}
	case Number:
		if _, ok := number(v); !ok {
			r.fail(ptr, RuleType, "%s, want number", jsonType(v))
		}
	case Boolean:
		if _, ok := v.(bool); !ok {
			r.fail(ptr, RuleType, "%s, want boolean", jsonType(v))
		}
	}
}

func defined(s *Schema) string {
	if s.Ref == "" {
		return ""
	}
	return " by " + s.Ref
}

func kindName(s *Schema) string {
	if s.Kind == "" {
		return "any value"
	}
	return string(s.Kind)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64, float32, int, int64, int32:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// bigInt is an integral JSON number: its text and whether it fits int64.
type bigInt struct {
	text      string
	value     int64
	fitsInt64 bool
}

func (b bigInt) String() string { return b.text }

// Cmp compares b with n; values outside int64 compare by sign.
func (b bigInt) Cmp(n int64) int {
	if !b.fitsInt64 {
		if strings.HasPrefix(b.text, "-") {
			return -1
		}
		return 1
	}
	switch {
	case b.value < n:
		return -1
	case b.value > n:
		return 1
	}
	return 0
}

var integerText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// integral reports whether v is an integral JSON number. Integers must be
// written without a fraction or exponent, as servers that serialise
// integers do.
func integral(v any) (bigInt, bool) {
	switch n := v.(type) {
	case json.Number:
		t := n.String()
		if !integerText.MatchString(t) {
			return bigInt{}, false
		}
		i, err := strconv.ParseInt(t, 10, 64)
		return bigInt{text: t, value: i, fitsInt64: err == nil}, true
	case int:
		return bigInt{text: strconv.Itoa(n), value: int64(n), fitsInt64: true}, true
	case int64:
		return bigInt{text: strconv.FormatInt(n, 10), value: n, fitsInt64: true}, true
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) {
			return bigInt{}, false
		}
		return bigInt{text: strconv.FormatFloat(n, 'f', -1, 64), value: int64(n), fitsInt64: math.Abs(n) < 1<<63}, true
	}
	return bigInt{}, false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// dateTimeText is RFC 3339's date-time: a zone (Z or an offset) is part of
// it, and fractional seconds may have any number of digits.
var dateTimeText = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

func checkFormat(format, s string) error {
	switch format {
	case FormatDateTime:
		m := dateTimeText.FindStringSubmatch(s)
		if m == nil {
			return fmt.Errorf("want RFC 3339 date-time with a zone, such as 2006-01-02T15:04:05Z")
		}
		zone := m[4]
		if zone == "z" || zone == "Z" {
			zone = "Z"
		}
		if _, err := time.Parse(time.RFC3339, m[1]+"T"+m[2]+zone); err != nil {
			return err
		}
	case FormatByte:
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return err
		}
	case FormatURI:
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if !u.IsAbs() {
			return fmt.Errorf("not an absolute URI")
		}
	case FormatARMID:
		if !strings.HasPrefix(s, "/") || len(strings.Split(strings.Trim(s, "/"), "/"))%2 != 0 {
			return fmt.Errorf("not an ARM resource id (/subscriptions/..., pairs of segments)")
		}
	}
	return nil
}

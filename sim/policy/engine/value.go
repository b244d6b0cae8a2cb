package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The engine works on one value model, the one ARM's JSON maps onto:
// nil, bool, string, int64, float64, []any and map[string]any. Values that
// come from callers are normalised into it first, so an integer decoded by
// encoding/json as float64 and one written as an int compare the same way.

// decodeJSON decodes one JSON document into the engine's value model.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid character after top-level value")
	}
	return normalize(v), nil
}

// normalize converts a value built by encoding/json or by Go code into the
// engine's value model. Integral numbers become int64 because ARM's JSON has
// one integer type and comparisons must not depend on how a caller decoded.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64:
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return normalize(f)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case float32:
		return normalize(float64(x))
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out
	case json.RawMessage:
		d, err := decodeJSON(x)
		if err != nil {
			return string(x)
		}
		return d
	default:
		// Anything else (a struct, say) goes through JSON, as ARM would see it.
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		d, err := decodeJSON(b)
		if err != nil {
			return string(b)
		}
		return d
	}
}

// typeName is the name ARM's expression language gives a value's type, as
// it appears in messages such as "is type 'Array', expected type is 'String'".
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case bool:
		return "Boolean"
	case string:
		return "String"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case []any:
		return "Array"
	case map[string]any:
		return "Object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// stringForm is how a scalar reads when a policy condition compares it with
// a string: booleans as "true"/"false", numbers in invariant culture.
func stringForm(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	default:
		return "", false
	}
}

// toJSONString renders a value as compact JSON, as ARM's string() does for
// arrays and objects.
func toJSONString(v any) string {
	b, err := marshalSorted(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// marshalSorted marshals with map keys sorted (encoding/json already sorts
// them) and without HTML escaping, which ARM does not do.
func marshalSorted(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// deepCopy copies a value of the engine's model so that rendering never
// aliases a definition's template.
func deepCopy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	default:
		return x
	}
}

// lookupFold finds a key in an object the way ARM does: an exact match
// first, then a case-insensitive one.
func lookupFold(m map[string]any, key string) (string, any, bool) {
	if v, ok := m[key]; ok {
		return key, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return k, v, true
		}
	}
	return "", nil, false
}

// sortedKeys returns an object's keys in a stable order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// policyEquals is equality as policy conditions see it: strings compare
// case-insensitively (InvariantCultureIgnoreCase), a boolean or number
// equals its string form, numbers compare by value, and a missing value
// equals the empty string. norm, when not nil, rewrites strings on both
// sides first (location and readonly normalisation).
func policyEquals(a, b any, norm func(string) string) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !policyEquals(x[i], y[i], norm) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			_, yv, ok := lookupFold(y, k)
			if !ok || !policyEquals(xv, yv, norm) {
				return false
			}
		}
		return true
	}
	if _, ok := b.([]any); ok {
		return false
	}
	if _, ok := b.(map[string]any); ok {
		return false
	}
	if an, ok := number(a); ok {
		if bn, ok := number(b); ok {
			return an == bn
		}
	}
	as, aok := stringForm(a)
	bs, bok := stringForm(b)
	if !aok || !bok {
		return false
	}
	if norm != nil {
		as, bs = norm(as), norm(bs)
	}
	return strings.EqualFold(as, bs)
}

// number reports a numeric value as float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// armEquals is the equals() template function: deep equality, strings
// compared case-sensitively, numbers by value.
func armEquals(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !armEquals(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !armEquals(xv, yv) {
				return false
			}
		}
		return true
	}
	if an, ok := number(a); ok {
		bn, ok := number(b)
		return ok && an == bn
	}
	return a == b
}

// parseDateTime reads the ISO 8601 forms ARM and policy accept.
func parseDateTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

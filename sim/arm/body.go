package arm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// readBody reads a JSON request body, bounded, and checks its media type.
func readBody(c *call) (json.RawMessage, *Error) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "text/json") {
			return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
				"The content media type '%s' is not supported. Only 'application/json' is supported.", ct)
		}
	}
	b, err := io.ReadAll(io.LimitReader(c.r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest(CodeInvalidRequestContent, "The request content could not be read: %v.", err)
	}
	if len(b) > maxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, CodeRequestEntityTooLarge, "The request content exceeds the maximum size of %d bytes.", maxBodyBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, badRequest(CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: the body is empty; a JSON object is required.")
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		return nil, badRequest(CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: %s.", jsonErrorText(b, err))
	}
	return b, nil
}

// jsonErrorText words a JSON syntax error with its line and column.
func jsonErrorText(b []byte, err error) string {
	var se *json.SyntaxError
	if e, ok := err.(*json.SyntaxError); ok {
		se = e
	}
	if se == nil {
		return err.Error()
	}
	line, col := 1, 1
	for _, ch := range b[:min(int(se.Offset), len(b))] {
		if ch == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("%s (line %d, position %d)", se.Error(), line, col)
}

// object is a JSON object being decoded field by field, so that every
// error names the field's path and unknown members are refused, as ARM's
// own deserializer does. Member names match case-insensitively.
type object struct {
	path     string
	typeName string
	m        map[string]json.RawMessage
	used     map[string]bool
}

func parseObject(path, typeName string, raw json.RawMessage) (*object, *Error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		where := path
		if where == "" {
			where = "the request body"
		}
		return nil, badRequest(CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: %s must be a JSON object.", where)
	}
	return &object{path: path, typeName: typeName, m: m, used: map[string]bool{}}, nil
}

func (o *object) child(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// get finds a member by case-insensitive name; JSON null counts as absent.
func (o *object) get(key string) (json.RawMessage, bool) {
	for k, v := range o.m {
		if strings.EqualFold(k, key) {
			o.used[k] = true
			if string(v) == "null" {
				return nil, false
			}
			return v, true
		}
	}
	return nil, false
}

// ignore marks read-only members as known: clients that GET, change and
// PUT back send them, and ARM ignores them.
func (o *object) ignore(keys ...string) {
	for _, k := range keys {
		o.get(k)
	}
}

func typeError(path, want string) *Error {
	e := badRequest(CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: '%s' must be %s.", path, want)
	e.Target = path
	return e
}

func (o *object) str(key string) (string, bool, *Error) {
	raw, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, typeError(o.child(key), "a string")
	}
	return s, true, nil
}

// boolish accepts true/false and the strings "true"/"false" (any case):
// Azure Policy templates send enableHelmOperator as a string.
func (o *object) boolish(key string) (bool, bool, *Error) {
	raw, ok := o.get(key)
	if !ok {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseBool(strings.ToLower(s)); err == nil && (strings.EqualFold(s, "true") || strings.EqualFold(s, "false")) {
			return v, true, nil
		}
	}
	return false, false, typeError(o.child(key), `a boolean (true or false, or the string "true" or "false")`)
}

func (o *object) obj(key, typeName string) (*object, bool, *Error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false, typeError(o.child(key), "a JSON object")
	}
	sub, e := parseObject(o.child(key), typeName, raw)
	return sub, e == nil, e
}

// strMap decodes an object of string values; null values are dropped.
func (o *object) strMap(key string) (map[string]string, bool, *Error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	var m map[string]*string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false, typeError(o.child(key), "an object of string values")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out, true, nil
}

// unknown refuses the first member nobody asked for, in name order.
func (o *object) unknown() *Error {
	var left []string
	for k := range o.m {
		if !o.used[k] {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	slices.Sort(left)
	e := badRequest(CodeInvalidRequestContent, "The request content was invalid and could not be deserialized: Could not find member '%s' on object of type '%s'. Path '%s'.",
		left[0], o.typeName, o.child(left[0]))
	e.Target = o.child(left[0])
	return e
}

// trackedBody starts decoding the body of a tracked resource (one with a
// location and tags): it reads and logs the body, marks the read-only
// members, and takes location and tags. The caller takes its own members,
// then calls finish, which refuses unknown members and a missing location.
func trackedBody(c *call, typeName string, readOnly ...string) (o *object, loc string, tags map[string]string, e *Error) {
	raw, e := readBody(c)
	if e != nil {
		return nil, "", nil, e
	}
	c.logBody = raw
	if o, e = parseObject("", typeName, raw); e != nil {
		return nil, "", nil, e
	}
	o.ignore(readOnly...)
	if loc, _, e = o.str("location"); e != nil {
		return nil, "", nil, e
	}
	if tags, _, e = o.strMap("tags"); e != nil {
		return nil, "", nil, e
	}
	return o, loc, tags, nil
}

// finish ends decoding of a tracked resource's body.
func (o *object) finish(loc string) *Error {
	if e := o.unknown(); e != nil {
		return e
	}
	if strings.TrimSpace(loc) == "" {
		return badRequest(CodeLocationRequired, "The location property is required for this definition.")
	}
	return nil
}

package engine

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// function is one entry of the template function table.
type function struct {
	name     string // canonical spelling, for messages
	min, max int    // argument counts; max < 0 means variadic
	lang     where  // where the function is available
	call     func(s *scope, args []any) (any, error)
	lazy     func(s *scope, args []node) (any, error) // for if(): arguments evaluated on demand
	// unsupported, when set, says why the engine refuses a real ARM function.
	unsupported string
}

func (f *function) checkArity(name string, n int) error {
	switch {
	case f.max >= 0 && f.min == f.max && n != f.min:
		return fmt.Errorf("the template language function '%s' must have %d parameter(s), got %d: %w", name, f.min, n, ErrEvaluation)
	case n < f.min:
		return fmt.Errorf("the template language function '%s' must have at least %d parameter(s), got %d: %w", name, f.min, n, ErrEvaluation)
	case f.max >= 0 && n > f.max:
		return fmt.Errorf("the template language function '%s' must have at most %d parameter(s), got %d: %w", name, f.max, n, ErrEvaluation)
	}
	return nil
}

// functions is the template function table, keyed by lower-case name (ARM
// function names are case-insensitive). It is constant data, not
// configuration. Availability follows the policy docs: resourceId() and
// variables() exist only in templates; field() and current() only in rules.
var functions = map[string]*function{}

func init() {
	for _, f := range []*function{
		{name: "parameters", min: 1, max: 1, lang: inBoth, call: fnParameters},
		{name: "variables", min: 1, max: 1, lang: inTemplate, call: fnVariables},
		{name: "field", min: 1, max: 1, lang: inPolicy, call: fnField},
		{name: "current", min: 0, max: 1, lang: inPolicy, call: fnCurrent},
		{name: "concat", min: 1, max: -1, lang: inBoth, call: fnConcat},
		{name: "toLower", min: 1, max: 1, lang: inBoth, call: stringFn(strings.ToLower)},
		{name: "toUpper", min: 1, max: 1, lang: inBoth, call: stringFn(strings.ToUpper)},
		{name: "trim", min: 1, max: 1, lang: inBoth, call: stringFn(strings.TrimSpace)},
		{name: "contains", min: 2, max: 2, lang: inBoth, call: fnContains},
		{name: "equals", min: 2, max: 2, lang: inBoth, call: func(_ *scope, a []any) (any, error) { return armEquals(a[0], a[1]), nil }},
		{name: "if", min: 3, max: 3, lang: inBoth, lazy: fnIf},
		{name: "and", min: 2, max: -1, lang: inBoth, call: boolFold(true)},
		{name: "or", min: 2, max: -1, lang: inBoth, call: boolFold(false)},
		{name: "not", min: 1, max: 1, lang: inBoth, call: fnNot},
		{name: "empty", min: 1, max: 1, lang: inBoth, call: fnEmpty},
		{name: "string", min: 1, max: 1, lang: inBoth, call: fnString},
		{name: "bool", min: 1, max: 1, lang: inBoth, call: fnBool},
		{name: "int", min: 1, max: 1, lang: inBoth, call: fnInt},
		{name: "json", min: 1, max: 1, lang: inBoth, call: fnJSON},
		{name: "length", min: 1, max: 1, lang: inBoth, call: fnLength},
		{name: "replace", min: 3, max: 3, lang: inBoth, call: fnReplace},
		{name: "split", min: 2, max: 2, lang: inBoth, call: fnSplit},
		{name: "first", min: 1, max: 1, lang: inBoth, call: edgeFn(true)},
		{name: "last", min: 1, max: 1, lang: inBoth, call: edgeFn(false)},
		{name: "format", min: 1, max: -1, lang: inBoth, call: fnFormat},
		{name: "substring", min: 2, max: 3, lang: inBoth, call: fnSubstring},
		{name: "startsWith", min: 2, max: 2, lang: inBoth, call: foldPredicate(hasPrefixFold)},
		{name: "endsWith", min: 2, max: 2, lang: inBoth, call: foldPredicate(hasSuffixFold)},
		{name: "indexOf", min: 2, max: 2, lang: inBoth, call: foldIndex(false)},
		{name: "lastIndexOf", min: 2, max: 2, lang: inBoth, call: foldIndex(true)},
		{name: "coalesce", min: 1, max: -1, lang: inBoth, call: fnCoalesce},
		{name: "createArray", min: 0, max: -1, lang: inBoth, call: func(_ *scope, a []any) (any, error) { return append([]any{}, a...), nil }},
		{name: "createObject", min: 0, max: -1, lang: inBoth, call: fnCreateObject},
		{name: "take", min: 2, max: 2, lang: inBoth, call: sliceFn(true)},
		{name: "skip", min: 2, max: 2, lang: inBoth, call: sliceFn(false)},
		{name: "tryGet", min: 2, max: -1, lang: inBoth, call: fnTryGet},
		{name: "less", min: 2, max: 2, lang: inBoth, call: compareFn(func(c int) bool { return c < 0 })},
		{name: "lessOrEquals", min: 2, max: 2, lang: inBoth, call: compareFn(func(c int) bool { return c <= 0 })},
		{name: "greater", min: 2, max: 2, lang: inBoth, call: compareFn(func(c int) bool { return c > 0 })},
		{name: "greaterOrEquals", min: 2, max: 2, lang: inBoth, call: compareFn(func(c int) bool { return c >= 0 })},
		{name: "true", min: 0, max: 0, lang: inBoth, call: func(*scope, []any) (any, error) { return true, nil }},
		{name: "false", min: 0, max: 0, lang: inBoth, call: func(*scope, []any) (any, error) { return false, nil }},
		{name: "null", min: 0, max: 0, lang: inBoth, call: func(*scope, []any) (any, error) { return nil, nil }},
		{name: "base64", min: 1, max: 1, lang: inBoth, call: stringFn(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })},
		{name: "base64ToString", min: 1, max: 1, lang: inBoth, call: fnBase64ToString},
		{name: "resourceGroup", min: 0, max: 0, lang: inBoth, call: fnResourceGroup},
		{name: "subscription", min: 0, max: 0, lang: inBoth, call: fnSubscription},
		{name: "resourceId", min: 2, max: -1, lang: inTemplate, call: fnResourceID},
		{name: "subscriptionResourceId", min: 2, max: -1, lang: inTemplate, call: fnSubscriptionResourceID},
		{name: "extensionResourceId", min: 3, max: -1, lang: inTemplate, call: fnExtensionResourceID},
		// Real functions the engine refuses, so the error says why instead
		// of calling them unknown.
		{name: "utcNow", min: 0, max: 1, lang: inBoth, unsupported: "utcNow() needs a clock and the engine has none"},
		{name: "uniqueString", min: 1, max: -1, lang: inTemplate, unsupported: "uniqueString() is not implemented"},
		{name: "reference", min: 1, max: 3, lang: inTemplate, unsupported: "reference() reads live resources; the engine is pure"},
		{name: "deployment", min: 0, max: 0, lang: inTemplate, unsupported: "deployment() is not implemented"},
		{name: "copyIndex", min: 0, max: 2, lang: inTemplate, unsupported: "copy loops are not implemented"},
		{name: "listKeys", min: 2, max: 2, lang: inTemplate, unsupported: "list*() functions read live resources; the engine is pure"},
	} {
		functions[strings.ToLower(f.name)] = f
	}
}

// lookupFunction finds a function and checks it exists in the language.
func lookupFunction(name string, lang where) (*function, error) {
	f, ok := functions[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("the template function '%s' is not valid. Please see https://aka.ms/arm-functions for usage details: %w", name, ErrEvaluation)
	}
	if f.lang&lang == 0 {
		return nil, fmt.Errorf("the template function '%s' is not available in a %s: %w", name, lang, ErrEvaluation)
	}
	if f.unsupported != "" {
		return nil, fmt.Errorf("the template function '%s' is not supported: %s: %w", name, f.unsupported, ErrUnsupported)
	}
	return f, nil
}

// typeErr is ARM's message for an argument of the wrong type.
func typeErr(want string, got any) error {
	return fmt.Errorf("expects its parameter to be of type '%s'. The provided value is of type '%s': %w", want, typeName(got), ErrEvaluation)
}

func argString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", typeErr("String", v)
	}
	return s, nil
}

func argInt(v any) (int64, error) {
	i, ok := v.(int64)
	if !ok {
		return 0, typeErr("Integer", v)
	}
	return i, nil
}

func argBool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, typeErr("Boolean", v)
	}
	return b, nil
}

func fnParameters(s *scope, a []any) (any, error) {
	name, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	if s.params == nil {
		return nil, fmt.Errorf("no parameters are defined here: %w", ErrEvaluation)
	}
	return s.params(name)
}

func fnVariables(s *scope, a []any) (any, error) {
	name, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	if s.variables == nil {
		return nil, fmt.Errorf("the template defines no variables: %w", ErrEvaluation)
	}
	return s.variables(name)
}

func fnField(s *scope, a []any) (any, error) {
	name, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	if s.field == nil {
		return nil, fmt.Errorf("field() has no resource to read here: %w", ErrEvaluation)
	}
	return s.field(name)
}

func fnCurrent(s *scope, a []any) (any, error) {
	if s.current == nil {
		return nil, fmt.Errorf("current() is only available inside a count expression's where condition: %w", ErrEvaluation)
	}
	if len(a) == 0 {
		return s.current("", false)
	}
	name, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	return s.current(name, true)
}

// fnConcat joins arrays when the first argument is an array, strings
// otherwise; scalars read as their string form (concat('vm', 1) is "vm1").
func fnConcat(_ *scope, a []any) (any, error) {
	if _, ok := a[0].([]any); ok {
		out := []any{}
		for _, v := range a {
			switch x := v.(type) {
			case []any:
				out = append(out, x...)
			case nil:
			default:
				return nil, typeErr("Array", v)
			}
		}
		return out, nil
	}
	var b strings.Builder
	for _, v := range a {
		if v == nil {
			continue
		}
		s, ok := stringForm(v)
		if !ok {
			return nil, typeErr("String", v)
		}
		if bv, isBool := v.(bool); isBool {
			s = dotnetBool(bv)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// dotnetBool is how .NET prints a boolean, which ARM does when it turns one
// into a string.
func dotnetBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func stringFn(f func(string) string) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		s, err := argString(a[0])
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

// fnContains: substring for strings (case-sensitive), element for arrays,
// key for objects (case-insensitive), per ARM's contains().
func fnContains(_ *scope, a []any) (any, error) {
	switch c := a[0].(type) {
	case string:
		item, ok := stringForm(a[1])
		if !ok {
			return nil, typeErr("String", a[1])
		}
		return strings.Contains(c, item), nil
	case []any:
		for _, e := range c {
			if armEquals(e, a[1]) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		key, err := argString(a[1])
		if err != nil {
			return nil, err
		}
		_, _, ok := lookupFold(c, key)
		return ok, nil
	}
	return nil, typeErr("String, Array or Object", a[0])
}

// fnIf evaluates only the branch it returns, so a guard such as
// if(greater(length(x), 3), substring(x, 0, 3), x) never fails.
func fnIf(s *scope, args []node) (any, error) {
	c, err := eval(args[0], s)
	if err != nil {
		return nil, err
	}
	b, err := argBool(c)
	if err != nil {
		return nil, fmt.Errorf("unable to evaluate template language function 'if': %w", err)
	}
	if b {
		return eval(args[1], s)
	}
	return eval(args[2], s)
}

func boolFold(isAnd bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		acc := isAnd
		for _, v := range a {
			b, err := argBool(v)
			if err != nil {
				return nil, err
			}
			if isAnd {
				acc = acc && b
			} else {
				acc = acc || b
			}
		}
		return acc, nil
	}
}

func fnNot(_ *scope, a []any) (any, error) {
	b, err := argBool(a[0])
	if err != nil {
		return nil, err
	}
	return !b, nil
}

func fnEmpty(_ *scope, a []any) (any, error) {
	switch x := a[0].(type) {
	case nil:
		return true, nil
	case string:
		return x == "", nil
	case []any:
		return len(x) == 0, nil
	case map[string]any:
		return len(x) == 0, nil
	}
	return nil, typeErr("String, Array or Object", a[0])
}

func fnString(_ *scope, a []any) (any, error) {
	switch x := a[0].(type) {
	case string:
		return x, nil
	case bool:
		return dotnetBool(x), nil
	case []any, map[string]any:
		return toJSONString(x), nil
	case nil:
		return "", nil
	}
	s, _ := stringForm(a[0])
	return s, nil
}

func fnBool(_ *scope, a []any) (any, error) {
	switch x := a[0].(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("the value '%s' cannot be converted to a Boolean: %w", x, ErrEvaluation)
	case int64:
		return x != 0, nil
	}
	return nil, typeErr("String, Integer or Boolean", a[0])
}

func fnInt(_ *scope, a []any) (any, error) {
	switch x := a[0].(type) {
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("the value '%s' cannot be converted to an Integer: %w", x, ErrEvaluation)
		}
		return i, nil
	}
	return nil, typeErr("String or Integer", a[0])
}

func fnJSON(_ *scope, a []any) (any, error) {
	s, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("the value is not valid JSON: %v: %w", err, ErrEvaluation)
	}
	return v, nil
}

func fnLength(_ *scope, a []any) (any, error) {
	switch x := a[0].(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case []any:
		return int64(len(x)), nil
	case map[string]any:
		return int64(len(x)), nil
	case nil:
		return int64(0), nil
	}
	return nil, typeErr("String, Array or Object", a[0])
}

func fnReplace(_ *scope, a []any) (any, error) {
	var s [3]string
	for i := range s {
		v, err := argString(a[i])
		if err != nil {
			return nil, err
		}
		s[i] = v
	}
	if s[1] == "" {
		return nil, fmt.Errorf("the string to replace must not be empty: %w", ErrEvaluation)
	}
	return strings.ReplaceAll(s[0], s[1], s[2]), nil
}

// fnSplit splits on one delimiter or on any of an array of delimiters.
func fnSplit(_ *scope, a []any) (any, error) {
	s, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	var delims []string
	switch d := a[1].(type) {
	case string:
		delims = []string{d}
	case []any:
		for _, e := range d {
			ds, err := argString(e)
			if err != nil {
				return nil, err
			}
			delims = append(delims, ds)
		}
	default:
		return nil, typeErr("String or Array", a[1])
	}
	parts := []string{s}
	for _, d := range delims {
		if d == "" {
			continue
		}
		var next []string
		for _, p := range parts {
			next = append(next, strings.Split(p, d)...)
		}
		parts = next
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func edgeFn(first bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		switch x := a[0].(type) {
		case []any:
			if len(x) == 0 {
				return nil, nil
			}
			if first {
				return x[0], nil
			}
			return x[len(x)-1], nil
		case string:
			r := []rune(x)
			if len(r) == 0 {
				return "", nil
			}
			if first {
				return string(r[0]), nil
			}
			return string(r[len(r)-1]), nil
		}
		return nil, typeErr("String or Array", a[0])
	}
}

// fnFormat implements .NET composite formatting for {n} items and the {{
// and }} escapes; format specifiers such as {0:N2} are refused.
func fnFormat(_ *scope, a []any) (any, error) {
	f, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '{' && i+1 < len(f) && f[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("the format string '%s' has an unclosed '{': %w", f, ErrEvaluation)
			}
			item := f[i+1 : i+end]
			n, err := strconv.Atoi(item)
			if err != nil {
				return nil, fmt.Errorf("the format item '{%s}' is not supported; only {n} is: %w", item, ErrEvaluation)
			}
			if n < 0 || n+1 >= len(a) {
				return nil, fmt.Errorf("the format item '{%d}' has no argument: %w", n, ErrEvaluation)
			}
			v := a[n+1]
			switch x := v.(type) {
			case []any, map[string]any:
				b.WriteString(toJSONString(x))
			case bool:
				b.WriteString(dotnetBool(x))
			default:
				s, _ := stringForm(x)
				b.WriteString(s)
			}
			i += end
		case c == '}':
			return nil, fmt.Errorf("the format string '%s' has an unmatched '}': %w", f, ErrEvaluation)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func fnSubstring(_ *scope, a []any) (any, error) {
	s, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	start, err := argInt(a[1])
	if err != nil {
		return nil, err
	}
	r := []rune(s)
	length := int64(len(r)) - start
	if len(a) == 3 {
		if length, err = argInt(a[2]); err != nil {
			return nil, err
		}
	}
	if start < 0 || length < 0 || start+length > int64(len(r)) {
		return nil, fmt.Errorf("the index and length parameters must refer to a location within the string: %w", ErrEvaluation)
	}
	return string(r[start : start+length]), nil
}

func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
}

func hasSuffixFold(s, p string) bool {
	return len(s) >= len(p) && strings.EqualFold(s[len(s)-len(p):], p)
}

// foldPredicate wraps startsWith/endsWith, which ARM documents as
// case-insensitive.
func foldPredicate(f func(s, p string) bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		s, err := argString(a[0])
		if err != nil {
			return nil, err
		}
		p, err := argString(a[1])
		if err != nil {
			return nil, err
		}
		return f(s, p), nil
	}
}

func foldIndex(last bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		s, err := argString(a[0])
		if err != nil {
			return nil, err
		}
		p, err := argString(a[1])
		if err != nil {
			return nil, err
		}
		ls, lp := strings.ToLower(s), strings.ToLower(p)
		if last {
			return int64(strings.LastIndex(ls, lp)), nil
		}
		return int64(strings.Index(ls, lp)), nil
	}
}

func fnCoalesce(_ *scope, a []any) (any, error) {
	for _, v := range a {
		if v != nil {
			return v, nil
		}
	}
	return nil, nil
}

func fnCreateObject(_ *scope, a []any) (any, error) {
	if len(a)%2 != 0 {
		return nil, fmt.Errorf("createObject needs an even number of parameters: %w", ErrEvaluation)
	}
	out := make(map[string]any, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, err := argString(a[i])
		if err != nil {
			return nil, err
		}
		out[k] = a[i+1]
	}
	return out, nil
}

func sliceFn(take bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		n, err := argInt(a[1])
		if err != nil {
			return nil, err
		}
		cut := func(l int) (int, int) {
			k := int(max(0, min(n, int64(l))))
			if take {
				return 0, k
			}
			return k, l
		}
		switch x := a[0].(type) {
		case []any:
			i, j := cut(len(x))
			return append([]any{}, x[i:j]...), nil
		case string:
			r := []rune(x)
			i, j := cut(len(r))
			return string(r[i:j]), nil
		}
		return nil, typeErr("String or Array", a[0])
	}
}

func fnTryGet(_ *scope, a []any) (any, error) {
	v := a[0]
	for _, k := range a[1:] {
		switch c := v.(type) {
		case map[string]any:
			key, ok := k.(string)
			if !ok {
				return nil, nil
			}
			_, pv, found := lookupFold(c, key)
			if !found {
				return nil, nil
			}
			v = pv
		case []any:
			i, ok := k.(int64)
			if !ok || i < 0 || i >= int64(len(c)) {
				return nil, nil
			}
			v = c[i]
		default:
			return nil, nil
		}
	}
	return v, nil
}

// compareFn implements less()/greater() and friends: integers by value,
// strings ordinally.
func compareFn(ok func(int) bool) func(*scope, []any) (any, error) {
	return func(_ *scope, a []any) (any, error) {
		if x, isNum := number(a[0]); isNum {
			y, isNum := number(a[1])
			if !isNum {
				return nil, typeErr(typeName(a[0]), a[1])
			}
			return ok(cmpFloat(x, y)), nil
		}
		x, err := argString(a[0])
		if err != nil {
			return nil, typeErr("Integer or String", a[0])
		}
		y, err := argString(a[1])
		if err != nil {
			return nil, err
		}
		return ok(strings.Compare(x, y)), nil
	}
}

func cmpFloat(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func fnBase64ToString(_ *scope, a []any) (any, error) {
	s, err := argString(a[0])
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the value is not valid base64: %w", ErrEvaluation)
	}
	return string(b), nil
}

func fnResourceGroup(s *scope, _ []any) (any, error) {
	if s.resourceGroup == nil {
		return nil, fmt.Errorf("resourceGroup() has no resource group here: %w", ErrEvaluation)
	}
	return s.resourceGroup()
}

func fnSubscription(s *scope, _ []any) (any, error) {
	if s.subscription == nil {
		return nil, fmt.Errorf("subscription() has no subscription here: %w", ErrEvaluation)
	}
	return s.subscription()
}

// stringArgs checks that every argument is a string.
func stringArgs(a []any) ([]string, error) {
	out := make([]string, len(a))
	for i, v := range a {
		s, err := argString(v)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// fnResourceID is resourceId([subscriptionId], [resourceGroupName],
// resourceType, name1, [name2]...): the resource type is the first argument
// that contains a '/', and the arguments before it are the optional scope.
func fnResourceID(s *scope, a []any) (any, error) {
	args, err := stringArgs(a)
	if err != nil {
		return nil, err
	}
	t := -1
	for i, v := range args {
		if strings.Contains(v, "/") {
			t = i
			break
		}
	}
	if t < 0 || t > 2 {
		return nil, fmt.Errorf("resourceId() found no resource type (namespace/type) among its first three parameters: %w", ErrEvaluation)
	}
	sub, rg, err := scopeNames(s)
	if err != nil {
		return nil, err
	}
	switch t {
	case 1:
		rg = args[0]
	case 2:
		sub, rg = args[0], args[1]
	}
	return buildResourceID("/subscriptions/"+sub+"/resourceGroups/"+rg, args[t], args[t+1:])
}

func fnSubscriptionResourceID(s *scope, a []any) (any, error) {
	args, err := stringArgs(a)
	if err != nil {
		return nil, err
	}
	sub, _, err := scopeNames(s)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(args[0], "/") {
		sub, args = args[0], args[1:]
	}
	if len(args) < 2 {
		return nil, fmt.Errorf("subscriptionResourceId() needs a resource type and a name: %w", ErrEvaluation)
	}
	return buildResourceID("/subscriptions/"+sub, args[0], args[1:])
}

func fnExtensionResourceID(_ *scope, a []any) (any, error) {
	args, err := stringArgs(a)
	if err != nil {
		return nil, err
	}
	return buildResourceID(strings.TrimRight(args[0], "/"), args[1], args[2:])
}

// buildResourceID joins a type and its names under a scope, checking that
// there is one name per type segment after the namespace.
func buildResourceID(scopeID, typ string, names []string) (string, error) {
	segs := strings.Split(typ, "/")
	if len(segs) < 2 || len(segs)-1 != len(names) {
		return "", fmt.Errorf("the resource type '%s' needs %d name segment(s), got %d: %w", typ, len(segs)-1, len(names), ErrEvaluation)
	}
	var b strings.Builder
	b.WriteString(scopeID + "/providers/" + segs[0])
	for i, n := range names {
		b.WriteString("/" + segs[i+1] + "/" + n)
	}
	return b.String(), nil
}

// scopeNames reads the subscription ID and resource group name that the
// scope's subscription() and resourceGroup() describe.
func scopeNames(s *scope) (sub, rg string, err error) {
	if s.subscription == nil || s.resourceGroup == nil {
		return "", "", fmt.Errorf("resourceId() needs a subscription and a resource group: %w", ErrEvaluation)
	}
	sv, err := s.subscription()
	if err != nil {
		return "", "", err
	}
	rv, err := s.resourceGroup()
	if err != nil {
		return "", "", err
	}
	sub, _ = sv["subscriptionId"].(string)
	rg, _ = rv["name"].(string)
	return sub, rg, nil
}

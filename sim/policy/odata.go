package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the OData subset that Microsoft.PolicyInsights queries
// use: $filter (eq, ne, and, or, not, parentheses, string and boolean
// literals), $orderby, $select and $apply (filter, groupby, aggregate).
// Records are maps keyed by their canonical property names; property
// names in queries match case-insensitively, and so do string values,
// as the service compares them.

// errOData marks a query that does not parse or names an unknown
// property; the message is the caller's to show.
var errOData = errors.New("invalid OData query")

// record is one row of a query: a policy state, or a group after $apply.
type record map[string]any

// schema resolves property names, case-insensitively, to the canonical
// names of a record set.
type schema map[string]string

func newSchema(names ...string) schema {
	s := schema{}
	for _, n := range names {
		s[strings.ToLower(n)] = n
	}
	return s
}

func (s schema) resolve(name string) (string, error) {
	if c, ok := s[strings.ToLower(name)]; ok {
		return c, nil
	}
	return "", fmt.Errorf("%w: could not find a property named '%s'", errOData, name)
}

// ---- lexer

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokLParen
	tokRParen
	tokComma
	tokSlash
)

type token struct {
	kind tokKind
	text string // identifier, or the unquoted string
	pos  int
}

func lex(src string) ([]token, error) {
	var out []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tokLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tokRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tokComma, ",", i})
			i++
		case c == '/':
			out = append(out, token{tokSlash, "/", i})
			i++
		case c == '\'':
			// OData doubles a quote inside a string literal.
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("%w: unterminated string literal at position %d", errOData, i)
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			out = append(out, token{tokString, b.String(), i})
			i = j + 1
		case isIdentByte(c, true):
			j := i + 1
			for j < len(src) && isIdentByte(src[j], false) {
				j++
			}
			out = append(out, token{tokIdent, src[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("%w: unexpected character '%c' at position %d", errOData, c, i)
		}
	}
	return append(out, token{tokEOF, "", len(src)}), nil
}

func isIdentByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$', c == '@':
		return true
	case c >= '0' && c <= '9', c == '.', c == '-':
		return !first
	}
	return false
}

type parser struct {
	toks []token
	i    int
	sch  schema
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(words ...string) (string, bool) {
	t := p.peek()
	if t.kind != tokIdent {
		return "", false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			p.i++
			return w, true
		}
	}
	return "", false
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.unexpected(t, what)
	}
	return t, nil
}

func (p *parser) unexpected(t token, what string) error {
	if t.kind == tokEOF {
		return fmt.Errorf("%w: expected %s at the end of the expression", errOData, what)
	}
	return fmt.Errorf("%w: expected %s at position %d, found '%s'", errOData, what, t.pos, t.text)
}

// ---- $filter

// expr is a boolean expression over a record.
type expr interface {
	eval(record) bool
}

type andExpr struct{ l, r expr }
type orExpr struct{ l, r expr }
type notExpr struct{ x expr }

// cmpExpr compares a property with a literal.
type cmpExpr struct {
	prop string
	ne   bool
	lit  any // string or bool
}

func (e andExpr) eval(r record) bool { return e.l.eval(r) && e.r.eval(r) }
func (e orExpr) eval(r record) bool  { return e.l.eval(r) || e.r.eval(r) }
func (e notExpr) eval(r record) bool { return !e.x.eval(r) }

func (e cmpExpr) eval(r record) bool {
	eq := equalValues(r[e.prop], e.lit)
	return eq != e.ne
}

// equalValues compares as the service does: strings case-insensitively,
// values of different types never equal.
func equalValues(v, lit any) bool {
	switch l := lit.(type) {
	case string:
		s, ok := v.(string)
		return ok && strings.EqualFold(s, l)
	case bool:
		b, ok := v.(bool)
		return ok && b == l
	}
	return false
}

// parseFilter parses a $filter expression against sch.
func parseODataFilter(src string, sch schema) (expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, sch: sch}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.unexpected(t, "'and', 'or' or the end of the expression")
	}
	return e, nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("or"); !ok {
			return l, nil
		}
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
}

func (p *parser) and() (expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("and"); !ok {
			return l, nil
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
}

func (p *parser) unary() (expr, error) {
	if _, ok := p.keyword("not"); ok {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	}
	if p.peek().kind == tokLParen {
		p.next()
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, err
		}
		return e, nil
	}
	return p.comparison()
}

// operand is a property (prop != "") or a literal.
type operand struct {
	prop string
	lit  any
}

func (p *parser) operand() (operand, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return operand{lit: t.text}, nil
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "true":
			return operand{lit: true}, nil
		case "false":
			return operand{lit: false}, nil
		}
		name, err := p.sch.resolve(t.text)
		if err != nil {
			return operand{}, err
		}
		return operand{prop: name}, nil
	}
	return operand{}, p.unexpected(t, "a property or a literal")
}

func (p *parser) comparison() (expr, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op, ok := p.keyword("eq", "ne")
	if !ok {
		return nil, p.unexpected(p.peek(), "'eq' or 'ne'")
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	if l.prop == "" {
		l, r = r, l // 'x' eq Prop
	}
	if l.prop == "" || r.prop != "" {
		return nil, fmt.Errorf("%w: a comparison needs one property and one literal", errOData)
	}
	return cmpExpr{prop: l.prop, ne: op == "ne", lit: r.lit}, nil
}

// ---- $orderby and $select

// orderKey is one $orderby term.
type orderKey struct {
	prop string
	desc bool
}

// parseOrderBy reads "Prop [asc|desc], ..."; the service's default
// direction is desc.
func parseOrderBy(src string, sch schema) ([]orderKey, error) {
	var out []orderKey
	for term := range strings.SplitSeq(src, ",") {
		f := strings.Fields(term)
		if len(f) == 0 || len(f) > 2 {
			return nil, fmt.Errorf("%w: invalid $orderby term '%s'", errOData, strings.TrimSpace(term))
		}
		name, err := sch.resolve(f[0])
		if err != nil {
			return nil, err
		}
		k := orderKey{prop: name, desc: true}
		if len(f) == 2 {
			switch strings.ToLower(f[1]) {
			case "asc":
				k.desc = false
			case "desc":
			default:
				return nil, fmt.Errorf("%w: invalid $orderby direction '%s'", errOData, f[1])
			}
		}
		out = append(out, k)
	}
	return out, nil
}

// sortRecords orders records stably by keys.
func sortRecords(recs []record, keys []orderKey) {
	slices.SortStableFunc(recs, func(a, b record) int {
		for _, k := range keys {
			c := compareValues(a[k.prop], b[k.prop])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return cmp.Compare(strings.ToLower(x), strings.ToLower(y))
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int:
		y, _ := b.(int)
		return cmp.Compare(x, y)
	case time.Time:
		y, _ := b.(time.Time)
		return x.Compare(y)
	}
	if b == nil {
		return 0
	}
	return -1 // nil first
}

// parseSelect reads a comma list of properties.
func parseSelect(src string, sch schema) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(src, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("%w: empty property in $select", errOData)
		}
		c, err := sch.resolve(name)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ---- $apply

// transform is one step of $apply.
type transform func([]record) []record

// aggregate is one "$count as Name" or "Prop with countdistinct as Name".
type aggregate struct {
	as       string
	distinct string // property counted distinctly; "" is $count
}

// parseApply parses a chain of transformations separated by "/":
// filter(expr), groupby((p, ...)[, aggregate(...)]), aggregate(...).
// It returns the chain and the schema of the final records.
func parseApply(src string, sch schema) ([]transform, schema, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{toks: toks, sch: sch}
	var out []transform
	for {
		t, err := p.expect(tokIdent, "'filter', 'groupby' or 'aggregate'")
		if err != nil {
			return nil, nil, err
		}
		if _, err := p.expect(tokLParen, "'('"); err != nil {
			return nil, nil, err
		}
		switch strings.ToLower(t.text) {
		case "filter":
			e, err := p.or()
			if err != nil {
				return nil, nil, err
			}
			out = append(out, func(in []record) []record {
				return slices.DeleteFunc(slices.Clone(in), func(r record) bool { return !e.eval(r) })
			})
		case "groupby":
			keys, err := p.groupKeys()
			if err != nil {
				return nil, nil, err
			}
			var aggs []aggregate
			if p.peek().kind == tokComma {
				p.next()
				if _, err := p.expect(tokIdent, "'aggregate'"); err != nil {
					return nil, nil, err
				}
				if _, err := p.expect(tokLParen, "'('"); err != nil {
					return nil, nil, err
				}
				if aggs, err = p.aggregates(); err != nil {
					return nil, nil, err
				}
				if _, err := p.expect(tokRParen, "')'"); err != nil {
					return nil, nil, err
				}
			}
			out = append(out, groupBy(keys, aggs))
			p.sch = newSchema(append(keys, aggNames(aggs)...)...)
		case "aggregate":
			aggs, err := p.aggregates()
			if err != nil {
				return nil, nil, err
			}
			out = append(out, groupBy(nil, aggs))
			p.sch = newSchema(aggNames(aggs)...)
		default:
			return nil, nil, fmt.Errorf("%w: unsupported $apply transformation '%s'", errOData, t.text)
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, nil, err
		}
		switch p.next().kind {
		case tokEOF:
			return out, p.sch, nil
		case tokSlash:
		default:
			return nil, nil, p.unexpected(p.toks[p.i-1], "'/' or the end of $apply")
		}
	}
}

// groupKeys reads "(p1, p2)" (the parentheses of groupby's first
// argument).
func (p *parser) groupKeys() ([]string, error) {
	if _, err := p.expect(tokLParen, "'('"); err != nil {
		return nil, err
	}
	var keys []string
	for {
		t, err := p.expect(tokIdent, "a property")
		if err != nil {
			return nil, err
		}
		name, err := p.sch.resolve(t.text)
		if err != nil {
			return nil, err
		}
		keys = append(keys, name)
		t = p.next()
		if t.kind == tokRParen {
			return keys, nil
		}
		if t.kind != tokComma {
			return nil, p.unexpected(t, "',' or ')'")
		}
	}
}

// aggregates reads "$count as N, P with countdistinct as M" up to the
// closing parenthesis, which it leaves.
func (p *parser) aggregates() ([]aggregate, error) {
	var out []aggregate
	for {
		t, err := p.expect(tokIdent, "'$count' or a property")
		if err != nil {
			return nil, err
		}
		var a aggregate
		if !strings.EqualFold(t.text, "$count") {
			if a.distinct, err = p.sch.resolve(t.text); err != nil {
				return nil, err
			}
			if _, ok := p.keyword("with"); !ok {
				return nil, p.unexpected(p.peek(), "'with'")
			}
			if _, ok := p.keyword("countdistinct"); !ok {
				return nil, p.unexpected(p.peek(), "'countdistinct'")
			}
		}
		if _, ok := p.keyword("as"); !ok {
			return nil, p.unexpected(p.peek(), "'as'")
		}
		name, err := p.expect(tokIdent, "an alias")
		if err != nil {
			return nil, err
		}
		a.as = name.text
		out = append(out, a)
		switch t := p.peek(); t.kind {
		case tokRParen:
			return out, nil
		case tokComma:
			p.next()
		default:
			return nil, p.unexpected(t, "',' or ')'")
		}
	}
}

func aggNames(aggs []aggregate) []string {
	out := make([]string, len(aggs))
	for i, a := range aggs {
		out[i] = a.as
	}
	return out
}

// groupBy groups records by the values of keys (strings compared
// case-insensitively) in order of first appearance, and computes aggs
// per group.
func groupBy(keys []string, aggs []aggregate) transform {
	return func(in []record) []record {
		type group struct {
			rec      record
			count    int
			distinct []map[string]bool
		}
		var order []string
		groups := map[string]*group{}
		for _, r := range in {
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = strings.ToLower(fmt.Sprint(r[k]))
			}
			id := strings.Join(parts, "\x00")
			g, ok := groups[id]
			if !ok {
				g = &group{rec: record{}, distinct: make([]map[string]bool, len(aggs))}
				for _, k := range keys {
					g.rec[k] = r[k]
				}
				for i := range aggs {
					g.distinct[i] = map[string]bool{}
				}
				groups[id] = g
				order = append(order, id)
			}
			g.count++
			for i, a := range aggs {
				if a.distinct != "" && r[a.distinct] != nil {
					g.distinct[i][strings.ToLower(fmt.Sprint(r[a.distinct]))] = true
				}
			}
		}
		// aggregate() over no rows is one row of zeros, as in OData.
		if len(keys) == 0 && len(order) == 0 {
			groups[""] = &group{rec: record{}, distinct: make([]map[string]bool, len(aggs))}
			order = append(order, "")
		}
		out := make([]record, 0, len(order))
		for _, id := range order {
			g := groups[id]
			for i, a := range aggs {
				if a.distinct != "" {
					g.rec[a.as] = len(g.distinct[i])
				} else {
					g.rec[a.as] = g.count
				}
			}
			out = append(out, g.rec)
		}
		return out
	}
}

// parseTop reads $top: a non-negative integer.
func parseTop(src string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(src))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: $top must be a non-negative integer, not '%s'", errOData, src)
	}
	return n, nil
}

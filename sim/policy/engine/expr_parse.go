package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// This file is the lexer and parser of ARM's template language expressions,
// the "[...]" strings of policy rules and deployment templates:
//
//	expression := primary accessor*
//	primary    := STRING | INTEGER | IDENT '(' [expression {',' expression}] ')'
//	accessor   := '.' IDENT | '[' expression ']'
//
// Strings are single-quoted with '' as the escaped quote. Function names are
// case-insensitive. Positions in errors are byte offsets into the JSON
// string value, counting the opening '[' as offset 0, as ARM reports them.

// maxExprDepth bounds nesting; Azure Policy allows 64 nested functions.
const maxExprDepth = 64

// maxExprLen bounds the length of one expression string (Azure: 81,920).
const maxExprLen = 81920

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokIdent
	tokString
	tokInt
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokComma
	tokDot
)

// tokenNames are the names ARM uses in "expected token 'X' and actual 'Y'".
var tokenNames = map[tokenKind]string{
	tokEOF:    "EndOfData",
	tokIdent:  "Identifier",
	tokString: "Literal",
	tokInt:    "Integer",
	tokLParen: "LeftParenthesis",
	tokRParen: "RightParenthesis",
	tokLBrack: "LeftSquareBracket",
	tokRBrack: "RightSquareBracket",
	tokComma:  "Comma",
	tokDot:    "Dot",
}

// punctuation maps the one-character tokens to their kinds.
var punctuation = map[byte]tokenKind{'(': tokLParen, ')': tokRParen, '[': tokLBrack, ']': tokRBrack, ',': tokComma, '.': tokDot}

type token struct {
	kind tokenKind
	text string // identifier name or unquoted string
	num  int64
	pos  int
}

// lexer turns the inside of "[...]" into tokens. base is the offset of the
// inside within the JSON string, for positions.
type lexer struct {
	src  string
	base int
	i    int
}

func (l *lexer) next() (token, error) {
	for l.i < len(l.src) && isSpace(l.src[l.i]) {
		l.i++
	}
	pos := l.base + l.i
	if l.i >= len(l.src) {
		return token{kind: tokEOF, pos: pos}, nil
	}
	c := l.src[l.i]
	if k, ok := punctuation[c]; ok {
		l.i++
		return token{kind: k, pos: pos}, nil
	}
	switch {
	case c == '\'':
		var b strings.Builder
		l.i++
		for {
			if l.i >= len(l.src) {
				return token{}, fmt.Errorf("the string literal starting at position '%d' is not terminated: %w", pos, ErrSyntax)
			}
			if l.src[l.i] == '\'' {
				if l.i+1 < len(l.src) && l.src[l.i+1] == '\'' {
					b.WriteByte('\'')
					l.i += 2
					continue
				}
				l.i++
				return token{kind: tokString, text: b.String(), pos: pos}, nil
			}
			b.WriteByte(l.src[l.i])
			l.i++
		}
	case isDigit(c) || (c == '-' && l.i+1 < len(l.src) && isDigit(l.src[l.i+1])):
		start := l.i
		l.i++
		for l.i < len(l.src) && isDigit(l.src[l.i]) {
			l.i++
		}
		text := l.src[start:l.i]
		if l.i < len(l.src) && l.src[l.i] == '.' && l.i+1 < len(l.src) && isDigit(l.src[l.i+1]) {
			return token{}, fmt.Errorf("the number '%s...' at position '%d' is not an integer; ARM expressions have integer literals only: %w", text, pos, ErrSyntax)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return token{}, fmt.Errorf("the integer '%s' at position '%d' is out of range: %w", text, pos, ErrSyntax)
		}
		return token{kind: tokInt, num: n, pos: pos}, nil
	case isIdentStart(c):
		start := l.i
		for l.i < len(l.src) && isIdentPart(l.src[l.i]) {
			l.i++
		}
		return token{kind: tokIdent, text: l.src[start:l.i], pos: pos}, nil
	}
	return token{}, fmt.Errorf("the character '%c' at position '%d' is not expected: %w", c, pos, ErrSyntax)
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == '$' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// node is a parsed expression.
type node interface{ position() int }

type (
	strLit struct {
		s   string
		pos int
	}
	intLit struct {
		n   int64
		pos int
	}
	callNode struct {
		name string // as written
		args []node
		pos  int
	}
	memberNode struct {
		x    node
		name string
		pos  int
	}
	indexNode struct {
		x, index node
		pos      int
	}
)

func (n *strLit) position() int     { return n.pos }
func (n *intLit) position() int     { return n.pos }
func (n *callNode) position() int   { return n.pos }
func (n *memberNode) position() int { return n.pos }
func (n *indexNode) position() int  { return n.pos }

// template is a JSON string value that may be an expression: either a
// literal (with "[[" already unescaped) or a parsed expression.
type template struct {
	src     string // the string as written
	literal string
	root    node // nil for a literal
}

// isExpr reports whether t is an expression rather than a literal.
func (t *template) isExpr() bool { return t.root != nil }

// isExpressionString reports whether a JSON string is a template language
// expression: it starts with '[' and ends with ']' and does not start with
// the "[[" escape.
func isExpressionString(s string) bool {
	return len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && s[1] != '['
}

// parseTemplate parses a JSON string value. Strings that are not
// expressions are literals; "[[...]" drops one leading bracket, as ARM does.
func parseTemplate(s string) (*template, error) {
	if !isExpressionString(s) {
		lit := s
		if strings.HasPrefix(s, "[[") && strings.HasSuffix(s, "]") {
			lit = s[1:]
		}
		return &template{src: s, literal: lit}, nil
	}
	if len(s) > maxExprLen {
		return nil, fmt.Errorf("the language expression is %d characters long; the limit is %d: %w", len(s), maxExprLen, ErrSyntax)
	}
	p := &parser{lx: lexer{src: s[1 : len(s)-1], base: 1}}
	if err := p.advance(); err != nil {
		return nil, p.wrap(s, err)
	}
	root, err := p.expression(0)
	if err != nil {
		return nil, p.wrap(s, err)
	}
	if p.tok.kind != tokEOF {
		return nil, p.wrap(s, p.unexpected(tokEOF))
	}
	return &template{src: s, root: root}, nil
}

type parser struct {
	lx  lexer
	tok token
}

func (p *parser) wrap(src string, err error) error {
	return fmt.Errorf("unable to parse language expression '%s': %w", strings.TrimSuffix(strings.TrimPrefix(src, "["), "]"), err)
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) unexpected(want tokenKind) error {
	return fmt.Errorf("expected token '%s' and actual '%s' at position '%d': %w", tokenNames[want], tokenNames[p.tok.kind], p.tok.pos, ErrSyntax)
}

func (p *parser) expect(k tokenKind) error {
	if p.tok.kind != k {
		return p.unexpected(k)
	}
	return p.advance()
}

func (p *parser) expression(depth int) (node, error) {
	if depth > maxExprDepth {
		return nil, fmt.Errorf("the expression at position '%d' is nested deeper than %d levels: %w", p.tok.pos, maxExprDepth, ErrSyntax)
	}
	var x node
	t := p.tok
	switch t.kind {
	case tokString:
		x = &strLit{s: t.text, pos: t.pos}
		if err := p.advance(); err != nil {
			return nil, err
		}
	case tokInt:
		x = &intLit{n: t.num, pos: t.pos}
		if err := p.advance(); err != nil {
			return nil, err
		}
	case tokIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if err := p.expect(tokLParen); err != nil {
			return nil, err
		}
		call := &callNode{name: t.text, pos: t.pos}
		if p.tok.kind != tokRParen {
			for {
				arg, err := p.expression(depth + 1)
				if err != nil {
					return nil, err
				}
				call.args = append(call.args, arg)
				if p.tok.kind != tokComma {
					break
				}
				if err := p.advance(); err != nil {
					return nil, err
				}
			}
		}
		if err := p.expect(tokRParen); err != nil {
			return nil, err
		}
		x = call
	default:
		return nil, p.unexpected(tokIdent)
	}
	for steps := 0; ; steps++ {
		if steps > maxExprDepth {
			return nil, fmt.Errorf("too many property accesses at position '%d': %w", p.tok.pos, ErrSyntax)
		}
		switch p.tok.kind {
		case tokDot:
			pos := p.tok.pos
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tokIdent {
				return nil, p.unexpected(tokIdent)
			}
			x = &memberNode{x: x, name: p.tok.text, pos: pos}
			if err := p.advance(); err != nil {
				return nil, err
			}
		case tokLBrack:
			pos := p.tok.pos
			if err := p.advance(); err != nil {
				return nil, err
			}
			idx, err := p.expression(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(tokRBrack); err != nil {
				return nil, err
			}
			x = &indexNode{x: x, index: idx, pos: pos}
		default:
			return x, nil
		}
	}
}

// format renders a parsed expression back to source; parse(format(x)) is x.
func format(n node) string {
	switch x := n.(type) {
	case *strLit:
		return "'" + strings.ReplaceAll(x.s, "'", "''") + "'"
	case *intLit:
		return strconv.FormatInt(x.n, 10)
	case *callNode:
		args := make([]string, len(x.args))
		for i, a := range x.args {
			args[i] = format(a)
		}
		return x.name + "(" + strings.Join(args, ", ") + ")"
	case *memberNode:
		return format(x.x) + "." + x.name
	case *indexNode:
		return format(x.x) + "[" + format(x.index) + "]"
	}
	return ""
}

// walkCalls calls fn for every function call in n, outermost first.
func walkCalls(n node, fn func(*callNode)) {
	switch x := n.(type) {
	case *callNode:
		fn(x)
		for _, a := range x.args {
			walkCalls(a, fn)
		}
	case *memberNode:
		walkCalls(x.x, fn)
	case *indexNode:
		walkCalls(x.x, fn)
		walkCalls(x.index, fn)
	}
}

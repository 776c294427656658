package importer

import (
	"fmt"
	"strings"
)

// maxBlockDepth bounds the nesting of blocks (keepalived's deepest is
// virtual_server > real_server > HTTP_GET > url).
const maxBlockDepth = 16

// stmt is one keepalived statement: a keyword, the rest of its line, and
// the block that follows it, if any. In value blocks (virtual_ipaddress,
// unicast_peer, track_script, ...) each line is a statement whose keyword
// is the value.
type stmt struct {
	pos      Pos
	key      string
	args     []token
	hasBlock bool
	block    []*stmt
	open     Pos // the '{'
	close    Pos // the '}'
	indent   int // of the keyword's line
}

// arg returns the i-th argument's text, or "".
func (s *stmt) arg(i int) string {
	if i < len(s.args) {
		return s.args[i].text
	}
	return ""
}

// argLine returns the arguments joined by spaces.
func (s *stmt) argLine() string {
	words := make([]string, len(s.args))
	for i, a := range s.args {
		words[i] = a.text
	}
	return strings.Join(words, " ")
}

// parse builds the statement tree. A statement's arguments are the words
// that follow its keyword on the same line up to a brace; a '{' on the
// same line or at the start of a following line opens its block; '}'
// closes the innermost block. Unbalanced braces are errors naming the
// line of the brace.
func parse(toks []token) ([]*stmt, error) {
	p := &parser{toks: toks}
	return p.list(nil, 0)
}

type parser struct {
	toks []token
	i    int
	// odd is the first '}' that starts a line indented unlike the line
	// of the block it closes: the likely neighbour of a missing or extra
	// brace.
	odd *oddBrace
}

type oddBrace struct {
	brace  token
	opener *stmt
}

// hint says where a brace is probably missing, from the indentation.
func (p *parser) hint() string {
	if p.odd == nil {
		return ""
	}
	return fmt.Sprintf("; the '}' at line %d closes %s (line %d) but is indented differently: is a '}' missing in that block, or one too many?", p.odd.brace.pos.Line, p.odd.opener.key, p.odd.opener.pos.Line)
}

func (p *parser) list(open *stmt, depth int) ([]*stmt, error) {
	if depth > maxBlockDepth {
		return nil, errorf(open.open, open.key, "blocks are nested more than %d deep", maxBlockDepth)
	}
	var list []*stmt
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch {
		case t.isBrace("}"):
			if open == nil {
				return nil, errorf(t.pos, "}", "unexpected '}': no block is open (an extra '}' or a missing '{')%s", p.hint())
			}
			if p.odd == nil && (p.i == 0 || p.toks[p.i-1].pos != t.pos) && t.indent != open.indent && t.pos.File == open.pos.File {
				p.odd = &oddBrace{brace: t, opener: open}
			}
			open.close = t.pos
			p.i++
			return list, nil
		case t.isBrace("{"):
			// A '{' at the start of a line opens the block of the
			// statement on the line before.
			if len(list) == 0 || list[len(list)-1].hasBlock {
				return nil, errorf(t.pos, "{", "unexpected '{': no keyword opens this block")
			}
			s := list[len(list)-1]
			if err := p.block(s, t, depth); err != nil {
				return nil, err
			}
			continue
		}
		s := &stmt{pos: t.pos, key: t.text, indent: t.indent}
		p.i++
		for p.i < len(p.toks) && p.toks[p.i].pos == s.pos && !p.toks[p.i].isBrace("{") && !p.toks[p.i].isBrace("}") {
			s.args = append(s.args, p.toks[p.i])
			p.i++
		}
		list = append(list, s)
		if p.i < len(p.toks) && p.toks[p.i].pos == s.pos && p.toks[p.i].isBrace("{") {
			if err := p.block(s, p.toks[p.i], depth); err != nil {
				return nil, err
			}
		}
	}
	if open != nil {
		return nil, errorf(open.open, open.key, "'{' is never closed (a missing '}')%s", p.hint())
	}
	return list, nil
}

func (p *parser) block(s *stmt, brace token, depth int) error {
	p.i++
	s.hasBlock, s.open = true, brace.pos
	var err error
	s.block, err = p.list(s, depth+1)
	if s.block == nil && err == nil {
		s.block = []*stmt{}
	}
	return err
}

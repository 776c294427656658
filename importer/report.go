package importer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a keepalived configuration: the file, named as it
// was given (a path on the command line, or an include pattern's match
// joined to the including file's directory), and the 1-based line. Line 0
// stands for the file as a whole.
type Pos struct {
	File string
	Line int
}

// String returns "file:line", or "file" for line 0.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Note is one line of the import report: a keepalived line that was
// ignored or only approximated, and what to do about it. Notes never hold
// a VRRP password.
type Note struct {
	// Pos is the keepalived line.
	Pos Pos
	// Keyword is the line's keepalived keyword (or value, e.g. an address
	// in a virtual_ipaddress block).
	Keyword string
	// Message says what happened and what to do.
	Message string
}

// String formats the note as "file:line: keyword: message".
func (n Note) String() string {
	return fmt.Sprintf("%s: %s: %s", n.Pos, n.Keyword, n.Message)
}

// notes collects the report of one import.
type notes struct {
	list []Note
	// order is the order in which files were first read: the report
	// follows it.
	order map[string]int
	// condUsed are the conditional lines some node used: a node that
	// skipped one does not report it.
	condUsed map[Pos]bool
}

func (n *notes) add(pos Pos, keyword, format string, args ...any) {
	n.list = append(n.list, Note{Pos: pos, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// file registers a file in reading order.
func (n *notes) file(name string) {
	if n.order == nil {
		n.order = map[string]int{}
	}
	if _, ok := n.order[name]; !ok {
		n.order[name] = len(n.order)
	}
}

// usedCondition records a conditional line that a node used.
func (n *notes) usedCondition(pos Pos) {
	if n.condUsed == nil {
		n.condUsed = map[Pos]bool{}
	}
	n.condUsed[pos] = true
}

// sorted returns the notes in reading order (files in the order they were
// first read, lines in order), each once (a file imported for two nodes
// reports a line once), without skipped conditional lines that another
// node used.
func (n *notes) sorted() []Note {
	var out []Note
	seen := map[Note]bool{}
	for _, x := range n.list {
		if seen[x] || (strings.HasPrefix(x.Keyword, "@") && n.condUsed[x.Pos]) {
			continue
		}
		seen[x] = true
		out = append(out, x)
	}
	rank := func(f string) int {
		if r, ok := n.order[f]; ok {
			return r
		}
		return len(n.order)
	}
	slices.SortStableFunc(out, func(a, b Note) int {
		return cmp.Or(cmp.Compare(rank(a.Pos.File), rank(b.Pos.File)), strings.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line))
	})
	return out
}

// posError is an error in the input at a position.
type posError struct {
	pos     Pos
	keyword string
	msg     string
}

func (e *posError) Error() string {
	if e.keyword == "" {
		return fmt.Sprintf("%s: %s", e.pos, e.msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.pos, e.keyword, e.msg)
}

func errorf(pos Pos, keyword, format string, args ...any) error {
	return &posError{pos: pos, keyword: keyword, msg: fmt.Sprintf(format, args...)}
}

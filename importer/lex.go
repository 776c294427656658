package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// FileSystem is where configuration files are read from. The importer
// calls only these two methods; the operating system's files are used when
// Options.FS is nil.
type FileSystem interface {
	// ReadFile returns the contents of the named file.
	ReadFile(name string) ([]byte, error)
	// Glob returns the names of the files matching pattern, sorted, as
	// filepath.Glob does.
	Glob(pattern string) ([]string, error)
}

// osFS reads the operating system's files.
type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

var _ FileSystem = osFS{}

// Limits that keep a hostile or broken input from exhausting the importer.
const (
	maxIncludeDepth = 32
	maxSubstitution = 32
	maxFileBytes    = 4 << 20
	maxTokens       = 1 << 20
	maxLineBytes    = 64 << 10
)

// token is one word of a keepalived configuration line: quotes removed and
// escapes resolved inside quotes, as keepalived's own parser does. A brace
// is a token of its own unless it was quoted.
type token struct {
	text   string
	pos    Pos
	quoted bool
	indent int // the indentation of the token's line, for hints about braces
}

func (t token) isBrace(b string) bool { return !t.quoted && t.text == b }

// lexer reads a configuration file with its includes into tokens. It
// applies keepalived's line-level features in keepalived's order: comments
// ('#' or '!' outside quotes), include, conditional lines ('@id', '@^id')
// and parameter definitions and substitution ($NAME=VALUE, ${NAME},
// $NAME).
type lexer struct {
	fsys     FileSystem
	configID string // the node's keepalived config id; "" when unknown
	notes    *notes
	params   map[string]string
	stack    []string // files being read, for include loops
	tokens   []token
}

var paramDefRE = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// lex reads the file name and everything it includes.
func lex(fsys FileSystem, name, configID string, n *notes) ([]token, error) {
	l := &lexer{fsys: fsys, configID: configID, notes: n, params: map[string]string{}}
	data, err := fsys.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if err := l.file(name, data); err != nil {
		return nil, err
	}
	return l.tokens, nil
}

func (l *lexer) file(name string, data []byte) error {
	if len(data) > maxFileBytes {
		return errorf(Pos{File: name}, "", "file is larger than %d bytes", maxFileBytes)
	}
	l.notes.file(name)
	l.stack = append(l.stack, filepath.Clean(name))
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()

	lines := strings.Split(string(data), "\n")
	skipDepth := 0 // braces still open in a skipped conditional block
	var skipStart Pos
	firstWord := func(line string) (string, string) {
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			return line[:i], strings.TrimSpace(line[i+1:])
		}
		return line, ""
	}
	for i, raw := range lines {
		pos := Pos{File: name, Line: i + 1}
		line, err := stripComment(strings.TrimSuffix(raw, "\r"), pos)
		if err != nil {
			return err
		}
		indent := indentation(line)
		line = strings.TrimSpace(line)
		if skipDepth > 0 {
			if skipDepth += braceBalance(line); skipDepth < 0 {
				skipDepth = 0
			}
			continue
		}
		if line == "" {
			continue
		}
		if word, rest := firstWord(line); isInclude(word) {
			if err := l.include(pos, word, rest); err != nil {
				return err
			}
			continue
		}
		if line[0] == '@' {
			word, rest := firstWord(line)
			if !l.conditionHolds(word) {
				msg := l.skipReason()
				if b := braceBalance(rest); b > 0 {
					skipDepth, skipStart = b, pos
					msg = "conditional line and its block " + strings.TrimPrefix(msg, "conditional line ")
				}
				l.notes.add(pos, word, "%s", msg)
				continue
			}
			l.notes.usedCondition(pos)
			line = rest
			if line == "" {
				continue
			}
		}
		if m := paramDefRE.FindStringSubmatch(line); m != nil {
			if strings.HasSuffix(strings.TrimSpace(m[2]), `\`) {
				return errorf(pos, "$"+m[1], "multi-line parameter definitions are not supported: expand them before importing")
			}
			l.params[m[1]] = m[2]
			continue
		}
		if strings.HasPrefix(line, "~SEQ") {
			return errorf(pos, "~SEQ", "sequence lines are not supported: expand them before importing")
		}
		line, err = l.substitute(line, name, pos)
		if err != nil {
			return err
		}
		toks, err := tokenize(line, pos)
		if err != nil {
			return err
		}
		for i := range toks {
			toks[i].indent = indent
		}
		l.tokens = append(l.tokens, toks...)
		if len(l.tokens) > maxTokens {
			return errorf(pos, "", "configuration has more than %d words", maxTokens)
		}
	}
	if skipDepth > 0 {
		return errorf(skipStart, "@", "the block of this skipped conditional line is never closed")
	}
	return nil
}

func isInclude(word string) bool {
	switch word {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// include reads the files matching pattern, relative to the directory of
// the including file.
func (l *lexer) include(pos Pos, keyword, pattern string) error {
	pattern = strings.Trim(pattern, `"'`)
	if pattern == "" {
		return errorf(pos, keyword, "names no file")
	}
	if strings.ContainsAny(pattern, "{}") {
		return errorf(pos, keyword, "brace expressions in include patterns are not supported: list the files")
	}
	if len(l.stack) >= maxIncludeDepth {
		return errorf(pos, keyword, "includes are nested more than %d deep", maxIncludeDepth)
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(pos.File), pattern)
	}
	matches, err := l.fsys.Glob(pattern)
	if err != nil {
		return errorf(pos, keyword, "pattern %q: %v", pattern, err)
	}
	if len(matches) == 0 {
		l.notes.add(pos, keyword, "%s matches no file: nothing included (keepalived does the same)", pattern)
		return nil
	}
	for _, m := range matches {
		clean := filepath.Clean(m)
		for i, f := range l.stack {
			if f == clean {
				chain := append(append([]string{}, l.stack[i:]...), clean)
				return errorf(pos, keyword, "include loop: %s", strings.Join(chain, " -> "))
			}
		}
		data, err := l.fsys.ReadFile(m)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", pos, keyword, err)
		}
		if err := l.file(m, data); err != nil {
			return err
		}
	}
	return nil
}

// conditionHolds evaluates a conditional line's '@id' or '@^id' prefix
// against the node's config id.
func (l *lexer) conditionHolds(word string) bool {
	if id, ok := strings.CutPrefix(word, "@^"); ok {
		return l.configID == "" || id != l.configID
	}
	return l.configID != "" && word[1:] == l.configID
}

func (l *lexer) skipReason() string {
	if l.configID == "" {
		return "conditional line skipped: this node has no config id; name the node with --node NAME=FILE (its config id is the name's first label, as keepalived's default, the host name)"
	}
	return fmt.Sprintf("conditional line skipped: this node's config id is %q", l.configID)
}

// indentation is the width of a line's leading whitespace, a tab
// counting 8.
func indentation(line string) int {
	w := 0
	for _, c := range line {
		switch c {
		case ' ':
			w++
		case '\t':
			w += 8 - w%8
		default:
			return w
		}
	}
	return w
}

// braceBalance counts the unquoted '{' less the unquoted '}' of a line.
func braceBalance(line string) int {
	n := 0
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{':
			n++
		case c == '}':
			n--
		}
	}
	return n
}

// stripComment removes a comment: '#' or '!' outside quotes, anywhere in
// the line.
func stripComment(line string, pos Pos) (string, error) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == 0:
			return "", errorf(pos, "", "line holds a NUL byte: not a text file")
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' || c == '!':
			return line[:i], nil
		}
	}
	return line, nil
}

var paramUseRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?:[ \t]|$)`)

// substitute replaces defined parameters, repeatedly, as keepalived does:
// ${NAME} anywhere, $NAME when followed by whitespace or the end of the
// line. Undefined parameters stay as they are.
func (l *lexer) substitute(line, file string, pos Pos) (string, error) {
	if !strings.Contains(line, "$") {
		return line, nil
	}
	lookup := func(name string) (string, bool) {
		switch name {
		case "_PWD":
			return filepath.Dir(file), true
		case "_HASH":
			return "#", true
		}
		v, ok := l.params[name]
		return v, ok
	}
	for range maxSubstitution {
		changed := false
		out := paramUseRE.ReplaceAllStringFunc(line, func(m string) string {
			sub := paramUseRE.FindStringSubmatch(m)
			name, trail := sub[1], ""
			if name == "" {
				name = sub[2]
				trail = m[len(sub[2])+1:]
			}
			v, ok := lookup(name)
			if !ok {
				return m
			}
			changed = true
			return v + trail
		})
		if !changed {
			return out, nil
		}
		if len(out) > maxLineBytes {
			return "", errorf(pos, "$", "parameter substitution makes the line longer than %d bytes", maxLineBytes)
		}
		line = out
	}
	return "", errorf(pos, "$", "parameter substitution does not end after %d rounds", maxSubstitution)
}

// tokenize splits a line (comment already removed) into tokens: words are
// separated by unquoted whitespace; '{' and '}' are words of their own;
// quotes (" or ') group, may appear inside a word and are removed; inside
// quotes a backslash escapes as in keepalived (and the shell).
func tokenize(line string, pos Pos) ([]token, error) {
	var toks []token
	i := 0
	for i < len(line) {
		c := line[i]
		if c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' {
			i++
			continue
		}
		if c == '{' || c == '}' {
			toks = append(toks, token{text: string(c), pos: pos})
			i++
			continue
		}
		var b strings.Builder
		quoted := false
		var quote byte
	word:
		for i < len(line) {
			c := line[i]
			switch {
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0 && c == '\\' && i+1 < len(line):
				n, s := unescape(line[i+1:])
				b.WriteString(s)
				i += 1 + n
			case quote != 0:
				b.WriteByte(c)
				i++
			case c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '{' || c == '}':
				break word
			case c == '"' || c == '\'':
				quote, quoted = c, true
				i++
			default:
				b.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return nil, errorf(pos, "", "unterminated quoted string")
		}
		toks = append(toks, token{text: b.String(), pos: pos, quoted: quoted})
	}
	return toks, nil
}

// unescape decodes one escape sequence (the text after the backslash) and
// returns how many bytes it used.
func unescape(s string) (int, string) {
	switch c := s[0]; c {
	case 'a':
		return 1, "\a"
	case 'b':
		return 1, "\b"
	case 'E':
		return 1, "\x1b"
	case 'f':
		return 1, "\f"
	case 'n':
		return 1, "\n"
	case 'r':
		return 1, "\r"
	case 't':
		return 1, "\t"
	case 'v':
		return 1, "\v"
	case 'x':
		n := 1
		for n < len(s) && n < 3 && strings.IndexByte("0123456789abcdefABCDEF", s[n]) >= 0 {
			n++
		}
		if n == 1 {
			return 1, "x"
		}
		v, _ := strconv.ParseUint(s[1:n], 16, 8)
		return n, string([]byte{byte(v)})
	case 'c':
		if len(s) > 1 {
			return 2, string([]byte{s[1] & 0x1f})
		}
		return 1, "c"
	default:
		if c >= '0' && c <= '7' {
			n := 1
			for n < len(s) && n < 3 && s[n] >= '0' && s[n] <= '7' {
				n++
			}
			v, _ := strconv.ParseUint(s[:n], 8, 16)
			return n, string([]byte{byte(v)})
		}
		return 1, string(c)
	}
}

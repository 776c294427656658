package importer

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mapFS is an in-memory FileSystem: file name to contents.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := filepath.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

var _ FileSystem = mapFS{}

func TestTokenize(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    []string
		wantErr string
	}{
		{name: "words", line: "priority 100", want: []string{"priority", "100"}},
		{name: "braces are words", line: "auth_pass secret}", want: []string{"auth_pass", "secret", "}"}},
		{name: "brace glued to keyword", line: "virtual_ipaddress{", want: []string{"virtual_ipaddress", "{"}},
		{name: "double quotes group", line: `script "/usr/bin/curl -k https://x"`, want: []string{"script", "/usr/bin/curl -k https://x"}},
		{name: "single quotes group", line: `script '/bin/true'`, want: []string{"script", "/bin/true"}},
		{name: "quotes inside a word", line: `abcd" efg h "mnop`, want: []string{"abcd efg h mnop"}},
		{name: "quoted brace is a word", line: `x "{"`, want: []string{"x", "{"}},
		{name: "escapes in quotes", line: `x "a\"b\\c\tx\x41\101"`, want: []string{"x", "a\"b\\c\txAA"}},
		{name: "tabs", line: "a\tb", want: []string{"a", "b"}},
		{name: "unterminated quote", line: `script "/bin/true`, wantErr: "unterminated quoted string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, err := tokenize(tt.line, Pos{File: "f", Line: 1})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tok := range toks {
				got = append(got, tok.text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStripComment(t *testing.T) {
	tests := []struct{ line, want string }{
		{"priority 100 # the master", "priority 100 "},
		{"! a comment", ""},
		{"interval 2! no space", "interval 2"},
		{`script "/bin/echo #1 !"`, `script "/bin/echo #1 !"`},
		{`script '/bin/echo "#"' # real`, `script '/bin/echo "#"' `},
	}
	for _, tt := range tests {
		got, err := stripComment(tt.line, Pos{})
		if err != nil || got != tt.want {
			t.Errorf("stripComment(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

// lexWords reads files from an in-memory FS and returns "file:line:word"
// for each token.
func lexWords(t *testing.T, files mapFS, root, configID string) ([]string, []Note, error) {
	t.Helper()
	n := &notes{}
	toks, err := lex(files, root, configID, n)
	var words []string
	for _, tok := range toks {
		words = append(words, tok.pos.String()+":"+tok.text)
	}
	return words, n.sorted(), err
}

func TestLex(t *testing.T) {
	tests := []struct {
		name      string
		files     mapFS
		configID  string
		want      []string
		wantNotes []string
		wantErr   string
	}{
		{
			name:  "include relative to the including file, glob sorted",
			files: mapFS{"etc/k.conf": "a 1\ninclude conf.d/*.conf\nb 2", "etc/conf.d/2.conf": "d", "etc/conf.d/1.conf": "c"},
			want:  []string{"etc/k.conf:1:a", "etc/k.conf:1:1", "etc/conf.d/1.conf:1:c", "etc/conf.d/2.conf:1:d", "etc/k.conf:3:b", "etc/k.conf:3:2"},
		},
		{
			name:  "nested include relative to its own directory",
			files: mapFS{"k.conf": "include a/x.conf", "a/x.conf": "include y.conf", "a/y.conf": "y"},
			want:  []string{"a/y.conf:1:y"},
		},
		{
			name:      "include matching nothing is reported",
			files:     mapFS{"k.conf": "include none/*.conf\nx"},
			want:      []string{"k.conf:2:x"},
			wantNotes: []string{"k.conf:1: include: none/*.conf matches no file: nothing included (keepalived does the same)"},
		},
		{
			name:    "include loop",
			files:   mapFS{"k.conf": "include a.conf", "a.conf": "include k.conf"},
			wantErr: "a.conf:1: include: include loop: k.conf -> a.conf -> k.conf",
		},
		{
			name:    "include of itself",
			files:   mapFS{"k.conf": "include k.conf"},
			wantErr: "include loop: k.conf -> k.conf",
		},
		{
			name:    "include with braces",
			files:   mapFS{"k.conf": "include {a,b}.conf"},
			wantErr: "brace expressions in include patterns are not supported",
		},
		{
			name:     "conditional lines",
			files:    mapFS{"k.conf": "@a x 1\n@b x 2\n@^a y 3\n@^b y 4"},
			configID: "a",
			want:     []string{"k.conf:1:x", "k.conf:1:1", "k.conf:4:y", "k.conf:4:4"},
			wantNotes: []string{
				`k.conf:2: @b: conditional line skipped: this node's config id is "a"`,
				`k.conf:3: @^a: conditional line skipped: this node's config id is "a"`,
			},
		},
		{
			name:      "a skipped conditional line skips its block",
			files:     mapFS{"k.conf": "@b vrrp_instance X {\n  priority 1\n  y {\n  }\n}\nz"},
			configID:  "a",
			want:      []string{"k.conf:6:z"},
			wantNotes: []string{`k.conf:1: @b: conditional line and its block skipped: this node's config id is "a"`},
		},
		{
			name:  "parameters",
			files: mapFS{"d/k.conf": "$BASE=10.2.${SUB}\n$SUB=0\naddr ${BASE}.1/24 $SUB\ncwd ${_PWD}\nhash ${_HASH}\nundefined \"${NOPE}\" $NOPE"},
			want: []string{
				"d/k.conf:3:addr", "d/k.conf:3:10.2.0.1/24", "d/k.conf:3:0", "d/k.conf:4:cwd", "d/k.conf:4:d",
				"d/k.conf:5:hash", "d/k.conf:5:#", "d/k.conf:6:undefined", "d/k.conf:6:${NOPE}", "d/k.conf:6:$NOPE",
			},
		},
		{
			name:    "recursive parameter",
			files:   mapFS{"k.conf": "$A=${A}x\nv ${A}"},
			wantErr: "k.conf:2: $: parameter substitution does not end",
		},
		{
			name:    "multi-line parameter",
			files:   mapFS{"k.conf": "$A= \\\n x \\\n"},
			wantErr: "k.conf:1: $A: multi-line parameter definitions are not supported",
		},
		{
			name:    "sequence",
			files:   mapFS{"k.conf": "~SEQ(N, 1, 3) x"},
			wantErr: "k.conf:1: ~SEQ: sequence lines are not supported",
		},
		{
			name:    "missing root",
			files:   mapFS{},
			wantErr: "reading k.conf: open k.conf: file does not exist",
		},
		{
			name:    "NUL byte",
			files:   mapFS{"k.conf": "a\x00b"},
			wantErr: "k.conf:1: line holds a NUL byte",
		},
		{
			name:  "CRLF line ends",
			files: mapFS{"k.conf": "a 1\r\nb 2\r\n"},
			want:  []string{"k.conf:1:a", "k.conf:1:1", "k.conf:2:b", "k.conf:2:2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := "k.conf"
			if _, ok := tt.files["etc/k.conf"]; ok {
				root = "etc/k.conf"
			}
			if _, ok := tt.files["d/k.conf"]; ok {
				root = "d/k.conf"
			}
			words, notes, err := lexWords(t, tt.files, root, tt.configID)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, words); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
			var gotNotes []string
			for _, n := range notes {
				gotNotes = append(gotNotes, n.String())
			}
			if diff := cmp.Diff(tt.wantNotes, gotNotes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
		})
	}
}

// render prints a statement tree compactly: key(args){children}.
func render(stmts []*stmt) string {
	var b strings.Builder
	for i, s := range stmts {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(s.key)
		if len(s.args) > 0 {
			b.WriteString("(" + s.argLine() + ")")
		}
		if s.hasBlock {
			b.WriteString("{" + render(s.block) + "}")
		}
	}
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    string
		wantErr string
	}{
		{name: "blocks", src: "a 1 {\n b 2\n c {\n d\n }\n}\ne", want: "a(1){b(2) c{d}} e"},
		{name: "one line", src: "a { b 1 }", want: "a{b(1)}"},
		{name: "brace on the next line", src: "a x\n{\n b\n}", want: "a(x){b}"},
		{name: "empty block", src: "a {\n}", want: "a{}"},
		{name: "words after a closing brace", src: "a { b } c 1", want: "a{b} c(1)"},
		{name: "unclosed", src: "a {\n b {\n c\n}", wantErr: "k.conf:1: a: '{' is never closed"},
		{name: "extra close", src: "a {\n}\n}", wantErr: "k.conf:3: }: unexpected '}'"},
		{name: "lone open", src: "{\n}", wantErr: "k.conf:1: {: unexpected '{'"},
		{name: "two opens", src: "a { {\n}\n}", wantErr: "unexpected '{'"},
		{name: "indentation hint", src: "x {\n    v {\n        1\n\n    w {\n    }\n}\n", wantErr: "the '}' at line 7 closes v (line 2) but is indented differently"},
		{name: "too deep", src: strings.Repeat("a {\n", 20) + strings.Repeat("}\n", 20), wantErr: "nested more than 16 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, err := lex(mapFS{"k.conf": tt.src}, "k.conf", "", &notes{})
			if err != nil {
				t.Fatal(err)
			}
			stmts, err := parse(toks)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(stmts); got != tt.want {
				t.Errorf("tree %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"VI_1", "vi-1"},
		{"ostest_API", "ostest-api"},
		{"__x__", "x"},
		{"chk--a", "chk-a"},
		{"___", "fallback"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		if got := label(tt.in, "fallback", 63); got != tt.want {
			t.Errorf("label(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	u := uniqueNames{}
	if got := []string{u.take("a"), u.take("a"), u.take("a")}; !slices.Equal(got, []string{"a", "a-2", "a-3"}) {
		t.Errorf("unique names %v", got)
	}
}

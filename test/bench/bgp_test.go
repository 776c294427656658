package main

import "testing"

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		goal float64
		want string
	}{
		{"none", nil, 150, "not measured"},
		{"all within", []float64{100, 120, 140}, 150, "met"},
		{"median within, max above", []float64{140, 147, 161}, 150, "met by the median, not by every run (max 161)"},
		{"median above", []float64{140, 158, 162}, 150, "**missed**"},
		{"zero goal met", []float64{0, 0, 0}, 0, "met"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(tc.v, tc.goal); got != tc.want {
				t.Errorf("verdict(%v, %v) = %q, want %q", tc.v, tc.goal, got, tc.want)
			}
		})
	}
}

func TestReplaceSection(t *testing.T) {
	const h = "## BGP"
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"appended", "# B\n\n## A\n\ntext\n", "# B\n\n## A\n\ntext\n\n## BGP\nnew\n"},
		{"last replaced", "# B\n\n## BGP\nold\nnotes\n", "# B\n\n## BGP\nnew\n"},
		{"middle replaced", "# B\n\n## BGP\nold\n\n## C\nc\n", "# B\n\n## BGP\nnew\n## C\nc\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replaceSection(tc.doc, h, h+"\nnew\n"); got != tc.want {
				t.Errorf("replaceSection(%q) = %q, want %q", tc.doc, got, tc.want)
			}
		})
	}
}

package ipvse2e

import (
	"strings"
	"testing"
)

// The ECMP-FIGURE line that test/ipvse2e/lb's ecmp_test.go logs is parsed,
// and the section replaces its old self between the other sections.
func TestECMPFigureLineAndSection(t *testing.T) {
	line := `    ecmp_test.go:330: ECMP-FIGURE variant="DR, mh + sloppy TCP" phase="a director joins" conns=60 moved=30 failed=0 stalled=1 longest_ms=544`
	m := ecmpFigureRE.FindStringSubmatch(line)
	if want := []string{"DR, mh + sloppy TCP", "a director joins", "60", "30", "0", "1", "544"}; m == nil || strings.Join(m[1:], "|") != strings.Join(want, "|") {
		t.Errorf("parsed %q, want %q", m, want)
	}
	doc := "# B\n\n## A\n\na\n\n" + ECMPSectionTitle + "\n\nold\n\n## C\n\nc\n"
	got := UpdateECMPSection(doc, ECMPSectionTitle+"\n\nnew\n")
	if want := "# B\n\n## A\n\na\n\n" + ECMPSectionTitle + "\n\nnew\n\n## C\n\nc\n"; got != want {
		t.Errorf("UpdateECMPSection replaced:\n%s\nwant:\n%s", got, want)
	}
	if got := UpdateECMPSection("# B\n", ECMPSectionTitle+"\n\nnew\n"); got != "# B\n\n"+ECMPSectionTitle+"\n\nnew\n" {
		t.Errorf("UpdateECMPSection appended:\n%q", got)
	}
}

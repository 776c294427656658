package ipvse2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFiguresMarkdown(t *testing.T) {
	console := strings.Join([]string{
		"=== RUN   TestKernelFigures",
		"IPVS-FIGURE impl=vipvs services=10 reals=10 case=from-empty rep=1 seconds=0.010000 requests=111",
		"IPVS-FIGURE impl=vipvs services=10 reals=10 case=from-empty rep=2 seconds=0.030000 requests=111",
		"IPVS-FIGURE impl=vipvs services=10 reals=10 case=from-empty rep=3 seconds=0.020000 requests=111",
		"IPVS-FIGURE impl=vipvs services=10 reals=10 case=one-change rep=1 seconds=0.001500 requests=3",
		"IPVS-FIGURE impl=vipvs services=1000 reals=10 case=from-empty rep=1 seconds=0.900000 requests=11001",
		"IPVS-FIGURE impl=vipvs services=1000 reals=10 case=one-change rep=1 seconds=0.060000 requests=3",
		"  IPVS-FIGURE impl=keepalived services=1000 reals=10 case=start rep=1 seconds=2.500000 requests=0",
		"IPVS-FIGURE impl=vipvs services=x reals=10 case=from-empty rep=1 seconds=1 requests=1", // not a figure
		"--- PASS: TestKernelFigures (12.00s)",
	}, "\n")
	f := &Figures{
		Opts: FigureOptions{Reps: 3, Sizes: []int{10, 1000}}, Kernel: "6.1.0-cloud-amd64", Accel: "tcg",
		Keepalived: "v2.2.7", Date: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), Took: 95 * time.Second,
		LoadStart: "0.50", LoadEnd: "1.25",
		samples: map[figureKey][]sample{},
	}
	if err := f.parse(console); err != nil {
		t.Fatal(err)
	}
	md := f.Markdown()
	t.Log("\n" + md)
	for _, want := range []string{
		SectionTitle + "\n\nMade by `make bench`",
		"`go run ./test/bench -ipvs-only -reps 3`",
		"on 2026-11-24, 3 repetitions, in one VM run of 1m35s",
		"Kernel 6.1.0-cloud-amd64 under qemu, 2 vCPUs, accelerator tcg; the host's load average was 0.50 before and 1.25 after the run",
		"spread. **The VM ran under TCG",
		"| figure | 10 × 10 | 1000 × 10 |\n|---|---|---|\n",
		"| vipvs (moby/ipvs), from empty (`Reconcile` by a new agent) | 20.0 (10.0–30.0) | 900 (900–900) |\n",
		"| vipvs (moby/ipvs), one weight changed (`ReconcileChanged`: a config or health change) | 1.50 (1.50–1.50) | 60.0 (60.0–60.0) |\n",
		"| keepalived, process start → table complete | n/a | 2500 (2500–2500) |\n",
		"| vipvs (moby/ipvs), from empty (`Reconcile` by a new agent) | 111 | 11001 |\n",
		"| vipvs (moby/ipvs), one weight changed (`ReconcileChanged`: a config or health change) | 3 | 3 |\n",
		"keepalived v2.2.7 (Debian)",
		"from empty ≤ 1 s: met (median 900 ms); one change ≤ 50 ms: not met (median 60.0 ms).",
		"vipvs's Programmer goes through github.com/moby/ipvs",
		"\n\nHistory: for a while the Programmer used a hand-written generic netlink client instead of moby/ipvs. ",
		"1000 × 10 from empty in 1205 ms (3189 ms through moby/ipvs) and applied one change (`ReconcileChanged`) in 20 ms",
		"It was not adopted: issue #5 names github.com/moby/ipvs",
		"shrinks about tenfold under KVM.\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for _, absent := range []string{"full reconcile (`Reconcile`: the periodic resync)", "| moby"} {
		if strings.Contains(md, absent) {
			t.Errorf("Markdown has a row for figures not measured: %q", absent)
		}
	}
}

func TestUpdateSection(t *testing.T) {
	sec := SectionTitle + "\n\nnew figures\n"
	tests := []struct{ name, doc, want string }{
		{"empty file", "", sec},
		{"appended", "# Benchmarks\n\n## idle\n\nx\n", "# Benchmarks\n\n## idle\n\nx\n\n" + sec},
		{"replaced at the end", "# B\n\n" + SectionTitle + "\n\nold\n", "# B\n\n" + sec},
		{"replaced in the middle", "# B\n\n" + SectionTitle + "\n\nold\n\n## Failed runs\n\n- x\n",
			"# B\n\n" + sec + "\n## Failed runs\n\n- x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, UpdateSection(tt.doc, sec)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

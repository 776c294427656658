package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vipvs/vipvs/test/faultlab"
	"github.com/vipvs/vipvs/test/lab"
)

// The reliability table's flags.
var (
	reliabilityOn     = flag.Bool("reliability", true, "also run the fault and attack situations of test/faultlab for both implementations")
	reliabilityOnly   = flag.Bool("reliability-only", false, "run the reliability situations only and replace their section in -out")
	reliabilityReps   = flag.Int("reliability-reps", 1, "repetitions of each reliability situation for each implementation")
	reliabilityFilter = flag.String("reliability-only-situation", "", "run only the situations whose name contains this")
)

// reliabilityHeading starts the reliability section of the report.
const reliabilityHeading = "## Reliability under faults and attacks"

// reliabilityRow is one situation's outcomes for one implementation.
type reliabilityRow struct {
	situation string
	impl      faultlab.Impl
	outcomes  []faultlab.Outcome
}

// reliabilitySection plays every faultlab situation reps times for vipvs
// and keepalived, in a new lab each time, and returns the section; a
// failure is added to failures.
func reliabilitySection(ctx context.Context, bin string, reps int, filter string, failures *[]string) string {
	var rows []*reliabilityRow
	byKey := map[string]*reliabilityRow{}
	for rep := 1; rep <= reps; rep++ {
		for _, sc := range faultlab.Scenarios() {
			if !strings.Contains(sc.Name, filter) {
				continue
			}
			for _, impl := range []faultlab.Impl{faultlab.VIPVS, faultlab.Keepalived} {
				if ctx.Err() != nil {
					return ""
				}
				fmt.Fprintf(os.Stderr, "reliability rep %d/%d %-10s %-45s ", rep, reps, impl, sc.Name)
				o, err := playSituation(bin, impl, sc)
				if err != nil {
					fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
					*failures = append(*failures, fmt.Sprintf("reliability rep %d %s %s: %v", rep, impl, sc.Name, err))
					continue
				}
				fmt.Fprintln(os.Stderr, o)
				k := sc.Name + "/" + string(impl)
				r := byKey[k]
				if r == nil {
					r = &reliabilityRow{situation: sc.Name, impl: impl}
					byKey[k] = r
					rows = append(rows, r)
				}
				r.outcomes = append(r.outcomes, o)
			}
		}
	}
	var w strings.Builder
	fmt.Fprintf(&w, "%s\n\n", reliabilityHeading)
	fmt.Fprintf(&w, "Made by `go run ./test/bench -reliability-only -reliability-reps %d` (part of `make bench`): the situations of test/faultlab (issue #11), each in a new lab of 3 nodes (priorities 150/100/50, advert interval 100 ms), a client opening a new TCP connection to the VIP every %v (failing after %v) and an attacker on the same bridge; vipvs and keepalived in the same run. ", reps, faultlab.ProbeEvery, faultlab.ProbeTimeout)
	fmt.Fprintf(&w, "An outage runs from the start of a failed connection to the end of the next successful one; takeovers count the times a node took the VIP; a node keeps serving while it holds the VIP, so the VIP on two nodes costs nothing by itself. Figures are the median over the repetitions.\n\n")
	fmt.Fprintf(&w, "| situation | impl | outage longest (ms) | outage total (ms) | failed probes | takeovers | VIP on two nodes (ms) | VIP on none (ms) |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		med := func(f func(faultlab.Outcome) float64) string {
			v := make([]float64, len(r.outcomes))
			for i, o := range r.outcomes {
				v[i] = f(o)
			}
			sort.Float64s(v)
			return num(v[len(v)/2])
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.situation, r.impl,
			med(func(o faultlab.Outcome) float64 { return ms(o.Longest) }),
			med(func(o faultlab.Outcome) float64 { return ms(o.Total) }),
			med(func(o faultlab.Outcome) float64 { return float64(o.Failed) }),
			med(func(o faultlab.Outcome) float64 { return float64(o.Takeovers) }),
			med(func(o faultlab.Outcome) float64 { return ms(o.TwoHolders) }),
			med(func(o faultlab.Outcome) float64 { return ms(o.NoHolder) }))
	}
	return w.String()
}

// playSituation plays one situation in a new lab.
func playSituation(bin string, impl faultlab.Impl, sc faultlab.Scenario) (faultlab.Outcome, error) {
	l, err := lab.New(lab.Options{Nodes: 3, Clients: 2})
	if err != nil {
		return faultlab.Outcome{}, err
	}
	defer l.Close()
	if err := faultlab.NewLab(l); err != nil {
		return faultlab.Outcome{}, err
	}
	dir, err := os.MkdirTemp("", "vipvs-reliability-")
	if err != nil {
		return faultlab.Outcome{}, err
	}
	defer os.RemoveAll(dir)
	opts := faultlab.Options{Impl: impl, Bin: bin, Dir: dir}
	if sc.Options != nil {
		sc.Options(&opts)
	}
	e, err := faultlab.New(l, opts)
	if err != nil {
		return faultlab.Outcome{}, err
	}
	defer e.Close()
	mark := e.Mark()
	if err := sc.Play(e); err != nil {
		return faultlab.Outcome{}, err
	}
	return e.Outcome(mark), nil
}

// reliabilityOnlyRun measures the reliability table only and replaces its
// section in out (appends it when missing).
func reliabilityOnlyRun(ctx context.Context, bin, out string) int {
	var failures []string
	start := time.Now()
	sec := reliabilitySection(ctx, bin, *reliabilityReps, *reliabilityFilter, &failures)
	if sec == "" {
		return 130
	}
	old, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	doc := replaceSection(string(old), reliabilityHeading, sec)
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote the reliability section of %s in %v\n", out, time.Since(start).Round(time.Second))
	for _, f := range failures {
		fmt.Fprintln(os.Stderr, f)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vipvs/vipvs/test/bgplab"
)

// The BGP section's flags.
var (
	bgpOn   = flag.Bool("bgp", true, "also measure silent node death and graceful stop of active/active BGP VIPs, beside an FRR node")
	bgpOnly = flag.Bool("bgp-only", false, "measure the BGP section only and replace it in -out")
	bgpReps = flag.Int("bgp-reps", 0, "repetitions of each BGP measurement for each speaker (0: -reps)")
)

// bgpHeading starts the BGP section of the report.
const bgpHeading = "## Active/active BGP: silent node death and graceful stop"

// bgpSetting is one BFD setting of the silent-death tables.
type bgpSetting struct {
	name string
	bfd  time.Duration
	// goal is issue 14's bound (ms) on the detection and the client's gap.
	goal float64
	// goalText says where the goal comes from.
	goalText string
}

var bgpSettings = []bgpSetting{
	{"BFD 300ms x3", 300 * time.Millisecond, 1000, "≤ 1000 ms (issue 14; MetalLB with FRR and BFD: about 1-4 s reported by users)"},
	{"BFD 30ms x3", 30 * time.Millisecond, 150, "≤ 150 ms (issue 14)"},
	{"no BFD, hold time 9s", 0, 9000, "≤ hold time 9000 ms"},
}

// bgpFigure is one row of a BGP table.
type bgpFigure struct {
	name, unit, doc string
	// goal marks the rows the setting's goal applies to.
	goal bool
}

var silentFigures = []bgpFigure{
	{"router drops the node", "ms", "fault -> the router's kernel no longer forwards the VIP to the node (polled every 5 ms)", true},
	{"router BFD down", "ms", "fault -> the router's bfdd logs the session down (microsecond log timestamps)", false},
	{"router BGP down", "ms", "fault -> the router's bgpd logs the session down", false},
	{"BGP down -> FIB", "ms", "the router's bgpd session down -> kernel route changed: bgpd -> zebra -> kernel (+ up to 5 ms of polling)", false},
	{"client: last SYN lost", "ms", "fault -> start of the last connection whose first SYN went to the dead node (answered after more than 500 ms, or not at all)", true},
	{"client: last hit answered", "ms", "fault -> end of that connection: answered after the kernel's SYN retransmission (1 s initial RTO), or failed", false},
	{"connections hit", "", "connections answered after more than 500 ms or not at all (one new connection every 5 ms, each waiting up to 3 s)", false},
	{"failed connections", "", "connections not answered within 3 s, or reset", false},
}

var gracefulFigures = []bgpFigure{
	{"failed connections", "", "connections not answered within 3 s, or reset (one new connection every 5 ms)", true},
	{"reset", "", "of them reset: a handshake straddling the router's rehash (SYN-ACK from one node, the ACK hashed to another)", false},
	{"connections hit", "", "connections answered after more than 500 ms (a SYN lost: sent to a node that was gone) or not at all", false},
	{"router drops the node", "ms", "SIGTERM -> the router's kernel no longer forwards the VIP to the node", false},
	{"speaker exited", "ms", "SIGTERM -> the speaker's process has exited", false},
}

// bgpTable is one table of the section.
type bgpTable struct {
	name    string
	figures []bgpFigure
	// goal bounds the median of the rows marked goal; goalText says it.
	goal     float64
	goalText string
}

type bgpKey struct{ table, figure string }

// bgpResults are the values of every (table, figure) per speaker.
type bgpResults map[bgpKey]map[bgplab.Speaker][]float64

func (r bgpResults) add(table, figure string, sp bgplab.Speaker, v float64) {
	k := bgpKey{table, figure}
	if r[k] == nil {
		r[k] = map[bgplab.Speaker][]float64{}
	}
	r[k][sp] = append(r[k][sp], v)
}

// agentBinary is the vipvs-agent next to bin (make bench passes the agent
// itself).
func agentBinary(bin string) string {
	if filepath.Base(bin) == "vipvs-agent" {
		return bin
	}
	return filepath.Join(filepath.Dir(bin), "vipvs-agent")
}

// loadAvg returns the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// bgpSection measures the BGP figures reps times for the vipvs node and the
// FRR node, interleaved, and returns the section; a failure is added to
// failures.
func bgpSection(ctx context.Context, bin string, reps int, failures *[]string) string {
	start, loadStart := time.Now(), loadAvg()
	agent := agentBinary(bin)
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
		*failures = append(*failures, fmt.Sprintf("BGP %s: %v", what, firstLine(err.Error())))
	}
	fmt.Fprintln(os.Stderr, "BGP: building the lab (FRR router, 2 vipvs nodes, 1 FRR node)...")
	b, err := bgplab.NewBench(bgplab.BenchOptions{Agent: agent, Log: os.Stderr})
	if err != nil {
		fail("lab", err)
		return fmt.Sprintf("%s\n\nNot measured: %s.\n", bgpHeading, firstLine(err.Error()))
	}
	defer b.Close()
	frrVersion := b.FRRVersion()
	res := bgpResults{}
	var bfdSeen []string
	order := func(rep int) []bgplab.Speaker {
		if rep%2 == 0 {
			return []bgplab.Speaker{bgplab.SpeakerFRR, bgplab.SpeakerVIPVS}
		}
		return []bgplab.Speaker{bgplab.SpeakerVIPVS, bgplab.SpeakerFRR}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, st := range bgpSettings {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "BGP: %s on n2 (vipvs) and n3 (FRR)...\n", st.name)
		if err := b.SetBFD(st.bfd); err != nil {
			fail(st.name, err)
			continue
		}
		if st.bfd > 0 {
			bfdSeen = append(bfdSeen, fmt.Sprintf("%s: the router's sessions with vipvs %s, with FRR %s", st.name, b.BFDPeer(bgplab.SpeakerVIPVS), b.BFDPeer(bgplab.SpeakerFRR)))
		}
		table := "silent death, " + st.name
		for rep := 1; rep <= reps && ctx.Err() == nil; rep++ {
			for _, sp := range order(rep) {
				fmt.Fprintf(os.Stderr, "BGP rep %d/%d %-6s %-30s ", rep, reps, sp, table)
				r, err := b.SilentDeath(sp)
				if err != nil {
					fail(fmt.Sprintf("rep %d %s %s", rep, sp, table), err)
					continue
				}
				fmt.Fprintf(os.Stderr, "%+v\n", r)
				res.add(table, "router drops the node", sp, ms(r.Dropped))
				if r.BFDDown >= 0 {
					res.add(table, "router BFD down", sp, ms(r.BFDDown))
				}
				if r.BGPDown >= 0 {
					res.add(table, "router BGP down", sp, ms(r.BGPDown))
					res.add(table, "BGP down -> FIB", sp, ms(r.Dropped-r.BGPDown))
				}
				if r.Client.Hit > 0 {
					res.add(table, "client: last SYN lost", sp, ms(r.Client.LastHitStart))
					res.add(table, "client: last hit answered", sp, ms(r.Client.LastHitEnd))
				}
				res.add(table, "connections hit", sp, float64(r.Client.Hit))
				res.add(table, "failed connections", sp, float64(r.Client.Failed))
			}
		}
		if st.bfd != 300*time.Millisecond {
			continue
		}
		// The graceful stop at the default profile.
		for rep := 1; rep <= reps && ctx.Err() == nil; rep++ {
			for _, sp := range order(rep) {
				fmt.Fprintf(os.Stderr, "BGP rep %d/%d %-6s %-30s ", rep, reps, sp, "graceful stop")
				r, err := b.GracefulStop(sp)
				if err != nil {
					fail(fmt.Sprintf("rep %d %s graceful stop", rep, sp), err)
					continue
				}
				fmt.Fprintf(os.Stderr, "%+v\n", r)
				res.add("graceful stop", "failed connections", sp, float64(r.Client.Failed))
				res.add("graceful stop", "reset", sp, float64(r.Client.Reset))
				res.add("graceful stop", "connections hit", sp, float64(r.Client.Hit))
				res.add("graceful stop", "router drops the node", sp, ms(r.Dropped))
				res.add("graceful stop", "speaker exited", sp, ms(r.Exited))
			}
		}
	}
	var w strings.Builder
	fmt.Fprintf(&w, "%s\n\n", bgpHeading)
	fmt.Fprintf(&w, "Made by `go run ./test/bench -vipvs bin/vipvs-agent -bgp-only -reps %d` (part of `make bench`) on %s, %d repetitions of each measurement for each speaker, interleaved, in one run of %v; 1-minute load average %s at the start and %s at the end, on %s shared with other work. ",
		reps, time.Now().UTC().Format("2006-01-02"), reps, time.Since(start).Round(time.Second), loadStart, loadAvg(), machine())
	fmt.Fprintf(&w, "The lab is test/bgplab.Bench: FRR %s (Debian) as the upstream router in a network namespace (ECMP over the nodes, L4 hash, hold time 9 s, keepalive 3 s, BFD profile at the setting), a client behind it opening a new TCP connection to the VIP every %v without waiting for the earlier ones (each waits up to %v for the node's answer, so the kernel's SYN retransmission counts), and three nodes announcing the VIP: n1 and n2 run vipvs-agent %s (n1 always at BFD 300 ms x 3, n2 at the setting: the measured vipvs node), n3 runs FRR %s itself (zebra, bgpd and bfdd, the VIP on lo and a `network` statement, at the same setting): the reference, the closest stand-in for MetalLB's FRR mode that runs here. ",
		frrVersion, bgplab.BenchProbeEvery, bgplab.BenchConnTimeout, version(agent), frrVersion)
	fmt.Fprintf(&w, "A silent death drops every IP packet in and out of the node (nftables, no link change, no FIN); a graceful stop sends SIGTERM to the speaker (vipvs-agent: GRACEFUL_SHUTDOWN community, which the router maps to local-preference 0, 2 s wait, withdrawal; FRR: SIGTERM to bgpd, which sends a Cease NOTIFICATION) and stops the node's service once it has exited. ")
	fmt.Fprintf(&w, "Figures are median (min–max); ratio is vipvs/FRR of the medians (lower is better); goal marks the rows issue 14's goal applies to, judged on the vipvs median.\n")
	if len(bfdSeen) > 0 {
		fmt.Fprintf(&w, "\nBFD as the router negotiated it: %s.\n", strings.Join(bfdSeen, "; "))
	}
	var tables []bgpTable
	for _, st := range bgpSettings {
		tables = append(tables, bgpTable{"silent death, " + st.name, silentFigures, st.goal, st.goalText})
	}
	tables = append(tables, bgpTable{"graceful stop", gracefulFigures, 0, "0 (issue 14)"})
	for _, t := range tables {
		fmt.Fprintf(&w, "\n### %s\n\n| figure | vipvs | FRR node | ratio | goal | what |\n|---|---|---|---|---|---|\n", t.name)
		for _, f := range t.figures {
			vals := res[bgpKey{t.name, f.name}]
			cell := func(v []float64) (string, float64) {
				if len(v) == 0 {
					return "n/a", 0
				}
				med, lo, hi := stats(v)
				return fmt.Sprintf("%s (%s–%s)", num(med), num(lo), num(hi)), med
			}
			vs, vm := cell(vals[bgplab.SpeakerVIPVS])
			fs, fm := cell(vals[bgplab.SpeakerFRR])
			ratio := "n/a"
			switch {
			case len(vals[bgplab.SpeakerVIPVS]) > 0 && len(vals[bgplab.SpeakerFRR]) > 0 && fm != 0:
				ratio = fmt.Sprintf("%.2f", vm/fm)
			case len(vals[bgplab.SpeakerVIPVS]) > 0 && len(vals[bgplab.SpeakerFRR]) > 0 && vm == 0:
				ratio = "0 = 0"
			}
			goal := ""
			if f.goal {
				goal = t.goalText + ": " + verdict(vals[bgplab.SpeakerVIPVS], t.goal)
			}
			unit := ""
			if f.unit != "" {
				unit = " (" + f.unit + ")"
			}
			fmt.Fprintf(&w, "| %s%s | %s | %s | %s | %s | %s |\n", f.name, unit, vs, fs, ratio, goal, f.doc)
		}
		if t.name != "graceful stop" {
			fmt.Fprintf(&w, "\n%s\n", whereTimeGoes(res, t.name))
		}
	}
	return w.String()
}

// bgpOnlyRun measures the BGP section only and replaces it in out (appends
// it when missing; - for stdout).
func bgpOnlyRun(ctx context.Context, bin string, reps int, out string) int {
	var failures []string
	sec := bgpSection(ctx, bin, reps, &failures)
	for _, f := range failures {
		fmt.Fprintln(os.Stderr, f)
	}
	return writeSection(out, sec, "BGP", func(doc, sec string) string { return replaceSection(doc, bgpHeading, sec) }, failures)
}

// replaceSection replaces the level-2 section of doc that starts with
// heading (up to the next level-2 heading) by sec, or appends sec.
func replaceSection(doc, heading, sec string) string {
	i := strings.Index(doc, heading)
	if i < 0 {
		return strings.TrimRight(doc, "\n") + "\n\n" + sec
	}
	end := len(doc)
	if j := strings.Index(doc[i+len(heading):], "\n## "); j >= 0 {
		end = i + len(heading) + j + 1
	}
	return doc[:i] + sec + doc[end:]
}

// bgpRepsOr is -bgp-reps, or reps when it is 0.
func bgpRepsOr(reps int) int {
	if *bgpReps > 0 {
		return *bgpReps
	}
	return reps
}

// verdict judges vipvs's values against a goal (at most goal).
func verdict(v []float64, goal float64) string {
	if len(v) == 0 {
		return "not measured"
	}
	med, _, hi := stats(v)
	switch {
	case med > goal:
		return "**missed**"
	case hi > goal:
		return fmt.Sprintf("met by the median, not by every run (max %s)", num(hi))
	}
	return "met"
}

// whereTimeGoes sums up a silent-death table: the medians of the router's
// detection, of its bgpd -> zebra -> kernel path and of the client's wait.
func whereTimeGoes(res bgpResults, table string) string {
	med := func(figure string, sp bgplab.Speaker) string {
		v := res[bgpKey{table, figure}][sp]
		if len(v) == 0 {
			return "n/a"
		}
		m, _, _ := stats(v)
		return num(m)
	}
	detect := "BFD down on the router " + med("router BFD down", bgplab.SpeakerVIPVS) + " ms (FRR node " + med("router BFD down", bgplab.SpeakerFRR) + ")"
	if len(res[bgpKey{table, "router BFD down"}][bgplab.SpeakerVIPVS]) == 0 {
		detect = "BGP session down on the router's hold timer " + med("router BGP down", bgplab.SpeakerVIPVS) + " ms (FRR node " + med("router BGP down", bgplab.SpeakerFRR) + ")"
	}
	return fmt.Sprintf("Where the time goes (vipvs medians): %s after the fault; then bgpd -> zebra -> kernel %s ms (FRR node %s) to the route change at %s ms; a connection whose SYN went to the dead node before that is answered when the client's kernel retransmits the SYN, 1 s later (initial RTO): the last at %s ms.",
		detect, med("BGP down -> FIB", bgplab.SpeakerVIPVS), med("BGP down -> FIB", bgplab.SpeakerFRR), med("router drops the node", bgplab.SpeakerVIPVS), med("client: last hit answered", bgplab.SpeakerVIPVS))
}

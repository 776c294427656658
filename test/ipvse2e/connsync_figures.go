package ipvse2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/vm"
)

// ConnSyncTitle is the heading of the section that ConnSyncFigures.Markdown
// writes into BENCHMARKS.md.
const ConnSyncTitle = "## Established connections across a failover (in the VM)"

// connSyncPkg holds the connection-survival tests.
const connSyncPkg = "github.com/vipvs/vipvs/test/ipvse2e/lb"

// connSyncFigureTests are the tests whose SYNC-FIGURE lines make the
// section.
var connSyncFigureTests = []string{
	"TestConnSyncNAT", "TestConnSyncDR", "TestConnSyncTunnel", "TestConnSyncNAT6",
	"TestConnSyncOffNAT", "TestConnSyncOffDR", "TestConnSyncAPIVIP",
}

// ConnSyncOptions configure RunConnSyncFigures.
type ConnSyncOptions struct {
	// Conns is the number of connections of each test (default 100).
	Conns int
	// Stdout receives the VM's console; may be nil.
	Stdout io.Writer
	// Timeout bounds the VM run (default 20 minutes).
	Timeout time.Duration
}

// ConnSyncFigures are the measurements of one RunConnSyncFigures.
type ConnSyncFigures struct {
	Opts               ConnSyncOptions
	Kernel, Accel      string
	Date               time.Time
	Took               time.Duration
	LoadStart, LoadEnd string
	// Rows are the figures in the order the tests logged them.
	Rows []ConnSyncRow
}

// ConnSyncRow is one failover of one test.
type ConnSyncRow struct {
	// Mode is NAT, DR, Tunnel, NAT-IPv6, or apivip (NAT with the
	// directors as the real servers).
	Mode string
	// Sync is whether the connection sync ran.
	Sync bool
	// Kind is hard, preempt, graceful or restart.
	Kind string
	// Conns were open, Survived answered again after the VIP moved.
	Conns, Survived int
	// Longest is the longest stall of a connection; Took is how long the
	// VIP took to move.
	Longest, Took time.Duration
}

var connSyncFigureRE = regexp.MustCompile(`SYNC-FIGURE mode=(\S+) sync=(true|false) kind=(\S+) conns=(\d+) survived=(\d+) longest_ms=(\d+) took_ms=(\d+)`)

// parseConnSync reads the SYNC-FIGURE lines of a console.
func parseConnSync(console string) []ConnSyncRow {
	var rows []ConnSyncRow
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := connSyncFigureRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n := make([]int, 4)
		for i := range n {
			n[i], _ = strconv.Atoi(m[4+i])
		}
		rows = append(rows, ConnSyncRow{Mode: m[1], Sync: m[2] == "true", Kind: m[3], Conns: n[0], Survived: n[1],
			Longest: time.Duration(n[2]) * time.Millisecond, Took: time.Duration(n[3]) * time.Millisecond})
	}
	return rows
}

// RunConnSyncFigures boots the test VM with the vipvs binary and
// test/ipvse2e/lb's test binary and runs the connection-survival tests
// (TestConnSyncInVM's), collecting how many connections survive each
// failover kind with and without the sync.
func RunConnSyncFigures(ctx context.Context, o ConnSyncOptions) (*ConnSyncFigures, error) {
	if o.Conns <= 0 {
		o.Conns = 100
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
	}
	if err := vm.Missing(); err != nil {
		return nil, fmt.Errorf("connection figures: cannot boot the VM: %w", err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		return nil, fmt.Errorf("connection figures: %w", err)
	}
	f := &ConnSyncFigures{Opts: o, Kernel: k.Version, Date: time.Now().UTC()}
	dir, err := os.MkdirTemp("", "vipvs-connsync-figures-")
	if err != nil {
		return nil, fmt.Errorf("connection figures: %w", err)
	}
	defer os.RemoveAll(dir)
	testBin := filepath.Join(dir, "lb.test")
	if err := vm.BuildTestBinary(ctx, connSyncPkg, testBin); err != nil {
		return nil, fmt.Errorf("connection figures: %w", err)
	}
	vipvs, err := agentlab.Build(dir)
	if err != nil {
		return nil, fmt.Errorf("connection figures: %w", err)
	}
	var console strings.Builder
	var out io.Writer = &console
	if o.Stdout != nil {
		out = io.MultiWriter(&console, o.Stdout)
	}
	start := time.Now()
	f.LoadStart = loadAverage()
	run := "^(" + strings.Join(connSyncFigureTests, "|") + ")$"
	res, err := vm.Run(ctx, vm.Options{
		Binaries: []vm.Binary{{
			Path: testBin,
			Args: []string{"-test.v", "-test.count=1", "-test.timeout=" + (o.Timeout - time.Minute).String(), "-test.run", run},
			Env:  []string{"VIPVS_BIN=/opt/vipvs/vipvs", "VIPVS_SYNC_CONNS=" + strconv.Itoa(o.Conns)},
		}},
		Files:     []vm.File{{Src: vipvs, Dst: "/opt/vipvs/vipvs", Mode: 0o755}},
		Stdout:    out,
		Timeout:   o.Timeout,
		MemoryMiB: 1536,
	})
	f.Took, f.Accel, f.LoadEnd = time.Since(start), res.Accel, loadAverage()
	if err != nil {
		return nil, fmt.Errorf("connection figures: %w", err)
	}
	f.Rows = parseConnSync(console.String())
	if res.ExitStatus != 0 {
		return f, fmt.Errorf("connection figures: the tests failed in the VM (exit status %d):\n%s", res.ExitStatus, tail(console.String(), 40))
	}
	return f, nil
}

var connSyncKinds = []struct{ kind, label string }{
	{"hard", "hard failover (the master's link goes down)"},
	{"preempt", "preemption back (the link returns)"},
	{"graceful", "graceful stop (SIGTERM to the master's agent)"},
	{"restart", "the agent starts again and preempts"},
}

// row returns the figure of mode, sync and kind.
func (f *ConnSyncFigures) row(mode string, sync bool, kind string) (ConnSyncRow, bool) {
	for _, r := range f.Rows {
		if r.Mode == mode && r.Sync == sync && r.Kind == kind {
			return r, true
		}
	}
	return ConnSyncRow{}, false
}

// Markdown renders the section for BENCHMARKS.md, ConnSyncTitle first.
func (f *ConnSyncFigures) Markdown() string {
	var w strings.Builder
	fmt.Fprintf(&w, "%s\n\n", ConnSyncTitle)
	fmt.Fprintf(&w, "Made by `make bench`, or alone by `go run ./test/bench -connsync-only` (test/ipvse2e.RunConnSyncFigures: test/ipvse2e/lb's connection-sync tests in the test VM, those of `TestConnSyncInVM`), on %s, in one VM run of %v. ",
		f.Date.Format("2006-01-02"), f.Took.Round(time.Second))
	fmt.Fprintf(&w, "Kernel %s under qemu, 2 vCPUs, accelerator %s", f.Kernel, f.Accel)
	if f.LoadStart != "" && f.LoadEnd != "" {
		fmt.Fprintf(&w, "; the host's load average was %s before and %s after the run, on %d cores shared with other work", f.LoadStart, f.LoadEnd, runtime.NumCPU())
	}
	w.WriteString(".")
	if f.Accel == vm.AccelTCG {
		w.WriteString(" The VM ran under TCG (software emulation): stalls include the emulation's slowness.")
	}
	fmt.Fprintf(&w, "\n\nThree directors (VRRP every 500 ms), three real servers, a client with %d long-lived TCP connections through the VIP, each exchanging a line every 100 ms. "+
		"With the sync the same connections go through the four failovers in turn; without it each failover gets connections opened just before it. "+
		"Survived: alive and answering again after the VIP moved (with the sync the test waits up to 30 s for every connection; without it 3 s, by which time the others were reset or stalled). "+
		"Longest stall: the longest time a surviving connection went without an answer around the failover, the failover itself included.\n\n", f.Opts.Conns)
	w.WriteString("| forwarding | failover | VIP moved in (s) | survived with sync | longest stall with sync (s) | survived without sync |\n|---|---|---|---|---|---|\n")
	for _, mode := range []string{"NAT", "DR", "Tunnel", "NAT-IPv6"} {
		for _, k := range connSyncKinds {
			on, okOn := f.row(mode, true, k.kind)
			off, okOff := f.row(mode, false, k.kind)
			if !okOn && !okOff {
				continue
			}
			moved, survOn, stall, survOff := "n/a", "n/a", "n/a", "not measured"
			if okOn {
				moved = secs(on.Took)
				survOn = fmt.Sprintf("%d of %d", on.Survived, on.Conns)
				stall = stallSecs(on.Longest)
			}
			if okOff {
				survOff = fmt.Sprintf("%d of %d", off.Survived, off.Conns)
				if !okOn {
					moved = secs(off.Took)
				}
			}
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s |\n", mode, k.label, moved, survOn, stall, survOff)
		}
	}
	if r, ok := f.row("apivip", true, "hard"); ok {
		fmt.Fprintf(&w, "| NAT, API-VIP shape (the directors are the real servers) | %s | %s | %d of %d | %s | not measured |\n",
			connSyncKinds[0].label, secs(r.Took), r.Survived, r.Conns, stallSecs(r.Longest))
	}
	w.WriteString("\nWithout the sync NAT and DR were measured (tunnelling takes DR's path through IPVS, IPv6 NAT IPv4's). In the API-VIP shape only the connections balanced to the director that is neither the old nor the new master survive, a third with three directors (docs/forwarding.md).\n")
	fmt.Fprintf(&w, "\n%s\n", connSyncHistory)
	return w.String()
}

// connSyncHistory records, under every run's figures, the NAT stall before
// the takeover created the conntrack entries.
const connSyncHistory = "History: before a new master created the conntrack entries of the synced NAT connections (ipvssync.AdoptNAT, 2026-12-07), " +
	"a hard failover stalled 50 of 100 NAT connections for more than the failover plus 10 s, the longest 29 s (VIP moved in 1.3 s, TCG): " +
	"the real servers' retransmissions were dropped until the client's next packet, which a client waiting for an answer sends only with its TCP keepalive."

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }

// stallSecs is secs for a longest stall: the tests record gaps longer
// than four exchanges (0.4 s) only.
func stallSecs(d time.Duration) string {
	if d == 0 {
		return "< 0.4"
	}
	return secs(d)
}

// UpdateConnSyncSection returns doc with its ConnSyncTitle section (up to
// the next "## " heading) replaced by section, or with section appended.
func UpdateConnSyncSection(doc, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	i := strings.Index(doc, ConnSyncTitle+"\n")
	if i < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return doc + section
	}
	rest := doc[i+len(ConnSyncTitle)+1:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		return doc[:i] + section + rest[j:]
	}
	return doc[:i] + section
}

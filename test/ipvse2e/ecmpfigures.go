package ipvse2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/vm"
)

// ECMPSectionTitle is the heading of the section RunECMPFigures writes into
// BENCHMARKS.md.
const ECMPSectionTitle = "## Directors joining and leaving an ECMP set (in the VM)"

// lbPackage holds the load-balancing tests that run in the VM.
const lbPackage = "github.com/vipvs/vipvs/test/ipvse2e/lb"

// ECMPFigureOptions configure RunECMPFigures.
type ECMPFigureOptions struct {
	// Conns is the number of long-lived connections (default 60).
	Conns int
	// Stdout receives the VM's console; may be nil.
	Stdout io.Writer
	// Timeout bounds the VM run (default 15 minutes).
	Timeout time.Duration
}

// ecmpFigureRE matches the ECMP-FIGURE lines of test/ipvse2e/lb's
// ecmp_test.go.
var ecmpFigureRE = regexp.MustCompile(`ECMP-FIGURE variant="([^"]*)" phase="([^"]*)" conns=(\d+) moved=(\d+) failed=(\d+) stalled=(\d+) longest_ms=(\d+)`)

// RunECMPFigures boots the test VM once, runs the consistent-hashing tests
// of test/ipvse2e/lb (a director joins, then one leaves the ECMP set of a
// VIP carrying long-lived connections; with mh and sloppy TCP for DR and
// tunnel, and the rr and no-sloppy variants) and returns the section for
// BENCHMARKS.md. It returns the section with what was measured and an
// error when a test failed or the VM could not run.
func RunECMPFigures(ctx context.Context, o ECMPFigureOptions) (string, error) {
	if o.Conns <= 0 {
		o.Conns = 60
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	if err := vm.Missing(); err != nil {
		return "", fmt.Errorf("ecmp figures: cannot boot the VM: %w", err)
	}
	k, err := vm.FindKernel()
	if err != nil {
		return "", fmt.Errorf("ecmp figures: %w", err)
	}
	dir, err := os.MkdirTemp("", "vipvs-ecmp-figures-")
	if err != nil {
		return "", fmt.Errorf("ecmp figures: %w", err)
	}
	defer os.RemoveAll(dir)
	testBin := filepath.Join(dir, "lb.test")
	if err := vm.BuildTestBinary(ctx, lbPackage, testBin); err != nil {
		return "", fmt.Errorf("ecmp figures: %w", err)
	}
	// The lb tests' TestMain wants the vipvs binary, though these tests
	// do not run it.
	vipvs, err := agentlab.Build(dir)
	if err != nil {
		return "", fmt.Errorf("ecmp figures: %w", err)
	}
	var console strings.Builder
	var out io.Writer = &console
	if o.Stdout != nil {
		out = io.MultiWriter(&console, o.Stdout)
	}
	load := loadAverage()
	res, err := vm.Run(ctx, vm.Options{
		Binaries: []vm.Binary{{
			Path: testBin,
			Args: []string{"-test.v", "-test.count=1", "-test.timeout=" + (o.Timeout - time.Minute).String(), "-test.run", "^TestECMP"},
			Env:  []string{"VIPVS_BIN=/opt/vipvs/vipvs", "VIPVS_ECMP_CONNS=" + strconv.Itoa(o.Conns)},
		}},
		Files:     []vm.File{{Src: vipvs, Dst: "/opt/vipvs/vipvs", Mode: 0o755}},
		Stdout:    out,
		Timeout:   o.Timeout,
		MemoryMiB: 1536,
	})
	var rows []string
	for _, m := range ecmpFigureRE.FindAllStringSubmatch(console.String(), -1) {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", m[1], m[2], m[3], m[4], m[5], m[6], m[7]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", ECMPSectionTitle)
	fmt.Fprintf(&b, "Made by `make bench`, or alone by `go run ./test/bench -ecmp-only` (test/ipvse2e.RunECMPFigures: the `TestECMP*` tests of test/ipvse2e/lb in the test VM), on %s, one run. Kernel %s under qemu (accelerator %s), host load average %s before the run. ",
		time.Now().UTC().Format("2006-01-02"), k.Version, res.Accel, load)
	fmt.Fprintf(&b, "Three directors balance a VIP of a router in mode bgp (agent/balancer on each director's IPVS table, programmed on every node as the agent does for an advertising bgp router); a Linux router spreads the flows over them with a multipath route (fib_multipath_hash_policy=1), and a route change stands in for BGP. %d long-lived TCP connections from one client exchange a line every 100 ms with three real servers (DR: the VIP on lo; tunnel: on tunl0) over two directors; then a third director joins the route, then the first one leaves it. ", o.Conns)
	b.WriteString("*Moved* counts the connections a director balanced for the first time after the change (ECMP moved them to a director that had never seen them); *broken* those reset or closed; *stalled* those that went more than a second without an answer. The *none (control)* row of each variant counts the same over 4 s without a change: under TCG on shared cores the whole VM stalls now and then (every flow at once, up to about 1.6 s), which is what most stalls of the change rows are too; a dropped or misrouted packet would cost a reset or TCP's retransmission backoff instead. Goal (issue 14): 0 broken. MetalLB in BGP mode (not measured here; issue 14) keeps no state across nodes: every connection that ECMP moves off a node breaks, all of that node's when it leaves.\n\n")
	b.WriteString("| variant | change | connections | moved | broken | stalled > 1 s | longest stall (ms, 0: none over 400) |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\nThe rr and no-sloppy rows are the negative tests: without consistent hashing a moved connection reaches another real server, which resets it; without sloppy TCP the new director does not balance a packet that is not a SYN, and its own stack, which holds the VIP, resets the connection.\n")
	if err == nil && res.ExitStatus != 0 {
		err = fmt.Errorf("the ECMP tests failed in the VM (exit status %d)", res.ExitStatus)
	}
	if err == nil && len(rows) == 0 {
		err = fmt.Errorf("the VM's console has no ECMP-FIGURE line")
	}
	if err != nil {
		return b.String(), fmt.Errorf("ecmp figures: %w", err)
	}
	return b.String(), nil
}

// UpdateECMPSection replaces the ECMP section of doc with section (appends
// it when missing).
func UpdateECMPSection(doc, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	i := strings.Index(doc, ECMPSectionTitle+"\n")
	if i < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return doc + section
	}
	rest := doc[i+len(ECMPSectionTitle)+1:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		return doc[:i] + section + rest[j:]
	}
	return doc[:i] + section
}

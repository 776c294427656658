// Command bench is `make bench`: vipvs and keepalived side by side in the
// same namespace lab and the same run, several repetitions each, writing
// median, min and max and the vipvs/keepalived ratio to BENCHMARKS.md.
//
// Scenarios (3 nodes at priorities 150/100/50, VRRPv3 multicast, a client
// opening a new TCP connection to the VIP every 5 ms):
//   - hard failover: the master's link goes down, at 1 s and at 10 ms
//     adverts: takeover time on the wire (link down -> the new master's first
//     advert), the client's longest gap and its failed probes;
//   - preemption back: the link returns: same figures;
//   - graceful stop: SIGTERM to the master at 1 s;
//   - idle: CPU and RSS of the master's and a backup's process at 10 ms
//     adverts over 10 s;
//   - IPVS reconcile (in the VM): after the scenarios above, the test VM
//     (test/vm, test/ipvse2e.RunFigures) measures the time to program 10,
//     100 and 1000 services of 10 real servers from empty and to apply one
//     change, beside keepalived programming the same table;
//   - ECMP (in the VM, ecmp.go): connections broken by a director joining
//     or leaving the ECMP set of a bgp-mode VIP (goal 0);
//   - connections across failovers (in the VM): how many of 100 long-lived
//     connections survive each failover kind, for NAT, DR and tunnel, with
//     and without the IPVS connection sync (test/ipvse2e.RunConnSyncFigures);
//   - active/active BGP (bgp.go, test/bgplab.Bench): a node's silent death
//     at BFD 300 ms x 3, 30 ms x 3 and without BFD, and its graceful stop:
//     the router's detection and the client's failed connections, for a
//     vipvs node beside an FRR node in the same run (-bgp-only alone).
//
// It needs root (namespaces) and keepalived (make bench installs it); the
// IPVS figures need the VM's packages (hack/vm-deps.sh). -ipvs-only
// measures the IPVS figures alone, without root, and replaces their section
// in the -out file, leaving the rest of it as it is.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/ipvse2e"
	"github.com/vipvs/vipvs/test/lab"
)

const (
	servicePort = 8080
	vrid        = 51
	probeEvery  = 5 * time.Millisecond
	probeWait   = 10 * time.Millisecond
)

var vip = netip.MustParsePrefix("192.0.2.100/24")

func main() {
	bin := flag.String("vipvs", "bin/vipvs", "the vipvs binary")
	reps := flag.Int("reps", 5, "repetitions of each scenario for each implementation")
	out := flag.String("out", "BENCHMARKS.md", "where to write the report (- for stdout)")
	idle := flag.Duration("idle", 10*time.Second, "idle measurement window")
	only := flag.String("only", "", "run only the scenarios whose name contains this")
	impls := flag.String("impl", "vipvs,keepalived", "comma-separated implementations to run")
	withIPVS := flag.Bool("ipvs", true, "also measure IPVS reconcile times in the test VM")
	ipvsOnly := flag.Bool("ipvs-only", false, "measure the IPVS reconcile times only and replace their section in -out")
	ipvsReps := flag.Int("ipvs-reps", 0, "repetitions of the IPVS figures (0: -reps)")
	ipvsSizes := flag.String("ipvs-sizes", "10,100,1000", "comma-separated numbers of services (of 10 reals) for the IPVS figures")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ipvsOpts := ipvse2e.FigureOptions{Reps: *ipvsReps, Stdout: os.Stderr}
	if ipvsOpts.Reps == 0 {
		ipvsOpts.Reps = *reps
	}
	for _, v := range strings.Split(*ipvsSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "bench: -ipvs-sizes: %q is not a number of services\n", v)
			os.Exit(2)
		}
		ipvsOpts.Sizes = append(ipvsOpts.Sizes, n)
	}
	if _, err := os.Stat(agentlab.KeepalivedBin); err == nil {
		ipvsOpts.Keepalived = agentlab.KeepalivedBin
	}
	if *ipvsOnly {
		os.Exit(ipvsOnlyRun(ctx, ipvsOpts, *out))
	}
	if *ecmpOnly {
		os.Exit(ecmpOnlyRun(ctx, *out))
	}
	if *connSyncOnly {
		os.Exit(connSyncOnlyRun(ctx, *out))
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root: it creates network namespaces")
		os.Exit(1)
	}
	if *bgpOnly {
		os.Exit(bgpOnlyRun(ctx, *bin, bgpRepsOr(*reps), *out))
	}
	if _, err := os.Stat(agentlab.KeepalivedBin); err != nil {
		fmt.Fprintf(os.Stderr, "bench: needs keepalived (%v); `make bench` installs it\n", err)
		os.Exit(1)
	}
	if *reliabilityOnly {
		os.Exit(reliabilityOnlyRun(ctx, *bin, *out))
	}
	b := &bench{bin: *bin, idle: *idle, results: map[key][]float64{}}
	start := time.Now()
	for rep := 1; rep <= *reps; rep++ {
		for _, impl := range strings.Split(*impls, ",") {
			for _, sc := range scenarios {
				if !strings.Contains(sc.name, *only) {
					continue
				}
				if ctx.Err() != nil {
					fmt.Fprintln(os.Stderr, "interrupted")
					os.Exit(130)
				}
				fmt.Fprintf(os.Stderr, "rep %d/%d %-10s %-22s ", rep, *reps, impl, sc.name)
				m, err := b.runScenario(impl, sc)
				if err != nil {
					fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
					b.failures = append(b.failures, fmt.Sprintf("rep %d %s %s: %v", rep, impl, sc.name, err))
					continue
				}
				for metric, v := range m {
					b.results[key{sc.name, metric, impl}] = append(b.results[key{sc.name, metric, impl}], v)
				}
				fmt.Fprintln(os.Stderr, summary(m))
			}
		}
	}
	if *withIPVS && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "IPVS reconcile in the VM (%d repetitions, %v services)...\n", ipvsOpts.Reps, ipvsOpts.Sizes)
		b.ipvs = ipvsSection(ctx, ipvsOpts, &b.failures)
	}
	if *ecmpOn && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "directors joining and leaving an ECMP set, in the VM...")
		b.ecmp = ecmpSection(ctx, &b.failures)
	}
	if *connSyncOn && ctx.Err() == nil {
		b.connsync = connSyncSection(ctx, &b.failures)
	}
	if *reliabilityOn && ctx.Err() == nil {
		b.reliability = reliabilitySection(ctx, *bin, *reliabilityReps, *reliabilityFilter, &b.failures)
	}
	if *bgpOn && ctx.Err() == nil {
		b.bgp = bgpSection(ctx, *bin, bgpRepsOr(*reps), &b.failures)
	}
	report := b.report(*reps, time.Since(start))
	if *out == "-" {
		fmt.Print(report)
	} else if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	} else {
		fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	}
	if len(b.failures) > 0 {
		os.Exit(1)
	}
}

type key struct{ scenario, metric, impl string }

type bench struct {
	bin      string
	idle     time.Duration
	results  map[key][]float64
	failures []string
	ipvs     string // the IPVS section, if measured
	// connsync is the connection-survival section (connsync.go), if
	// measured.
	connsync string
	// reliability is the reliability section (reliability.go), if measured.
	reliability string
	// ecmp is the section of directors joining and leaving an ECMP set
	// (ecmp.go), if measured.
	ecmp string
	// bgp is the active/active BGP section (bgp.go), if measured.
	bgp string
}

// ipvsSection measures the IPVS figures in the VM and returns their
// section; a failure is added to failures and the section says why.
func ipvsSection(ctx context.Context, o ipvse2e.FigureOptions, failures *[]string) string {
	f, err := ipvse2e.RunFigures(ctx, o)
	if err != nil {
		*failures = append(*failures, fmt.Sprintf("IPVS reconcile in the VM: %v", firstLine(err.Error())))
		fmt.Fprintf(os.Stderr, "IPVS reconcile in the VM FAILED: %v\n", err)
		if f == nil {
			return fmt.Sprintf("%s\n\nNot measured: %s.\n", ipvse2e.SectionTitle, firstLine(err.Error()))
		}
	}
	return f.Markdown()
}

// ipvsOnlyRun measures the IPVS figures and replaces their section in out
// (- for stdout); it returns the exit status.
func ipvsOnlyRun(ctx context.Context, o ipvse2e.FigureOptions, out string) int {
	var failures []string
	sec := ipvsSection(ctx, o, &failures)
	return writeSection(out, sec, "IPVS", ipvse2e.UpdateSection, failures)
}

// writeSection prints sec (out "-") or writes it into the file out with
// update, which replaces the section's old text (or adds it), and says so
// on stderr naming what; it returns the exit status: 1 when the file
// cannot be read or written or when failures is not empty.
func writeSection(out, sec, what string, update func(doc, sec string) string, failures []string) int {
	if out == "-" {
		fmt.Print(sec)
	} else {
		doc, err := os.ReadFile(out)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(out, []byte(update(string(doc), sec)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "updated the %s section of %s\n", what, out)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

type scenario struct {
	name     string
	interval time.Duration
	run      func(b *bench, e *env) (map[string]float64, error)
	// own, if set, runs the scenario in a lab of its own instead of the
	// common one (3 nodes, one router) and run (test/bench/lean.go).
	own     func(b *bench, impl string, sc scenario) (map[string]float64, error)
	metrics []metricInfo
}

type metricInfo struct {
	name, unit, doc string
}

var scenarios = []scenario{
	{name: "hard failover 1s", interval: time.Second, run: (*bench).failover, metrics: failoverMetrics},
	{name: "hard failover 10ms", interval: 10 * time.Millisecond, run: (*bench).failover, metrics: failoverMetrics},
	{name: "graceful stop 1s", interval: time.Second, run: (*bench).graceful, metrics: []metricInfo{
		{"takeover", "ms", "SIGTERM -> the new master's first advert"},
		{"client gap", "ms", "longest time between two answered probes"},
		{"failed probes", "", "probes not answered within 10 ms"},
	}},
	{name: "idle 10ms", interval: 10 * time.Millisecond, run: (*bench).idleRun, metrics: []metricInfo{
		{"master CPU", "%", "CPU of the master's process(es) over the window, % of one core"},
		{"backup CPU", "%", "CPU of a backup's process(es)"},
		{"master RSS", "MiB", "resident memory of the master's process(es)"},
		{"backup RSS", "MiB", "resident memory of a backup's process(es)"},
	}},
}

var failoverMetrics = []metricInfo{
	{"takeover", "ms", "link down -> the new master's first advert on the wire"},
	{"master down", "ms", "the old master's last advert -> the new master's first: Master_Down_Interval as measured (3 x interval + skew of priority 100 = 3609 ms at 1 s, 36.1 ms at 10 ms)"},
	{"client gap", "ms", "longest time between two answered probes"},
	{"failed probes", "", "probes not answered within 10 ms"},
	{"preempt gap", "ms", "link back -> client gap while the VIP returns to the master"},
	{"preempt failed", "", "failed probes while the VIP returns"},
}

// env is one lab with three nodes of one implementation and a client.
type env struct {
	lab      *lab.Lab
	impl     string
	interval time.Duration
	cluster  *agentlab.Cluster
	kas      []*agentlab.Keepalived
	wire     *wire
	prober   *lab.Prober
}

func (b *bench) runScenario(impl string, sc scenario) (map[string]float64, error) {
	if sc.own != nil {
		return sc.own(b, impl, sc)
	}
	dir, err := os.MkdirTemp("", "vipvs-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l, err := lab.New(lab.Options{Nodes: 3, Clients: 1, LogDir: dir})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	for _, n := range l.Nodes() {
		stop, err := n.Serve(servicePort)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	e := &env{lab: l, impl: impl, interval: sc.interval}
	router := agentlab.Router{Name: "api", VRID: vrid, Interval: sc.interval, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}}
	c, err := agentlab.New(l, b.bin, dir, router)
	if err != nil {
		return nil, err
	}
	e.cluster = c
	switch impl {
	case "vipvs":
		if err := c.Start(); err != nil {
			return nil, err
		}
	case "keepalived":
		for i, n := range l.Nodes() {
			kdir := filepath.Join(dir, "ka-"+n.Name)
			if err := os.MkdirAll(kdir, 0o755); err != nil {
				return nil, err
			}
			k, err := agentlab.NewKeepalived(n, kdir, agentlab.KeepalivedConfig{RouterID: n.Name, Instances: []agentlab.KeepalivedInstance{c.KeepalivedInstanceFor(i+1, router)}})
			if err != nil {
				return nil, err
			}
			if err := k.Start(); err != nil {
				return nil, err
			}
			e.kas = append(e.kas, k)
		}
	}
	if err := e.waitHolder(l.Node(1), 15*time.Second); err != nil {
		return nil, err
	}
	wireStart := time.Now()
	if e.wire, err = listenWire(l.Client(1)); err != nil {
		return nil, err
	}
	defer e.wire.close()
	// The master's adverts are on the wire before any fault.
	if _, err := e.wire.firstAdvert(l.Node(1).IPv4, 1, wireStart, 10*time.Second); err != nil {
		return nil, err
	}
	if e.prober, err = l.Client(1).Probe(netip.AddrPortFrom(vip.Addr(), servicePort), probeEvery, probeWait); err != nil {
		return nil, err
	}
	defer e.prober.Stop()
	if err := lab.WaitFor(5*time.Second, "the client to be served by n1", func() (bool, error) {
		return e.prober.Snapshot().Servers()["n1"] > 20, nil
	}); err != nil {
		return nil, err
	}
	return sc.run(b, e)
}

// waitHolder waits until h is the only node holding the VIP, and a little
// more (two Master_Down_Intervals) so that the backups have settled.
func (e *env) waitHolder(h *lab.Host, timeout time.Duration) error {
	err := lab.WaitFor(timeout, h.Name+" to hold the VIP alone", func() (bool, error) {
		hs, err := e.lab.Holders(vip.Addr())
		return err == nil && len(hs) == 1 && hs[0] == h, nil
	})
	if err != nil {
		return err
	}
	time.Sleep(2 * (3*e.interval + e.interval))
	return nil
}

func (b *bench) failover(e *env) (map[string]float64, error) {
	n1 := e.lab.Node(1)
	down := time.Now()
	if err := n1.LinkDown(); err != nil {
		return nil, err
	}
	takeover, err := e.wire.firstAdvert(e.lab.Node(2).IPv4, 1, down, 10*time.Second)
	if err != nil {
		return nil, err
	}
	last, err := e.wire.lastAdvert(n1.IPv4, down)
	if err != nil {
		return nil, err
	}
	if err := e.waitServedBy("n2", down); err != nil {
		return nil, err
	}
	r := e.prober.Snapshot().Since(down)
	m := map[string]float64{
		"master down":   ms(takeover.Sub(last)),
		"takeover":      ms(takeover.Sub(down)),
		"client gap":    ms(r.LongestGap()),
		"failed probes": float64(r.Failed()),
	}
	up := time.Now()
	if err := n1.LinkUp(); err != nil {
		return nil, err
	}
	if _, err := e.wire.firstAdvert(n1.IPv4, 150, up, 20*time.Second); err != nil {
		return nil, err
	}
	if err := e.waitServedBy("n1", up); err != nil {
		return nil, err
	}
	// Let the client settle on n1 before reading its view.
	time.Sleep(200 * time.Millisecond)
	r = e.prober.Snapshot().Since(up)
	m["preempt gap"] = ms(r.LongestGap())
	m["preempt failed"] = float64(r.Failed())
	return m, nil
}

func (b *bench) graceful(e *env) (map[string]float64, error) {
	start := time.Now()
	var err error
	switch e.impl {
	case "vipvs":
		err = e.cluster.Agents[0].Signal(syscall.SIGTERM)
	case "keepalived":
		err = e.kas[0].Proc.Signal(syscall.SIGTERM)
	}
	if err != nil {
		return nil, err
	}
	takeover, err := e.wire.firstAdvert(e.lab.Node(2).IPv4, 1, start, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := e.waitServedBy("n2", start); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond)
	r := e.prober.Snapshot().Since(start)
	return map[string]float64{
		"takeover":      ms(takeover.Sub(start)),
		"client gap":    ms(r.LongestGap()),
		"failed probes": float64(r.Failed()),
	}, nil
}

func (b *bench) idleRun(e *env) (map[string]float64, error) {
	// The prober adds load to the master's node; the figures are of the
	// VRRP processes only.
	e.prober.Stop()
	pids := func(i int) []int {
		if e.impl == "vipvs" {
			return []int{e.cluster.Agents[i].Proc.Pid()}
		}
		return processTree(e.kas[i].Proc.Pid())
	}
	master, backup := pids(0), pids(1)
	c0m, c0b := cpuTicks(master), cpuTicks(backup)
	t0 := time.Now()
	time.Sleep(b.idle)
	c1m, c1b := cpuTicks(master), cpuTicks(backup)
	secs := time.Since(t0).Seconds()
	tick := float64(clockTicks)
	return map[string]float64{
		"master CPU": 100 * float64(c1m-c0m) / tick / secs,
		"backup CPU": 100 * float64(c1b-c0b) / tick / secs,
		"master RSS": rssMiB(master),
		"backup RSS": rssMiB(backup),
	}, nil
}

func (e *env) waitServedBy(name string, since time.Time) error {
	return lab.WaitFor(10*time.Second, "the client to be served by "+name, func() (bool, error) {
		return e.prober.Snapshot().Since(since).Servers()[name] > 5, nil
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wire records the VRRP adverts seen from the client.
type wire struct {
	hub  *transport.Hub
	mu   sync.Mutex
	seen []advertSeen
}

type advertSeen struct {
	at       time.Time
	src      netip.Addr
	priority uint8
}

func listenWire(client *lab.Host) (*wire, error) {
	w := &wire{hub: transport.NewHub(logr.Discard())}
	if err := client.Do(func() error {
		_, err := w.hub.Subscribe(transport.Options{Interface: client.IfName, Multicast: true}, vrid, w.record)
		return err
	}); err != nil {
		w.hub.Close()
		return nil, err
	}
	return w, nil
}

// record is the subscription's handler: it runs on the Hub's receiving
// goroutine, so it copies what it keeps.
func (w *wire) record(p transport.Packet) {
	at := time.Now()
	adv, reason := packet.Parse(packet.Received{Payload: p.Payload, Src: p.Src, Dst: p.Dst, TTL: p.TTL})
	if reason != packet.DropNone {
		return
	}
	w.mu.Lock()
	w.seen = append(w.seen, advertSeen{at: at, src: p.Src, priority: adv.Priority})
	w.mu.Unlock()
}

func (w *wire) close() {
	w.hub.Close()
}

// firstAdvert waits for the first advert from src with at least minPriority
// after since.
func (w *wire) firstAdvert(src netip.Addr, minPriority uint8, since time.Time, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := lab.WaitFor(timeout, fmt.Sprintf("an advert from %s after %s", src, since.Format(time.StampMilli)), func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, s := range w.seen {
			if s.src == src && s.priority >= minPriority && s.at.After(since) {
				at = s.at
				return true, nil
			}
		}
		return false, nil
	})
	return at, err
}

// lastAdvert returns when the last advert from src before t was seen.
func (w *wire) lastAdvert(src netip.Addr, t time.Time) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var at time.Time
	for _, s := range w.seen {
		if s.src == src && s.at.Before(t) {
			at = s.at
		}
	}
	if at.IsZero() {
		return at, fmt.Errorf("no advert from %s before %s", src, t.Format(time.StampMilli))
	}
	return at, nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks sums utime+stime of the processes.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		total += u + st
	}
	return total
}

// rssMiB sums VmRSS of the processes.
func rssMiB(pids []int) float64 {
	var kb int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				kb += v
			}
		}
	}
	return float64(kb) / 1024
}

// processTree returns pid and its descendants (keepalived's parent and its
// VRRP child).
func processTree(pid int) []int {
	out := []int{pid}
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func summary(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.1f", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func stats(v []float64) (median, lo, hi float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

func (b *bench) report(reps int, took time.Duration) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# Benchmarks\n\n")
	fmt.Fprintf(&w, "Made by `make bench` (`go run ./test/bench -reps %d`) on %s, %d repetitions of each scenario for each implementation, interleaved, in one run of %v.\n", reps, time.Now().UTC().Format("2006-01-02"), reps, took.Round(time.Second))
	fmt.Fprintf(&w, "vipvs %s against keepalived %s (Debian), 3 nodes at priorities 150/100/50 in network namespaces on one bridge, VRRPv3 multicast, a client opening a new TCP connection to the VIP every %v (an attempt fails after %v). Machine: %s.\n\n", version(b.bin), keepalivedVersion(), probeEvery, probeWait, machine())
	fmt.Fprintf(&w, "Figures are median (min–max). Ratio is vipvs/keepalived of the medians (lower is better for every figure).\n")
	for _, sc := range scenarios {
		fmt.Fprintf(&w, "\n## %s\n\n| figure | vipvs | keepalived | ratio | what |\n|---|---|---|---|---|\n", sc.name)
		for _, mi := range sc.metrics {
			vv, kv := b.results[key{sc.name, mi.name, "vipvs"}], b.results[key{sc.name, mi.name, "keepalived"}]
			cell := func(v []float64) (string, float64) {
				if len(v) == 0 {
					return "n/a", 0
				}
				med, lo, hi := stats(v)
				return fmt.Sprintf("%s (%s–%s)", num(med), num(lo), num(hi)), med
			}
			vs, vm := cell(vv)
			ks, km := cell(kv)
			ratio := "n/a"
			switch {
			case len(vv) > 0 && len(kv) > 0 && km != 0:
				ratio = fmt.Sprintf("%.2f", vm/km)
			case len(vv) > 0 && len(kv) > 0 && vm == 0:
				ratio = "0 = 0"
			}
			unit := mi.unit
			if unit != "" {
				unit = " (" + unit + ")"
			}
			fmt.Fprintf(&w, "| %s%s | %s | %s | %s | %s |\n", mi.name, unit, vs, ks, ratio, mi.doc)
		}
	}
	if b.ipvs != "" {
		fmt.Fprintf(&w, "\n%s", b.ipvs)
	}
	if b.ecmp != "" {
		fmt.Fprintf(&w, "\n%s", b.ecmp)
	}
	if b.connsync != "" {
		fmt.Fprintf(&w, "\n%s", b.connsync)
	}
	if b.reliability != "" {
		fmt.Fprintf(&w, "\n%s", b.reliability)
	}
	if b.bgp != "" {
		fmt.Fprintf(&w, "\n%s", b.bgp)
	}
	if len(b.failures) > 0 {
		fmt.Fprintf(&w, "\n## Failed runs\n\n")
		for _, f := range b.failures {
			fmt.Fprintf(&w, "- %s\n", f)
		}
	}
	return w.String()
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func version(bin string) string {
	out, err := runOut(bin, "version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(out)
}

func keepalivedVersion() string {
	out, err := runOut(agentlab.KeepalivedBin, "--version")
	if err != nil {
		return "?"
	}
	first := strings.SplitN(out, "\n", 2)[0]
	return strings.TrimSpace(strings.TrimPrefix(first, "Keepalived "))
}

func machine() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	cores := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") && model == "" {
			model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
		if strings.HasPrefix(line, "processor") {
			cores++
		}
	}
	return fmt.Sprintf("%d × %s", cores, model)
}

func runOut(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var sb strings.Builder
	cmd.Stdout = &sb
	cmd.Stderr = &sb
	err := cmd.Run()
	return sb.String(), err
}

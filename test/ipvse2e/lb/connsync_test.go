package lb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipvs/vipvs/agent/status"
	v1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// The connection-survival tests (issue 15): long-lived TCP connections
// through the VIP, each exchanging a line every 100 ms, across a hard
// failover of the master (its link goes down), the preemption back, a
// graceful stop of the master's agent and the preemption back after it
// restarts; for NAT, DR and tunnel forwarding. With the connection sync
// switched off the same connections break at the first failover, which is
// what proves that the sync (and the NAT to the VIP) keep them.

const (
	// echoPort is the port of the echo service on the real servers and of
	// the virtual service (DR and tunnel cannot change the port).
	echoPort = 7000
	// exchangeEvery is how often each connection sends a line.
	exchangeEvery = 100 * time.Millisecond
	// settle is how long the connections run between two failovers, so
	// that the new master's sync daemon sends them (IPVS syncs a
	// connection on its 3rd packet and then every sync_period packets).
	settle = 3 * time.Second
)

var (
	vipSyncNAT    = netip.MustParsePrefix("192.0.2.110/24")
	vipSyncDR     = netip.MustParsePrefix("192.0.2.111/32")
	vipSyncTunnel = netip.MustParsePrefix("192.0.2.112/32")
	vipSyncNAT6   = netip.MustParsePrefix("2001:db8::110/64")
)

// syncConns is the number of connections: 100 (the issue's), or
// VIPVS_SYNC_CONNS.
func syncConns() int {
	if n, err := strconv.Atoi(os.Getenv("VIPVS_SYNC_CONNS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// serveEcho runs a line echo server on port in h's namespace until the test
// ends.
func serveEcho(t *testing.T, h *lab.Host, port int) {
	t.Helper()
	var ln net.Listener
	must(t, h.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(h.Name + " " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// The first tracedFlows connections of openFlows use the client ports
// from tracedPort, so that a capture (traceFlows) can select them.
const (
	tracedPort  = 41000
	tracedFlows = 10
)

// flow is one long-lived connection of the client.
type flow struct {
	id     int
	conn   net.Conn
	server string

	mu      sync.Mutex
	last    time.Time     // last answered exchange
	gaps    []gap         // stalls longer than 4 exchanges
	maxGap  time.Duration // longest time between answers
	answers int
	err     error
	errAt   time.Time
}

// gap is one stall of a flow.
type gap struct {
	from time.Time
	len  time.Duration
}

// run exchanges a line every exchangeEvery until ctx ends or the
// connection fails. A read waits up to a minute: a stall is measured, a
// reset or a close is an error.
func (f *flow) run(ctx context.Context) {
	r := bufio.NewReader(f.conn)
	tick := time.NewTicker(exchangeEvery)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = f.conn.SetDeadline(time.Now().Add(time.Minute))
		msg := fmt.Sprintf("%d %d\n", f.id, seq)
		if _, err := f.conn.Write([]byte(msg)); err != nil {
			f.fail(ctx, err)
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			f.fail(ctx, err)
			return
		}
		server, rest, _ := strings.Cut(line, " ")
		now := time.Now()
		f.mu.Lock()
		if rest != msg {
			f.err, f.errAt = fmt.Errorf("answer %q to %q", line, msg), now
			f.mu.Unlock()
			return
		}
		if f.server == "" {
			f.server = server
		}
		if d := now.Sub(f.last); d > f.maxGap {
			f.maxGap = d
		}
		if d := now.Sub(f.last); d > 4*exchangeEvery {
			f.gaps = append(f.gaps, gap{f.last, d})
		}
		f.last = now
		f.answers++
		f.mu.Unlock()
	}
}

func (f *flow) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	f.err, f.errAt = err, time.Now()
	f.mu.Unlock()
}

// flows is the client's set of connections.
type flows struct {
	list   []*flow
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openFlows dials n connections from h to target and starts their
// exchanges; with traced, the first tracedFlows from the ports
// traceFlows selects (once per client: a port a closed connection left in
// TIME_WAIT cannot be bound again).
func openFlows(t *testing.T, h *lab.Host, target netip.AddrPort, n int, traced bool) *flows {
	t.Helper()
	fs := &flows{}
	for i := range n {
		var c net.Conn
		d := net.Dialer{Timeout: 5 * time.Second}
		if traced && i < tracedFlows {
			// The first flows use known ports, for traceFlows.
			d.LocalAddr = &net.TCPAddr{Port: tracedPort + i}
		}
		err := h.Do(func() (err error) {
			c, err = d.Dial("tcp", target.String())
			return err
		})
		if err != nil {
			fs.close()
			t.Fatalf("connection %d to %s: %v", i, target, err)
		}
		fs.list = append(fs.list, &flow{id: i, conn: c, last: time.Now()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	fs.cancel = cancel
	for _, f := range fs.list {
		fs.wg.Add(1)
		go func() { defer fs.wg.Done(); f.run(ctx) }()
	}
	t.Cleanup(fs.close)
	return fs
}

func (fs *flows) close() {
	if fs.cancel != nil {
		fs.cancel()
	}
	for _, f := range fs.list {
		f.conn.Close()
	}
	fs.wg.Wait()
}

// stalledLongerThan counts the flows with a stall longer than d that ended
// or goes on after mark.
func (fs *flows) stalledLongerThan(mark time.Time, d time.Duration) int {
	n := 0
	for _, f := range fs.list {
		f.mu.Lock()
		for _, g := range f.gaps {
			if g.from.Add(g.len).After(mark) && g.len > d {
				n++
				break
			}
		}
		f.mu.Unlock()
	}
	return n
}

// survivors counts the flows alive with an answer after t.
func (fs *flows) survivors(t time.Time) int {
	n := 0
	for _, f := range fs.list {
		f.mu.Lock()
		if f.err == nil && f.last.After(t) {
			n++
		}
		f.mu.Unlock()
	}
	return n
}

// figure logs one line of the benchmark of test/ipvse2e.RunConnSyncFigures:
// how many of conns connections survived a failover of kind (hard,
// preempt, graceful, restart) in mode (a forwarding mode, or apivip) with the sync on or
// off, the longest stall of a survivor and how long the VIP took to move.
func figure(t *testing.T, mode string, syncOn bool, kind string, conns, survived int, longest, took time.Duration) {
	t.Helper()
	t.Logf("SYNC-FIGURE mode=%s sync=%t kind=%s conns=%d survived=%d longest_ms=%d took_ms=%d",
		mode, syncOn, kind, conns, survived, longest.Milliseconds(), took.Milliseconds())
}

// answeredSince reports whether every live flow has an answer after t.
func (fs *flows) answeredSince(t time.Time) bool {
	for _, f := range fs.list {
		f.mu.Lock()
		ok := f.err != nil || f.last.After(t)
		f.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// report is the state of all flows at one point.
type report struct {
	alive, failed int
	errs          map[string]int // error text (addresses stripped) -> count
	maxGap        time.Duration  // longest stall of a live flow since mark
	stalled       int            // live flows without an answer in the last second
	servers       map[string]int
	answers       int
}

func (r report) String() string {
	var es []string
	for e, n := range r.errs {
		es = append(es, fmt.Sprintf("%dx %s", n, e))
	}
	sort.Strings(es)
	return fmt.Sprintf("%d alive, %d failed %v, longest stall %v, %d stalled now, servers %v, %d answers",
		r.alive, r.failed, es, r.maxGap.Round(time.Millisecond), r.stalled, r.servers, r.answers)
}

// snapshot reports the flows; maxGap counts only stalls that ended or are
// ongoing after mark.
func (fs *flows) snapshot(mark time.Time) report {
	r := report{errs: map[string]int{}, servers: map[string]int{}}
	now := time.Now()
	for _, f := range fs.list {
		f.mu.Lock()
		r.answers += f.answers
		r.servers[f.server]++
		if f.err != nil {
			r.failed++
			r.errs[errKind(f.err)]++
			f.mu.Unlock()
			continue
		}
		r.alive++
		for _, g := range f.gaps {
			if g.from.Add(g.len).After(mark) && g.len > r.maxGap {
				r.maxGap = g.len
			}
		}
		if d := now.Sub(f.last); d > time.Second {
			r.stalled++
			if d > r.maxGap {
				r.maxGap = d
			}
		}
		f.mu.Unlock()
	}
	return r
}

// errKind shortens a connection error to its kind.
func errKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case err.Error() == "EOF":
		return "closed"
	}
	return err.Error()
}

// syncRouter is the router of one connection-sync test.
// An IPv6 VIP makes an IPv6 router with the real servers' IPv6 addresses.
func syncRouter(l *lab.Lab, vip netip.Prefix, fwd v1alpha1.Forwarding) agentlab.Router {
	reals := realServers(l, echoPort)
	if vip.Addr().Is6() {
		for i, n := range l.Nodes()[3:] {
			reals[i].Address = n.IPv6.String()
		}
	}
	return agentlab.Router{
		Name: "sync", VRID: 61, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip}, IPv6: vip.Addr().Is6(),
		// Not faster: under the VM's emulation a process stalls for a few
		// hundred milliseconds now and then, and a backup would take over.
		Interval: 500 * time.Millisecond,
		Services: []v1alpha1.VirtualService{{
			Name: "echo", Port: echoPort, Scheduler: "rr", Forwarding: fwd, RealServers: reals,
		}},
	}
}

// startSyncDirectors runs agents on n1..n3 for r, with the connection sync
// on or off, and waits for n1 to be master.
func startSyncDirectors(t *testing.T, l *lab.Lab, r agentlab.Router, syncOn bool) *agentlab.Cluster {
	t.Helper()
	c, err := agentlab.New(l, vipvsBin, t.TempDir(), r)
	must(t, err)
	c.Agents = c.Agents[:3]
	for _, a := range c.Agents {
		cfg := c.Config(a.Index, r)
		cfg.IPVS = &v1alpha1.IPVS{ConnectionSync: &v1alpha1.ConnectionSync{Enabled: &syncOn}}
		must(t, a.WriteConfig(cfg))
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			c.Dump(&b)
			l.Dump(&b)
			dumpKernelConns(&b, l)
			t.Log("\n" + b.String())
		}
	})
	must(t, c.Start())
	must(t, c.WaitMaster(r.Name, c.Agents[0], r.VIPs[0].Addr(), 20*time.Second))
	return c
}

// dumpKernelConns writes the IPVS connections (with their origin) and the
// conntrack entries of every node, for a failed test.
func dumpKernelConns(w io.Writer, l *lab.Lab) {
	for _, h := range append(l.Nodes(), l.Clients()...) {
		var b []byte
		err := h.Do(func() (err error) {
			b, err = os.ReadFile("/proc/thread-self/net/snmp")
			return err
		})
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Tcp:") {
				fmt.Fprintf(w, "=== %s %s (%v)\n", h.Name, line, err)
			}
		}
	}
	for _, h := range l.Nodes() {
		for _, f := range []string{"ip_vs_conn_sync", "nf_conntrack"} {
			var b []byte
			err := h.Do(func() (err error) {
				b, err = os.ReadFile("/proc/thread-self/net/" + f)
				return err
			})
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = append(lines[:40], fmt.Sprintf("... %d more", len(lines)-40))
			}
			fmt.Fprintf(w, "=== %s %s (%v)\n%s\n", h.Name, f, err, strings.Join(lines, "\n"))
		}
	}
}

// tableConns counts the established connections to vip in h's IPVS table
// (/proc/net/ip_vs_conn_sync), by origin: Local or Sync.
func tableConns(h *lab.Host, vip netip.Addr) (local, synced int, err error) {
	var b []byte
	err = h.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/ip_vs_conn_sync")
		return err
	})
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || !procAddrIs(f[3], vip) || f[7] != "ESTABLISHED" {
			continue
		}
		switch f[8] {
		case "Local", "LOCAL":
			local++
		case "Sync", "SYNC":
			synced++
		}
	}
	return local, synced, err
}

// procAddrIs reports whether s, an address as /proc/net/ip_vs_conn_sync
// writes it (8 hex digits for IPv4, %pI6 for IPv6), is a.
func procAddrIs(s string, a netip.Addr) bool {
	if a.Is6() {
		p, err := netip.ParseAddr(s)
		return err == nil && p == a
	}
	v4 := a.As4()
	return strings.EqualFold(s, fmt.Sprintf("%02x%02x%02x%02x", v4[0], v4[1], v4[2], v4[3]))
}

// logLine returns the last line of the log at path that contains s, or
// "".
func logLine(path, s string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// waitSynced waits until h's IPVS table knows every connection to vip
// (balanced there or received from the sync) and logs how long it took.
func waitSynced(t *testing.T, h *lab.Host, vip netip.Addr, n int) {
	t.Helper()
	start := time.Now()
	var local, synced int
	err := lab.WaitFor(20*time.Second, h.Name+" to know every connection", func() (bool, error) {
		var err error
		local, synced, err = tableConns(h, vip)
		return err == nil && local+synced >= n, nil
	})
	if err != nil {
		t.Fatalf("%s knows %d local + %d synced of %d connections: %v", h.Name, local, synced, n, err)
	}
	t.Logf("%s knows all %d connections (%d local, %d synced) after %v", h.Name, n, local, synced, time.Since(start).Round(time.Millisecond))
}

// syncStatus returns an agent's connection-sync status.
func syncStatus(a *agentlab.Agent) (*status.ConnectionSync, error) {
	rep, err := a.Status()
	if err != nil {
		return nil, err
	}
	if rep.IPVS == nil || rep.IPVS.ConnectionSync == nil {
		return nil, fmt.Errorf("%s reports no connection sync", a.Node.Name)
	}
	return rep.IPVS.ConnectionSync, nil
}

// survive runs the four failovers with the connection sync on and requires
// every connection to survive each.
func survive(t *testing.T, vip netip.Prefix, fwd v1alpha1.Forwarding) {
	requireVM(t)
	l := lab.NewT(t, lab.Options{Nodes: 6, Clients: 1})
	for _, n := range l.Nodes()[3:] {
		serveEcho(t, n, echoPort)
		if fwd != v1alpha1.ForwardingNAT {
			prepareDirectRealServer(t, n, vip, fwd == v1alpha1.ForwardingTunnel)
		}
	}
	r := syncRouter(l, vip, fwd)
	c := startSyncDirectors(t, l, r, true)
	n1, n2 := c.Agents[0], c.Agents[1]
	for _, a := range c.Agents {
		must(t, lab.WaitFor(10*time.Second, a.Node.Name+" to run the sync daemons", func() (bool, error) {
			st, err := syncStatus(a)
			return err == nil && st.State == status.SyncRunning && len(st.Daemons) == 2, nil
		}))
	}
	st, err := syncStatus(n2)
	must(t, err)
	t.Logf("%s sync daemons on n2: %v", fwd, st.Daemons)

	target := netip.AddrPortFrom(vip.Addr(), echoPort)
	fs := openFlows(t, l.Client(1), target, syncConns(), true)
	time.Sleep(settle)
	check := func(phase, kind string, mark time.Time, took time.Duration) {
		t.Helper()
		// Every connection answers again: a connection whose packets were
		// lost during the failover waits for TCP's retransmission timer
		// (200 ms, doubling), so recovery can take a few seconds more than
		// the failover itself, and more under the VM's emulation.
		moved := mark.Add(took)
		_ = lab.WaitFor(30*time.Second, "every connection to answer after the failover", func() (bool, error) {
			r := fs.snapshot(mark)
			return r.failed > 0 || fs.answeredSince(moved), nil
		})
		r := fs.snapshot(mark)
		t.Logf("%s %s (VIP moved in %v): %s", fwd, phase, took.Round(time.Millisecond), r)
		if r.failed > 0 {
			t.Fatalf("%s %s: %d of %d connections broke: %s", fwd, phase, r.failed, len(fs.list), r)
		}
		if !fs.answeredSince(moved) {
			t.Fatalf("%s %s: connections still stalled 30s after the failover: %s", fwd, phase, r)
		}
		// A stall is the failover plus TCP's retransmission backoff: a
		// segment lost when the master failed is retransmitted after RTO,
		// 3 RTO, 7 RTO, ... (the timer doubles), so the first
		// retransmission after the VIP moved (took) comes before 2 x took
		// + 2 x RTO. 3s covers an RTO of 1.5s, the emulated VM's worst.
		// Before the new master created the conntrack entries of the NAT
		// connections (ipvssync.AdoptNAT) a real server's retransmissions
		// were dropped until the client's next packet: 50 of 100 NAT
		// connections stalled longer, up to 29s.
		bound := 2*took + 3*time.Second
		if n := fs.stalledLongerThan(mark, bound); n > 0 {
			t.Errorf("%s %s: %d connections stalled longer than 2 x the failover + 3s of TCP retransmission backoff (%v); longest %v", fwd, phase, n, bound.Round(time.Millisecond), r.maxGap.Round(time.Millisecond))
		}
		t.Logf("%s %s: longest stall %v (bound %v)", fwd, phase, r.maxGap.Round(time.Millisecond), bound.Round(time.Millisecond))
		if kind != "" {
			mode := string(fwd)
			if vip.Addr().Is6() {
				mode += "-IPv6"
			}
			figure(t, mode, true, kind, len(fs.list), fs.survivors(moved), r.maxGap, took)
		}
		time.Sleep(settle)
	}
	check("before any failover", "", time.Now(), 0)
	if s := fs.snapshot(time.Now()).servers; len(s) != 3 {
		t.Errorf("connections spread over %v, want all three real servers", s)
	}

	// 1. Hard failover: n1's link goes down, n2 takes over. The traced
	// flows are captured on the client, the directors and the real
	// servers, and n2's conntrack and drops are logged as it takes over.
	waitSynced(t, n2.Node, vip.Addr(), len(fs.list))
	hosts := append([]*lab.Host{l.Client(1)}, l.Nodes()...)
	stopTrace := traceFlows(t, fs, tracedPort, tracedPort+tracedFlows-1, hosts...)
	t.Logf("%s n2 before the failover: %s", fwd, takeoverState(n2.Node, vip.Addr(), echoPort))
	mark := time.Now()
	must(t, n1.Node.LinkDown())
	must(t, lab.WaitFor(10*time.Second, "n2 to become master", func() (bool, error) {
		rt, err := n2.RouterStatus(r.Name)
		return err == nil && rt.IsMaster(), nil
	}))
	took := time.Since(mark)
	t.Logf("%s n2 master after %v: %s", fwd, took.Round(time.Millisecond), takeoverState(n2.Node, vip.Addr(), echoPort))
	if fwd == v1alpha1.ForwardingNAT {
		// The new master created the connections' conntrack entries
		// (ipvssync.AdoptNAT), rather than conntrack picking them up.
		var line string
		_ = lab.WaitFor(5*time.Second, "n2 to log its NAT takeover", func() (bool, error) {
			line = logLine(n2.Proc.LogPath, "NAT connections taken over")
			return line != "", nil
		})
		if line == "" {
			t.Errorf("n2 did not log taking the NAT connections over:\n%s", n2.Proc.LogTail(20))
		} else {
			t.Logf("n2: %s", logLine(n2.Proc.LogPath, "state changed"))
			t.Logf("n2: %s", line)
		}
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("%s n2 0.5s later: %s", fwd, takeoverState(n2.Node, vip.Addr(), echoPort))
	check("hard failover n1 -> n2 (link down)", "hard", mark, took)
	t.Logf("%s n2 after the recovery: %s", fwd, takeoverState(n2.Node, vip.Addr(), echoPort))
	stopTrace(mark)
	if st, err := syncStatus(n2); err == nil {
		t.Logf("n2 after the takeover: %d local, %d synced connections in its table", st.LocalConnections, st.SyncedConnections)
	}

	// 2. Preemption back: n1's link returns, n1 (priority 150) takes over.
	mark = time.Now()
	must(t, n1.Node.LinkUp())
	waitSynced(t, n1.Node, vip.Addr(), len(fs.list))
	must(t, c.WaitMaster(r.Name, n1, vip.Addr(), 20*time.Second))
	took = time.Since(mark)
	check("preemption back n2 -> n1 (link up)", "preempt", mark, took)

	// 3. Graceful stop of n1's agent: it hands over to n2.
	waitSynced(t, n2.Node, vip.Addr(), len(fs.list))
	mark = time.Now()
	must(t, n1.Signal(syscall.SIGTERM))
	if _, err := n1.Proc.Wait(20 * time.Second); err != nil {
		t.Fatalf("n1's agent did not stop: %v", err)
	}
	must(t, c.WaitMaster(r.Name, n2, vip.Addr(), 20*time.Second))
	took = time.Since(mark)
	check("graceful stop of n1 (SIGTERM) -> n2", "graceful", mark, took)

	// 4. n1's agent starts again and preempts.
	mark = time.Now()
	must(t, n1.Start())
	must(t, c.WaitMaster(r.Name, n1, vip.Addr(), 30*time.Second))
	took = time.Since(mark)
	check("restart of n1's agent, preemption back n2 -> n1", "restart", mark, took)
}

// breakWithoutSync is survive's failovers with the sync switched off, each
// with connections opened just before it: they must break at the hard
// failover, or the test proves nothing; the other kinds are measured for
// the benchmark.
func breakWithoutSync(t *testing.T, vip netip.Prefix, fwd v1alpha1.Forwarding) {
	requireVM(t)
	l := lab.NewT(t, lab.Options{Nodes: 6, Clients: 1})
	for _, n := range l.Nodes()[3:] {
		serveEcho(t, n, echoPort)
		if fwd != v1alpha1.ForwardingNAT {
			prepareDirectRealServer(t, n, vip, fwd == v1alpha1.ForwardingTunnel)
		}
	}
	r := syncRouter(l, vip, fwd)
	c := startSyncDirectors(t, l, r, false)
	n1, n2 := c.Agents[0], c.Agents[1]
	must(t, lab.WaitFor(10*time.Second, "the master to program the service", func() (bool, error) {
		rep, err := n1.Status()
		return err == nil && rep.IPVS != nil && rep.IPVS.Services == 1, nil
	}))
	if st, err := syncStatus(n1); err != nil || st.State != status.SyncDisabled {
		t.Errorf("sync status %+v (%v), want disabled", st, err)
	}
	// phase opens the connections, runs failover and measures them.
	phase := func(kind, what string, failover func()) report {
		t.Helper()
		fs := openFlows(t, l.Client(1), netip.AddrPortFrom(vip.Addr(), echoPort), syncConns(), false)
		defer fs.close()
		time.Sleep(settle)
		if r := fs.snapshot(time.Now()); r.failed > 0 {
			t.Fatalf("%s: connections broke before the failover: %s", what, r)
		}
		mark := time.Now()
		failover()
		took := time.Since(mark)
		time.Sleep(settle)
		rep := fs.snapshot(mark)
		survived := fs.survivors(mark.Add(took))
		t.Logf("%s without sync, %s (VIP moved in %v): %d survived; %s", fwd, what, took.Round(time.Millisecond), survived, rep)
		figure(t, string(fwd), false, kind, len(fs.list), survived, rep.maxGap, took)
		return rep
	}
	rep := phase("hard", "hard failover n1 -> n2 (link down)", func() {
		must(t, n1.Node.LinkDown())
		must(t, lab.WaitFor(10*time.Second, "n2 to become master", func() (bool, error) {
			rt, err := n2.RouterStatus(r.Name)
			return err == nil && rt.IsMaster(), nil
		}))
	})
	if rep.failed+rep.stalled < syncConns()*9/10 {
		t.Errorf("without the sync only %d failed and %d stalled of %d connections: the test would not notice a broken sync", rep.failed, rep.stalled, syncConns())
	}
	phase("preempt", "preemption back n2 -> n1 (link up)", func() {
		must(t, n1.Node.LinkUp())
		must(t, c.WaitMaster(r.Name, n1, vip.Addr(), 20*time.Second))
	})
	phase("graceful", "graceful stop of n1 (SIGTERM) -> n2", func() {
		must(t, n1.Signal(syscall.SIGTERM))
		if _, err := n1.Proc.Wait(20 * time.Second); err != nil {
			t.Fatalf("n1's agent did not stop: %v", err)
		}
		must(t, c.WaitMaster(r.Name, n2, vip.Addr(), 20*time.Second))
	})
	phase("restart", "restart of n1's agent, preemption back n2 -> n1", func() {
		must(t, n1.Start())
		must(t, c.WaitMaster(r.Name, n1, vip.Addr(), 30*time.Second))
	})
}

// TestConnSyncNAT: NAT connections survive every failover kind.
func TestConnSyncNAT(t *testing.T) { survive(t, vipSyncNAT, v1alpha1.ForwardingNAT) }

// TestConnSyncDR: DR connections survive every failover kind.
func TestConnSyncDR(t *testing.T) { survive(t, vipSyncDR, v1alpha1.ForwardingDR) }

// TestConnSyncTunnel: tunnelled connections survive every failover kind.
func TestConnSyncTunnel(t *testing.T) { survive(t, vipSyncTunnel, v1alpha1.ForwardingTunnel) }

// TestConnSyncNAT6: IPv6 NAT connections survive every failover kind (the
// kernel syncs IPv6 connections with sync protocol 1, its default; the
// daemons use ff02::81 when every router with services is IPv6).
func TestConnSyncNAT6(t *testing.T) { survive(t, vipSyncNAT6, v1alpha1.ForwardingNAT) }

// TestConnSyncOffNAT: without the sync, NAT connections break.
func TestConnSyncOffNAT(t *testing.T) { breakWithoutSync(t, vipSyncNAT, v1alpha1.ForwardingNAT) }

// TestConnSyncOffDR: without the sync, DR connections break.
func TestConnSyncOffDR(t *testing.T) { breakWithoutSync(t, vipSyncDR, v1alpha1.ForwardingDR) }

package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a helper process (see TestMain), so
// the tests need no binaries besides themselves (the VM has only busybox).
const helperEnv = "LAB_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "sleep":
		select {}
	case "nsinode":
		link, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("netns", link)
		os.Exit(0)
	}
	os.Exit(2)
}

func helper(t *testing.T, mode string) (argv, env []string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}, append(os.Environ(), helperEnv+"="+mode)
}

// nsInode returns the inode of h's namespace, as /proc/PID/ns/net shows it.
func nsInode(t *testing.T, h *Host) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.NS()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// leftovers lists the /run/netns entries of the lab named name.
func leftovers(t *testing.T, name string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(NetnsDir, name+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	probeEvery = 5 * time.Millisecond
	// probeTimeout is generous: under software emulation (the IPVS VM) a
	// handshake can take tens of milliseconds.
	probeTimeout = 500 * time.Millisecond
	waitTimeout  = 10 * time.Second
	port         = 8080
)

func probe(t *testing.T, from *Host, to netip.Addr) *Prober {
	t.Helper()
	p, err := from.Probe(netip.AddrPortFrom(to, port), probeEvery, probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func serve(t *testing.T, h *Host) {
	t.Helper()
	stop, err := h.Serve(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// waitOK waits until p has n successful attempts started at or after since.
func waitOK(t *testing.T, p *Prober, since time.Time, n int) {
	t.Helper()
	what := fmt.Sprintf("%d answers from %s to %s", n, p.Host, p.Target)
	if err := WaitFor(waitTimeout, what, func() (bool, error) { return p.Snapshot().Since(since).OK() >= n, nil }); err != nil {
		t.Fatalf("%v (%s)", err, p.Snapshot().Since(since).Summary())
	}
}

// waitFailed waits until p has n failed attempts started at or after since.
func waitFailed(t *testing.T, p *Prober, since time.Time, n int) {
	t.Helper()
	what := fmt.Sprintf("%d failures from %s to %s", n, p.Host, p.Target)
	if err := WaitFor(waitTimeout, what, func() (bool, error) { return p.Snapshot().Since(since).Failed() >= n, nil }); err != nil {
		t.Fatalf("%v (%s)", err, p.Snapshot().Since(since).Summary())
	}
}

func TestTopology(t *testing.T) {
	t.Parallel()
	l := NewT(t, Options{Nodes: 3, Clients: 1})
	c1 := l.Client(1)

	if got, want := l.Node(2).IPv4, netip.MustParseAddr("192.0.2.12"); got != want {
		t.Errorf("n2 IPv4 = %s, want %s", got, want)
	}
	if got, want := l.Node(2).IPv6, netip.MustParseAddr("2001:db8::12"); got != want {
		t.Errorf("n2 IPv6 = %s, want %s", got, want)
	}
	if got, want := c1.IPv4, netip.MustParseAddr("192.0.2.51"); got != want {
		t.Errorf("c1 IPv4 = %s, want %s", got, want)
	}
	if got, want := l.VIPv6(1), netip.MustParseAddr("2001:db8::101"); got != want {
		t.Errorf("VIPv6(1) = %s, want %s", got, want)
	}
	if got, want := l.Node(3).MAC.String(), "02:00:00:00:01:03"; got != want {
		t.Errorf("n3 MAC = %s, want %s", got, want)
	}
	br, err := l.sw.nl.LinkByName(BridgeName)
	if err != nil {
		t.Fatal(err)
	}
	if s := br.(*netlink.Bridge).MulticastSnooping; s == nil || *s {
		t.Errorf("bridge multicast snooping = %v, want off", s)
	}

	for _, n := range l.Nodes() {
		serve(t, n)
		for _, a := range []netip.Addr{n.IPv4, n.IPv6, n.LinkLocal} {
			ok, err := n.HasAddr(a)
			if err != nil || !ok {
				t.Errorf("%s.HasAddr(%s) = %t, %v; want true", n, a, ok, err)
			}
		}
		if got, err := n.Sysctl("net.ipv6.conf.eth0.accept_dad"); err != nil || got != "0" {
			t.Errorf("%s accept_dad = %q, %v; want 0", n, got, err)
		}
	}
	if holders, err := l.Holders(l.Node(2).IPv4); err != nil || len(holders) != 1 || holders[0] != l.Node(2) {
		t.Errorf("Holders(n2) = %v, %v; want [n2]", holders, err)
	}

	// sysctls are per namespace
	if err := l.Node(1).SetSysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Node(2).Sysctl("net.ipv4.ip_forward"); err != nil || got != "0" {
		t.Errorf("n2 ip_forward = %q, %v; want 0 after setting it on n1", got, err)
	}

	// Every host reaches every node, over IPv4, IPv6 and IPv6 link-local,
	// and the answer comes from that node.
	start := time.Now()
	type probed struct {
		p  *Prober
		to *Host
	}
	var probes []probed
	for _, from := range append(l.Nodes(), c1) {
		for _, to := range l.Nodes() {
			if from == to {
				continue
			}
			for _, a := range []netip.Addr{to.IPv4, to.IPv6, to.LinkLocal.WithZone(from.Zone())} {
				probes = append(probes, probed{probe(t, from, a), to})
			}
		}
	}
	for _, pr := range probes {
		waitOK(t, pr.p, start, 3)
	}
	for _, pr := range probes {
		r := pr.p.Stop()
		if servers := r.Servers(); len(servers) != 1 || servers[pr.to.Name] == 0 {
			t.Errorf("%s -> %s: servers %v, want only %s", pr.p.Host, pr.p.Target, servers, pr.to)
		}
		t.Logf("%s -> %s: %s", pr.p.Host, pr.p.Target, r.Summary())
	}

	for _, n := range l.Nodes() {
		for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
			mac, ok, err := c1.Neighbor(a)
			if err != nil || !ok || mac.String() != n.MAC.String() {
				t.Errorf("c1.Neighbor(%s) = %s, %t, %v; want %s", a, mac, ok, err, n.MAC)
			}
		}
	}
	if _, ok, err := c1.Neighbor(l.VIPv4(0)); err != nil || ok {
		t.Errorf("c1.Neighbor(unused VIP) = %t, %v; want no entry", ok, err)
	}
}

func TestStartRunsInNamespaceAndCloseCleansUp(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	l, err := New(Options{Nodes: 2, LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n1, n2 := l.Node(1), l.Node(2)

	// A child reports its own namespace.
	argv, env := helper(t, "nsinode")
	p, err := n1.Start("nsinode", argv, env, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait(waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode() != 0 || !strings.Contains(p.LogTail(1), "netns "+nsInode(t, n1)) {
		t.Errorf("nsinode exited %v, log %q; want exit 0 and namespace %s", st, p.LogTail(5), nsInode(t, n1))
	}

	// Long-running processes: one killed by Kill, one stopped and left for Close.
	argv, env = helper(t, "sleep")
	p1, err := n1.Start("sleep", argv, env, "")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := n2.Start("sleep", argv, env, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p *Proc
		h *Host
	}{{p1, n1}, {p2, n2}} {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", c.p.Pid()))
		if err != nil || got != nsInode(t, c.h) {
			t.Errorf("pid %d namespace = %q, %v; want %s's %s", c.p.Pid(), got, err, c.h, nsInode(t, c.h))
		}
	}
	if err := p2.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p1.Exited() {
		t.Error("p1 not exited after Kill")
	}
	if ws := p1.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("p1 wait status %v, want killed by SIGKILL", ws)
	}

	if got := leftovers(t, l.Name()); len(got) != 3 {
		t.Errorf("namespaces before Close: %v, want 3", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !p2.Exited() {
		t.Error("stopped process not reaped by Close")
	}
	for _, p := range []*Proc{p1, p2} {
		if err := unix.Kill(p.Pid(), 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("pid %d after Close: kill 0 = %v, want ESRCH", p.Pid(), err)
		}
	}
	if got := leftovers(t, l.Name()); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := n1.Start("late", argv, env, ""); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestNewFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	name := fmt.Sprintf("lf%d", os.Getpid())
	// Someone else's file where n2's namespace would go makes New fail half-way.
	blocker := filepath.Join(NetnsDir, name+"-n2")
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(blocker) })

	logDir := t.TempDir()
	l, err := New(Options{Name: name, Nodes: 3, Clients: 1, LogDir: logDir})
	if err == nil {
		l.Close()
		t.Fatal("New succeeded despite a conflicting namespace")
	}
	t.Logf("New: %v", err)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("New error %v, want one wrapping os.ErrExist", err)
	}
	if got := leftovers(t, name); len(got) != 1 || got[0] != blocker {
		t.Errorf("after failed New: %v, want only the blocker %s", got, blocker)
	}

	for _, opts := range []Options{
		{Name: "Bad_Name"},
		{Nodes: MaxNodes + 1},
		{Clients: -1},
		{IPv4: netip.MustParsePrefix("10.0.0.0/25")},
		{IPv6: netip.MustParsePrefix("192.0.2.0/24")},
	} {
		if l, err := New(opts); err == nil {
			l.Close()
			t.Errorf("New(%+v) succeeded, want an error", opts)
		}
	}
}

func TestLinkFaults(t *testing.T) {
	t.Parallel()
	l := NewT(t, Options{Nodes: 1, Clients: 1})
	n1, c1 := l.Node(1), l.Client(1)
	serve(t, n1)
	for _, tt := range []struct {
		name     string
		down, up func() error
	}{
		{"link down", n1.LinkDown, n1.LinkUp},
		{"unplug", n1.Unplug, n1.Plug},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []netip.Addr{n1.IPv4, n1.IPv6} {
				p := probe(t, c1, target)
				waitOK(t, p, time.Time{}, 3)
				down := time.Now()
				if err := tt.down(); err != nil {
					t.Fatal(err)
				}
				// Probes may still succeed until down() has returned: the
				// outage is certain only from then on.
				downDone := time.Now()
				waitFailed(t, p, down, 3)
				for _, a := range []netip.Addr{n1.IPv4, n1.IPv6} {
					if ok, err := n1.HasAddr(a); err != nil || !ok {
						t.Errorf("%s: n1.HasAddr(%s) = %t, %v while down; want true", tt.name, a, ok, err)
					}
				}
				up := time.Now()
				if err := tt.up(); err != nil {
					t.Fatal(err)
				}
				waitOK(t, p, up, 3)
				r := p.Stop().Since(down)
				t.Logf("%s, %s: down for %v: %s", tt.name, target, up.Sub(down).Round(time.Millisecond), r.Summary())
				// The gap is counted from the first attempt after down, which
				// may start up to a probe interval after downDone, or after
				// an attempt in flight at down that still succeeded: under the
				// VM's software emulation such an attempt takes tens of
				// milliseconds.
				if want := up.Sub(downDone) - 2*probeEvery - 150*time.Millisecond; r.Failed() < 3 || r.LongestGap() < want {
					t.Errorf("%s: %s; want >= 3 failures and a gap >= %v (the link was surely down for %v)", tt.name, r.Summary(), want, up.Sub(downDone))
				}
			}
		})
	}
}

func TestPartition(t *testing.T) {
	t.Parallel()
	l := NewT(t, Options{Nodes: 2, Clients: 1})
	n1, n2, c1 := l.Node(1), l.Node(2), l.Client(1)
	serve(t, n1)
	serve(t, n2)
	between := []*Prober{probe(t, n1, n2.IPv4), probe(t, n2, n1.IPv6), probe(t, n1, n2.LinkLocal.WithZone(n1.Zone()))}
	others := []*Prober{probe(t, c1, n1.IPv4), probe(t, c1, n2.IPv6)}
	for _, p := range append(between, others...) {
		waitOK(t, p, time.Time{}, 3)
	}

	cut := time.Now()
	heal, err := l.Partition(n1, n2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range between {
		waitFailed(t, p, cut, 3)
	}
	for _, p := range others {
		waitOK(t, p, cut, 20)
		if r := p.Snapshot().Since(cut); r.Failed() > 0 {
			t.Errorf("%s -> %s failed during the n1-n2 partition: %s", p.Host, p.Target, r.Summary())
		}
	}
	if _, ok, err := n1.Neighbor(n2.IPv4); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("n1's neighbour entry for n2 during partition: usable=%t", ok)
	}

	healed := time.Now()
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if err := heal(); err != nil {
		t.Errorf("second undo: %v", err)
	}
	for _, p := range between {
		waitOK(t, p, healed, 3)
		t.Logf("%s -> %s: %s", p.Host, p.Target, p.Stop().Since(cut).Summary())
	}
	for _, h := range []*Host{n1, n2} {
		c, err := h.nft()
		if err != nil {
			t.Fatal(err)
		}
		chains, err := c.ListChains()
		if err != nil {
			t.Fatal(err)
		}
		if len(chains) != 0 {
			t.Errorf("%s has %d chains after undo, want 0", h, len(chains))
		}
	}
	if _, err := l.Partition(n1, n1); err == nil {
		t.Error("partitioning a host from itself succeeded")
	}
}

func TestLoss(t *testing.T) {
	t.Parallel()
	l := NewT(t, Options{Nodes: 1, Clients: 1})
	n1, c1 := l.Node(1), l.Client(1)
	serve(t, n1)
	p := probe(t, c1, n1.IPv4)
	waitOK(t, p, time.Time{}, 3)

	undo, err := l.Loss(n1, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The rules are in place once Loss has returned.
	lossStart := time.Now()
	waitFailed(t, p, lossStart, 3)
	if r := p.Snapshot().Since(lossStart.Add(probeTimeout)); r.OK() > 0 {
		t.Errorf("answers during 100%% loss: %s", r.Summary())
	}
	var dump strings.Builder
	l.Dump(&dump)
	if !strings.Contains(dump.String(), "nft table inet lab chain loss") {
		t.Errorf("dump does not show the loss chains:\n%s", dump.String())
	}
	undoAt := time.Now()
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	waitOK(t, p, undoAt, 3)
	t.Logf("100%% loss: %s", p.Snapshot().Since(lossStart).Summary())

	// A connection needs four packets through n1 (SYN in, SYN-ACK out, ACK
	// in, reply out), so at 20% loss about 40% of the attempts pass.
	half := time.Now()
	undo, err = l.Loss(n1, 20)
	if err != nil {
		t.Fatal(err)
	}
	waitOK(t, p, half, 5)
	waitFailed(t, p, half, 5)
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	t.Logf("20%% loss: %s", p.Stop().Since(half).Summary())

	if _, err := l.Loss(n1, 101); err == nil {
		t.Error("Loss 101% succeeded")
	}
}

func TestResult(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	ok := func(start, end int, server string) Attempt {
		return Attempt{Start: ms(start), End: ms(end), OK: true, Server: server}
	}
	fail := func(start, end int) Attempt { return Attempt{Start: ms(start), End: ms(end), Err: "timeout"} }
	for _, tt := range []struct {
		name       string
		attempts   []Attempt
		wantOK     int
		wantFailed int
		wantGap    time.Duration
	}{
		{name: "empty"},
		{name: "all ok: gap is the interval", attempts: []Attempt{ok(0, 1, "n1"), ok(5, 6, "n1"), ok(10, 11, "n2")}, wantOK: 3, wantGap: 5 * time.Millisecond},
		{name: "failures in the middle", attempts: []Attempt{ok(0, 1, "n1"), fail(5, 105), fail(105, 205), ok(210, 211, "n2"), ok(215, 216, "n2")}, wantOK: 3, wantFailed: 2, wantGap: 210 * time.Millisecond},
		{name: "failures at the start count from the first attempt", attempts: []Attempt{fail(0, 100), ok(100, 101, "n1")}, wantOK: 1, wantFailed: 1, wantGap: 101 * time.Millisecond},
		{name: "failures at the end count to the last attempt", attempts: []Attempt{ok(0, 1, "n1"), fail(5, 105), fail(105, 305)}, wantOK: 1, wantFailed: 2, wantGap: 304 * time.Millisecond},
		{name: "a slow answer is a gap", attempts: []Attempt{ok(0, 1, "n1"), ok(5, 1006, "n1")}, wantOK: 2, wantGap: 1005 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Result{Attempts: tt.attempts}
			if r.OK() != tt.wantOK || r.Failed() != tt.wantFailed || r.LongestGap() != tt.wantGap {
				t.Errorf("got ok %d failed %d gap %v, want %d %d %v (%s)", r.OK(), r.Failed(), r.LongestGap(), tt.wantOK, tt.wantFailed, tt.wantGap, r.Summary())
			}
		})
	}
	r := Result{Attempts: []Attempt{ok(0, 1, "n1"), fail(5, 6), ok(10, 11, "n2"), ok(15, 16, "n2")}}
	if got := r.Servers(); len(got) != 2 || got["n1"] != 1 || got["n2"] != 2 {
		t.Errorf("Servers() = %v, want n1=1 n2=2", got)
	}
	if got := r.Since(ms(10)); len(got.Attempts) != 2 || got.Attempts[0].Start != ms(10) {
		t.Errorf("Since(10ms) = %+v, want the last 2 attempts", got.Attempts)
	}
	if got := r.Summary(); !strings.Contains(got, "4 attempts, 3 ok, 1 failed") || !strings.Contains(got, `1x "timeout"`) {
		t.Errorf("Summary() = %q", got)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	if err := WaitFor(time.Second, "three polls", func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("WaitFor = %v after %d polls, want nil after 3", err, n)
	}
	err := WaitFor(20*time.Millisecond, "never", func() (bool, error) { return false, nil })
	if err == nil || !strings.Contains(err.Error(), "waiting for never") {
		t.Errorf("WaitFor timeout error = %v, want it to name what was awaited", err)
	}
	boom := errors.New("boom")
	if err := WaitFor(time.Second, "an error", func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("WaitFor = %v, want it to wrap the condition's error", err)
	}
}

// TestNewSweepsStaleNamespaces is not parallel: any New sweeps, so a
// parallel test's New could remove the fake leftover before this test looks.
func TestNewSweepsStaleNamespaces(t *testing.T) {
	RequireRoot(t)
	// A PID that surely belongs to no process any more: a reaped child's.
	argv, env := helper(t, "nsinode")
	l := NewT(t, Options{})
	p, err := l.Node(1).Start("dead", argv, env, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(waitTimeout); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(NetnsDir, fmt.Sprintf("vl%d-1-n1", p.Pid()))
	ns, err := newNamedNS(stale, func() {})
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	t.Cleanup(func() { deleteNamedNS(stale) })

	NewT(t, Options{})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s still there after New: %v", stale, err)
	}
	if got := leftovers(t, l.Name()); len(got) != 2 {
		t.Errorf("New swept the live lab %s: %v left", l.Name(), got)
	}
}

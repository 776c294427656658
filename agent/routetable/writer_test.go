package routetable

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	statusv1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

const (
	table    = 100
	protocol = 250
	// waitFor bounds how long a route change may take to show.
	waitFor = 5 * time.Second
)

var (
	vip4 = netip.MustParseAddr("203.0.113.10")
	vip6 = netip.MustParseAddr("2001:db8:ffff::10")
)

// testNS is a fresh network namespace with lo up, and a netlink handle in it.
type testNS struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

// newNS makes a network namespace for the test (root only) and removes it
// at the end.
func newNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and writes its routing tables")
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result)
	go func() {
		// netns.New moves the calling thread into the new namespace:
		// lock it and never unlock, so that the runtime ends the thread
		// with this goroutine instead of reusing it.
		runtime.LockOSThread()
		ns, err := netns.New()
		ch <- result{ns, err}
	}()
	res := <-ch
	ns, err := res.ns, res.err
	if err != nil {
		t.Fatalf("creating a network namespace: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close() // the last reference: the namespace goes
	})
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return &testNS{ns: ns, nl: h}
}

// route is a route in the namespace as the tests compare them.
type route struct {
	prefix   netip.Prefix
	table    int
	protocol int
	dev      string
	gw       string
}

func (r route) String() string {
	s := fmt.Sprintf("%s table %d proto %d dev %s", r.prefix, r.table, r.protocol, r.dev)
	if r.gw != "" {
		s += " via " + r.gw
	}
	return s
}

// routes lists the routes of table tbl (both families).
func (n *testNS) routes(t *testing.T, tbl int) []route {
	t.Helper()
	rs, err := n.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: tbl}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []route
	for _, r := range rs {
		p, ok := prefixOf(&r)
		if !ok {
			continue
		}
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		dev := ""
		if l, err := n.nl.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		gw := ""
		if r.Gw != nil {
			gw = r.Gw.String()
		}
		out = append(out, route{prefix: p, table: r.Table, protocol: int(r.Protocol), dev: dev, gw: gw})
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// waitRoutes waits until table tbl holds exactly want.
func (n *testNS) waitRoutes(t *testing.T, tbl int, want []route) {
	t.Helper()
	slices.SortFunc(want, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	deadline := time.Now().Add(waitFor)
	for {
		got := n.routes(t, tbl)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %d = %v, want %v", tbl, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addRoute adds a route to the namespace as another program would.
func (n *testNS) addRoute(t *testing.T, p netip.Prefix, tbl int, proto netlink.RouteProtocol, dev string, gw netip.Addr) {
	t.Helper()
	l, err := n.nl.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		LinkIndex: l.Attrs().Index,
		Table:     tbl,
		Protocol:  proto,
	}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := n.nl.RouteAdd(r); err != nil {
		t.Fatalf("adding %v: %v", r, err)
	}
}

// uplink adds a veth pair "uplink" (the host kernel may lack the dummy
// module) with an address, for gateway routes.
func (n *testNS) uplink(t *testing.T, addr netip.Prefix) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "uplink"}, PeerName: "uplink-peer"}
	if err := n.nl.LinkAdd(v); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uplink", "uplink-peer"} {
		l, err := n.nl.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.nl.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	l, err := n.nl.LinkByName("uplink")
	if err != nil {
		t.Fatal(err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
	if addr.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.nl.AddrAdd(l, a); err != nil {
		t.Fatal(err)
	}
}

// running is a Writer whose Run runs in the background until the test ends.
type running struct {
	w      *Writer
	cancel context.CancelFunc
	done   chan error
}

func startWriter(t *testing.T, n *testNS, cfg Config) *running {
	t.Helper()
	cfg.Namespace = &n.ns
	if cfg.Table == 0 {
		cfg.Table = table
	}
	w, err := New(cfg, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return runWriter(t, w)
}

func runWriter(t *testing.T, w *Writer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop(t) })
	waitRunning(t, w)
	return r
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if !ok {
			return nil
		}
		close(r.done)
		return err
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

func waitRunning(t *testing.T, w *Writer) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		w.mu.Lock()
		up := w.nl != nil
		w.mu.Unlock()
		if up {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ours(p netip.Addr) route {
	return route{prefix: netip.PrefixFrom(p, p.BitLen()), table: table, protocol: protocol, dev: "lo"}
}

// Advertise writes the host routes (/32, /128) into the table through lo;
// Withdraw removes them; Run's end removes the rest.
func TestAdvertiseWithdraw(t *testing.T) {
	n := newNS(t)
	r := startWriter(t, n, Config{})
	w := r.w
	for _, a := range []netip.Addr{vip4, vip6} {
		if err := w.Advertise(a); err != nil {
			t.Fatal(err)
		}
	}
	// Written by Advertise itself, not later.
	if got, want := n.routes(t, table), []route{ours(vip6), ours(vip4)}; !slices.Equal(got, want) {
		t.Fatalf("after Advertise: table %d = %v, want %v", table, got, want)
	}
	// Again: nothing changes.
	if err := w.Advertise(vip4); err != nil {
		t.Fatal(err)
	}
	st, err := w.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &statusv1alpha1.BGP{Speaker: statusv1alpha1.SpeakerExternal, RouteTable: table, Advertised: []string{"203.0.113.10/32", "2001:db8:ffff::10/128"}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Status = %+v, want %+v", st, want)
	}

	if err := w.Withdraw(vip4); err != nil {
		t.Fatal(err)
	}
	if err := w.Withdraw(vip4); err != nil {
		t.Fatal(err)
	}
	if got, want := n.routes(t, table), []route{ours(vip6)}; !slices.Equal(got, want) {
		t.Fatalf("after Withdraw: table %d = %v, want %v", table, got, want)
	}
	// The main table was not written.
	for _, rt := range n.routes(t, unix.RT_TABLE_MAIN) {
		if rt.protocol == protocol {
			t.Errorf("route of protocol %d in the main table: %v", protocol, rt)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	n.waitRoutes(t, table, nil)
	st, err = w.Status(context.Background())
	if err != nil || len(st.Advertised) != 0 {
		t.Errorf("Status after Run = %+v, %v; want nothing advertised", st, err)
	}
}

// Routes wanted before Run are written when it starts; a route of the
// protocol that is not wanted (a crashed agent's) is removed then; routes of
// other protocols in the table, and of the protocol in other tables, stay
// through Run, GracefulShutdown and Run's end.
func TestStartRemovesStaleKeepsForeign(t *testing.T) {
	n := newNS(t)
	n.uplink(t, netip.MustParsePrefix("192.0.2.11/24"))
	stale := netip.MustParseAddr("203.0.113.99")
	n.addRoute(t, netip.PrefixFrom(stale, 32), table, protocol, "lo", netip.Addr{})
	n.addRoute(t, netip.MustParsePrefix("2001:db8:ffff::99/128"), table, protocol, "lo", netip.Addr{})
	// Someone else's routes in the table: a static one and one of BIRD.
	foreign := []route{
		{prefix: netip.MustParsePrefix("198.51.100.0/24"), table: table, protocol: unix.RTPROT_STATIC, dev: "uplink", gw: "192.0.2.1"},
		{prefix: netip.MustParsePrefix("203.0.113.20/32"), table: table, protocol: unix.RTPROT_BIRD, dev: "lo"},
	}
	for _, f := range foreign {
		gw := netip.Addr{}
		if f.gw != "" {
			gw = netip.MustParseAddr(f.gw)
		}
		n.addRoute(t, f.prefix, f.table, netlink.RouteProtocol(f.protocol), f.dev, gw)
	}
	// Our protocol in another table: not ours.
	other := route{prefix: netip.MustParsePrefix("203.0.113.30/32"), table: 101, protocol: protocol, dev: "lo"}
	n.addRoute(t, other.prefix, other.table, protocol, "lo", netip.Addr{})

	w, err := New(Config{Table: table, Namespace: &n.ns}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Advertise(vip4); err != nil { // before Run: recorded
		t.Fatal(err)
	}
	r := runWriter(t, w)
	n.waitRoutes(t, table, append(slices.Clone(foreign), ours(vip4)))
	n.waitRoutes(t, 101, []route{other})

	if err := w.GracefulShutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, table, slices.Clone(foreign))
	// Drained: a later Advertise is recorded, not written.
	if err := w.Advertise(vip6); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, table, slices.Clone(foreign))
	n.waitRoutes(t, 101, []route{other})
}

// A wanted route that someone deletes or changes is put back by the route
// notification, long before the periodic resync (an hour here); an
// unwanted route of the protocol that someone adds is removed.
func TestPutsBackWhatOthersChange(t *testing.T) {
	n := newNS(t)
	n.uplink(t, netip.MustParsePrefix("192.0.2.11/24"))
	r := startWriter(t, n, Config{Resync: time.Hour})
	w := r.w
	for _, a := range []netip.Addr{vip4, vip6} {
		if err := w.Advertise(a); err != nil {
			t.Fatal(err)
		}
	}
	n.waitRoutes(t, table, []route{ours(vip4), ours(vip6)})

	for _, a := range []netip.Addr{vip4, vip6} {
		p := netip.PrefixFrom(a, a.BitLen())
		start := time.Now()
		del := &netlink.Route{Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}, Table: table, Protocol: protocol}
		if a.Is4() {
			del.Scope = netlink.SCOPE_LINK
		}
		if err := n.nl.RouteDel(del); err != nil {
			t.Fatalf("deleting %s: %v", p, err)
		}
		n.waitRoutes(t, table, []route{ours(vip4), ours(vip6)})
		t.Logf("%s deleted by someone: back after %v", p, time.Since(start).Round(time.Millisecond))
	}

	// Someone points our route elsewhere: it is put back on lo.
	uplink, err := n.nl.LinkByName("uplink")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nl.RouteReplace(&netlink.Route{
		Dst: &net.IPNet{IP: vip4.AsSlice(), Mask: net.CIDRMask(32, 32)}, Table: table, Protocol: protocol,
		LinkIndex: uplink.Attrs().Index, Gw: net.ParseIP("192.0.2.1"),
	}); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, table, []route{ours(vip4), ours(vip6)})

	// Someone adds a route of our protocol: not wanted, removed.
	n.addRoute(t, netip.MustParsePrefix("203.0.113.77/32"), table, protocol, "lo", netip.Addr{})
	n.waitRoutes(t, table, []route{ours(vip4), ours(vip6)})

	// And the table settles: no rewrite loop (a notification of our own
	// write must not cause another write).
	before := countingWrites(t, n, 300*time.Millisecond)
	if before != 0 {
		t.Errorf("%d route notifications in table %d in 300ms of a settled table, want 0", before, table)
	}
}

// countingWrites counts the route notifications of table in d.
func countingWrites(t *testing.T, n *testNS, d time.Duration) int {
	t.Helper()
	ch := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &n.ns}); err != nil {
		t.Fatal(err)
	}
	timer := time.After(d)
	count := 0
	for {
		select {
		case u := <-ch:
			if u.Table == table {
				count++
			}
		case <-timer:
			close(done)
			for range ch {
			}
			return count
		}
	}
}

// A wanted prefix that another protocol already routes in the table is
// not overwritten: Advertise fails and Status says why.
func TestForeignRouteOfTheSamePrefix(t *testing.T) {
	n := newNS(t)
	n.addRoute(t, netip.PrefixFrom(vip4, 32), table, unix.RTPROT_STATIC, "lo", netip.Addr{})
	r := startWriter(t, n, Config{})
	err := r.w.Advertise(vip4)
	if err == nil || !strings.Contains(err.Error(), "already routes 203.0.113.10/32 with protocol 4") {
		t.Fatalf("Advertise over a static route = %v, want an error naming it", err)
	}
	st, _ := r.w.Status(context.Background())
	if !strings.Contains(st.LastError, "not overwriting") {
		t.Errorf("Status.LastError = %q, want the conflict", st.LastError)
	}
	n.waitRoutes(t, table, []route{{prefix: netip.PrefixFrom(vip4, 32), table: table, protocol: unix.RTPROT_STATIC, dev: "lo"}})
	// The other program removes its route: the resync or the notification
	// writes ours.
	if err := n.nl.RouteDel(&netlink.Route{Dst: &net.IPNet{IP: vip4.AsSlice(), Mask: net.CIDRMask(32, 32)}, Table: table, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, table, []route{ours(vip4)})
	st, _ = r.w.Status(context.Background())
	if st.LastError != "" {
		t.Errorf("Status.LastError = %q after the conflict went, want none", st.LastError)
	}
}

// GracefulShutdown removes the routes, then waits GracefulWait (or until
// its context ends).
func TestGracefulShutdownWaits(t *testing.T) {
	n := newNS(t)
	const wait = 300 * time.Millisecond
	r := startWriter(t, n, Config{GracefulWait: wait})
	if err := r.w.Advertise(vip4); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.w.GracefulShutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < wait {
		t.Errorf("GracefulShutdown returned after %v, want at least %v", d, wait)
	}
	if got := n.routes(t, table); len(got) != 0 {
		t.Errorf("table %d after GracefulShutdown = %v, want empty", table, got)
	}
	st, _ := r.w.Status(context.Background())
	if !st.GracefulShutdown || len(st.Advertised) != 0 {
		t.Errorf("Status = %+v, want graceful shutdown and nothing advertised", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.w.GracefulShutdown(ctx); err != context.Canceled {
		t.Errorf("GracefulShutdown with an ended context = %v, want context.Canceled", err)
	}
}

// Run refuses a second concurrent run, and returns promptly (every
// goroutine ended) when its context ends, many times over.
func TestRunLifecycle(t *testing.T) {
	n := newNS(t)
	w, err := New(Config{Table: table, Namespace: &n.ns}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 5 {
		r := runWriter(t, w)
		if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("second Run = %v, want already running", err)
		}
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	// Goroutines of the test framework may come and go; ours must not
	// pile up.
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after 5 runs, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Concurrent Advertise and Withdraw while Run reconciles end in the state
// the last calls asked for.
func TestConcurrentCalls(t *testing.T) {
	n := newNS(t)
	r := startWriter(t, n, Config{Resync: 50 * time.Millisecond})
	var wg sync.WaitGroup
	addrs := []netip.Addr{vip4, vip6, netip.MustParseAddr("203.0.113.11"), netip.MustParseAddr("2001:db8:ffff::11")}
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_ = r.w.Advertise(a)
				_ = r.w.Withdraw(a)
			}
			_ = r.w.Advertise(a)
		}()
	}
	wg.Wait()
	var want []route
	for _, a := range addrs {
		want = append(want, ours(a))
	}
	n.waitRoutes(t, table, want)
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{Table: 100}, ""},
		{Config{Table: 4294967295, Protocol: 5}, ""},
		{Config{}, "table: required"},
		{Config{Table: 253}, "table 253: one of the kernel's own tables"},
		{Config{Table: 254}, "table 254"},
		{Config{Table: 255}, "table 255"},
		{Config{Table: 100, Protocol: 4}, "protocol 4: one of the kernel's own"},
		{Config{Table: 100, GracefulWait: -1}, "graceful wait -1ns: negative"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.cfg), func(t *testing.T) {
			_, err := New(tt.cfg, logr.Discard())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("New() = %v, want %q", err, tt.want)
			}
		})
	}
	w, _ := New(Config{Table: 7}, logr.Discard())
	if w.cfg.Protocol != DefaultProtocol || w.cfg.Device != "lo" || w.cfg.Resync != DefaultResync {
		t.Errorf("defaults = %+v", w.cfg)
	}
}

func TestHostPrefix(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"203.0.113.10", "203.0.113.10/32"},
		{"::ffff:203.0.113.10", "203.0.113.10/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"0.0.0.0", ""},
		{"127.0.0.1", ""},
		{"fe80::1", ""},
		{"224.0.0.1", ""},
	} {
		p, err := hostPrefix(netip.MustParseAddr(tt.in))
		if got := p.String(); tt.want == "" && err == nil || tt.want != "" && got != tt.want {
			t.Errorf("hostPrefix(%s) = %s, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := hostPrefix(netip.Addr{}); err == nil {
		t.Error("hostPrefix(invalid) = nil error")
	}
}

// A table above 255 (carried in RTA_TABLE, not rtm_table) works the same.
func TestLargeTable(t *testing.T) {
	n := newNS(t)
	const big = 70000
	r := startWriter(t, n, Config{Table: big})
	n.addRoute(t, netip.MustParsePrefix("203.0.113.20/32"), big, unix.RTPROT_BIRD, "lo", netip.Addr{})
	if err := r.w.Advertise(vip4); err != nil {
		t.Fatal(err)
	}
	want := []route{
		{prefix: netip.PrefixFrom(vip4, 32), table: big, protocol: protocol, dev: "lo"},
		{prefix: netip.MustParsePrefix("203.0.113.20/32"), table: big, protocol: unix.RTPROT_BIRD, dev: "lo"},
	}
	n.waitRoutes(t, big, slices.Clone(want))
	if err := r.w.Withdraw(vip4); err != nil {
		t.Fatal(err)
	}
	n.waitRoutes(t, big, want[1:])
}

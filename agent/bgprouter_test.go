package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipvs/vipvs/agent/config"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

// The routers in mode bgp, driven through fakes: a fake route announcer
// records the calls in order, together with the VIP manager's adds and
// removes. test/bgplab proves the same with the real agent and real
// routers.

// event is one call seen by the fakes, in order.
type event struct {
	what string // advertise, withdraw, gshut, run, stop, add, remove
	vip  netip.Prefix
}

// journal records the calls of the fake announcer and the fake VIPs.
type journal struct {
	mu     sync.Mutex
	events []event
}

func (j *journal) add(what string, p netip.Prefix) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, event{what, p})
}

func (j *journal) list() []event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// index returns the position of the first event e at or after from, or -1.
func (j *journal) index(e event, from int) int {
	for i, x := range j.list() {
		if i >= from && x == e {
			return i
		}
	}
	return -1
}

func (j *journal) count(e event) int {
	n := 0
	for _, x := range j.list() {
		if x == e {
			n++
		}
	}
	return n
}

// fakeRoutes is a RouteAnnouncer that records its calls.
type fakeRoutes struct {
	j       *journal
	mu      sync.Mutex
	want    map[netip.Prefix]bool
	drained bool
}

func (f *fakeRoutes) Run(ctx context.Context) error {
	f.j.add("run", netip.Prefix{})
	<-ctx.Done()
	f.j.add("stop", netip.Prefix{})
	return nil
}
func (f *fakeRoutes) Advertise(p netip.Prefix) error {
	f.mu.Lock()
	f.want[p] = true
	f.mu.Unlock()
	f.j.add("advertise", p)
	return nil
}
func (f *fakeRoutes) Withdraw(p netip.Prefix) error {
	f.mu.Lock()
	delete(f.want, p)
	f.mu.Unlock()
	f.j.add("withdraw", p)
	return nil
}
func (f *fakeRoutes) GracefulShutdown(ctx context.Context) error {
	f.j.add("gshut", netip.Prefix{})
	f.mu.Lock()
	f.drained = true
	f.mu.Unlock()
	return nil
}
func (f *fakeRoutes) Status(context.Context) (*statusv1.BGP, error) {
	return &statusv1.BGP{Speaker: statusv1.SpeakerEmbedded, Peers: []statusv1.BGPPeer{{Address: "192.0.2.254", ASN: 65000, State: statusv1.BGPStateEstablished, BFD: statusv1.BFDStateUp}}}, nil
}

// reconfigurableRoutes is fakeRoutes that takes a changed bgp section live
// unless the ASN changed.
type reconfigurableRoutes struct {
	*fakeRoutes
	asn uint32
}

func (f *reconfigurableRoutes) Reconfigure(_ context.Context, c *config.BGP) (bool, error) {
	if c.LocalASN != f.asn {
		return false, nil
	}
	f.j.add("reconfigure", netip.Prefix{})
	return true, nil
}

// journalVIPs is fakeVIPs that also journals.
type journalVIPs struct {
	*fakeVIPs
	j *journal
}

func (v journalVIPs) Add(ifname string, p netip.Prefix) error {
	v.j.add("add", p)
	return v.fakeVIPs.Add(ifname, p)
}
func (v journalVIPs) Remove(ifname string, p netip.Prefix) error {
	v.j.add("remove", p)
	return v.fakeVIPs.Remove(ifname, p)
}

type fakeGuard struct {
	mu     sync.Mutex
	addrs  []netip.Addr
	closed bool
}

func (g *fakeGuard) Set(a []netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addrs = slices.Clone(a)
	return nil
}
func (g *fakeGuard) Close() error { g.mu.Lock(); g.closed = true; g.mu.Unlock(); return nil }
func (g *fakeGuard) get() ([]netip.Addr, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.addrs), g.closed
}

type bgpHarness struct {
	*harness
	j      *journal
	guard  *fakeGuard
	mu     sync.Mutex
	opened []*fakeRoutes
}

func (h *bgpHarness) routes() *fakeRoutes {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opened[len(h.opened)-1]
}

func (h *bgpHarness) openCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.opened)
}

// startBGPAgent runs an agent on fakes with a recording route announcer.
func startBGPAgent(t *testing.T, c *config.Config) *bgpHarness {
	t.Helper()
	return startBGPAgentWith(t, c, false)
}

// startBGPAgentWith is startBGPAgent; reconfigurable gives announcers that
// take a changed bgp section live.
func startBGPAgentWith(t *testing.T, c *config.Config, reconfigurable bool) *bgpHarness {
	t.Helper()
	return startBGPAgentOpts(t, c, reconfigurable, nil)
}

// startBGPAgentWithReload is a reconfigurable startBGPAgentWith whose
// SIGHUP is reload.
func startBGPAgentWithReload(t *testing.T, c *config.Config, reload chan struct{}) *bgpHarness {
	t.Helper()
	return startBGPAgentOpts(t, c, true, reload)
}

func startBGPAgentOpts(t *testing.T, c *config.Config, reconfigurable bool, reload chan struct{}) *bgpHarness {
	t.Helper()
	j := &journal{}
	bh := &bgpHarness{j: j, guard: &fakeGuard{}}
	h := &harness{
		t: t, cfg: newFakeConfig(c), net: newFakeNet(), vips: newFakeVIPs(), anns: &fakeAnnouncers{},
		links: newFakeLinks(), bal: &fakeBalancer{}, hard: make(chan struct{}), done: make(chan error, 1),
	}
	bh.harness = h
	a, err := New(Options{Log: testr.New(t), HardStop: h.hard, Reload: reload}, Parts{
		Config: h.cfg, Network: h.net, VIPs: journalVIPs{h.vips, j}, Links: h.links, Balancer: h.bal,
		OpenAnnouncer: h.anns.open, PickInterfaces: func(c *config.Config) (*config.Config, error) { return c, nil },
		OpenRouteAnnouncer: func(c *config.BGP) (RouteAnnouncer, error) {
			r := &fakeRoutes{j: j, want: map[netip.Prefix]bool{}}
			bh.mu.Lock()
			bh.opened = append(bh.opened, r)
			bh.mu.Unlock()
			if reconfigurable {
				return &reconfigurableRoutes{r, c.LocalASN}, nil
			}
			return r, nil
		},
		ARPGuard: bh.guard,
	}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if h.stopped {
			return
		}
		cancel()
		close(h.hard)
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	return bh
}

var (
	bgpVIP  = netip.MustParsePrefix("203.0.113.10/32")
	bgpVIP2 = netip.MustParsePrefix("203.0.113.11/32")
	bgpVIP6 = netip.MustParsePrefix("2001:db8:ffff::10/128")
)

const drainWait = 100 * time.Millisecond

func testBGPRouter(name string, vips ...netip.Prefix) config.Router {
	return config.Router{Name: name, Mode: config.ModeBGP, Interface: "lo", IPv6: vips[0].Addr().Is6(), VIPs: vips}
}

func bgpConfigOf(hash string, checks []config.Check, routers ...config.Router) *config.Config {
	return &config.Config{Hash: hash, Checks: checks, Routers: routers, BGP: &config.BGP{
		LocalASN: 65001, RouterID: netip.MustParseAddr("192.0.2.1"), GracefulShutdownWait: drainWait,
		Peers: []config.BGPPeer{{Address: netip.MustParseAddr("192.0.2.254"), ASN: 65000}},
	}}
}

// fileCheck is a check that passes while path does not exist.
func fileCheck(name, path string) config.Check {
	return config.Check{Name: name, Exec: []string{"/bin/sh", "-c", "test ! -e " + path}, Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1}
}

func (h *bgpHarness) waitBGPState(name, want string) bgpState {
	h.t.Helper()
	var got bgpState
	eventually(h.t, "bgp router "+name+" to be "+want, func() bool {
		r, ok := h.router(name)
		got = bgpState{r.State, r.LastReason, r.Mode}
		return ok && r.State == want
	})
	return got
}

type bgpState struct{ state, reason, mode string }

func TestBGPRouterFollowsItsChecks(t *testing.T) {
	fail := filepath.Join(t.TempDir(), "fail")
	c := bgpConfigOf("1", []config.Check{fileCheck("api", fail)}, testBGPRouter("web", bgpVIP), testBGPRouter("web6", bgpVIP6))
	c.Routers[0].TrackChecks = []config.TrackCheck{{Check: "api", Weight: -10}} // any weight withdraws
	h := startBGPAgent(t, c)

	// web6 tracks nothing: advertised at once. web once its check passed.
	st := h.waitBGPState("web", statusv1.StateAdvertised)
	if st.mode != statusv1.ModeBGP {
		t.Errorf("mode %q, want bgp", st.mode)
	}
	h.waitBGPState("web6", statusv1.StateAdvertised)
	eventually(t, "the VIPs held on lo and advertised", func() bool {
		return h.vips.holds("lo", bgpVIP) && h.vips.holds("lo", bgpVIP6) && h.j.count(event{"advertise", bgpVIP}) == 1 && h.j.count(event{"advertise", bgpVIP6}) == 1
	})
	if h.j.index(event{"add", bgpVIP}, 0) > h.j.index(event{"advertise", bgpVIP}, 0) {
		t.Error("the VIP was advertised before it was held")
	}
	if !h.bal.isMaster("web") || !h.bal.isMaster("web6") {
		t.Error("the balancer was not told the node serves the bgp routers")
	}
	if got, _ := h.guard.get(); !slices.Equal(got, []netip.Addr{bgpVIP.Addr()}) {
		t.Errorf("ARP guard %v, want the IPv4 VIP only", got)
	}
	rep := h.a.Report()
	if rep.BGP == nil || len(rep.BGP.Peers) != 1 || !slices.Equal(rep.BGP.Advertised, []string{bgpVIP.String(), bgpVIP6.String()}) {
		t.Errorf("report's bgp = %+v", rep.BGP)
	}
	if err := h.a.ready(); err != nil {
		t.Errorf("not ready: %v", err)
	}

	// The check fails: withdrawn at once, the VIP removed after the drain
	// wait, the balancer told then; web6 untouched.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st = h.waitBGPState("web", statusv1.StateWithdrawn)
	if st.reason != "track check api failed" {
		t.Errorf("reason %q", st.reason)
	}
	from := h.j.index(event{"withdraw", bgpVIP}, 0)
	if from < 0 {
		t.Fatal("not withdrawn")
	}
	if h.vips.holds("lo", bgpVIP) && !h.bal.isMaster("web") {
		t.Error("the balancer let go of web before the VIP was removed")
	}
	eventually(t, "the VIP removed after the drain wait", func() bool { return !h.vips.holds("lo", bgpVIP) })
	if i := h.j.index(event{"remove", bgpVIP}, 0); i < from {
		t.Errorf("removed (event %d) before withdrawn (event %d)", i, from)
	}
	eventually(t, "the balancer told", func() bool { return !h.bal.isMaster("web") })
	if h.j.count(event{"withdraw", bgpVIP6}) != 0 || !h.vips.holds("lo", bgpVIP6) {
		t.Error("web6 was withdrawn with web")
	}

	// It passes again: advertised again.
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	h.waitBGPState("web", statusv1.StateAdvertised)
	eventually(t, "advertised again", func() bool { return h.j.count(event{"advertise", bgpVIP}) == 2 && h.vips.holds("lo", bgpVIP) })
	if h.openCount() != 1 {
		t.Errorf("%d speakers opened, want 1", h.openCount())
	}
}

// A check that fails and passes again within the drain wait keeps the VIP on
// the interface.
func TestBGPFlapWithinDrainWaitKeepsTheVIP(t *testing.T) {
	fail := filepath.Join(t.TempDir(), "fail")
	c := bgpConfigOf("1", []config.Check{fileCheck("api", fail)}, testBGPRouter("web", bgpVIP))
	c.BGP.GracefulShutdownWait = 5 * time.Second
	c.Routers[0].TrackChecks = []config.TrackCheck{{Check: "api"}}
	h := startBGPAgent(t, c)
	h.waitBGPState("web", statusv1.StateAdvertised)
	must(t, os.WriteFile(fail, nil, 0o644))
	h.waitBGPState("web", statusv1.StateWithdrawn)
	must(t, os.Remove(fail))
	h.waitBGPState("web", statusv1.StateAdvertised)
	if n := h.j.count(event{"remove", bgpVIP}); n != 0 {
		t.Errorf("the VIP was removed %d times during a flap shorter than the drain wait", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBGPReloadChangesOnlyWhatChanged(t *testing.T) {
	h := startBGPAgent(t, bgpConfigOf("1", nil, testBGPRouter("web", bgpVIP), testBGPRouter("web6", bgpVIP6)))
	eventually(t, "both advertised", func() bool {
		return h.j.count(event{"advertise", bgpVIP}) == 1 && h.j.count(event{"advertise", bgpVIP6}) == 1
	})
	// A VIP added to web: advertised; nothing else withdrawn or re-added.
	h.reload(bgpConfigOf("2", nil, testBGPRouter("web", bgpVIP, bgpVIP2), testBGPRouter("web6", bgpVIP6)))
	eventually(t, "the new VIP advertised", func() bool { return h.j.count(event{"advertise", bgpVIP2}) == 1 && h.vips.holds("lo", bgpVIP2) })
	// The VIP removed again and web6 removed: both withdrawn, then
	// removed; bgpVIP stays.
	h.reload(bgpConfigOf("3", nil, testBGPRouter("web", bgpVIP)))
	eventually(t, "the removed VIPs withdrawn and removed", func() bool {
		return !h.vips.holds("lo", bgpVIP2) && !h.vips.holds("lo", bgpVIP6)
	})
	if h.j.index(event{"withdraw", bgpVIP2}, 0) > h.j.index(event{"remove", bgpVIP2}, 0) || h.j.index(event{"withdraw", bgpVIP6}, 0) > h.j.index(event{"remove", bgpVIP6}, 0) {
		t.Errorf("a VIP was removed before it was withdrawn: %v", h.j.list())
	}
	if h.j.count(event{"withdraw", bgpVIP}) != 0 || h.j.count(event{"advertise", bgpVIP}) != 1 || h.j.count(event{"remove", bgpVIP}) != 0 {
		t.Errorf("the unchanged VIP was touched: %v", h.j.list())
	}
	if _, ok := h.router("web6"); ok {
		t.Error("web6 is still reported")
	}
	if h.openCount() != 1 {
		t.Errorf("%d speakers opened for reloads that kept the bgp section, want 1", h.openCount())
	}
	// A changed bgp section (a new peer) restarts the speaker, which
	// advertises what the node serves from its start.
	c := bgpConfigOf("4", nil, testBGPRouter("web", bgpVIP))
	c.BGP.Peers = append(c.BGP.Peers, config.BGPPeer{Address: netip.MustParseAddr("192.0.2.253"), ASN: 65010})
	h.reload(c)
	eventually(t, "a new speaker", func() bool { return h.openCount() == 2 })
	eventually(t, "the new speaker advertising the VIP", func() bool {
		r := h.routes()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.want[bgpVIP]
	})
	if !h.vips.holds("lo", bgpVIP) || h.j.count(event{"remove", bgpVIP}) != 0 {
		t.Error("the VIP left the interface when the speaker restarted")
	}
	// The last bgp router removed: the speaker stops.
	h.reload(testConfig("5"))
	eventually(t, "the speaker stopped", func() bool { return h.j.count(event{"stop", netip.Prefix{}}) == 2 })
	eventually(t, "the VIP removed", func() bool { return !h.vips.holds("lo", bgpVIP) })
}

// SIGTERM: the routes are drained gracefully (GracefulShutdown) before the
// VIPs leave the interface, and the speaker stops after.
func TestBGPStopDrainsBeforeRemovingVIPs(t *testing.T) {
	h := startBGPAgent(t, bgpConfigOf("1", nil, testBGPRouter("web", bgpVIP), testBGPRouter("web6", bgpVIP6)))
	eventually(t, "advertised", func() bool { return h.j.count(event{"advertise", bgpVIP6}) == 1 })
	h.stop()
	g := h.j.index(event{"gshut", netip.Prefix{}}, 0)
	if g < 0 {
		t.Fatalf("no graceful shutdown: %v", h.j.list())
	}
	for _, p := range []netip.Prefix{bgpVIP, bgpVIP6} {
		if r := h.j.index(event{"remove", p}, 0); r < g {
			t.Errorf("%s removed (event %d) before the graceful shutdown (event %d): %v", p, r, g, h.j.list())
		}
	}
	if s := h.j.index(event{"stop", netip.Prefix{}}, 0); s < g {
		t.Errorf("the speaker stopped before the graceful shutdown: %v", h.j.list())
	}
	if h.j.count(event{"withdraw", bgpVIP}) != 0 {
		t.Error("the stop withdrew the routes itself instead of the graceful shutdown")
	}
	if _, closed := h.guard.get(); !closed {
		t.Error("the ARP guard is still there")
	}
	if h.bal.isMaster("web") {
		t.Error("the balancer still thinks the node serves web")
	}
}

// Drain without stopping: graceful shutdown, the routers reported
// WITHDRAWN, the VIPs kept; undrain: a fresh speaker advertises them again.
func TestBGPDrainAndUndrain(t *testing.T) {
	h := startBGPAgent(t, bgpConfigOf("1", nil, testBGPRouter("web", bgpVIP)))
	h.waitBGPState("web", statusv1.StateAdvertised)
	must(t, h.a.Drain(true))
	st := h.waitBGPState("web", statusv1.StateWithdrawn)
	if st.reason != "the node is drained" {
		t.Errorf("reason %q", st.reason)
	}
	eventually(t, "the graceful shutdown", func() bool { return h.j.count(event{"gshut", netip.Prefix{}}) == 1 })
	if !h.vips.holds("lo", bgpVIP) {
		t.Error("the drain removed the VIP: flows still arriving would be dropped")
	}
	if rep := h.a.Report(); !rep.BGP.GracefulShutdown || len(rep.BGP.Advertised) != 0 {
		t.Errorf("drained report %+v", rep.BGP)
	}
	must(t, h.a.Drain(false))
	h.waitBGPState("web", statusv1.StateAdvertised)
	eventually(t, "a fresh speaker advertising", func() bool {
		if h.openCount() != 2 {
			return false
		}
		r := h.routes()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.want[bgpVIP]
	})
}

// A speaker that takes a changed bgp section live keeps running (its
// sessions and routes) when peers change; a changed ASN replaces it.
func TestBGPPeersChangeLive(t *testing.T) {
	h := startBGPAgentWith(t, bgpConfigOf("1", nil, testBGPRouter("web", bgpVIP)), true)
	eventually(t, "advertised", func() bool { return h.j.count(event{"advertise", bgpVIP}) == 1 })
	c := bgpConfigOf("2", nil, testBGPRouter("web", bgpVIP))
	c.BGP.Peers = append(c.BGP.Peers, config.BGPPeer{Address: netip.MustParseAddr("192.0.2.253"), ASN: 65010})
	h.reload(c)
	eventually(t, "reconfigured", func() bool { return h.j.count(event{"reconfigure", netip.Prefix{}}) == 1 })
	if h.openCount() != 1 || h.j.count(event{"stop", netip.Prefix{}}) != 0 || h.j.count(event{"withdraw", bgpVIP}) != 0 {
		t.Errorf("a peer change restarted the speaker or withdrew: %v", h.j.list())
	}
	c = bgpConfigOf("3", nil, testBGPRouter("web", bgpVIP))
	c.BGP.LocalASN = 65002
	h.reload(c)
	eventually(t, "a new speaker for the new ASN", func() bool { return h.openCount() == 2 })
	eventually(t, "it advertises the VIP", func() bool {
		r := h.routes()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.want[bgpVIP]
	})
}

// SIGHUP reads the peers' password files again: a changed key reaches the
// speaker (here, live), an unreadable one is reported and the speaker stays.
func TestBGPPasswordReadOnReload(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	must(t, os.WriteFile(key, []byte("one\n"), 0o600))
	c := bgpConfigOf("1", nil, testBGPRouter("web", bgpVIP))
	c.BGP.Peers[0].PasswordFile = key
	reload := make(chan struct{}, 1)
	h := startBGPAgentWithReload(t, c, reload)
	eventually(t, "advertised", func() bool { return h.j.count(event{"advertise", bgpVIP}) == 1 })
	reload <- struct{}{}
	// The agent asks the config source to reload, then reads the keys.
	eventually(t, "the reload taken", func() bool { return len(h.cfg.reloads) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := h.j.count(event{"reconfigure", netip.Prefix{}}); n != 0 {
		t.Errorf("an unchanged key reconfigured the speaker %d times", n)
	}
	must(t, os.WriteFile(key, []byte("two\n"), 0o600))
	reload <- struct{}{}
	eventually(t, "the changed key applied", func() bool { return h.j.count(event{"reconfigure", netip.Prefix{}}) == 1 })
	must(t, os.Remove(key))
	reload <- struct{}{}
	eventually(t, "the missing file reported", func() bool {
		rep := h.a.Report()
		return rep.BGP != nil && strings.Contains(rep.BGP.LastError, "passwordFile")
	})
	if h.openCount() != 1 || h.j.count(event{"stop", netip.Prefix{}}) != 0 {
		t.Errorf("the speaker was replaced: %v", h.j.list())
	}
}

// A VIP that a reload moves from one bgp router to another stays held and
// advertised, whichever router the reload handles first.
func TestBGPVIPMovesBetweenRouters(t *testing.T) {
	for _, order := range []struct{ from, to string }{{"a", "b"}, {"b", "a"}} {
		t.Run(order.from+"-to-"+order.to, func(t *testing.T) {
			h := startBGPAgent(t, bgpConfigOf("1", nil, testBGPRouter(order.from, bgpVIP, bgpVIP2), testBGPRouter(order.to, bgpVIP6)))
			eventually(t, "advertised", func() bool {
				return h.j.count(event{"advertise", bgpVIP2}) == 1 && h.j.count(event{"advertise", bgpVIP6}) == 1
			})
			h.reload(bgpConfigOf("2", nil, testBGPRouter(order.from, bgpVIP), testBGPRouter(order.to, bgpVIP6, bgpVIP2)))
			time.Sleep(3 * drainWait)
			r := h.routes()
			r.mu.Lock()
			advertised := r.want[bgpVIP2]
			r.mu.Unlock()
			if !advertised || !h.vips.holds("lo", bgpVIP2) {
				t.Errorf("the moved VIP: advertised %v, held %v; want both: %v", advertised, h.vips.holds("lo", bgpVIP2), h.j.list())
			}
		})
	}
}

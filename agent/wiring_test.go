package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vrrp"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
)

// The wiring of the agent, driven through fakes: reload, live changes,
// link faults, interface re-creation, router restarts and the graceful
// stop. The namespace e2e tests (test/e2e) prove the real parts.

const testInterval = 50 * time.Millisecond

var (
	vip0  = netip.MustParsePrefix("192.0.2.100/32")
	vip1  = netip.MustParsePrefix("192.0.2.101/32")
	peerA = netip.MustParseAddr("192.0.2.2")
)

func testRouter(name string, vrid uint8, ifname string, v netip.Prefix) config.Router {
	return config.Router{
		Name: name, VRID: vrid, Interface: ifname, Version: 3, Priority: 100,
		AdvertInterval: testInterval, Preempt: true, VIPs: []netip.Prefix{v},
		Announce: config.Announce{Count: 1},
	}
}

func testConfig(hash string, routers ...config.Router) *config.Config {
	return &config.Config{Routers: routers, Hash: hash}
}

// becomeMaster waits for a lone router to take over.
func (h *harness) becomeMaster(name, ifname string, v netip.Prefix) {
	h.t.Helper()
	h.waitState(name, "MASTER")
	eventually(h.t, "the VIP to be added", func() bool { return h.vips.holds(ifname, v) })
}

func TestStartMasterAndGracefulStop(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	h.becomeMaster("r0", "eth0", vip0)
	eventually(t, "an announcement", func() bool { n, _ := h.anns.announced("eth0"); return n > 0 })
	if !h.bal.isMaster("r0") {
		t.Error("the balancer was not told the node is master of r0")
	}
	ep := h.net.open("eth0", 1)[0]
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	// The master advertises priority 0 and keeps the VIP until another
	// router takes over.
	eventually(t, "a priority 0 advert", func() bool { return slices.Contains(ep.sentPriorities(), 0) })
	if !h.vips.holds("eth0", vip0) {
		t.Fatal("the VIP was released before another router took over")
	}
	ep.advert(t, peerA, 100, testInterval, vip0.Addr())
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not stop after the hand-over")
	}
	if h.vips.holds("eth0", vip0) {
		t.Error("the VIP is still held after the stop")
	}
	if !ep.isClosed() {
		t.Error("the endpoint is still open after the stop")
	}
	if !h.bal.isShutdown() {
		t.Error("the balancer was not shut down")
	}
}

func TestBackupFollowsHigherPriorityPeer(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	eventually(t, "the endpoint", func() bool { return len(h.net.open("eth0", 1)) == 1 })
	ep := h.net.open("eth0", 1)[0]
	// A master at 200 keeps advertising: we stay Backup.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(testInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				ep.advert(t, peerA, 200, testInterval, vip0.Addr())
			}
		}
	}()
	h.waitState("r0", "BACKUP")
	time.Sleep(10 * testInterval)
	if st := h.state("r0"); st != "BACKUP" || h.vips.holds("eth0", vip0) {
		t.Fatalf("state %s, VIP held %v; want BACKUP without the VIP while a better master advertises", st, h.vips.holds("eth0", vip0))
	}
	r, _ := h.router("r0")
	if r.AdvertsRecv == 0 || r.Master != peerA.String() {
		t.Errorf("received %d adverts, master %q; want >0 and %s", r.AdvertsRecv, r.Master, peerA)
	}
}

// TestAdvertAtSubscribe: a socket delivers from the moment a router
// subscribes, before its state machine exists; such an advert is dropped,
// not a crash (seen once: a nil runner on a restarted agent in the VM).
func TestAdvertAtSubscribe(t *testing.T) {
	n := newFakeNet()
	n.onSubscribe = func(ep *fakeEP) { ep.advert(t, peerA, 200, testInterval, vip0.Addr()) }
	h := startAgentOn(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil, n)
	h.waitState("r0", "MASTER")
}

func TestReloadAddsRemovesAndRestartsRouters(t *testing.T) {
	r0 := testRouter("r0", 1, "eth0", vip0)
	h := startAgent(t, testConfig("1", r0), nil)
	h.becomeMaster("r0", "eth0", vip0)
	first := h.net.open("eth0", 1)[0]

	// Same hash: nothing happens.
	h.reload(testConfig("1", r0))
	// A new router on a new interface; r0 unchanged keeps its endpoint.
	r1 := testRouter("r1", 2, "eth1", vip1)
	h.reload(testConfig("2", r0, r1))
	h.becomeMaster("r1", "eth1", vip1)
	if first.isClosed() {
		t.Fatal("an unchanged router was restarted by a reload")
	}
	// A change that needs a restart (the VIP list): a new endpoint, the
	// router comes back as master, the old VIP goes.
	r0b := r0
	r0b.VIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.102/32")}
	h.reload(testConfig("3", r0b, r1))
	eventually(t, "r0's old endpoint to close", first.isClosed)
	h.becomeMaster("r0", "eth0", r0b.VIPs[0])
	if h.vips.holds("eth0", vip0) {
		t.Error("the old VIP of the restarted router is still held")
	}
	if n := len(h.net.open("eth0", 1)); n != 1 {
		t.Errorf("%d open endpoints for r0, want 1", n)
	}
	// r1 removed: its endpoint closes and its VIP goes.
	h.reload(testConfig("4", r0b))
	eventually(t, "r1 to stop and to be forgotten", func() bool {
		_, reported := h.router("r1")
		return !reported && h.a.Report().ConfigHash == "4"
	})
	if len(h.net.open("eth1", 2)) != 0 || h.vips.holds("eth1", vip1) {
		t.Error("a removed router's endpoint is open or its VIP held")
	}
	if !slices.Equal(h.links.followed(), []string{"eth0"}) {
		t.Errorf("link watcher follows %v, want [eth0]", h.links.followed())
	}
}

func TestLiveChangeKeepsTheRouter(t *testing.T) {
	r0 := testRouter("r0", 1, "eth0", vip0)
	r0.Peers = []netip.Addr{peerA}
	h := startAgent(t, testConfig("1", r0), nil)
	h.becomeMaster("r0", "eth0", vip0)
	ep := h.net.open("eth0", 1)[0]
	adds := h.vips.addCount()

	r0b := r0
	r0b.Priority = 150
	r0b.Peers = []netip.Addr{peerA, netip.MustParseAddr("192.0.2.3")}
	h.reload(testConfig("2", r0b))
	eventually(t, "adverts at the new priority", func() bool { return slices.Contains(ep.sentPriorities(), 150) })
	if ep.isClosed() || h.state("r0") != "MASTER" {
		t.Fatalf("a live change restarted the router (endpoint closed %v, state %s)", ep.isClosed(), h.state("r0"))
	}
	ep.state.Lock()
	peers := slices.Clone(ep.peers)
	ep.state.Unlock()
	if len(peers) != 2 {
		t.Errorf("endpoint peers %v, want the two new ones", peers)
	}
	if h.vips.addCount() != adds {
		t.Error("a live change re-added the VIPs")
	}
	// Track checks that fail put the router in FAULT, live.
	r0c := r0b
	r0c.TrackChecks = []config.TrackCheck{{Check: "never", Weight: 0}}
	h.reload(testConfig("3", r0c))
	h.waitState("r0", "FAULT")
	eventually(t, "the VIP to go in FAULT", func() bool { return !h.vips.holds("eth0", vip0) })
	if ep.isClosed() {
		t.Error("a track check change restarted the router")
	}
}

func TestLinkDownUp(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	h.becomeMaster("r0", "eth0", vip0)
	ep := h.net.open("eth0", 1)[0]
	h.links.set("eth0", link.State{Up: false, Index: 2})
	h.waitState("r0", "FAULT")
	eventually(t, "the VIP to go", func() bool { return !h.vips.holds("eth0", vip0) })
	h.links.set("eth0", link.State{Up: true, Index: 2})
	h.becomeMaster("r0", "eth0", vip0)
	if ep.isClosed() {
		t.Error("a link down/up on the same interface restarted the router")
	}
}

func TestInterfaceRecreated(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0), testRouter("r1", 2, "eth0", vip1)), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.becomeMaster("r1", "eth0", vip1)
	old := append(h.net.open("eth0", 1), h.net.open("eth0", 2)...)
	_, announcersBefore := h.anns.announced("eth0")
	// eth0 is deleted: FAULT, no VIP.
	h.net.setIndex("eth0", 0)
	h.links.set("eth0", link.State{Up: false, Index: 0})
	h.waitState("r0", "FAULT")
	h.waitState("r1", "FAULT")
	// Re-created under the same name with a new index: the routers move
	// to new endpoints on it, take the VIPs back and announce them.
	h.net.setIndex("eth0", 9)
	h.links.set("eth0", link.State{Up: true, Index: 9})
	eventually(t, "the endpoints on the old interface to close", func() bool {
		return old[0].isClosed() && old[1].isClosed()
	})
	for _, vrid := range []uint8{1, 2} {
		eventually(t, fmt.Sprintf("VRID %d to have one endpoint, on index 9", vrid), func() bool {
			eps := h.net.open("eth0", vrid)
			return len(eps) == 1 && eps[0].IfIndex() == 9
		})
	}
	h.becomeMaster("r0", "eth0", vip0)
	h.becomeMaster("r1", "eth0", vip1)
	eventually(t, "announcements from a new announcer", func() bool {
		_, opened := h.anns.announced("eth0")
		return opened > announcersBefore
	})
}

func TestInterfaceRecreatedBackupStaysBackup(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	eventually(t, "the endpoint", func() bool { return len(h.net.open("eth0", 1)) == 1 })
	stop := make(chan struct{})
	defer close(stop)
	// Another node is master at 200 throughout, on whatever endpoint r0
	// has now.
	go func() {
		tick := time.NewTicker(testInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, ep := range h.net.open("eth0", 1) {
					ep.advert(t, peerA, 200, testInterval, vip0.Addr())
				}
			}
		}
	}()
	h.waitState("r0", "BACKUP")
	h.net.setIndex("eth0", 0)
	h.links.set("eth0", link.State{Up: false, Index: 0})
	h.waitState("r0", "FAULT")
	h.net.setIndex("eth0", 5)
	h.links.set("eth0", link.State{Up: true, Index: 5})
	eventually(t, "r0 on the new interface", func() bool {
		eps := h.net.open("eth0", 1)
		return len(eps) == 1 && eps[0].IfIndex() == 5
	})
	h.waitState("r0", "BACKUP")
	time.Sleep(8 * testInterval)
	if st := h.state("r0"); st != "BACKUP" || h.vips.holds("eth0", vip0) {
		t.Fatalf("after the re-creation r0 is %s holding the VIP %v; want BACKUP without it (never two masters)", st, h.vips.holds("eth0", vip0))
	}
}

// TestLinkWatcherFollowsReloadedInterfaces is the regression test of the
// link watcher that read the interface list once at start: a router added
// on a new interface by a reload must go to FAULT when that interface
// goes down.
func TestLinkWatcherFollowsReloadedInterfaces(t *testing.T) {
	r0 := testRouter("r0", 1, "eth0", vip0)
	h := startAgent(t, testConfig("1", r0), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.reload(testConfig("2", r0, testRouter("r1", 2, "eth1", vip1)))
	h.becomeMaster("r1", "eth1", vip1)
	if !h.links.set("eth1", link.State{Up: false, Index: 3}) {
		t.Fatalf("the link watcher does not follow eth1, added by the reload (follows %v)", h.links.followed())
	}
	h.waitState("r1", "FAULT")
	if h.state("r0") != "MASTER" {
		t.Errorf("r0 on eth0 is %s, want MASTER", h.state("r0"))
	}
}

// TestFailedPickAtStart is the regression test of a failed interface pick
// at start, which left the config nil: a rejected reload and a link change
// dereferenced it.
func TestFailedPickAtStart(t *testing.T) {
	r0 := testRouter("r0", 1, "", vip0)
	pick := func(c *config.Config) (*config.Config, error) {
		return nil, errors.New("listing the node's addresses: permission denied")
	}
	h := startAgent(t, testConfig("1", r0), pick)
	eventually(t, "the config error in the status", func() bool { return h.a.Report().ConfigError != "" })
	if err := h.a.ready(); err == nil {
		t.Error("ready with a router that could not start")
	}
	select {
	case h.cfg.errs <- fmt.Errorf("bad file"):
	case <-time.After(5 * time.Second):
		t.Fatal("the agent does not take config errors")
	}
	<-h.links.ready
	h.links.mu.Lock()
	f := h.links.changed
	h.links.mu.Unlock()
	f("eth0", link.State{Up: false})
	if got := h.a.Report().ConfigHash; got != "1" {
		t.Errorf("config hash %q, want the loaded config's 1", got)
	}
	h.stop()
}

// TestInterfaceAppearsLater: a router whose interface did not exist at
// start is started when it appears.
func TestInterfaceAppearsLater(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth7", vip0)), nil)
	eventually(t, "the config error", func() bool { return h.a.Report().ConfigError != "" })
	h.net.setIndex("eth7", 12)
	h.links.set("eth7", link.State{Up: true, Index: 12})
	h.becomeMaster("r0", "eth7", vip0)
}

// TestRouterReceiveAllocs measures the allocations per advert of a Backup
// in the steady state: the same advert from the master, again and again.
// Nothing is allocated: the agent's part (cache, counters, conflict checks)
// and the state machine's (vrrp.Runner.HandleAdvert, also reported apart).
// With transport's TestReceiveAllocatesNothing, the path from the socket's
// buffer to the state machine allocates nothing per packet.
func TestRouterReceiveAllocs(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0)), nil)
	eventually(t, "the endpoint", func() bool { return len(h.net.open("eth0", 1)) == 1 })
	ep := h.net.open("eth0", 1)[0]
	ep.advert(t, peerA, 200, testInterval, vip0.Addr())
	h.waitState("r0", "BACKUP")
	h.a.mu.Lock()
	r := h.a.routers["r0"]
	h.a.mu.Unlock()
	adv := packet.Advert{Version: 3, VRID: 1, Priority: 200, Interval: testInterval, Addrs: []netip.Addr{vip0.Addr()}}
	dst := transport.MulticastGroup(false)
	b, err := adv.Marshal(peerA, dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := transport.Packet{Payload: b, Src: peerA, Dst: dst, TTL: 255, SrcMAC: []byte{2, 0, 0, 0, 0, 1}}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	total := testing.AllocsPerRun(200, func() { r.receive(p) })
	sm := testing.AllocsPerRun(200, func() {
		r.runner.HandleAdvert(vrrp.AdvertReceived{Src: peerA, SrcMAC: r.lastMAC, Priority: 200, Interval: testInterval})
	})
	t.Logf("allocations per advert: %.1f in all, %.1f of them in vrrp.Runner.HandleAdvert", total, sm)
	if total != 0 {
		t.Errorf("the receive path allocates %.1f times per advert (%.1f in the state machine), want 0", total, sm)
	}
}

// TestRecreatedInterfaceWaitsForItsAddress: a re-created interface whose
// address comes later (NetworkManager configures it after the link) gets
// its router once the address is there, and meanwhile the other
// interfaces' changes are not held up.
func TestRecreatedInterfaceWaitsForItsAddress(t *testing.T) {
	h := startAgent(t, testConfig("1", testRouter("r0", 1, "eth0", vip0), testRouter("r1", 2, "eth1", vip1)), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.becomeMaster("r1", "eth1", vip1)
	h.net.setIndex("eth0", 0)
	h.links.set("eth0", link.State{Up: false})
	h.waitState("r0", "FAULT")
	h.net.mu.Lock()
	h.net.fail["eth0"] = fmt.Errorf("%w: the interface has no IPv4 address", transport.ErrNoSource)
	h.net.index["eth0"] = 9
	h.net.mu.Unlock()
	returned := make(chan struct{})
	go func() {
		h.links.set("eth0", link.State{Up: true, Index: 9})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the link watcher's callback waits for the router's source address")
	}
	h.links.set("eth1", link.State{Up: false, Index: 3})
	h.waitState("r1", "FAULT")
	h.net.mu.Lock()
	delete(h.net.fail, "eth0")
	h.net.mu.Unlock()
	eventually(t, "r0 on the new interface", func() bool {
		eps := h.net.open("eth0", 1)
		return len(eps) == 1 && eps[0].IfIndex() == 9
	})
	h.becomeMaster("r0", "eth0", vip0)
}

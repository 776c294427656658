package agent

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A router restarted by a new config while Active hands over to its
// successor on this node: no priority 0, the VIPs it keeps never leave
// the interface, and the successor is Active at once (not after its
// Master_Down_Interval). The system test (test/system) measures what it
// saves with real agents.
func TestRestartWhileActiveTakesOver(t *testing.T) {
	vip2 := netip.MustParsePrefix("192.0.2.102/32")
	r0 := testRouter("r0", 1, "eth0", vip0)
	r0.VIPs = []netip.Prefix{vip0, vip1}
	h := startAgent(t, testConfig("1", r0), nil)
	h.becomeMaster("r0", "eth0", vip0)
	old := h.net.open("eth0", 1)[0]

	// Another VRID, interval and VIP list: a restart. vip0 stays, vip1
	// goes, vip2 comes.
	r0b := r0
	r0b.VRID = 2
	r0b.AdvertInterval = 2 * testInterval
	r0b.VIPs = []netip.Prefix{vip0, vip2}
	h.reload(testConfig("2", r0b))
	eventually(t, "the new config to run", func() bool { return h.a.Report().ConfigHash == "2" })
	if !old.isClosed() {
		t.Fatal("the old router's endpoint is still open")
	}
	if slices.Contains(old.sentPriorities(), 0) {
		t.Error("the old router advertised priority 0: the Backups would take over")
	}
	rep, _ := h.router("r0")
	if rep.State != "MASTER" || !strings.Contains(rep.LastReason, "taking over") {
		t.Errorf("the new router is %s (%q), want MASTER at once by taking over", rep.State, rep.LastReason)
	}
	if got := h.vips.removals(); !slices.Equal(got, []netip.Prefix{vip1}) {
		t.Errorf("VIPs removed %v, want only the dropped %v (a kept VIP must never leave the interface)", got, vip1)
	}
	if !h.vips.holds("eth0", vip0) || !h.vips.holds("eth0", vip2) {
		t.Error("the new router does not hold its VIPs")
	}
	if eps := h.net.open("eth0", 2); len(eps) != 1 || len(eps[0].sentPriorities()) == 0 {
		t.Error("the new router does not advertise")
	}
	if !h.bal.isMaster("r0") {
		t.Error("the balancer was told the node is no longer master of r0")
	}
	// The state metric: the new VRID is MASTER, the old one no longer.
	for vrid, want := range map[string]float64{"1": 0, "2": 1} {
		g := h.a.m.state.WithLabelValues("r0", vrid, "IPv4", "MASTER")
		if got := testutil.ToFloat64(g); got != want {
			t.Errorf("vipvs_vrrp_state{vrid=%s,state=MASTER} = %v, want %v", vrid, got, want)
		}
	}
}

// A successor that cannot start leaves no VIP behind that no router holds.
func TestTakeOverThatFailsReleasesTheVIPs(t *testing.T) {
	r0 := testRouter("r0", 1, "eth0", vip0)
	h := startAgent(t, testConfig("1", r0), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.net.mu.Lock()
	h.net.fail["eth0"] = errors.New("no socket")
	h.net.mu.Unlock()
	r0b := r0
	r0b.AdvertInterval = 2 * testInterval
	h.reload(testConfig("2", r0b))
	eventually(t, "the config error", func() bool { return h.a.Report().ConfigError != "" })
	if h.vips.holds("eth0", vip0) {
		t.Error("the VIP kept for a successor that did not start is still held")
	}
	if h.bal.isMaster("r0") {
		t.Error("the balancer still thinks the node is master of r0")
	}
}

// A router removed from the config together with its VIPs releases them at
// once: no node is to take them over, so a graceful stop (priority 0, then
// keeping them for the hand-over bound) would only delay their removal. A
// router removed whose VIP moves to another router keeps the graceful stop.
func TestRemovedRouterReleasesItsVIPsAtOnce(t *testing.T) {
	r0 := testRouter("r0", 1, "eth0", vip0)
	r1 := testRouter("r1", 2, "eth0", vip1)
	h := startAgent(t, testConfig("1", r0, r1), nil)
	h.becomeMaster("r0", "eth0", vip0)
	h.becomeMaster("r1", "eth0", vip1)
	ep := h.net.open("eth0", 2)[0]
	h.reload(testConfig("2", r0))
	eventually(t, "the new config to run", func() bool { return h.a.Report().ConfigHash == "2" })
	if slices.Contains(ep.sentPriorities(), 0) {
		t.Error("the removed router advertised priority 0 and waited for a successor that no node runs")
	}
	if h.vips.holds("eth0", vip1) {
		t.Error("the removed router's VIP is still held")
	}
	if !h.vips.holds("eth0", vip0) {
		t.Error("the other router's VIP was released")
	}

	// r0 removed, its VIP now r2's: a hand-over, graceful.
	r2 := testRouter("r2", 3, "eth0", vip0)
	ep0 := h.net.open("eth0", 1)[0]
	h.reload(testConfig("3", r2))
	eventually(t, "the third config to run", func() bool { return h.a.Report().ConfigHash == "3" })
	if !slices.Contains(ep0.sentPriorities(), 0) {
		t.Error("a removed router whose VIP another router serves stopped without a hand-over (no priority 0)")
	}
}

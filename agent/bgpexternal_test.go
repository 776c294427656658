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

// External-speaker mode through fakes: the bgp routers' VIPs are held by
// the local-route holder (Parts.OpenLocalVIPs), not as interface
// addresses; a reload between the embedded and the external speaker moves
// them. agent/routetable proves the holder in a network namespace,
// test/bgplab (TestExternalSpeakerAgent) the real agent with FRR.

// fakeLocalVIPs is a local-route holder that journals ladd and lremove,
// and lrun and lstop around its Run.
type fakeLocalVIPs struct {
	*fakeVIPs
	j        *journal
	protocol uint8
}

func (v *fakeLocalVIPs) Add(ifname string, p netip.Prefix) error {
	v.j.add("ladd", p)
	return v.fakeVIPs.Add(ifname, p)
}
func (v *fakeLocalVIPs) Remove(ifname string, p netip.Prefix) error {
	v.j.add("lremove", p)
	return v.fakeVIPs.Remove(ifname, p)
}
func (v *fakeLocalVIPs) Run(ctx context.Context) error {
	v.j.add("lrun", netip.Prefix{})
	<-ctx.Done()
	v.j.add("lstop", netip.Prefix{})
	return nil
}

type extHarness struct {
	*bgpHarness
	lmu    sync.Mutex
	locals []*fakeLocalVIPs
}

func (h *extHarness) local() *fakeLocalVIPs {
	h.lmu.Lock()
	defer h.lmu.Unlock()
	if len(h.locals) == 0 {
		return nil
	}
	return h.locals[len(h.locals)-1]
}

// startExternalAgent runs an agent on fakes with a recording route
// announcer and local-route holder.
func startExternalAgent(t *testing.T, c *config.Config) *extHarness {
	t.Helper()
	j := &journal{}
	eh := &extHarness{bgpHarness: &bgpHarness{j: j, guard: &fakeGuard{}}}
	h := &harness{
		t: t, cfg: newFakeConfig(c), net: newFakeNet(), vips: newFakeVIPs(), anns: &fakeAnnouncers{},
		links: newFakeLinks(), bal: &fakeBalancer{}, hard: make(chan struct{}), done: make(chan error, 1),
	}
	eh.harness = h
	a, err := New(Options{Log: testr.New(t), HardStop: h.hard}, Parts{
		Config: h.cfg, Network: h.net, VIPs: journalVIPs{h.vips, j}, Links: h.links, Balancer: h.bal,
		OpenAnnouncer: h.anns.open, PickInterfaces: func(c *config.Config) (*config.Config, error) { return c, nil },
		OpenRouteAnnouncer: func(c *config.BGP) (RouteAnnouncer, error) {
			r := &fakeRoutes{j: j, want: map[netip.Prefix]bool{}}
			eh.mu.Lock()
			eh.opened = append(eh.opened, r)
			eh.mu.Unlock()
			return r, nil
		},
		OpenLocalVIPs: func(protocol uint8) (VIPs, error) {
			l := &fakeLocalVIPs{fakeVIPs: newFakeVIPs(), j: j, protocol: protocol}
			eh.lmu.Lock()
			eh.locals = append(eh.locals, l)
			eh.lmu.Unlock()
			return l, nil
		},
		ARPGuard: eh.guard,
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
	return eh
}

func externalConfigOf(hash string, protocol uint8, checks []config.Check, routers ...config.Router) *config.Config {
	return &config.Config{Hash: hash, Checks: checks, Routers: routers, BGP: &config.BGP{
		GracefulShutdownWait: drainWait, ExternalSpeaker: &config.ExternalSpeaker{Table: 100, Protocol: protocol},
	}}
}

func TestBGPExternalSpeakerHoldsVIPsAsLocalRoutes(t *testing.T) {
	fail := filepath.Join(t.TempDir(), "fail")
	c := externalConfigOf("1", 250, []config.Check{fileCheck("api", fail)}, testBGPRouter("web", bgpVIP))
	c.Routers[0].TrackChecks = []config.TrackCheck{{Check: "api", Weight: -10}}
	h := startExternalAgent(t, c)

	h.waitBGPState("web", statusv1.StateAdvertised)
	eventually(t, "the VIP held as a local route and advertised", func() bool {
		l := h.local()
		return l != nil && l.holds("lo", bgpVIP) && h.j.count(event{"advertise", bgpVIP}) == 1
	})
	if l := h.local(); l.protocol != 250 {
		t.Errorf("local holder of protocol %d, want the external speaker's 250", l.protocol)
	}
	if h.vips.holds("lo", bgpVIP) || h.vips.addCount() != 0 {
		t.Error("the VIP was added as an interface address in external-speaker mode")
	}
	if h.j.index(event{"ladd", bgpVIP}, 0) > h.j.index(event{"advertise", bgpVIP}, 0) {
		t.Error("the VIP was advertised before it was held")
	}
	eventually(t, "the holder runs", func() bool { return h.j.count(event{"lrun", netip.Prefix{}}) == 1 })
	if got, _ := h.guard.get(); !slices.Equal(got, []netip.Addr{bgpVIP.Addr()}) {
		t.Errorf("ARP guard %v, want the VIP: a local route makes Linux answer ARP too", got)
	}

	// The check fails: withdrawn, the local route removed after the drain.
	must(t, os.WriteFile(fail, nil, 0o644))
	h.waitBGPState("web", statusv1.StateWithdrawn)
	eventually(t, "the local route removed", func() bool { return !h.local().holds("lo", bgpVIP) })
	if h.j.index(event{"withdraw", bgpVIP}, 0) > h.j.index(event{"lremove", bgpVIP}, 0) {
		t.Errorf("removed before withdrawn: %v", h.j.list())
	}
	must(t, os.Remove(fail))
	h.waitBGPState("web", statusv1.StateAdvertised)
	eventually(t, "held and advertised again", func() bool {
		return h.local().holds("lo", bgpVIP) && h.j.count(event{"advertise", bgpVIP}) == 2
	})

	// A reload to the embedded speaker: the VIP leaves the local table,
	// becomes an address, the holder stops.
	emb := bgpConfigOf("2", c.Checks, c.Routers...)
	h.reload(emb)
	eventually(t, "the VIP moved to an address", func() bool {
		return h.vips.holds("lo", bgpVIP) && !h.local().holds("lo", bgpVIP) && h.j.count(event{"lstop", netip.Prefix{}}) == 1
	})
	if i, k := h.j.index(event{"lremove", bgpVIP}, h.j.index(event{"advertise", bgpVIP}, 0)+1), h.j.index(event{"add", bgpVIP}, 0); i < 0 || k < i {
		t.Errorf("the local route was not removed before the address was added: %v", h.j.list())
	}
	eventually(t, "the new speaker advertising", func() bool {
		r := h.routes()
		r.mu.Lock()
		defer r.mu.Unlock()
		return h.openCount() == 2 && r.want[bgpVIP]
	})

	// And back, with another protocol: a new holder of that protocol.
	h.reload(externalConfigOf("3", 251, c.Checks, c.Routers...))
	eventually(t, "the VIP a local route again", func() bool {
		l := h.local()
		return l != nil && l.protocol == 251 && l.holds("lo", bgpVIP) && !h.vips.holds("lo", bgpVIP)
	})

	// SIGTERM: drained, then the local route removed, the holder stopped.
	h.stop()
	if g := h.j.index(event{"gshut", netip.Prefix{}}, 0); g < 0 || h.j.index(event{"lremove", bgpVIP}, g) < 0 {
		t.Errorf("removed before the graceful shutdown: %v", h.j.list())
	}
	if h.local().holds("lo", bgpVIP) || h.j.count(event{"lstop", netip.Prefix{}}) != 2 {
		t.Errorf("after the stop: local route held %v, holders stopped %d; want none held, 2 stopped",
			h.local().holds("lo", bgpVIP), h.j.count(event{"lstop", netip.Prefix{}}))
	}
}

// Without a local-route holder the external speaker is refused with a
// clear error, reported by readiness.
func TestBGPExternalSpeakerNeedsTheLocalHolder(t *testing.T) {
	h := startBGPAgent(t, externalConfigOf("1", 250, nil, testBGPRouter("web", bgpVIP)))
	eventually(t, "not ready, saying why", func() bool {
		err := h.a.ready()
		return err != nil && strings.Contains(err.Error(), "cannot hold VIPs as local routes")
	})
	if h.openCount() != 0 {
		t.Error("a route announcer was opened without the local-route holder")
	}
}

// openRouteAnnouncer chooses the route table writer for externalSpeaker
// and passes its settings, validated.
func TestOpenRouteAnnouncerExternal(t *testing.T) {
	c := &config.BGP{GracefulShutdownWait: time.Second, ExternalSpeaker: &config.ExternalSpeaker{Table: 100, Protocol: 250}}
	ann, err := openRouteAnnouncer(c, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ann.Status(context.Background())
	if _, ok := ann.(externalSpeaker); !ok || err != nil || st.Speaker != statusv1.SpeakerExternal || st.RouteTable != 100 {
		t.Errorf("openRouteAnnouncer = %T, status %+v, %v; want the external speaker of table 100", ann, st, err)
	}
	c.ExternalSpeaker.Table = 254
	if _, err := openRouteAnnouncer(c, testr.New(t)); err == nil || !strings.Contains(err.Error(), "bgp.externalSpeaker") {
		t.Errorf("table 254: %v, want an error naming bgp.externalSpeaker", err)
	}
	if _, err := openLocalVIPs(250, testr.New(t)); err != nil {
		t.Errorf("openLocalVIPs: %v", err)
	}
}

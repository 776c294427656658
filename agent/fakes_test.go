package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/link"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
)

// The fakes of the agent's parts. They record what the agent did and let a
// test play the network (adverts of a peer, interfaces going down, away and
// coming back) without root.

type fakeConfig struct {
	current *config.Config
	updates chan *config.Config
	errs    chan error
	reloads chan struct{}
}

func newFakeConfig(c *config.Config) *fakeConfig {
	return &fakeConfig{current: c, updates: make(chan *config.Config), errs: make(chan error), reloads: make(chan struct{}, 8)}
}

func (f *fakeConfig) Current() *config.Config        { return f.current }
func (f *fakeConfig) Updates() <-chan *config.Config { return f.updates }
func (f *fakeConfig) Errors() <-chan error           { return f.errs }
func (f *fakeConfig) Reload()                        { f.reloads <- struct{}{} }
func (f *fakeConfig) Run(ctx context.Context) error  { <-ctx.Done(); return nil }

// fakeNet hands out endpoints and knows the index of each interface.
type fakeNet struct {
	mu    sync.Mutex
	index map[string]int
	eps   []*fakeEP // every endpoint ever opened
	fail  map[string]error
	// onSubscribe, when set, is called with each new endpoint before
	// Subscribe returns, as a socket delivers from the subscription on.
	onSubscribe func(*fakeEP)
}

func newFakeNet() *fakeNet {
	return &fakeNet{index: map[string]int{"eth0": 2, "eth1": 3}, fail: map[string]error{}}
}

func (n *fakeNet) setIndex(ifname string, idx int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index[ifname] = idx
}

func (n *fakeNet) Subscribe(opts transport.Options, vrid uint8, h transport.Handler) (Endpoint, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fail[opts.Interface]; err != nil {
		return nil, err
	}
	idx, ok := n.index[opts.Interface]
	if !ok || idx == 0 {
		return nil, fmt.Errorf("no interface %s", opts.Interface)
	}
	src := netip.MustParseAddr("192.0.2.1")
	if opts.IPv6 {
		src = netip.MustParseAddr("fe80::1")
	}
	ep := &fakeEP{ifname: opts.Interface, vrid: vrid, index: idx, src: src, h: h, peers: opts.Peers}
	n.eps = append(n.eps, ep)
	if hook := n.onSubscribe; hook != nil {
		n.mu.Unlock()
		hook(ep)
		n.mu.Lock()
	}
	return ep, nil
}

// open returns the open endpoints of ifname and vrid.
func (n *fakeNet) open(ifname string, vrid uint8) []*fakeEP {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*fakeEP
	for _, ep := range n.eps {
		if ep.ifname == ifname && ep.vrid == vrid && !ep.isClosed() {
			out = append(out, ep)
		}
	}
	return out
}

type fakeEP struct {
	ifname string
	vrid   uint8
	index  int
	src    netip.Addr
	h      transport.Handler

	mu     sync.Mutex // serialises deliveries, as the socket goroutine does
	state  sync.Mutex
	peers  []netip.Addr
	sent   []uint8 // priorities of the adverts sent
	closed bool
}

func (e *fakeEP) Source() netip.Addr { return e.src }
func (e *fakeEP) IfIndex() int       { return e.index }
func (e *fakeEP) Write(payload []byte, dst netip.Addr) error {
	e.state.Lock()
	defer e.state.Unlock()
	if e.closed {
		return errors.New("closed")
	}
	e.sent = append(e.sent, payload[2])
	return nil
}
func (e *fakeEP) SetPeers(p []netip.Addr) error {
	e.state.Lock()
	defer e.state.Unlock()
	e.peers = slices.Clone(p)
	return nil
}
func (e *fakeEP) Dropped() map[transport.DropReason]uint64 { return map[transport.DropReason]uint64{} }
func (e *fakeEP) Close() error {
	e.state.Lock()
	defer e.state.Unlock()
	e.closed = true
	return nil
}
func (e *fakeEP) isClosed() bool {
	e.state.Lock()
	defer e.state.Unlock()
	return e.closed
}
func (e *fakeEP) sentPriorities() []uint8 {
	e.state.Lock()
	defer e.state.Unlock()
	return slices.Clone(e.sent)
}

// advert delivers an advert from src with prio for vips, as the socket
// would.
func (e *fakeEP) advert(t *testing.T, src netip.Addr, prio uint8, interval time.Duration, vips ...netip.Addr) {
	t.Helper()
	adv := packet.Advert{Version: 3, VRID: e.vrid, Priority: prio, Interval: interval, Addrs: vips}
	dst := transport.MulticastGroup(src.Is6())
	b, err := adv.Marshal(src, dst, packet.ChecksumMode(0))
	if err != nil {
		t.Fatalf("encoding advert: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.h(transport.Packet{Payload: b, Src: src, Dst: dst, TTL: 255, IfIndex: e.index})
}

// fakeVIPs holds VIPs per interface.
type fakeVIPs struct {
	mu   sync.Mutex
	held map[string][]netip.Prefix
	adds int
	// removed are the VIPs removed, in order.
	removed []netip.Prefix
}

func newFakeVIPs() *fakeVIPs { return &fakeVIPs{held: map[string][]netip.Prefix{}} }

func (v *fakeVIPs) Add(ifname string, p netip.Prefix) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.adds++
	if !slices.Contains(v.held[ifname], p) {
		v.held[ifname] = append(v.held[ifname], p)
	}
	return nil
}
func (v *fakeVIPs) Remove(ifname string, p netip.Prefix) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.held[ifname] = slices.DeleteFunc(v.held[ifname], func(q netip.Prefix) bool { return q == p })
	v.removed = append(v.removed, p)
	return nil
}
func (v *fakeVIPs) RemoveStale(string, []netip.Prefix) ([]netip.Prefix, error) { return nil, nil }
func (v *fakeVIPs) Run(ctx context.Context) error                              { <-ctx.Done(); return nil }
func (v *fakeVIPs) holds(ifname string, p netip.Prefix) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Contains(v.held[ifname], p)
}
func (v *fakeVIPs) removals() []netip.Prefix {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.removed)
}
func (v *fakeVIPs) addCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.adds
}

type fakeAnnouncer struct {
	mu       sync.Mutex
	ifname   string
	sent     int
	closed   bool
	prepared int
}

func (a *fakeAnnouncer) Prepare(bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prepared++
	return nil
}

func (a *fakeAnnouncer) Announce(vips []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent += len(vips)
	return nil
}
func (a *fakeAnnouncer) Close() error { a.mu.Lock(); a.closed = true; a.mu.Unlock(); return nil }

type fakeAnnouncers struct {
	mu   sync.Mutex
	list []*fakeAnnouncer
}

func (f *fakeAnnouncers) open(ifname string) (Announcer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := &fakeAnnouncer{ifname: ifname}
	f.list = append(f.list, a)
	return a, nil
}

// announced returns how many announcements were sent on ifname by
// announcers opened after the first skip ones.
func (f *fakeAnnouncers) announced(ifname string) (total int, opened int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.list {
		if a.ifname == ifname {
			a.mu.Lock()
			total += a.sent
			a.mu.Unlock()
			opened++
		}
	}
	return total, opened
}

// fakeLinks reports what the test sets, for the followed interfaces only,
// as the real watcher does.
type fakeLinks struct {
	mu      sync.Mutex
	follow  []string
	changed func(string, link.State)
	ready   chan struct{}
	once    sync.Once
}

func newFakeLinks() *fakeLinks { return &fakeLinks{ready: make(chan struct{})} }

func (l *fakeLinks) Follow(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.follow = slices.Clone(names)
}
func (l *fakeLinks) Run(ctx context.Context, changed func(string, link.State)) error {
	l.mu.Lock()
	l.changed = changed
	l.mu.Unlock()
	l.once.Do(func() { close(l.ready) })
	<-ctx.Done()
	return nil
}
func (l *fakeLinks) followed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.follow)
}

// set reports st for ifname if it is followed; it returns whether it was.
func (l *fakeLinks) set(ifname string, st link.State) bool {
	<-l.ready
	l.mu.Lock()
	f, ok := l.changed, slices.Contains(l.follow, ifname)
	l.mu.Unlock()
	if ok {
		f(ifname, st)
	}
	return ok
}

type fakeBalancer struct {
	mu       sync.Mutex
	updates  int
	master   map[string]bool
	shutdown bool
}

func (b *fakeBalancer) Update(*config.Config) { b.mu.Lock(); b.updates++; b.mu.Unlock() }
func (b *fakeBalancer) SetMaster(r string, m bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.master == nil {
		b.master = map[string]bool{}
	}
	b.master[r] = m
}
func (b *fakeBalancer) Run(ctx context.Context) { <-ctx.Done() }
func (b *fakeBalancer) Shutdown(context.Context) error {
	b.mu.Lock()
	b.shutdown = true
	b.mu.Unlock()
	return nil
}
func (b *fakeBalancer) Status() *status.IPVS { return nil }
func (b *fakeBalancer) isShutdown() bool     { b.mu.Lock(); defer b.mu.Unlock(); return b.shutdown }
func (b *fakeBalancer) isMaster(router string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.master[router]
}

// harness is one agent running on fakes.
type harness struct {
	t       *testing.T
	a       *Agent
	cfg     *fakeConfig
	net     *fakeNet
	vips    *fakeVIPs
	anns    *fakeAnnouncers
	links   *fakeLinks
	bal     *fakeBalancer
	hard    chan struct{}
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func startAgent(t *testing.T, c *config.Config, pick func(*config.Config) (*config.Config, error)) *harness {
	t.Helper()
	return startAgentOn(t, c, pick, newFakeNet())
}

// startAgentOn is startAgent on the network n.
func startAgentOn(t *testing.T, c *config.Config, pick func(*config.Config) (*config.Config, error), n *fakeNet) *harness {
	t.Helper()
	h := &harness{
		t: t, cfg: newFakeConfig(c), net: n, vips: newFakeVIPs(), anns: &fakeAnnouncers{},
		links: newFakeLinks(), bal: &fakeBalancer{}, hard: make(chan struct{}), done: make(chan error, 1),
	}
	if pick == nil {
		pick = func(c *config.Config) (*config.Config, error) { return c, nil }
	}
	a, err := New(Options{Log: testr.New(t), HardStop: h.hard}, Parts{
		Config: h.cfg, Network: h.net, VIPs: h.vips, Links: h.links, Balancer: h.bal,
		OpenAnnouncer: h.anns.open, PickInterfaces: pick,
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
	return h
}

// stop stops the agent gracefully and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.stopped = true
		if err != nil {
			h.t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Fatal("the agent did not stop")
	}
}

func (h *harness) reload(c *config.Config) {
	h.t.Helper()
	select {
	case h.cfg.updates <- c:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the agent does not take config updates")
	}
}

// state returns the keepalived state word of a router ("" if not running).
func (h *harness) state(name string) string {
	for _, r := range h.a.Report().Routers {
		if r.Name == name {
			return r.State
		}
	}
	return ""
}

func (h *harness) router(name string) (status.Router, bool) {
	for _, r := range h.a.Report().Routers {
		if r.Name == name {
			return r, true
		}
	}
	return status.Router{}, false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) waitState(name, want string) {
	h.t.Helper()
	eventually(h.t, "router "+name+" to be "+want, func() bool { return h.state(name) == want })
}

package agent

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/vipvs/vipvs/agent/arpwatch"
)

// arpProbeEvery is how often a master asks who else holds its VIPs.
const arpProbeEvery = time.Second

// neighborEvery is how often the peers' MACs are read from the neighbour
// table and pinned.
const neighborEvery = 5 * time.Second

// arpReopenAfter is how long a watcher whose socket failed (its interface
// went down or away) waits before it opens a new one.
const arpReopenAfter = time.Second

// arpShares keeps one ARP watcher per interface, shared by the IPv4 routers
// on it: one socket, one reading goroutine and one probe and neighbour loop
// however many routers there are. A watcher per router would cost N
// sockets that each see every router's probes: N x N frames a second at
// 255 routers.
type arpShares struct {
	open  func(ifname string) (ARPWatch, error)
	clk   clock.WithTicker
	group func(func()) // runs a goroutine in the agent's group
	log   logr.Logger

	mu   sync.Mutex
	byIf map[string]*arpShare
}

// arpSub is one router's interest in its interface's ARP traffic.
type arpSub struct {
	// vips are the router's VIPs: ARP claims of them are reported.
	vips []netip.Addr
	// peers are the router's configured peers: their neighbour-table MACs
	// are reported every neighborEvery.
	peers []netip.Addr
	// active reports whether the router is master now: only a master
	// probes for other holders of its VIPs.
	active func() bool
	// claimed is told of another node claiming one of vips. It runs on the
	// reading goroutine and must not block.
	claimed func(arpwatch.Sighting)
	// neighbor is told of a peer's MAC in the neighbour table.
	neighbor func(netip.Addr, net.HardwareAddr)
}

// arpShare is the watcher of one interface.
type arpShare struct {
	ifname string
	cancel context.CancelFunc

	mu   sync.Mutex
	w    ARPWatch // nil while the interface's socket is being re-opened
	subs map[*arpSub]struct{}
	refs int // acquired and not released
}

// acquire returns the watcher of ifname, opening it (and starting its
// goroutines) when it is the first router there. Every acquire is paired
// with a release.
func (s *arpShares) acquire(ifname string) (*arpShare, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh := s.byIf[ifname]; sh != nil {
		sh.mu.Lock()
		sh.refs++
		sh.mu.Unlock()
		return sh, nil
	}
	w, err := s.open(ifname)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sh := &arpShare{ifname: ifname, cancel: cancel, w: w, subs: map[*arpSub]struct{}{}, refs: 1}
	s.byIf[ifname] = sh
	s.group(func() { s.read(ctx, sh) })
	s.group(func() { s.probe(ctx, sh) })
	return sh, nil
}

// add makes sub hear its VIPs' claims and its peers' MACs.
func (sh *arpShare) add(sub *arpSub) {
	sh.mu.Lock()
	sh.subs[sub] = struct{}{}
	sh.mu.Unlock()
}

// release undoes an acquire (and the add of sub, if any); the last release
// of a watcher closes it.
func (s *arpShares) release(sh *arpShare, sub *arpSub) {
	s.mu.Lock()
	sh.mu.Lock()
	if sub != nil {
		delete(sh.subs, sub)
	}
	sh.refs--
	last := sh.refs == 0
	w := sh.w
	if last {
		sh.w = nil
	}
	sh.mu.Unlock()
	if last && s.byIf[sh.ifname] == sh {
		delete(s.byIf, sh.ifname)
	}
	s.mu.Unlock()
	if !last {
		return
	}
	sh.cancel()
	if w != nil {
		if err := w.Close(); err != nil {
			s.log.Error(err, "closing the ARP watcher", "interface", sh.ifname)
		}
	}
}

// watcher returns the interface's current socket (nil while it is being
// re-opened).
func (sh *arpShare) watcher() ARPWatch {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.w
}

// subscribers returns the current subscribers.
func (sh *arpShare) subscribers() []*arpSub {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*arpSub, 0, len(sh.subs))
	for sub := range sh.subs {
		out = append(out, sub)
	}
	return out
}

// read reads the interface's ARP traffic and tells each router of the
// claims of its VIPs, until ctx is done. A socket that fails (the
// interface went down or was deleted) is re-opened after arpReopenAfter.
func (s *arpShares) read(ctx context.Context, sh *arpShare) {
	watched := func(a netip.Addr) bool {
		for _, sub := range sh.subscribers() {
			if slices.Contains(sub.vips, a) {
				return true
			}
		}
		return false
	}
	seen := func(sg arpwatch.Sighting) {
		for _, sub := range sh.subscribers() {
			if slices.Contains(sub.vips, sg.Addr) {
				sub.claimed(sg)
			}
		}
	}
	failed := false
	for ctx.Err() == nil {
		w := sh.watcher()
		if w != nil {
			err := w.Run(ctx, watched, seen)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !failed {
				s.log.Error(err, "ARP watching stopped; re-opening the socket", "interface", sh.ifname, "every", arpReopenAfter.String())
				failed = true
			}
			sh.mu.Lock()
			if sh.w == w {
				sh.w = nil
			}
			sh.mu.Unlock()
			_ = w.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(arpReopenAfter):
		}
		nw, err := s.open(sh.ifname)
		if err != nil {
			continue
		}
		sh.mu.Lock()
		if ctx.Err() != nil {
			sh.mu.Unlock()
			_ = nw.Close()
			return
		}
		sh.w = nw
		sh.mu.Unlock()
		if failed {
			s.log.Info("ARP watching resumed", "interface", sh.ifname)
			failed = false
		}
	}
}

// probe asks every arpProbeEvery who else holds the VIPs of the routers
// that are master (a crashed agent's node still answers), and pins the
// peers' MACs from the neighbour table every neighborEvery, until ctx is
// done.
func (s *arpShares) probe(ctx context.Context, sh *arpShare) {
	tick := s.clk.NewTicker(arpProbeEvery)
	defer tick.Stop()
	var lastNeigh time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
		subs := sh.subscribers()
		if w := sh.watcher(); w != nil {
			for _, sub := range subs {
				if !sub.active() {
					continue
				}
				for _, v := range sub.vips {
					if err := w.Probe(v); err != nil {
						s.log.V(1).Info("ARP probe failed", "interface", sh.ifname, "vip", v.String(), "error", err.Error())
					}
				}
			}
		}
		if s.clk.Since(lastNeigh) < neighborEvery {
			continue
		}
		lastNeigh = s.clk.Now()
		var peers []netip.Addr
		for _, sub := range subs {
			for _, p := range sub.peers {
				if !slices.Contains(peers, p) {
					peers = append(peers, p)
				}
			}
		}
		if len(peers) == 0 {
			continue
		}
		macs, err := arpwatch.Neighbors(sh.ifname, peers)
		if err != nil {
			s.log.V(1).Info("reading the neighbour table", "interface", sh.ifname, "error", err.Error())
		}
		for a, mac := range macs {
			for _, sub := range subs {
				if slices.Contains(sub.peers, a) {
					sub.neighbor(a, mac)
				}
			}
		}
	}
}

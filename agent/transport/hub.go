package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// Handler receives the packets of one virtual router. It runs on the
// socket's reading goroutine: it must not block, and p (its Payload and
// SrcMAC) is valid only until it returns.
type Handler func(p Packet)

// Hub shares one socket per (interface, address family) between the
// virtual routers on it: one receiving goroutine reads every VRRP packet
// once and hands it to the subscription of its VRID (the second byte of
// every VRRP message, v2 and v3 alike), after the own-address and peer
// filters of that subscription. The receive path allocates nothing per
// packet. A Hub is safe for concurrent use; Close closes every socket and
// waits for the receiving goroutines.
type Hub struct {
	log  logr.Logger
	open func(ifi *net.Interface, ipv6 bool) (rawConn, error)
	// lookup returns the interface by name and the addresses of a family
	// on it (for the source and the own-address filter).
	lookup func(name string, ipv6 bool) (*net.Interface, []ifAddr, error)

	mu     sync.Mutex
	socks  map[hubKey]*shared
	closed bool
	wg     sync.WaitGroup
}

type hubKey struct {
	ifname string
	ipv6   bool
}

// shared is one socket and its subscriptions.
type shared struct {
	hub     *Hub
	key     hubKey
	ifIndex int
	rc      rawConn
	subs    [256]atomic.Pointer[Sub]
	own     atomic.Pointer[map[netip.Addr]struct{}]
	refs    int  // guarded by hub.mu
	joined  bool // guarded by hub.mu
	stopped chan struct{}
}

// NewHub returns an empty Hub; sockets are opened by Subscribe. log
// receives read errors (once per socket and error).
func NewHub(log logr.Logger) *Hub {
	return &Hub{log: log, open: listenRaw, lookup: lookupInterface, socks: map[hubKey]*shared{}}
}

func lookupInterface(name string, ipv6 bool) (*net.Interface, []ifAddr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up interface: %w", err)
	}
	addrs, err := interfaceAddrs(ifi.Index, ipv6)
	if err != nil {
		return nil, nil, err
	}
	return ifi, addrs, nil
}

// Subscribe registers h for the packets of vrid on opts.Interface and
// family opts.IPv6, opening the socket of that pair unless another
// subscription holds it already. A socket bound to an interface that has
// since been re-created (same name, new index) is not reused: the new
// subscription gets a new socket on the new interface. opts.Peers filter
// this subscription's packets; opts.Multicast joins the group on the socket.
// Subscribe does not wait for a source address: if it is missing the error
// wraps ErrNoSource, and if it is an IPv6 address still in duplicate
// address detection the error wraps ErrTentative; the caller may retry
// after a short delay in both cases. It needs CAP_NET_RAW; the socket is
// created in the network namespace of the calling OS thread (lock the
// thread with runtime.LockOSThread when switching namespaces).
func (hb *Hub) Subscribe(opts Options, vrid uint8, h Handler) (*Sub, error) {
	sub, err := hb.subscribe(opts, vrid, h)
	if err != nil {
		return nil, fmt.Errorf("transport: subscribing VRID %d on %s (%s): %w", vrid, opts.Interface, familyName(opts.IPv6), err)
	}
	return sub, nil
}

func (hb *Hub) subscribe(opts Options, vrid uint8, h Handler) (*Sub, error) {
	if opts.Interface == "" {
		return nil, errors.New("no interface given")
	}
	if vrid == 0 {
		return nil, errors.New("VRID 0 is not valid")
	}
	peers, err := peerSet(opts.Peers, opts.IPv6)
	if err != nil {
		return nil, err
	}
	ifi, addrs, err := hb.lookup(opts.Interface, opts.IPv6)
	if err != nil {
		return nil, err
	}
	source, err := chooseSource(addrs, opts.Source, opts.IPv6)
	if err != nil {
		return nil, err
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if hb.closed {
		return nil, net.ErrClosed
	}
	key := hubKey{opts.Interface, opts.IPv6}
	s := hb.socks[key]
	if s != nil && s.ifIndex != ifi.Index {
		// The interface was re-created: the old socket is left to its
		// subscriptions, which are on their way out.
		delete(hb.socks, key)
		s = nil
	}
	if s == nil {
		rc, err := hb.open(ifi, opts.IPv6)
		if err != nil {
			return nil, err
		}
		s = &shared{hub: hb, key: key, ifIndex: ifi.Index, rc: rc, stopped: make(chan struct{})}
		own := map[netip.Addr]struct{}{}
		s.own.Store(&own)
		hb.socks[key] = s
		hb.wg.Add(1)
		go s.loop()
	}
	if s.subs[vrid].Load() != nil {
		if s.refs == 0 {
			hb.closeLocked(s)
		}
		return nil, fmt.Errorf("VRID %d is already in use on this interface", vrid)
	}
	if opts.Multicast && !s.joined {
		if err := s.rc.join(); err != nil {
			if s.refs == 0 {
				hb.closeLocked(s)
			}
			return nil, err
		}
		s.joined = true
	}
	// The own addresses: every address of the interface, and the sources.
	old := *s.own.Load()
	own := make(map[netip.Addr]struct{}, len(old)+len(addrs)+1)
	for a := range old {
		own[a] = struct{}{}
	}
	for _, a := range addrs {
		own[a.addr] = struct{}{}
	}
	own[source] = struct{}{}
	s.own.Store(&own)

	sub := &Sub{shared: s, vrid: vrid, source: source, h: h}
	sub.peers.Store(&peers)
	s.subs[vrid].Store(sub)
	s.refs++
	return sub, nil
}

// closeLocked closes s and removes it from the map. hb.mu is held.
func (hb *Hub) closeLocked(s *shared) {
	if hb.socks[s.key] == s {
		delete(hb.socks, s.key)
	}
	_ = s.rc.Close()
}

// Close closes every socket and waits for the receiving goroutines.
// Subscriptions still open become inert.
func (hb *Hub) Close() error {
	hb.mu.Lock()
	hb.closed = true
	var errs []error
	for _, s := range hb.socks {
		if err := s.rc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	hb.socks = map[hubKey]*shared{}
	hb.mu.Unlock()
	hb.wg.Wait()
	return errors.Join(errs...)
}

// loop reads the socket until it is closed and dispatches by VRID.
func (s *shared) loop() {
	defer s.hub.wg.Done()
	defer close(s.stopped)
	var lastErr string
	for {
		f, err := s.rc.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, errInterfaceDown) {
				continue
			}
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				s.hub.log.Error(err, "reading VRRP packets", "interface", s.key.ifname, "family", familyName(s.key.ipv6))
			}
			// A broken socket is closed by its subscriptions (the link
			// watcher restarts the routers); do not spin meanwhile.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.dispatch(f)
	}
}

// dispatch hands one packet to the subscription of its VRID.
func (s *shared) dispatch(f frame) {
	if len(f.payload) < 2 {
		return // too short to carry a VRID: nobody's to count
	}
	sub := s.subs[f.payload[1]].Load()
	if sub == nil {
		return // another virtual router's: not ours to count
	}
	if _, ok := (*s.own.Load())[f.src]; ok {
		sub.drops[DropSelf].Add(1)
		return
	}
	if peers := *sub.peers.Load(); len(peers) > 0 {
		if _, ok := peers[f.src]; !ok {
			sub.drops[DropNotPeer].Add(1)
			return
		}
	}
	if f.ifIndex == 0 {
		f.ifIndex = s.ifIndex
	}
	sub.h(Packet{Payload: f.payload, Src: f.src, Dst: f.dst, TTL: f.ttl, IfIndex: f.ifIndex, SrcMAC: f.srcMAC})
}

// Sub is one virtual router's share of a Hub socket: it receives the
// packets of its VRID and sends from its source address.
type Sub struct {
	shared *shared
	vrid   uint8
	source netip.Addr
	h      Handler
	peers  atomic.Pointer[map[netip.Addr]struct{}]
	drops  [numDropReasons]atomic.Uint64
	once   sync.Once
}

// Source returns the address the subscription sends from.
func (s *Sub) Source() netip.Addr { return s.source }

// IfIndex returns the index of the interface the socket is bound to.
func (s *Sub) IfIndex() int { return s.shared.ifIndex }

// Write sends payload, a complete VRRP message, to dst: the VRRP multicast
// group or a unicast peer of the subscription's family. The packet leaves
// the bound interface from Source with TTL / hop limit 255. The kernel
// computes no VRRP checksum: payload must carry it.
func (s *Sub) Write(payload []byte, dst netip.Addr) error {
	dst = dst.WithZone("").Unmap()
	ipv6 := s.shared.key.ipv6
	if !dst.IsValid() || dst.Is6() != ipv6 {
		return fmt.Errorf("transport: sending on %s: destination %s is not an %s address", s.shared.key.ifname, dst, familyName(ipv6))
	}
	if err := s.shared.rc.write(payload, s.source, s.shared.ifIndex, dst); err != nil {
		return fmt.Errorf("transport: sending to %s on %s: %w", dst, s.shared.key.ifname, err)
	}
	return nil
}

// SetPeers replaces the subscription's peer filter (see Options.Peers).
func (s *Sub) SetPeers(list []netip.Addr) error {
	peers, err := peerSet(list, s.shared.key.ipv6)
	if err != nil {
		return fmt.Errorf("transport: setting peers on %s: %w", s.shared.key.ifname, err)
	}
	s.peers.Store(&peers)
	return nil
}

// Dropped returns how many of this VRID's packets were skipped, for every
// DropReason (zero counts included).
func (s *Sub) Dropped() map[DropReason]uint64 {
	m := make(map[DropReason]uint64, numDropReasons)
	for r := range numDropReasons {
		m[r] = s.drops[r].Load()
	}
	return m
}

// Close ends the subscription; the last one closes the socket and waits
// for its receiving goroutine.
func (s *Sub) Close() error {
	var err error
	s.once.Do(func() {
		sh := s.shared
		hb := sh.hub
		hb.mu.Lock()
		sh.subs[s.vrid].CompareAndSwap(s, nil)
		sh.refs--
		last := sh.refs == 0
		if last {
			if hb.socks[sh.key] == sh {
				delete(hb.socks, sh.key)
			}
			err = sh.rc.Close()
		}
		hb.mu.Unlock()
		if last {
			<-sh.stopped
		}
	})
	return err
}

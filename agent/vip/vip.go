package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"
)

// defaultResyncInterval is how often Run re-checks every held VIP even
// without a netlink notification. Notifications are multicast and are lost
// when the socket buffer overflows, so they cannot be the only trigger.
const defaultResyncInterval = 5 * time.Second

// subscriptionBufferBytes is the receive buffer asked for the address
// subscription, to make overflow (ENOBUFS) unlikely during address storms.
const subscriptionBufferBytes = 1 << 20

// options are what New leaves at their defaults and the tests set: the
// agent needs none of them.
type options struct {
	// ns is the network namespace to work in (when nsSet). Entering it
	// with setns(2) needs CAP_SYS_ADMIN, which the agent does not have.
	// The Manager duplicates the handle; the caller keeps ownership.
	ns    netns.NsHandle
	nsSet bool
	// resync is how often Run re-checks every held VIP
	// (defaultResyncInterval if not positive).
	resync time.Duration
	// clock drives the periodic re-check (the real clock if nil).
	clock clock.WithTicker
	// onRestore, if set, is called by Run after it has put back a held VIP
	// that something else deleted. It must not block; it may call the
	// Manager's methods.
	onRestore func(ifname string, vip netip.Prefix)
}

// key identifies one held VIP.
type key struct {
	ifname string
	vip    netip.Prefix
}

// Manager adds and removes VIPs on interfaces of one network namespace and,
// while Run runs, puts back held VIPs that something else deleted. It is
// safe for concurrent use.
type Manager struct {
	log       logr.Logger
	ns        netns.NsHandle // owned (closed by Close), or netns.None()
	resync    time.Duration
	clock     clock.WithTicker
	onRestore func(ifname string, vip netip.Prefix)

	// mu serialises every netlink operation and guards held, so that the
	// watcher never restores a VIP between Remove's unmarking and deleting it.
	mu      sync.Mutex
	h       *netlink.Handle
	held    map[key]struct{}
	lastErr map[key]string // last restore error logged per VIP (log on change)
}

// New returns a Manager for the process's own network namespace: its
// netlink handle is opened in the namespace of the calling thread, and Run
// subscribes in the namespace of the thread it runs on, without any
// namespace switch (so the agent needs only CAP_NET_ADMIN). Close releases
// it.
func New(log logr.Logger) (*Manager, error) {
	return newWithOptions(log, options{})
}

// newWithOptions is New with the options the tests set.
func newWithOptions(log logr.Logger, o options) (*Manager, error) {
	if o.resync <= 0 {
		o.resync = defaultResyncInterval
	}
	if o.clock == nil {
		o.clock = clock.RealClock{}
	}

	// Without options.ns, no namespace switch at all: setns(2) needs
	// CAP_SYS_ADMIN, which the agent does not have.
	ns := netns.None()
	if o.nsSet {
		fd, err := unix.FcntlInt(uintptr(o.ns), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicating network namespace handle: %w", err)
		}
		ns = netns.NsHandle(fd)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		if ns.IsOpen() {
			_ = ns.Close()
		}
		return nil, fmt.Errorf("opening netlink handle: %w", err)
	}
	return &Manager{
		log:       log,
		ns:        ns,
		resync:    o.resync,
		clock:     o.clock,
		onRestore: o.onRestore,
		h:         h,
		held:      map[key]struct{}{},
		lastErr:   map[key]string{},
	}, nil
}

// Close releases the netlink handle. It does not remove held VIPs: call
// Remove first for those the agent gives up.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		m.h.Close()
		m.h = nil
	}
	if m.ns.IsOpen() {
		err := m.ns.Close()
		m.ns = netns.None()
		return err
	}
	return nil
}

// Add puts vip on the interface ifname and marks it held, so that Run puts
// it back if something else deletes it. An IPv6 VIP is added with
// IFA_F_NODAD. Adding a VIP that is already there is not an error. If Add
// fails the VIP is not marked held.
func (m *Manager) Add(ifname string, vip netip.Prefix) error {
	if err := checkPrefix(vip); err != nil {
		return fmt.Errorf("adding VIP %s on %s: %w", vip, ifname, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.addLocked(ifname, vip); err != nil {
		return fmt.Errorf("adding VIP %s on %s: %w", vip, ifname, err)
	}
	k := key{ifname, vip}
	if _, ok := m.held[k]; !ok {
		m.held[k] = struct{}{}
		m.log.Info("VIP added", "interface", ifname, "vip", vip)
	}
	return nil
}

// Remove takes vip off the interface ifname and stops holding it. Removing
// a VIP that is not there (or from an interface that no longer exists) is
// not an error.
func (m *Manager) Remove(ifname string, vip netip.Prefix) error {
	if err := checkPrefix(vip); err != nil {
		return fmt.Errorf("removing VIP %s from %s: %w", vip, ifname, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{ifname, vip}
	_, wasHeld := m.held[k]
	delete(m.held, k)
	delete(m.lastErr, k)
	if err := m.delLocked(ifname, vip); err != nil {
		return fmt.Errorf("removing VIP %s from %s: %w", vip, ifname, err)
	}
	if wasHeld {
		m.log.Info("VIP removed", "interface", ifname, "vip", vip)
	}
	return nil
}

// RemoveStale removes from the interface ifname every address equal to one
// of the addresses of vips, whatever its prefix length: the leftover of an
// agent that crashed while it held them. A VIP this Manager holds is left
// alone. It returns the addresses it removed (with the prefix length they
// had on the interface), also when it fails part way.
func (m *Manager) RemoveStale(ifname string, vips []netip.Prefix) ([]netip.Prefix, error) {
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		if err := checkPrefix(v); err != nil {
			return nil, fmt.Errorf("removing stale VIPs from %s: VIP %s: %w", ifname, v, err)
		}
		want[v.Addr()] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.held {
		if k.ifname == ifname {
			delete(want, k.vip.Addr())
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	link, err := m.h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("removing stale VIPs from %s: %w", ifname, err)
	}
	addrs, err := m.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("removing stale VIPs from %s: listing addresses: %w", ifname, err)
	}
	var removed []netip.Prefix
	var errs []error
	for _, a := range addrs {
		p, ok := toPrefix(a.IPNet)
		if !ok || !want[p.Addr()] {
			continue
		}
		if err := m.h.AddrDel(link, &netlink.Addr{IPNet: a.IPNet}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("removing stale VIP %s from %s: %w", p, ifname, err))
			continue
		}
		m.log.Info("stale VIP removed", "interface", ifname, "vip", p)
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// Run puts back held VIPs that something else deletes until ctx is done.
// It reacts to RTM_DELADDR notifications and re-checks every held VIP
// periodically (every 5 s, defaultResyncInterval), also when the subscription was lost and
// could not be renewed yet. It returns nil when ctx is done, or an error if
// the first subscription fails. Run at most once at a time per Manager.
func (m *Manager) Run(ctx context.Context) error {
	sub, err := m.subscribe()
	if err != nil {
		return fmt.Errorf("subscribing to address updates: %w", err)
	}
	defer func() {
		if sub != nil {
			sub.stop()
		}
	}()
	ticker := m.clock.NewTicker(m.resync)
	defer ticker.Stop()

	m.resyncAll()
	for {
		var updates <-chan netlink.AddrUpdate
		if sub != nil {
			updates = sub.ch
		}
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				// The subscription goroutine exits on any receive error,
				// typically ENOBUFS after an overflow: updates were lost.
				m.log.Info("address subscription lost, resubscribing", "reason", sub.err())
				sub.stop()
				sub = nil
				if s, err := m.subscribe(); err != nil {
					m.log.Error(err, "resubscribing to address updates failed, relying on periodic re-check")
				} else {
					sub = s
				}
				m.resyncAll()
				continue
			}
			if u.NewAddr {
				continue
			}
			if p, ok := toPrefix(&u.LinkAddress); ok {
				m.restoreAddr(p)
			}
		case <-ticker.C():
			if sub == nil {
				if s, err := m.subscribe(); err == nil {
					sub = s
				}
			}
			m.resyncAll()
		}
	}
}

// subscription is one netlink address subscription.
type subscription struct {
	ch   chan netlink.AddrUpdate
	done chan struct{}

	mu      sync.Mutex
	lastErr error
}

func (s *subscription) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// stop ends the subscription and waits for its goroutine: the goroutine
// may be blocked sending on ch, so ch is drained until it is closed.
func (s *subscription) stop() {
	close(s.done)
	for range s.ch {
	}
}

func (m *Manager) subscribe() (*subscription, error) {
	s := &subscription{ch: make(chan netlink.AddrUpdate, 64), done: make(chan struct{})}
	ns := m.ns
	err := netlink.AddrSubscribeWithOptions(s.ch, s.done, netlink.AddrSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: subscriptionBufferBytes,
		ErrorCallback: func(err error) {
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
		},
	})
	if err != nil {
		close(s.done)
		return nil, err
	}
	return s, nil
}

// restoreAddr re-checks the held VIPs whose address is addr's (a deleted
// address reported by the kernel, on any interface).
func (m *Manager) restoreAddr(deleted netip.Prefix) {
	for _, k := range m.heldKeys() {
		if k.vip.Addr() == deleted.Addr() {
			m.ensure(k)
		}
	}
}

// resyncAll re-checks every held VIP. The addresses of each interface and
// family are listed once per resync, not once per VIP: a netlink address
// dump returns every address of the namespace, so listing it per VIP costs
// N dumps of N addresses with N VIPs (with 255 VIPs, most of the agent's
// idle CPU).
func (m *Manager) resyncAll() {
	snap := addrSnapshot{}
	for _, k := range m.heldKeys() {
		m.ensureWith(k, snap)
	}
}

// addrSnapshot caches the addresses of (interface, family) pairs over one
// resync.
type addrSnapshot map[snapKey]map[netip.Prefix]bool

type snapKey struct {
	ifname string
	ipv6   bool
}

func (m *Manager) heldKeys() []key {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]key, 0, len(m.held))
	for k := range m.held {
		keys = append(keys, k)
	}
	return keys
}

// ensure puts k back if it is still held and missing from its interface.
func (m *Manager) ensure(k key) { m.ensureWith(k, nil) }

// ensureWith is ensure reading the interface's addresses from snap (nil:
// list them now).
func (m *Manager) ensureWith(k key, snap addrSnapshot) {
	restored := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.held[k]; !ok || m.h == nil {
			return false // removed (or closed) meanwhile: nothing to keep
		}
		present, err := m.hasCachedLocked(k.ifname, k.vip, snap)
		if err == nil && present {
			m.noteErrLocked(k, nil)
			return false
		}
		if err == nil {
			err = m.addLocked(k.ifname, k.vip)
		}
		m.noteErrLocked(k, err)
		if err != nil {
			return false
		}
		m.log.Info("VIP restored", "interface", k.ifname, "vip", k.vip)
		return true
	}()
	if restored && m.onRestore != nil {
		m.onRestore(k.ifname, k.vip)
	}
}

// noteErrLocked logs a failure to keep k only when it differs from the
// previous one, so that a missing interface does not log every resync.
func (m *Manager) noteErrLocked(k key, err error) {
	if err == nil {
		delete(m.lastErr, k)
		return
	}
	if m.lastErr[k] == err.Error() {
		return
	}
	m.lastErr[k] = err.Error()
	m.log.Error(err, "restoring VIP failed", "interface", k.ifname, "vip", k.vip)
}

func (m *Manager) addLocked(ifname string, vip netip.Prefix) error {
	if m.h == nil {
		return errClosed
	}
	link, err := m.h.LinkByName(ifname)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: toIPNet(vip)}
	if vip.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := m.h.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func (m *Manager) delLocked(ifname string, vip netip.Prefix) error {
	if m.h == nil {
		return errClosed
	}
	link, err := m.h.LinkByName(ifname)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return nil // no interface, no VIP
		}
		return err
	}
	err = m.h.AddrDel(link, &netlink.Addr{IPNet: toIPNet(vip)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// hasCachedLocked is hasLocked with the addresses read from snap, listed
// into it on first use (snap nil: hasLocked).
func (m *Manager) hasCachedLocked(ifname string, vip netip.Prefix, snap addrSnapshot) (bool, error) {
	if snap == nil {
		return m.hasLocked(ifname, vip)
	}
	sk := snapKey{ifname, vip.Addr().Is6()}
	set, ok := snap[sk]
	if !ok {
		list, err := m.listLocked(ifname, sk.ipv6)
		if err != nil {
			return false, err // not cached: the next VIP tries again
		}
		set = make(map[netip.Prefix]bool, len(list))
		for _, p := range list {
			set[p] = true
		}
		snap[sk] = set
	}
	return set[vip], nil
}

func (m *Manager) hasLocked(ifname string, vip netip.Prefix) (bool, error) {
	list, err := m.listLocked(ifname, vip.Addr().Is6())
	if err != nil {
		return false, err
	}
	return slices.Contains(list, vip), nil
}

// listLocked returns the addresses of one family on the interface.
func (m *Manager) listLocked(ifname string, ipv6 bool) ([]netip.Prefix, error) {
	if m.h == nil {
		return nil, errClosed
	}
	link, err := m.h.LinkByName(ifname)
	if err != nil {
		return nil, err
	}
	fam := netlink.FAMILY_V4
	if ipv6 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := m.h.AddrList(link, fam)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	list := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if p, ok := toPrefix(a.IPNet); ok {
			list = append(list, p)
		}
	}
	return list, nil
}

var errClosed = errors.New("manager closed")

// checkPrefix rejects what cannot be a VIP: an invalid prefix or an
// IPv4-mapped IPv6 address (netip.Prefix never carries a zone).
func checkPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case a.Is4In6():
		return errors.New("IPv4-mapped IPv6 address")
	}
	return nil
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 || bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

package routetable

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	statusv1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

// Defaults applied to the fields of [Config] left zero.
const (
	// DefaultProtocol is the route protocol number of the routes: one that
	// /etc/iproute2/rt_protos leaves unassigned (agent config
	// bgp.externalSpeaker.protocol defaults to the same).
	DefaultProtocol = 250
	// DefaultDevice is the interface the routes point at: the VIPs are
	// local to the node.
	DefaultDevice = "lo"
	// DefaultResync is how often Run re-reads the table even without a
	// route notification (a lost notification, a full socket buffer).
	DefaultResync = 10 * time.Second
)

// Config is what a [Writer] needs.
type Config struct {
	// Table is the kernel routing table the routes are written to: not 0,
	// 253 (default), 254 (main) or 255 (local). Required.
	Table uint32
	// Protocol is the route protocol number (rtm_protocol) of the routes;
	// the Writer owns every route of this protocol in Table. 0 means
	// DefaultProtocol; 1 to 4 (the kernel's own) are refused.
	Protocol uint8
	// Device is the interface the routes point at; "" means DefaultDevice.
	Device string
	// GracefulWait is how long GracefulShutdown waits after removing the
	// routes, for the daemon to withdraw them and the routers to converge;
	// 0 does not wait (the agent passes bgp.gracefulShutdownWait, 2s unless
	// configured).
	GracefulWait time.Duration
	// Resync is the period of the full reconcile behind the route
	// notifications; 0 means DefaultResync.
	Resync time.Duration
	// Namespace is the network namespace whose tables are written; nil
	// means the namespace of the thread that calls Run.
	Namespace *netns.NsHandle
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	switch c.Table {
	case unix.RT_TABLE_UNSPEC:
		errs = append(errs, errors.New("table: required"))
	case unix.RT_TABLE_DEFAULT, unix.RT_TABLE_MAIN, unix.RT_TABLE_LOCAL:
		errs = append(errs, fmt.Errorf("table %d: one of the kernel's own tables (253 default, 254 main, 255 local): use a table of its own", c.Table))
	}
	if c.Protocol != 0 && c.Protocol <= unix.RTPROT_STATIC {
		errs = append(errs, fmt.Errorf("protocol %d: one of the kernel's own (0 to 4): use 5 to 255", c.Protocol))
	}
	if c.GracefulWait < 0 {
		errs = append(errs, fmt.Errorf("graceful wait %v: negative", c.GracefulWait))
	}
	if c.Resync < 0 {
		errs = append(errs, fmt.Errorf("resync %v: negative", c.Resync))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields defaulted.
func (c Config) withDefaults() Config {
	if c.Protocol == 0 {
		c.Protocol = DefaultProtocol
	}
	if c.Device == "" {
		c.Device = DefaultDevice
	}
	if c.Resync == 0 {
		c.Resync = DefaultResync
	}
	return c
}

// Writer keeps a changing set of host routes in a kernel routing table.
// Create it with [New], start it with [Writer.Run]; [Writer.Advertise],
// [Writer.Withdraw], [Writer.Status] and [Writer.GracefulShutdown] are safe
// for concurrent use, before, during and after Run.
type Writer struct {
	cfg Config
	log logr.Logger

	mu sync.Mutex
	// local: the routes are of type local in the local table, each
	// through the device it was added on (LocalVIPs), not unicast routes
	// through Config.Device.
	local bool
	// want is the set of routes the caller wants in the table, with the
	// device of each ("" is Config.Device).
	want map[netip.Prefix]string
	// nl is the netlink handle of the namespace, nil outside Run.
	nl *netlink.Handle
	// drained keeps the table empty whatever want holds (GracefulShutdown).
	drained bool
	// running is true from Run's start to its end (one Run at a time).
	running bool
	// lastErr is the last reconcile's failure ("" when it succeeded).
	lastErr string
}

// New checks cfg and returns a Writer that is not yet running.
func New(cfg Config, log logr.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("route table config: %w", err)
	}
	return &Writer{cfg: cfg.withDefaults(), log: log, want: make(map[netip.Prefix]string)}, nil
}

// Run writes the wanted routes into the table, removes the routes of its
// protocol there that are not wanted, and keeps the table so until ctx is
// done: on every route notification of the table and every Config.Resync.
// Then it removes its routes (call [Writer.GracefulShutdown] first to
// drain) and returns once every goroutine it started has ended. It returns
// an error only when it cannot start (the namespace, the notification
// socket); a failing route write is logged, reported by Status and retried.
func (w *Writer) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("route table: writer already running")
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	ns := netns.None()
	if w.cfg.Namespace != nil {
		ns = *w.cfg.Namespace
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("route table: netlink: %w", err)
	}
	defer h.Close()

	// Subscribe before the first reconcile so that no change in between
	// is missed.
	updates, stop, err := w.subscribe(ns)
	if err != nil {
		return err
	}
	defer func() { stop() }()

	w.mu.Lock()
	w.nl = h
	w.reconcile()
	w.mu.Unlock()
	w.log.Info("route table: running", "table", w.cfg.Table, "protocol", w.cfg.Protocol, "device", w.cfg.Device)

	tick := time.NewTicker(w.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.nl = nil
			n, err := w.removeAll(h)
			w.mu.Unlock()
			if err != nil {
				w.log.Error(err, "route table: removing the routes at the end")
			}
			w.log.Info("route table: stopped", "removed", n)
			return nil
		case u, ok := <-updates:
			if !ok {
				// The socket failed (ErrorCallback logged why): resync
				// on the ticker and subscribe again there.
				updates = nil
				continue
			}
			if !w.concerns(u) {
				continue
			}
			// Coalesce a burst of notifications into one reconcile.
			updates = drain(updates)
			w.mu.Lock()
			w.reconcile()
			w.mu.Unlock()
		case <-tick.C:
			if updates == nil {
				stop()
				if updates, stop, err = w.subscribe(ns); err != nil {
					w.log.Error(err, "route table: subscribing again to route notifications")
					updates, stop = nil, func() {}
				}
			}
			w.mu.Lock()
			w.reconcile()
			w.mu.Unlock()
		}
	}
}

// subscribe opens the route notifications of ns. stop closes them and
// returns once the receiving goroutine has ended.
func (w *Writer) subscribe(ns netns.NsHandle) (<-chan netlink.RouteUpdate, func(), error) {
	ch := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	var stopping atomic.Bool
	opts := netlink.RouteSubscribeOptions{
		ErrorCallback: func(err error) {
			if !stopping.Load() { // not the closed socket of stop
				w.log.Error(err, "route table: route notifications")
			}
		},
	}
	if ns.IsOpen() {
		opts.Namespace = &ns
	}
	if err := netlink.RouteSubscribeWithOptions(ch, done, opts); err != nil {
		close(done)
		return nil, nil, fmt.Errorf("route table: subscribe to route notifications: %w", err)
	}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			stopping.Store(true)
			close(done)
			// The library closes ch when its goroutine ends.
			for range ch {
			}
		})
	}, nil
}

// drain takes what is queued on ch without blocking; it returns nil when ch
// was closed.
func drain(ch <-chan netlink.RouteUpdate) <-chan netlink.RouteUpdate {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return nil
			}
		default:
			return ch
		}
	}
}

// concerns reports whether u may change what the Writer owns: a route
// added, changed or deleted in its table.
func (w *Writer) concerns(u netlink.RouteUpdate) bool {
	return uint32(u.Table) == w.cfg.Table
}

// Advertise adds the host route of addr (/32 or /128) to the table.
// Advertising a route already wanted does nothing. While Run runs the route
// is written at once; an error is returned and the write retried on the
// next resync.
func (w *Writer) Advertise(addr netip.Addr) error {
	p, err := hostPrefix(addr)
	if err != nil {
		return fmt.Errorf("route table: advertise: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.want[p]; ok {
		return nil
	}
	w.want[p] = ""
	w.log.Info("route table: advertise", "prefix", p, "table", w.cfg.Table)
	if err := w.reconcile(); err != nil {
		return fmt.Errorf("route table: advertise %s: %w", p, err)
	}
	return nil
}

// Withdraw removes the host route of addr from the table. Withdrawing a
// route not wanted does nothing.
func (w *Writer) Withdraw(addr netip.Addr) error {
	p, err := hostPrefix(addr)
	if err != nil {
		return fmt.Errorf("route table: withdraw: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.want[p]; !ok {
		return nil
	}
	delete(w.want, p)
	w.log.Info("route table: withdraw", "prefix", p, "table", w.cfg.Table)
	if err := w.reconcile(); err != nil {
		return fmt.Errorf("route table: withdraw %s: %w", p, err)
	}
	return nil
}

// GracefulShutdown drains the node: it removes every route from the table,
// so that the daemon withdraws them from its peers, and waits
// Config.GracefulWait for the routers to move the traffic. The Writer then
// keeps the table empty; cancel Run's context afterwards. Routes advertised
// afterwards are recorded but not written. It returns early with ctx's
// error when ctx ends first.
func (w *Writer) GracefulShutdown(ctx context.Context) error {
	w.mu.Lock()
	w.drained = true
	running := w.nl != nil
	var err error
	if running {
		err = w.reconcile()
	}
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("route table: graceful shutdown: %w", err)
	}
	w.log.Info("route table: graceful shutdown: routes removed", "wait", w.cfg.GracefulWait)
	if !running || w.cfg.GracefulWait == 0 {
		return nil
	}
	t := time.NewTimer(w.cfg.GracefulWait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status reports the routes of the Writer's protocol in its table (those
// the node advertises through the daemon), in address order, and the last
// failure to write them. The error is that of reading the table.
func (w *Writer) Status(_ context.Context) (*statusv1alpha1.BGP, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := &statusv1alpha1.BGP{
		Speaker:          statusv1alpha1.SpeakerExternal,
		RouteTable:       int64(w.cfg.Table),
		GracefulShutdown: w.drained,
		LastError:        w.lastErr,
	}
	if w.nl == nil {
		return st, nil
	}
	ours, _, err := w.list(w.nl)
	if err != nil {
		return st, err
	}
	ps := make([]netip.Prefix, 0, len(ours))
	for p := range ours {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	for _, p := range ps {
		st.Advertised = append(st.Advertised, p.String())
	}
	return st, nil
}

// reconcile makes the table hold exactly the wanted routes of the Writer's
// protocol (none once drained); w.mu is held. Outside Run it does nothing.
// It records its failure for Status and returns it.
func (w *Writer) reconcile() error {
	if w.nl == nil {
		return nil
	}
	err := w.sync(w.nl)
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.log.Error(err, "route table: reconcile", "table", w.cfg.Table)
		}
		w.lastErr = err.Error()
	} else {
		w.lastErr = ""
	}
	return err
}

// sync is one pass of reconcile.
func (w *Writer) sync(h *netlink.Handle) error {
	ours, foreign, err := w.list(h)
	if err != nil {
		return err
	}
	var errs []error
	for p, r := range ours {
		if _, ok := w.want[p]; ok && !w.drained {
			continue
		}
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing %s from table %d: %w", p, w.cfg.Table, err))
			continue
		}
		w.log.Info("route table: removed", "prefix", p, "table", w.cfg.Table)
	}
	if w.drained {
		return errors.Join(errs...)
	}
	links := map[string]int{}
	for p, dev := range w.want {
		if dev == "" {
			dev = w.cfg.Device
		}
		idx, ok := links[dev]
		if !ok {
			link, err := h.LinkByName(dev)
			if err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", dev, err))
				continue
			}
			idx = link.Attrs().Index
			links[dev] = idx
		}
		want := w.route(p, idx)
		if r, ok := ours[p]; ok {
			if sameShape(r, want) {
				continue
			}
			// Ours, changed by someone: put it back as it should be.
			if err := h.RouteReplace(want); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s in table %d: %w", p, w.cfg.Table, err))
			}
			continue
		}
		if proto, ok := foreign[p]; ok && w.local {
			errs = append(errs, fmt.Errorf("%s is already local to the node (a route of protocol %d in the local table: an address of an interface?): remove that address; in external-speaker mode the agent holds the VIP as a local route", p.Addr(), proto))
			continue
		} else if ok {
			errs = append(errs, fmt.Errorf("table %d already routes %s with protocol %d: not overwriting another program's route (give the agent a table of its own)", w.cfg.Table, p, proto))
			continue
		}
		if err := h.RouteAdd(want); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("adding %s to table %d: %w", p, w.cfg.Table, err))
			continue
		}
		w.log.Info("route table: added", "prefix", p, "table", w.cfg.Table)
	}
	return errors.Join(errs...)
}

// list returns the host routes of the table: the Writer's own by prefix,
// and the protocol of the others' by prefix. Routes of the Writer's
// protocol that are not host routes are among its own under their prefix
// too (they are removed: nothing else should use the protocol there).
func (w *Writer) list(h *netlink.Handle) (ours map[netip.Prefix]*netlink.Route, foreign map[netip.Prefix]netlink.RouteProtocol, err error) {
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: int(w.cfg.Table)}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, nil, fmt.Errorf("listing table %d: %w", w.cfg.Table, err)
	}
	ours = make(map[netip.Prefix]*netlink.Route)
	foreign = make(map[netip.Prefix]netlink.RouteProtocol)
	for i := range rs {
		r := &rs[i]
		p, ok := prefixOf(r)
		if !ok {
			continue
		}
		if r.Protocol == netlink.RouteProtocol(w.cfg.Protocol) {
			ours[p] = r
		} else {
			foreign[p] = r.Protocol
		}
	}
	return ours, foreign, nil
}

// route is the wanted route of p.
func (w *Writer) route(p netip.Prefix, linkIndex int) *netlink.Route {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	r := &netlink.Route{
		Family:    family,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		LinkIndex: linkIndex,
		Table:     int(w.cfg.Table),
		Protocol:  netlink.RouteProtocol(w.cfg.Protocol),
		Type:      unix.RTN_UNICAST,
	}
	if w.local {
		// As "ip route add local <vip> dev lo table local" makes it.
		r.Type = unix.RTN_LOCAL
		if family == netlink.FAMILY_V4 {
			r.Scope = netlink.SCOPE_HOST
		}
		return r
	}
	if family == netlink.FAMILY_V4 {
		// As "ip route add" makes a route without gateway. IPv6 routes
		// have no scope (the kernel reports them as universe).
		r.Scope = netlink.SCOPE_LINK
	}
	return r
}

// removeAll removes every route of the Writer's protocol from the table and
// returns how many it removed.
func (w *Writer) removeAll(h *netlink.Handle) (int, error) {
	ours, _, err := w.list(h)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for p, r := range ours {
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("removing %s from table %d: %w", p, w.cfg.Table, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// sameShape reports whether the route in the kernel, r, is the wanted one:
// a unicast route through the device, without gateway. (A route that is
// not, rewritten, must then compare equal, or every reconcile would
// rewrite it and notify the next one.)
func sameShape(r, want *netlink.Route) bool {
	return r.LinkIndex == want.LinkIndex && len(r.Gw) == 0 && len(r.MultiPath) == 0 && r.Via == nil &&
		r.Type == want.Type && (want.Family != netlink.FAMILY_V4 || r.Scope == want.Scope)
}

// prefixOf is the destination of r; false for a default route read
// without Dst that is not a host route of ours anyway.
func prefixOf(r *netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// hostPrefix is the host route of a: /32 or /128.
func hostPrefix(a netip.Addr) (netip.Prefix, error) {
	if !a.IsValid() {
		return netip.Prefix{}, errors.New("invalid address")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %s has a zone", a)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() {
		return netip.Prefix{}, fmt.Errorf("address %s cannot be a VIP", a)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

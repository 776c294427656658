package routetable

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LocalConfig is what [LocalVIPs] needs.
type LocalConfig struct {
	// Protocol is the route protocol number of the local routes; LocalVIPs
	// owns every route of this protocol in the local table. 0 means
	// DefaultProtocol; 1 to 4 (the kernel's own) are refused. The agent
	// passes bgp.externalSpeaker.protocol, the Writer's.
	Protocol uint8
	// Resync is the period of the full reconcile behind the route
	// notifications; 0 means DefaultResync.
	Resync time.Duration
	// Namespace is the network namespace whose local table is written; nil
	// means the namespace of the thread that calls Run.
	Namespace *netns.NsHandle
}

// LocalVIPs holds VIPs on the node as local routes rather than interface
// addresses, for external-speaker mode: a route
// "local <vip>/32 dev <ifname> table local proto <protocol> scope host"
// (/128 for IPv6) makes the node accept the VIP's packets (IPVS sees them
// as it sees those of a local address) while FRR's zebra sees no connected
// route, which would shadow the route the Writer exports to it (see
// docs/external-speaker.md). It has the methods of the agent's VIP manager
// (agent.VIPs) and the Writer's reconcile: at start it removes the local
// routes of its protocol that it does not hold (a crashed agent's), it puts
// back a held route that something deleted or changed, and when Run ends it
// removes its routes. Routes of other protocols are never touched: a VIP
// that is already local (an interface address) is reported, not
// overwritten. Safe for concurrent use, before, during and after Run.
type LocalVIPs struct {
	w *Writer
}

// NewLocalVIPs checks cfg and returns a LocalVIPs that is not yet running.
func NewLocalVIPs(cfg LocalConfig, log logr.Logger) (*LocalVIPs, error) {
	if cfg.Protocol != 0 && cfg.Protocol <= unix.RTPROT_STATIC {
		return nil, fmt.Errorf("local VIPs: protocol %d: one of the kernel's own (0 to 4): use 5 to 255", cfg.Protocol)
	}
	if cfg.Resync < 0 {
		return nil, fmt.Errorf("local VIPs: resync %v: negative", cfg.Resync)
	}
	w := &Writer{
		cfg: Config{
			Table: unix.RT_TABLE_LOCAL, Protocol: cfg.Protocol, Resync: cfg.Resync, Namespace: cfg.Namespace,
		}.withDefaults(),
		log:   log,
		local: true,
		want:  make(map[netip.Prefix]string),
	}
	return &LocalVIPs{w: w}, nil
}

// Run holds the added VIPs as local routes until ctx is done, then removes
// them (see Writer.Run).
func (l *LocalVIPs) Run(ctx context.Context) error { return l.w.Run(ctx) }

// Add holds vip (as a host route: only its address counts) as a local
// route through ifname. While Run runs the route is written at once; the
// error says why it could not be, and the write is retried on the next
// resync. Adding a held VIP again (on another interface: moves it) is
// allowed.
func (l *LocalVIPs) Add(ifname string, vip netip.Prefix) error {
	p, err := hostPrefix(vip.Addr())
	if err != nil {
		return fmt.Errorf("local VIPs: add: %w", err)
	}
	if ifname == "" {
		return fmt.Errorf("local VIPs: add %s: no interface", p)
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if dev, ok := w.want[p]; ok && dev == ifname {
		return nil
	}
	w.want[p] = ifname
	w.log.Info("local VIPs: add", "vip", p, "interface", ifname)
	if err := w.reconcile(); err != nil {
		return fmt.Errorf("local VIPs: add %s: %w", p, err)
	}
	return nil
}

// Remove stops holding vip and removes its local route. Removing a VIP not
// held does nothing.
func (l *LocalVIPs) Remove(_ string, vip netip.Prefix) error {
	p, err := hostPrefix(vip.Addr())
	if err != nil {
		return fmt.Errorf("local VIPs: remove: %w", err)
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.want[p]; !ok {
		return nil
	}
	delete(w.want, p)
	w.log.Info("local VIPs: remove", "vip", p)
	if err := w.reconcile(); err != nil {
		return fmt.Errorf("local VIPs: remove %s: %w", p, err)
	}
	return nil
}

// RemoveStale removes the local routes of its protocol for vips that it
// does not hold (a crashed agent's) and returns them. (Run removes every
// such route of its protocol when it starts, too.)
func (l *LocalVIPs) RemoveStale(_ string, vips []netip.Prefix) ([]netip.Prefix, error) {
	w := l.w
	ns := netns.None()
	if w.cfg.Namespace != nil {
		ns = *w.cfg.Namespace
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("local VIPs: netlink: %w", err)
	}
	defer h.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	ours, _, err := w.list(h)
	if err != nil {
		return nil, fmt.Errorf("local VIPs: %w", err)
	}
	var removed []netip.Prefix
	var errs []error
	for _, v := range vips {
		p, err := hostPrefix(v.Addr())
		if err != nil {
			continue
		}
		r, ok := ours[p]
		if _, held := w.want[p]; !ok || held {
			continue
		}
		if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("local VIPs: removing the stale local route of %s: %w", p, err))
			continue
		}
		removed = append(removed, v)
	}
	return removed, errors.Join(errs...)
}

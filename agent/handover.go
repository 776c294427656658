package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/vrrp"
)

// A router that a new config restarts (another VRID, advertisement
// interval, VIP list, between unicast and multicast...) while it is Active
// hands its VIPs to its successor on this node, not to another node. The
// graceful stop would advertise priority 0 and keep the VIPs until a
// Backup elsewhere took over, and the successor would start as Backup and
// take them back only after its Master_Down_Interval (preemption): the VIP
// would move twice, and the change would take a second or more at 100-200
// ms adverts (measured by the system test, test/system). Instead the old
// router stops at once without priority 0, leaving on the interface the
// VIPs the successor keeps, and the successor starts Active
// (vrrp.Config.TakeOver): it advertises and announces at once, so that the
// Backups see this node's adverts go on and the VIPs never leave it. A
// better router, if the new config has one, preempts the successor as it
// would have preempted its predecessor.

// handover is what a router that takes over from its predecessor inherits:
// the VIPs left on the interface for it.
type handover struct {
	ifname string
	kept   []netip.Prefix
}

// takesOver reports whether r, about to be restarted for rc, hands over to
// its successor on this node: it is Active, and the successor runs on the
// same interface and address family. A priority-255 owner starts Active
// anyway.
func takesOver(r *router, rc config.Router) bool {
	return r.runner.State() == vrrp.Active && rc.Interface != "" &&
		rc.Interface == r.cfg.Interface && rc.IPv6 == r.cfg.IPv6
}

// stopForRestart stops the routers rs of a config change whose new
// configs (by name) are want; served holds every VIP of the new config.
// Those that hand over to their successor (takesOver) stop at once,
// leaving the VIPs their successor keeps; removed routers none of whose
// VIPs the new config serves (retires) stop at once and release them; the
// others stop gracefully (stopRouters). It returns the hand-overs by
// router name, for startSuccessor.
func (a *Agent) stopForRestart(rs []*router, want map[string]config.Router, served map[netip.Prefix]bool) map[string]*handover {
	handovers := map[string]*handover{}
	var graceful []*router
	for _, r := range rs {
		rc, ok := want[r.cfg.Name]
		if !ok && retires(r, served) {
			// Removed with its VIPs: no router, here or on another node
			// running this config, is to take them over, and a graceful
			// stop would only keep them for its hand-over bound (priority
			// 0, then Master_Down_Interval at priority 1 and an interval).
			a.log.Info("router removed with its VIPs: releasing them now, without a hand-over", "router", r.cfg.Name, "vips", prefixStrings(r.cfg.VIPs))
			r.abandon(nil)
			continue
		}
		if !ok || !takesOver(r, rc) {
			graceful = append(graceful, r)
			continue
		}
		var kept []netip.Prefix
		for _, p := range r.cfg.VIPs {
			if slices.Contains(rc.VIPs, p) {
				kept = append(kept, p)
			}
		}
		a.log.Info("router restarted while active: its successor takes over on this node", "router", r.cfg.Name, "keptVIPs", prefixStrings(kept))
		r.abandon(kept)
		handovers[r.cfg.Name] = &handover{ifname: r.cfg.Interface, kept: kept}
	}
	a.stopRouters(graceful)
	return handovers
}

// retires reports whether r, removed from the config, takes its VIPs with
// it: none of them is in served (the VIPs of the new config). A VIP that
// moves to another router keeps the graceful stop, so that it is held
// until that router has a master.
func retires(r *router, served map[netip.Prefix]bool) bool {
	for _, p := range r.cfg.VIPs {
		if served[p] {
			return false
		}
	}
	return true
}

// abandon stops the router at once, without a hand-over (no priority-0
// advert): its VIPs but kept are removed. Its state metric says it
// stopped, as after a graceful stop (the successor's labels differ when
// the VRID does).
func (r *router) abandon(kept []netip.Prefix) {
	r.holder.mu.Lock()
	r.holder.kept = kept
	r.holder.mu.Unlock()
	r.cutShort()
	<-r.done
	r.cancel()
	r.m.setState(r.cfg, vrrp.Initialize)
}

// startSuccessor starts the router of rc, Active when it takes over from
// its predecessor (h not nil). If it cannot start, the VIPs kept for it
// are removed: no router of this node holds them.
func (a *Agent) startSuccessor(ctx context.Context, rc config.Router, h *handover) (*router, error) {
	r, err := a.startRouter(ctx, rc, h != nil)
	if err == nil || h == nil {
		return r, err
	}
	errs := []error{err}
	for _, p := range h.kept {
		if rerr := a.parts.VIPs.Remove(h.ifname, p); rerr != nil {
			errs = append(errs, fmt.Errorf("router %s could not take over: removing its VIP %s: %w", rc.Name, p, rerr))
		}
	}
	a.parts.Balancer.SetMaster(rc.Name, false)
	return nil, errors.Join(errs...)
}

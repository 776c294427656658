package config

import (
	"fmt"
	"net/netip"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// ConnectionSync is the validated ipvs.connectionSync: the kernel's IPVS
// sync daemons (a master and a backup on every director), which keep the
// connections the master balances known to the backups.
type ConnectionSync struct {
	// Enabled runs the daemons (when some router has virtual services).
	Enabled bool
	// Interface the daemons use; "" means the interface of the first
	// router with virtual services, which may be picked at run time.
	Interface string
	// SyncID is 0 to 255; by default the VRID of the first router with
	// virtual services.
	SyncID uint8
	// Group is the multicast group; by default 224.0.0.81, ff02::81 when
	// every router with virtual services is IPv6.
	Group netip.Addr
	// Port is the UDP port, 1 to 65535 (default 8848).
	Port uint16
	// TTL is the multicast TTL, 1 to 255 (default 1).
	TTL uint8
}

// connectionSyncFromV1alpha1 converts a validated ipvs.connectionSync (nil
// means the defaults); routers give the defaults that depend on them.
func connectionSyncFromV1alpha1(cs *agentv1alpha1.ConnectionSync, routers []agentv1alpha1.VirtualRouter) (ConnectionSync, error) {
	if cs == nil {
		cs = &agentv1alpha1.ConnectionSync{}
	}
	out := ConnectionSync{
		Enabled:   cs.Enabled == nil || *cs.Enabled,
		Interface: cs.Interface,
		Port:      uint16(derefOr(cs.Port, agentv1alpha1.DefaultConnectionSyncPort)),
		TTL:       uint8(derefOr(cs.TTL, agentv1alpha1.DefaultConnectionSyncTTL)),
	}
	first, all6 := -1, true
	for i := range routers {
		if len(routers[i].VirtualServices) == 0 || routers[i].Mode == agentv1alpha1.ModeBGP {
			// A bgp router has no VRID and no master/backup pair to sync.
			continue
		}
		if first < 0 {
			first = i
		}
		if len(routers[i].VIPs) > 0 {
			if p, err := netip.ParsePrefix(routers[i].VIPs[0]); err == nil && p.Addr().Is4() {
				all6 = false
			} else if a, err := netip.ParseAddr(routers[i].VIPs[0]); err == nil && a.Is4() {
				all6 = false
			}
		}
	}
	switch {
	case cs.SyncID != nil:
		out.SyncID = uint8(*cs.SyncID)
	case first >= 0:
		out.SyncID = uint8(routers[first].VRID)
	}
	group := cs.MulticastGroup
	if group == "" {
		group = agentv1alpha1.DefaultConnectionSyncGroupIPv4
		if first >= 0 && all6 {
			group = agentv1alpha1.DefaultConnectionSyncGroupIPv6
		}
	}
	g, err := netip.ParseAddr(group)
	if err != nil {
		return out, fmt.Errorf("ipvs.connectionSync.multicastGroup: %w", err)
	}
	out.Group = g
	return out, nil
}

func derefOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

package validation

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Limits of the BGP section that are not in the API package.
const (
	maxASN              = 4294967294 // 4294967295 is reserved (RFC 7300)
	minBGPHoldTime      = 3 * time.Second
	maxBGPHoldTime      = 65535 * time.Second
	maxBGPConnectRetry  = time.Hour
	maxBGPPasswordBytes = 80 // TCP_MD5SIG_MAXKEYLEN
)

// validateModes checks virtualRouters[].mode and what mode bgp needs: the
// VRRP fields unset, host VIPs, and a bgp section with peers or an external
// speaker.
func validateModes(p *field.Path, c *agentv1alpha1.AgentConfig) field.ErrorList {
	var errs field.ErrorList
	for i := range c.VirtualRouters {
		r := &c.VirtualRouters[i]
		rp := p.Index(i)
		switch r.Mode {
		case "", agentv1alpha1.ModeVRRP:
			continue
		case agentv1alpha1.ModeBGP:
		default:
			errs = append(errs, field.NotSupported(rp.Child("mode"), r.Mode, []agentv1alpha1.AnnouncementMode{agentv1alpha1.ModeVRRP, agentv1alpha1.ModeBGP}))
			continue
		}
		if c.BGP == nil || (len(c.BGP.Peers) == 0 && c.BGP.ExternalSpeaker == nil) {
			errs = append(errs, field.Invalid(rp.Child("mode"), r.Mode, "mode bgp needs BGP peers or an external speaker: configure bgp.localASN and bgp.peers, or bgp.externalSpeaker for the node's own BGP daemon, or use mode vrrp"))
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"vrid", r.VRID != 0},
			{"version", r.Version != nil},
			{"priority", r.Priority != nil},
			{"advertInterval", r.AdvertInterval != nil},
			{"preempt", r.Preempt != nil},
			{"preemptDelay", r.PreemptDelay != nil},
			{"checksumMode", r.ChecksumMode != ""},
			{"authPassword", r.AuthPassword != ""},
			{"sourceAddress", r.SourceAddress != ""},
			{"unicastPeers", len(r.UnicastPeers) > 0},
			{"announce", r.Announce != nil},
			{"preemptAfterChecks", r.PreemptAfterChecks},
		} {
			if f.set {
				errs = append(errs, field.Forbidden(rp.Child(f.name), "a VRRP setting: it does not apply in mode bgp, remove it"))
			}
		}
		for j := range r.VirtualServices {
			if s := r.VirtualServices[j].Scheduler; s != "" && s != agentv1alpha1.BGPScheduler {
				errs = append(errs, field.Invalid(rp.Child("virtualServices").Index(j).Child("scheduler"), s,
					"must be mh (or unset) in mode bgp: every node balances the VIP, and only Maglev hashing with the real servers in one order on every node sends a flow that the routers move to another node to the same real server; any other scheduler breaks such flows"))
			}
		}
		for j, s := range r.VIPs {
			if pfx, msg := parseVIP(s); msg == "" && pfx.Bits() != pfx.Addr().BitLen() {
				errs = append(errs, field.Invalid(rp.Child("vips").Index(j), s, fmt.Sprintf("must be a host address in mode bgp (advertised as a /%d host route): write %s", pfx.Addr().BitLen(), pfx.Addr())))
			}
		}
	}
	return errs
}

// vrrpRouter reports whether r is in mode vrrp, where the VRRP fields
// (and a VRID) are required.
func vrrpRouter(r *agentv1alpha1.VirtualRouter) bool {
	return r.Mode == "" || r.Mode == agentv1alpha1.ModeVRRP
}

// validateBGP checks the bgp section.
func validateBGP(p *field.Path, b *agentv1alpha1.BGP) field.ErrorList {
	if b == nil {
		return nil
	}
	if b.ExternalSpeaker != nil {
		return validateExternalSpeaker(p, b)
	}
	var errs field.ErrorList
	errs = append(errs, validateASN(p.Child("localASN"), b.LocalASN)...)
	if b.RouterID != "" {
		if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() || a.IsUnspecified() || a.Zone() != "" {
			errs = append(errs, field.Invalid(p.Child("routerID"), b.RouterID, "must be an IPv4 address other than 0.0.0.0 (BGP identifiers are 32 bits), usually the node's address; or unset for the node's first IPv4 address"))
		}
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		errs = append(errs, field.Invalid(p.Child("listenPort"), b.ListenPort, "must be between 1 and 65535, or 0 to accept no BGP connections"))
	}
	pp := p.Child("peers")
	switch n := len(b.Peers); {
	case n == 0:
		errs = append(errs, field.Required(pp, fmt.Sprintf("must list 1 to %d BGP peers", agentv1alpha1.MaxBGPPeers)))
	case n > agentv1alpha1.MaxBGPPeers:
		errs = append(errs, field.TooMany(pp, n, agentv1alpha1.MaxBGPPeers))
	}
	seen := map[netip.Addr]int{}
	for i := range b.Peers {
		peer := &b.Peers[i]
		ip := pp.Index(i)
		if a, msg := parseNodeAddr(peer.Address); msg != "" {
			errs = append(errs, field.Invalid(ip.Child("address"), peer.Address, msg))
		} else if a.IsLinkLocalUnicast() {
			errs = append(errs, field.Invalid(ip.Child("address"), peer.Address, "must not be a link-local address (BGP over link-local IPv6 is not supported): use the peer's global address"))
		} else {
			if first, ok := seen[a]; ok {
				d := field.Duplicate(ip.Child("address"), peer.Address)
				d.Detail = fmt.Sprintf("already the address of %s; list each peer once", pp.Index(first))
				errs = append(errs, d)
			} else {
				seen[a] = i
			}
			if peer.SourceAddress != "" {
				if src, msg := parseNodeAddr(peer.SourceAddress); msg != "" {
					errs = append(errs, field.Invalid(ip.Child("sourceAddress"), peer.SourceAddress, msg))
				} else if src.Is4() != a.Is4() {
					errs = append(errs, field.Invalid(ip.Child("sourceAddress"), peer.SourceAddress, fmt.Sprintf("must be in the family of the peer's address %s", peer.Address)))
				}
			}
		}
		errs = append(errs, validateASN(ip.Child("asn"), peer.ASN)...)
		if peer.Port < 0 || peer.Port > 65535 {
			errs = append(errs, field.Invalid(ip.Child("port"), peer.Port, "must be between 1 and 65535 (0 means 179)"))
		}
		if f := peer.PasswordFile; f != "" {
			if !filepath.IsAbs(f) || len(f) > agentv1alpha1.MaxBGPPasswordFileLength {
				errs = append(errs, field.Invalid(ip.Child("passwordFile"), f, fmt.Sprintf("must be an absolute path of at most %d bytes (the file holds the TCP MD5 key, up to %d bytes; mount it from a Secret)", agentv1alpha1.MaxBGPPasswordFileLength, maxBGPPasswordBytes)))
			}
		}
		hold := agentv1alpha1.DefaultBGPHoldTime
		if peer.HoldTime != nil {
			hold = peer.HoldTime.Duration
			if hold < minBGPHoldTime || hold > maxBGPHoldTime || hold%time.Second != 0 {
				errs = append(errs, field.Invalid(ip.Child("holdTime"), hold.String(), fmt.Sprintf("must be between %v and %v in whole seconds (RFC 4271)", minBGPHoldTime, maxBGPHoldTime)))
			}
		}
		if peer.KeepaliveTime != nil {
			if k := peer.KeepaliveTime.Duration; k < time.Second || k > hold || k%time.Second != 0 {
				errs = append(errs, field.Invalid(ip.Child("keepaliveTime"), k.String(), fmt.Sprintf("must be between 1s and the hold time %v in whole seconds (a third of the hold time is usual)", hold)))
			}
		}
		if peer.ConnectRetry != nil {
			if r := peer.ConnectRetry.Duration; r < agentv1alpha1.MinBGPConnectRetry || r > maxBGPConnectRetry || r%time.Second != 0 {
				errs = append(errs, field.Invalid(ip.Child("connectRetry"), r.String(), fmt.Sprintf("must be between %v and %v in whole seconds", agentv1alpha1.MinBGPConnectRetry, maxBGPConnectRetry)))
			}
		}
		if m := peer.EBGPMultihop; m != 0 {
			switch {
			case m < 2 || m > 255:
				errs = append(errs, field.Invalid(ip.Child("ebgpMultihop"), m, "must be between 2 and 255 hops, or 0 for a directly connected peer"))
			case peer.BFD:
				errs = append(errs, field.Invalid(ip.Child("ebgpMultihop"), m, "BFD here is single-hop (RFC 5881) and needs a directly connected peer: remove ebgpMultihop or set bfd: false"))
			case peer.ASN == b.LocalASN:
				errs = append(errs, field.Invalid(ip.Child("ebgpMultihop"), m, "applies to eBGP peers only (this peer's asn is localASN, iBGP): remove it"))
			}
		}
	}
	if bp := b.BFDProfile; bp != nil {
		fp := p.Child("bfdProfile")
		for _, iv := range []struct {
			name string
			d    *agentv1alpha1.Duration
		}{{"minTxInterval", bp.MinTxInterval}, {"minRxInterval", bp.MinRxInterval}} {
			if iv.d == nil {
				continue
			}
			if d := iv.d.Duration; d < agentv1alpha1.MinBFDInterval || d > agentv1alpha1.MaxBFDInterval || d%time.Microsecond != 0 {
				errs = append(errs, field.Invalid(fp.Child(iv.name), d.String(), fmt.Sprintf("must be between %v and %v in whole microseconds", agentv1alpha1.MinBFDInterval, agentv1alpha1.MaxBFDInterval)))
			}
		}
		if m := bp.Multiplier; m != nil && (*m < 1 || *m > 255) {
			errs = append(errs, field.Invalid(fp.Child("multiplier"), *m, "must be between 1 and 255"))
		}
	}
	errs = append(errs, validateGracefulShutdownWait(p, b)...)
	return errs
}

func validateGracefulShutdownWait(p *field.Path, b *agentv1alpha1.BGP) field.ErrorList {
	if w := b.GracefulShutdownWait; w != nil && (w.Duration < 0 || w.Duration > agentv1alpha1.MaxGracefulShutdownWait) {
		return field.ErrorList{field.Invalid(p.Child("gracefulShutdownWait"), w.Duration.String(), fmt.Sprintf("must be between 0s and %v", agentv1alpha1.MaxGracefulShutdownWait))}
	}
	return nil
}

func validateASN(p *field.Path, asn int64) field.ErrorList {
	if asn < 1 || asn > maxASN {
		return field.ErrorList{field.Invalid(p, asn, fmt.Sprintf("must be an AS number between 1 and %d", int64(maxASN)))}
	}
	return nil
}

// Limits of bgp.externalSpeaker.
const (
	maxRouteTable = 4294967295 // RT_TABLE_* are 32 bits (RTA_TABLE)
	// minRouteProtocol is the first protocol number not reserved for the
	// kernel's own routes (RTPROT_UNSPEC, REDIRECT, KERNEL, BOOT, STATIC
	// are 0 to 4).
	minRouteProtocol = 5
	maxRouteProtocol = 255 // rtm_protocol is 8 bits
)

// reservedRouteTables are the kernel's own routing tables (RT_TABLE_*),
// which the agent must not own the routes of.
var reservedRouteTables = map[int64]string{
	253: "default",
	254: "main",
	255: "local",
}

// reservedRouteProtocols are the protocol numbers (rtm_protocol) that
// /etc/iproute2/rt_protos, the kernel's RTPROT_* constants
// (include/uapi/linux/rtnetlink.h, Linux 6.x) and FRR (its
// /etc/iproute2/rt_protos.d/frr.conf, and RTPROT_SRTE 198 in
// zebra/rt_netlink.h) assign to routing daemons and other route sources
// from 5 up. The agent removes the routes of its protocol
// that it does not want, and those daemons treat the routes of their own
// numbers as theirs (zebra deletes those of its numbers as stale when it
// starts), so a number of this list would have one remove the other's
// routes.
var reservedRouteProtocols = map[int32]string{
	8:   "gated",
	9:   "ra",
	10:  "mrt",
	11:  "zebra",
	12:  "bird",
	13:  "dnrouted",
	14:  "xorp",
	15:  "ntk",
	16:  "dhcp",
	17:  "mrouted",
	18:  "keepalived",
	42:  "babel",
	84:  "ovn",
	99:  "openr",
	186: "bgp",
	187: "isis",
	188: "ospf",
	189: "rip",
	190: "ripng",
	191: "nhrp",
	192: "eigrp",
	193: "ldp",
	194: "sharp",
	195: "pbr",
	196: "static",
	197: "openfabric",
	198: "srte",
}

// validateExternalSpeaker checks a bgp section with externalSpeaker set:
// the table and protocol, and none of the settings of the embedded
// speaker.
func validateExternalSpeaker(p *field.Path, b *agentv1alpha1.BGP) field.ErrorList {
	var errs field.ErrorList
	const fix = "the agent speaks no BGP with externalSpeaker set (the node's BGP daemon does): remove it, or remove externalSpeaker to have the agent speak BGP to peers itself"
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"localASN", b.LocalASN != 0},
		{"routerID", b.RouterID != ""},
		{"listenPort", b.ListenPort != 0},
		{"peers", len(b.Peers) > 0},
		{"bfdProfile", b.BFDProfile != nil},
	} {
		if f.set {
			errs = append(errs, field.Forbidden(p.Child(f.name), fix))
		}
	}
	es := b.ExternalSpeaker
	ep := p.Child("externalSpeaker")
	switch t := es.Table; {
	case t == 0:
		errs = append(errs, field.Required(ep.Child("table"), fmt.Sprintf("the kernel routing table to write the VIPs' host routes to, 1 to %d except 253, 254 and 255 (the one the node's BGP daemon imports, e.g. FRR's \"ip import-table\")", int64(maxRouteTable))))
	case t < 0 || t > maxRouteTable:
		errs = append(errs, field.Invalid(ep.Child("table"), t, fmt.Sprintf("must be a routing table between 1 and %d (except 253, 254 and 255)", int64(maxRouteTable))))
	case reservedRouteTables[t] != "":
		errs = append(errs, field.Invalid(ep.Child("table"), t, fmt.Sprintf("is the kernel's table %q, whose routes the agent must not own: choose a table of its own, e.g. 100 (FRR imports tables 1 to 252)", reservedRouteTables[t])))
	}
	if pr := es.Protocol; pr != nil {
		switch {
		case *pr < minRouteProtocol || *pr > maxRouteProtocol:
			errs = append(errs, field.Invalid(ep.Child("protocol"), *pr, fmt.Sprintf("must be a route protocol number between %d and %d (0 to 4 are the kernel's own); default %d", minRouteProtocol, maxRouteProtocol, agentv1alpha1.DefaultRouteProtocol)))
		case reservedRouteProtocols[*pr] != "":
			errs = append(errs, field.Invalid(ep.Child("protocol"), *pr, fmt.Sprintf("is the protocol number of %q (/etc/iproute2/rt_protos), whose routes are that daemon's: choose a number nothing else uses, e.g. the default %d", reservedRouteProtocols[*pr], agentv1alpha1.DefaultRouteProtocol)))
		}
	}
	errs = append(errs, validateGracefulShutdownWait(p, b)...)
	return errs
}

package validation

import (
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentvalidation "github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// Messages of spec.bgp shared with the CRD's CEL rules (api/v1alpha1
// markers).
const (
	msgBGPNeedsPeers    = "a virtual IP in mode bgp needs spec.bgp with peers (or externalSpeaker, for a BGP daemon of the nodes): add them, or use mode vrrp"
	msgExternalPeers    = "externalSpeaker and peers exclude each other: with externalSpeaker the nodes' own BGP daemon talks to the routers; remove peers, or remove externalSpeaker to have the agent speak BGP"
	msgExternalSpeaker  = "localASN, listenPort, bfdProfile and byNode configure the agent's BGP speaker, which does not run with externalSpeaker: remove them"
	msgLocalASNRequired = "localASN is required with peers: set the nodes' AS number (byNode may override it per node)"
	msgMultihopIBGP     = "ebgpMultihop applies to eBGP peers only: a peer whose asn is localASN is iBGP; remove ebgpMultihop from it"
	msgMultihopBFD      = "BFD here is single-hop (RFC 5881) and needs a directly connected peer: remove ebgpMultihop or set bfd: false"
	msgKeepaliveHold    = "keepaliveTime must be at most holdTime (default 90s); a third of it is usual"
	msgHoldTime         = "holdTime must be between 3s and 65535s in whole seconds (RFC 4271)"
	msgKeepalive        = "keepaliveTime must be at least 1s, in whole seconds"
	msgConnectRetry     = "connectRetry must be between 2s and 1h in whole seconds"
	msgGracefulWait     = "gracefulShutdownWait must be at most 10m"
	msgBFDInterval      = "must be between 10ms and 1m: BFD below 10ms is not supported"
	msgTable            = "table must not be 253 (default), 254 (main) or 255 (local): use a table of its own, e.g. 198"
	msgRouterID         = "routerID must be an IPv4 address other than 0.0.0.0 (BGP identifiers are 32 bits), usually the node's own"
	msgSourceAddresses  = "sourceAddresses must be IP addresses in canonical form (e.g. 192.0.2.21 or 2001:db8::21)"
	msgSourcePerFamily  = "sourceAddresses holds at most one address per family: one IPv4 and one IPv6"
	msgPeerFamily       = "every virtual IP in mode bgp needs a BGP peer of its family (IPv4 or IPv6): routes are advertised to the peers of their family; add a peer, or remove the virtual IP"
	msgPeerAddressForm  = "address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.1 or 2001:db8::1)"
)

// Limits of spec.bgp.
const (
	minHoldTime         = 3 * time.Second
	maxHoldTime         = 65535 * time.Second
	defaultHoldTime     = 90 * time.Second
	minConnectRetry     = 2 * time.Second
	maxConnectRetry     = time.Hour
	maxGracefulShutdown = 10 * time.Minute
	minBFDInterval      = 10 * time.Millisecond
	maxBFDInterval      = time.Minute
	maxRouteTable       = 4294967295
	minRouteProtocol    = 5
	maxRouteProtocol    = 255
)

// validateLBCBGP checks spec.bgp, and that the virtual IPs in mode bgp
// have what they need. p is the spec's path.
func validateLBCBGP(p *field.Path, s *v1alpha1.LoadBalancerConfigSpec) field.ErrorList {
	var errs field.ErrorList
	bp := p.Child("bgp")
	b := s.BGP
	for _, v := range s.VirtualIPs {
		if v.IsBGP() && (b == nil || (len(b.Peers) == 0 && b.ExternalSpeaker == nil)) {
			errs = append(errs, field.Required(bp, msgBGPNeedsPeers))
			break
		}
	}
	if b == nil {
		return errs
	}
	if b.ExternalSpeaker != nil {
		if b.Peers != nil {
			errs = append(errs, field.Invalid(bp.Child("externalSpeaker"), "externalSpeaker, peers", msgExternalPeers))
		}
		if b.LocalASN != nil || b.ListenPort != nil || b.BFDProfile != nil || b.ByNode != nil {
			errs = append(errs, field.Invalid(bp.Child("externalSpeaker"), "set", msgExternalSpeaker))
		}
		es := b.ExternalSpeaker
		tp := bp.Child("externalSpeaker", "table")
		switch {
		case es.Table < 1 || es.Table > maxRouteTable:
			errs = append(errs, field.Invalid(tp, es.Table, fmt.Sprintf("table must be between 1 and %d", int64(maxRouteTable))))
		case es.Table == 253 || es.Table == 254 || es.Table == 255:
			errs = append(errs, field.Invalid(tp, es.Table, msgTable))
		}
		if pr := es.Protocol; pr != nil && (*pr < minRouteProtocol || *pr > maxRouteProtocol) {
			errs = append(errs, field.Invalid(bp.Child("externalSpeaker", "protocol"), *pr, fmt.Sprintf("protocol must be between %d and %d", minRouteProtocol, maxRouteProtocol)))
		}
	}
	if b.LocalASN != nil {
		errs = append(errs, validateASN(bp.Child("localASN"), *b.LocalASN)...)
	} else if len(b.Peers) > 0 {
		errs = append(errs, field.Required(bp.Child("localASN"), msgLocalASNRequired))
	}
	if lp := b.ListenPort; lp != nil {
		validatePort(bp.Child("listenPort"), *lp, &errs)
	}
	errs = append(errs, validateBGPPeers(bp.Child("peers"), b)...)
	if len(b.Peers) > 0 {
		fams := map[bool]bool{}
		for _, peer := range b.Peers {
			if a, err := netip.ParseAddr(peer.Address); err == nil {
				fams[a.Is4()] = true
			}
		}
		for i, v := range s.VirtualIPs {
			if a, err := netip.ParseAddr(v.Address); err == nil && v.IsBGP() && !fams[a.Is4()] {
				errs = append(errs, field.Invalid(p.Child("virtualIPs").Index(i).Child("address"), v.Address, msgPeerFamily))
			}
		}
	}
	if f := b.BFDProfile; f != nil {
		fp := bp.Child("bfdProfile")
		for _, iv := range []struct {
			name string
			d    *metav1.Duration
		}{{"minTxInterval", f.MinTxInterval}, {"minRxInterval", f.MinRxInterval}} {
			if iv.d == nil {
				continue
			}
			d := iv.d.Duration
			switch {
			case !wholeMillis(d):
				errs = append(errs, field.Invalid(fp.Child(iv.name), d.String(), msgDuration))
			case d < minBFDInterval || d > maxBFDInterval:
				errs = append(errs, field.Invalid(fp.Child(iv.name), d.String(), iv.name+" "+msgBFDInterval))
			}
		}
		if m := f.Multiplier; m != nil && (*m < 1 || *m > 255) {
			errs = append(errs, field.Invalid(fp.Child("multiplier"), *m, "multiplier must be between 1 and 255"))
		}
	}
	if w := b.GracefulShutdownWait; w != nil {
		wp := bp.Child("gracefulShutdownWait")
		switch d := w.Duration; {
		case d < 0 || !wholeMillis(d):
			errs = append(errs, field.Invalid(wp, d.String(), msgDuration))
		case d > maxGracefulShutdown:
			errs = append(errs, field.Invalid(wp, d.String(), msgGracefulWait))
		}
	}
	errs = append(errs, validateBGPByNode(bp.Child("byNode"), b.ByNode)...)
	return errs
}

func validateASN(p *field.Path, asn int64) field.ErrorList {
	if asn < 1 || asn > v1alpha1.MaxASN {
		return field.ErrorList{field.Invalid(p, asn, fmt.Sprintf("must be an AS number between 1 and %d", int64(v1alpha1.MaxASN)))}
	}
	return nil
}

func validateBGPPeers(p *field.Path, b *v1alpha1.BGP) field.ErrorList {
	var errs field.ErrorList
	if b.Peers != nil && len(b.Peers) == 0 {
		errs = append(errs, field.Required(p, fmt.Sprintf("must list 1 to %d peers, or be left out", v1alpha1.MaxBGPPeers)))
	}
	if n := len(b.Peers); n > v1alpha1.MaxBGPPeers {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxBGPPeers))
	}
	seen := map[netip.Addr]bool{}
	for i := range b.Peers {
		peer := &b.Peers[i]
		ip := p.Index(i)
		if a, ok := validatePeerAddress(ip.Child("address"), peer.Address, &errs); ok {
			if seen[a] {
				errs = append(errs, field.Duplicate(ip.Child("address"), peer.Address))
			}
			seen[a] = true
		}
		errs = append(errs, validateASN(ip.Child("asn"), peer.ASN)...)
		if peer.Port != nil {
			validatePort(ip.Child("port"), *peer.Port, &errs)
		}
		if peer.PasswordSecretRef != nil {
			errs = append(errs, validateSecretRef(ip.Child("passwordSecretRef"), peer.PasswordSecretRef)...)
		}
		hold := defaultHoldTime
		if peer.HoldTime != nil {
			hold = peer.HoldTime.Duration
			if hold < minHoldTime || hold > maxHoldTime || hold%time.Second != 0 {
				errs = append(errs, field.Invalid(ip.Child("holdTime"), hold.String(), msgHoldTime))
			}
		}
		if peer.KeepaliveTime != nil {
			k := peer.KeepaliveTime.Duration
			switch {
			case k < time.Second || k%time.Second != 0:
				errs = append(errs, field.Invalid(ip.Child("keepaliveTime"), k.String(), msgKeepalive))
			case k > hold:
				errs = append(errs, field.Invalid(ip.Child("keepaliveTime"), k.String(), msgKeepaliveHold))
			}
		}
		if peer.ConnectRetry != nil {
			if r := peer.ConnectRetry.Duration; r < minConnectRetry || r > maxConnectRetry || r%time.Second != 0 {
				errs = append(errs, field.Invalid(ip.Child("connectRetry"), r.String(), msgConnectRetry))
			}
		}
		if m := peer.EBGPMultihop; m != nil {
			mp := ip.Child("ebgpMultihop")
			switch {
			case *m < 2 || *m > 255:
				errs = append(errs, field.Invalid(mp, *m, "ebgpMultihop must be between 2 and 255 hops, or unset for a directly connected peer"))
			case peer.BFD:
				errs = append(errs, field.Invalid(mp, *m, msgMultihopBFD))
			case b.LocalASN != nil && peer.ASN == *b.LocalASN:
				errs = append(errs, field.Invalid(mp, *m, msgMultihopIBGP))
			}
		}
	}
	return errs
}

// validatePeerAddress checks a peer's address as the CRD does; it appends
// what is wrong to errs and reports whether the address is usable.
func validatePeerAddress(p *field.Path, s string, errs *field.ErrorList) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() || a.String() != s {
		*errs = append(*errs, field.Invalid(p, s, msgPeerAddressForm))
		return a, false
	}
	if !a.IsGlobalUnicast() {
		*errs = append(*errs, field.Invalid(p, s, msgAddressUnicast))
		return a, false
	}
	return a, true
}

func validateBGPByNode(p *field.Path, byNode []v1alpha1.BGPNode) field.ErrorList {
	var errs field.ErrorList
	if byNode != nil && len(byNode) == 0 {
		errs = append(errs, field.Required(p, "must list at least one node, or be left out"))
	}
	if n := len(byNode); n > v1alpha1.MaxNodes {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxNodes))
	}
	seen := map[string]bool{}
	for i := range byNode {
		n := &byNode[i]
		ip := p.Index(i)
		switch {
		case n.NodeName == "":
			errs = append(errs, field.Required(ip.Child("nodeName"), "must name a Node"))
		case agentvalidation.DNS1123Subdomain(n.NodeName) != "":
			errs = append(errs, field.Invalid(ip.Child("nodeName"), n.NodeName, agentvalidation.DNS1123Subdomain(n.NodeName)))
		case seen[n.NodeName]:
			errs = append(errs, field.Duplicate(ip.Child("nodeName"), n.NodeName))
		}
		seen[n.NodeName] = true
		if n.LocalASN != nil {
			errs = append(errs, validateASN(ip.Child("localASN"), *n.LocalASN)...)
		}
		if n.RouterID != "" {
			if a, err := netip.ParseAddr(n.RouterID); err != nil || !a.Is4() || a.IsUnspecified() || a.String() != n.RouterID {
				errs = append(errs, field.Invalid(ip.Child("routerID"), n.RouterID, msgRouterID))
			}
		}
		sp := ip.Child("sourceAddresses")
		if len(n.SourceAddresses) > 2 {
			errs = append(errs, field.TooMany(sp, len(n.SourceAddresses), 2))
		}
		fams := map[bool]bool{}
		for j, s := range n.SourceAddresses {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" || a.Is4In6() || a.String() != s {
				errs = append(errs, field.Invalid(sp.Index(j), s, msgSourceAddresses))
				continue
			}
			if fams[a.Is4()] {
				errs = append(errs, field.Invalid(sp.Index(j), s, msgSourcePerFamily))
			}
			fams[a.Is4()] = true
		}
	}
	return errs
}

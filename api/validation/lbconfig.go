package validation

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentvalidation "github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// Messages shared by the CRD's CEL rules (api/v1alpha1 markers) and
// ValidateLoadBalancerConfig: the API server, `vipvs render` and the
// operator say the same thing.
const (
	msgV2IPv4Only         = "VRRP version 2 supports IPv4 only: use version 3 for IPv6 virtualIPs"
	msgByNodeSpread       = "priorities.byNode applies only to mode activeStandby: spread mode orders the nodes by name for each VIP"
	msgPreemptAfterChecks = "preemptAfterChecks needs trackChecks: there is no check to wait for"
	msgStaticFamily       = "every static backend address must be in the family (IPv4 or IPv6) of one of the virtualIPs"
	msgEmptySelector      = "nodeSelector must not be empty: an empty selector selects every node"
	msgVIPOnce            = "each virtualIPs address must appear once"
	msgVRIDUnique         = "vrid must be unique among the virtualIPs of one address family on one interface (an entry without interface may be on any interface)"
	msgPortProtoOnce      = "each port and protocol must appear once among services: every service is offered on every virtual IP"
	msgPrefixLength       = "prefixLength must be at most 32 for an IPv4 address and at most 128 for IPv6"
	msgAddressForm        = "address must be an IP address without prefix length, in canonical form (e.g. 192.0.2.10 or 2001:db8::10)"
	msgAddressUnicast     = "address must be a unicast address: not loopback, link-local, multicast, unspecified or broadcast"
	msgPasswordV2         = "passwordSecretRef applies only to VRRP version 2 (version 3 has no authentication): remove it or set version: 2"
	msgChecksumV3         = "checksumMode applies only to VRRP version 3 (version 2 has one checksum): remove it"
	msgAdvertV3           = "advertInterval must be between 10ms and 40.95s in steps of 10ms for VRRP version 3"
	msgAdvertV2           = "advertInterval must be between 1s and 4m15s in whole seconds for VRRP version 2"
	msgPreemptDelayOff    = "preemptDelay must be 0s when preempt is false: a router that does not preempt has nothing to delay"
	msgPreemptDelayMax    = "preemptDelay must be at most 1h"
	msgDRPort             = "forwarding DR and Tunnel cannot change the port: the backends' port must be unset or equal to port"
	msgBackendsOne        = "backends must set exactly one of selectedNodes or static"
	msgStaticOnce         = "each static backend address and port must appear once"
	msgInterval           = "interval must be between 100ms and 1h"
	msgTimeoutPositive    = "timeout must be greater than 0"
	msgTimeoutInterval    = "timeout must be at most interval: probes of one check never overlap"
	msgHealthCheckOne     = "healthCheck must set exactly one of tcp, http or exec"
	msgTrackCheckOne      = "a track check must set exactly one of tcp, http, exec or interface"
	msgCAOne              = "set at most one of caSecretRef, caFile and insecureSkipVerify: either verify the certificate (with one CA) or do not"
	msgTLSNeedsHTTPS      = "caSecretRef, caFile, insecureSkipVerify and serverName need scheme HTTPS"
	msgExecAbsolute       = "command[0] must be the absolute path of the program: the command runs without a shell or a PATH lookup"
	msgTCPAddress         = "address must be IP:port, e.g. 127.0.0.1:6443 or [::1]:6443"
	msgCAInsecure         = "insecureSkipVerify must not be set together with caFile: either verify the certificate or do not"
	msgTLSNeedsHTTPSURL   = "caFile, insecureSkipVerify and serverName need an https:// URL"
	msgURL                = "url must be an http:// or https:// URL with a host, e.g. https://127.0.0.1:6443/readyz"
	msgVRIDRequired       = "vrid is required for a virtual IP in mode vrrp: set a VRID (1 to 255) unique on the segment, or set mode: bgp"
	msgVRIDBGP            = "vrid is a VRRP setting and does not apply to a virtual IP in mode bgp: remove it"
	msgPrefixBGP          = "a virtual IP in mode bgp is advertised as a host route: remove prefixLength (or set 32 for IPv4, 128 for IPv6)"
	msgDuration           = "must be a whole number of milliseconds (the CRD accepts e.g. \"500ms\", \"1.5s\", \"2m\")"
)

const (
	maxLBCPreemptDelay = time.Hour
	maxPersistence     = 86400
	maxPort            = 65535
	maxIPVSWeight      = 65535
	maxNodePriority    = 254
	maxPathLen         = 1024
)

// Forms the CRD checks with a pattern.
var (
	secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	pathRE      = regexp.MustCompile(`^/[^\s]*$`)
)

// ValidateLoadBalancerConfig checks a LoadBalancerConfig as the CRD's
// schema and CEL rules do, so that `vipvs render`, which runs without an API
// server, accepts exactly what the API server accepts, with the same
// messages, each naming its field path, e.g.
//
//	spec.virtualIPs[1].vrid: Invalid value: 51: vrid must be unique among the virtualIPs of one address family on one interface (...)
//
// It returns every problem found. It accepts an object with or without
// defaults applied (v1alpha1.SetDefaults): an unset optional field is
// valid, and cross-field checks use its default. Where CEL can only flag a
// list, it names the entry (the second of two duplicates). It also checks
// what the CRD does not: metadata.name, and static backends that repeat an
// address and port once the port's default is applied.
func ValidateLoadBalancerConfig(c *v1alpha1.LoadBalancerConfig) field.ErrorList {
	if c == nil {
		return field.ErrorList{field.Required(field.NewPath("loadBalancerConfig"), "the object is empty")}
	}
	var errs field.ErrorList
	np := field.NewPath("metadata", "name")
	if c.Name == "" {
		errs = append(errs, field.Required(np, "must name the LoadBalancerConfig (a DNS-1123 subdomain), e.g. \"control-plane\""))
	} else if msg := agentvalidation.DNS1123Subdomain(c.Name); msg != "" {
		errs = append(errs, field.Invalid(np, c.Name, msg))
	}
	errs = append(errs, validateLBCSpec(field.NewPath("spec"), &c.Spec)...)
	return errs
}

func validateLBCSpec(p *field.Path, s *v1alpha1.LoadBalancerConfigSpec) field.ErrorList {
	var errs field.ErrorList
	if len(s.NodeSelector.MatchLabels) == 0 && len(s.NodeSelector.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(p.Child("nodeSelector"), "{}", msgEmptySelector))
	} else if _, err := metav1.LabelSelectorAsSelector(&s.NodeSelector); err != nil {
		errs = append(errs, field.Invalid(p.Child("nodeSelector"), s.NodeSelector.String(), err.Error()))
	}

	families, verrs := validateVirtualIPs(p.Child("virtualIPs"), s.VirtualIPs)
	errs = append(errs, verrs...)
	errs = append(errs, validateLBConnectionSync(p.Child("connectionSync"), s.ConnectionSync)...)

	version := v1alpha1.DefaultVRRPVersion
	if s.VRRP != nil && s.VRRP.Version != 0 {
		version = s.VRRP.Version
	}
	errs = append(errs, validateVRRP(p.Child("vrrp"), s.VRRP)...)
	if version == 2 && vrrpIPv6(s.VirtualIPs) {
		errs = append(errs, field.Invalid(p.Child("vrrp", "version"), version, msgV2IPv4Only))
	}

	mode := s.Mode
	switch mode {
	case "":
		mode = v1alpha1.ModeActiveStandby
	case v1alpha1.ModeActiveStandby, v1alpha1.ModeSpread:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), mode, []v1alpha1.Mode{v1alpha1.ModeActiveStandby, v1alpha1.ModeSpread}))
	}
	if s.Priorities != nil {
		bp := p.Child("priorities", "byNode")
		if s.Priorities.ByNode != nil && mode != v1alpha1.ModeActiveStandby {
			errs = append(errs, field.Invalid(bp, len(s.Priorities.ByNode), msgByNodeSpread))
		}
		errs = append(errs, validateByNode(bp, s.Priorities.ByNode)...)
	}

	errs = append(errs, validateLBCBGP(p, s)...)
	errs = append(errs, validateServices(p.Child("services"), s.Services, families)...)
	errs = append(errs, validateLBCTrackChecks(p.Child("trackChecks"), s.TrackChecks)...)
	if s.PreemptAfterChecks && len(s.TrackChecks) == 0 {
		errs = append(errs, field.Invalid(p.Child("preemptAfterChecks"), true, msgPreemptAfterChecks))
	}
	return errs
}

// vrrpIPv6 reports whether a virtual IP in mode vrrp is an IPv6 address
// (which VRRP version 2 cannot hold; a bgp virtual IP has no VRRP).
func vrrpIPv6(vips []v1alpha1.VirtualIP) bool {
	for _, v := range vips {
		if a, err := netip.ParseAddr(v.Address); err == nil && !v.IsBGP() && a.Is6() && !a.Is4In6() {
			return true
		}
	}
	return false
}

// vipKey is what makes a VRID unique: family and interface ("" = any).
type vipKey struct {
	vrid  int32
	fam   agentvalidation.Family
	iface string
}

// validateVirtualIPs checks the virtual IPs and returns the families they
// use.
func validateVirtualIPs(p *field.Path, vips []v1alpha1.VirtualIP) (map[agentvalidation.Family]bool, field.ErrorList) {
	var errs field.ErrorList
	families := map[agentvalidation.Family]bool{}
	switch n := len(vips); {
	case n == 0:
		errs = append(errs, field.Required(p, fmt.Sprintf("must list 1 to %d virtual IPs", v1alpha1.MaxVirtualIPs)))
	case n > v1alpha1.MaxVirtualIPs:
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxVirtualIPs))
	}
	names := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	var seen []vipKey
	for i := range vips {
		v := &vips[i]
		vp := p.Index(i)
		errs = append(errs, validateLabel(vp.Child("name"), v.Name, names)...)
		a, ok := validateLBCAddress(vp.Child("address"), v.Address, &errs)
		if ok {
			families[agentvalidation.FamilyOf(a)] = true
			if addrs[a] {
				errs = append(errs, field.Invalid(vp.Child("address"), v.Address, msgVIPOnce))
			}
			addrs[a] = true
		}
		bgp := false
		switch v.Mode {
		case "", v1alpha1.AnnouncementVRRP:
		case v1alpha1.AnnouncementBGP:
			bgp = true
		default:
			errs = append(errs, field.NotSupported(vp.Child("mode"), v.Mode, []v1alpha1.AnnouncementMode{v1alpha1.AnnouncementVRRP, v1alpha1.AnnouncementBGP}))
		}
		switch {
		case bgp && v.VRID != 0:
			errs = append(errs, field.Invalid(vp.Child("vrid"), v.VRID, msgVRIDBGP))
		case !bgp && v.VRID == 0:
			errs = append(errs, field.Required(vp.Child("vrid"), msgVRIDRequired))
		case v.VRID < 0 || v.VRID > 255:
			errs = append(errs, field.Invalid(vp.Child("vrid"), v.VRID, "vrid must be between 1 and 255"))
		}
		if bgp && v.PrefixLength != nil && ok && int(*v.PrefixLength) != a.BitLen() {
			errs = append(errs, field.Invalid(vp.Child("prefixLength"), *v.PrefixLength, msgPrefixBGP))
		}
		if v.Interface != "" {
			errs = append(errs, agentvalidation.ValidateInterfaceName(vp.Child("interface"), v.Interface)...)
		}
		if v.PrefixLength != nil {
			max := int32(128)
			if ok && a.Is4() {
				max = 32
			}
			if pl := *v.PrefixLength; pl < 1 || pl > max {
				errs = append(errs, field.Invalid(vp.Child("prefixLength"), pl, msgPrefixLength))
			}
		}
		if !ok || bgp {
			continue // a bgp virtual IP has no VRID
		}
		k := vipKey{v.VRID, agentvalidation.FamilyOf(a), v.Interface}
		for _, o := range seen {
			if o.vrid == k.vrid && o.fam == k.fam && (o.iface == "" || k.iface == "" || o.iface == k.iface) {
				errs = append(errs, field.Invalid(vp.Child("vrid"), v.VRID, msgVRIDUnique))
				break
			}
		}
		seen = append(seen, k)
	}
	return families, errs
}

// validateLBCAddress checks a virtual IP or static backend address: a
// canonical unicast IP address without zone or prefix. It appends what is
// wrong to errs and reports whether the address is usable.
func validateLBCAddress(p *field.Path, s string, errs *field.ErrorList) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() || a.String() != s {
		*errs = append(*errs, field.Invalid(p, s, msgAddressForm))
		return a, false
	}
	if !a.IsGlobalUnicast() {
		*errs = append(*errs, field.Invalid(p, s, msgAddressUnicast))
		return a, false
	}
	return a, true
}

// validateLabel checks a DNS-1123 label that names a list entry, and that
// it is unique in names.
func validateLabel(p *field.Path, name string, names map[string]bool) field.ErrorList {
	switch {
	case name == "":
		return field.ErrorList{field.Required(p, "must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")}
	case agentvalidation.DNS1123Label(name) != "":
		return field.ErrorList{field.Invalid(p, name, agentvalidation.DNS1123Label(name))}
	case names[name]:
		return field.ErrorList{field.Duplicate(p, name)}
	}
	names[name] = true
	return nil
}

func validateVRRP(p *field.Path, v *v1alpha1.VRRP) field.ErrorList {
	if v == nil {
		return nil
	}
	var errs field.ErrorList
	version := v.Version
	switch version {
	case 0:
		version = v1alpha1.DefaultVRRPVersion
	case 2, 3:
	default:
		errs = append(errs, field.NotSupported(p.Child("version"), version, []string{"2", "3"}))
	}
	if v.AdvertInterval != nil {
		d := v.AdvertInterval.Duration
		ap := p.Child("advertInterval")
		switch {
		case !wholeMillis(d):
			errs = append(errs, field.Invalid(ap, d.String(), msgDuration))
		case version == 3 && (d < agentvalidation.MinAdvertIntervalV3 || d > agentvalidation.MaxAdvertIntervalV3 || d%agentvalidation.StepAdvertIntervalV3 != 0):
			errs = append(errs, field.Invalid(ap, d.String(), msgAdvertV3))
		case version == 2 && (d < agentvalidation.MinAdvertIntervalV2 || d > agentvalidation.MaxAdvertIntervalV2 || d%time.Second != 0):
			errs = append(errs, field.Invalid(ap, d.String(), msgAdvertV2))
		}
	}
	if m := v.ChecksumMode; m != "" {
		cp := p.Child("checksumMode")
		switch {
		case m != v1alpha1.ChecksumPseudoHeader && m != v1alpha1.ChecksumRFC9568:
			errs = append(errs, field.NotSupported(cp, m, []v1alpha1.ChecksumMode{v1alpha1.ChecksumPseudoHeader, v1alpha1.ChecksumRFC9568}))
		case version == 2:
			errs = append(errs, field.Invalid(cp, m, msgChecksumV3))
		}
	}
	if r := v.PasswordSecretRef; r != nil {
		rp := p.Child("passwordSecretRef")
		if version != 2 {
			errs = append(errs, field.Invalid(rp, r.Namespace+"/"+r.Name, msgPasswordV2))
		}
		errs = append(errs, validateSecretRef(rp, r)...)
	}
	if v.PreemptDelay != nil {
		d := v.PreemptDelay.Duration
		dp := p.Child("preemptDelay")
		switch {
		case d < 0 || !wholeMillis(d):
			errs = append(errs, field.Invalid(dp, d.String(), msgDuration))
		case d > maxLBCPreemptDelay:
			errs = append(errs, field.Invalid(dp, d.String(), msgPreemptDelayMax))
		case d > 0 && v.Preempt != nil && !*v.Preempt:
			errs = append(errs, field.Invalid(dp, d.String(), msgPreemptDelayOff))
		}
	}
	return errs
}

// wholeMillis reports whether d is a non-negative whole number of
// milliseconds, the durations the CRD's pattern can express.
func wholeMillis(d time.Duration) bool {
	return d >= 0 && d%time.Millisecond == 0
}

func validateSecretRef(p *field.Path, r *v1alpha1.SecretKeyReference) field.ErrorList {
	var errs field.ErrorList
	if r.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), "must name the Secret's namespace"))
	} else if msg := agentvalidation.DNS1123Label(r.Namespace); msg != "" {
		errs = append(errs, field.Invalid(p.Child("namespace"), r.Namespace, msg))
	}
	if r.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must name the Secret"))
	} else if msg := agentvalidation.DNS1123Subdomain(r.Name); msg != "" {
		errs = append(errs, field.Invalid(p.Child("name"), r.Name, strings.Replace(msg, " (a Kubernetes node name)", "", 1)))
	}
	if r.Key == "" {
		errs = append(errs, field.Required(p.Child("key"), "must name the key in the Secret's data"))
	} else if len(r.Key) > 253 || !secretKeyRE.MatchString(r.Key) {
		errs = append(errs, field.Invalid(p.Child("key"), r.Key, "must be a Secret data key: at most 253 letters, digits, '-', '_' and '.'"))
	}
	return errs
}

func validateByNode(p *field.Path, byNode []v1alpha1.NodePriority) field.ErrorList {
	var errs field.ErrorList
	if byNode != nil && len(byNode) == 0 {
		errs = append(errs, field.Required(p, "must list at least one node, or be left out"))
	}
	if n := len(byNode); n > v1alpha1.MaxNodes {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxNodes))
	}
	seen := map[string]bool{}
	for i, np := range byNode {
		ip := p.Index(i)
		switch {
		case np.NodeName == "":
			errs = append(errs, field.Required(ip.Child("nodeName"), "must name a Node"))
		case agentvalidation.DNS1123Subdomain(np.NodeName) != "":
			errs = append(errs, field.Invalid(ip.Child("nodeName"), np.NodeName, agentvalidation.DNS1123Subdomain(np.NodeName)))
		case seen[np.NodeName]:
			errs = append(errs, field.Duplicate(ip.Child("nodeName"), np.NodeName))
		}
		seen[np.NodeName] = true
		if np.Priority < 1 || np.Priority > maxNodePriority {
			errs = append(errs, field.Invalid(ip.Child("priority"), np.Priority, "priority must be between 1 and 254 (255 is reserved for an address owner)"))
		}
	}
	return errs
}

type portProto struct {
	port  int32
	proto v1alpha1.Protocol
}

func validateServices(p *field.Path, svcs []v1alpha1.VirtualService, families map[agentvalidation.Family]bool) field.ErrorList {
	var errs field.ErrorList
	if n := len(svcs); n > v1alpha1.MaxServices {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxServices))
	}
	names := map[string]bool{}
	seen := map[portProto]bool{}
	for i := range svcs {
		s := &svcs[i]
		sp := p.Index(i)
		errs = append(errs, validateLabel(sp.Child("name"), s.Name, names)...)
		validPort := validatePort(sp.Child("port"), s.Port, &errs)

		proto := s.Protocol
		switch proto {
		case "":
			proto = v1alpha1.ProtocolTCP
		case v1alpha1.ProtocolTCP, v1alpha1.ProtocolUDP, v1alpha1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(sp.Child("protocol"), proto, []v1alpha1.Protocol{v1alpha1.ProtocolTCP, v1alpha1.ProtocolUDP, v1alpha1.ProtocolSCTP}))
		}
		if validPort {
			k := portProto{s.Port, proto}
			if seen[k] {
				errs = append(errs, field.Invalid(sp.Child("port"), s.Port, msgPortProtoOnce))
			}
			seen[k] = true
		}

		switch s.Scheduler {
		case "", v1alpha1.SchedulerRoundRobin, v1alpha1.SchedulerWeightedRoundRobin, v1alpha1.SchedulerLeastConnection,
			v1alpha1.SchedulerWeightedLeastConnection, v1alpha1.SchedulerSourceHashing, v1alpha1.SchedulerMaglevHashing:
		default:
			errs = append(errs, field.NotSupported(sp.Child("scheduler"), s.Scheduler, []v1alpha1.Scheduler{
				v1alpha1.SchedulerRoundRobin, v1alpha1.SchedulerWeightedRoundRobin, v1alpha1.SchedulerLeastConnection,
				v1alpha1.SchedulerWeightedLeastConnection, v1alpha1.SchedulerSourceHashing, v1alpha1.SchedulerMaglevHashing}))
		}
		if ps := s.PersistenceSeconds; ps != nil && (*ps < 1 || *ps > maxPersistence) {
			errs = append(errs, field.Invalid(sp.Child("persistenceSeconds"), *ps, fmt.Sprintf("persistenceSeconds must be between 1 and %d", maxPersistence)))
		}
		keepsPort := false
		switch s.Forwarding {
		case "", v1alpha1.ForwardingNAT:
		case v1alpha1.ForwardingDR, v1alpha1.ForwardingTunnel:
			keepsPort = true
		default:
			errs = append(errs, field.NotSupported(sp.Child("forwarding"), s.Forwarding, []v1alpha1.ForwardingMethod{v1alpha1.ForwardingNAT, v1alpha1.ForwardingDR, v1alpha1.ForwardingTunnel}))
		}
		errs = append(errs, validateBackends(sp.Child("backends"), s, keepsPort, families)...)
		if s.HealthCheck != nil {
			errs = append(errs, validateServiceHealthCheck(sp.Child("healthCheck"), s.HealthCheck)...)
		}
	}
	return errs
}

// validatePort checks a port, appending to errs; it reports whether the
// port is valid.
func validatePort(p *field.Path, port int32, errs *field.ErrorList) bool {
	if port < 1 || port > maxPort {
		*errs = append(*errs, field.Invalid(p, port, "port must be between 1 and 65535"))
		return false
	}
	return true
}

func validateWeight(p *field.Path, w *int32) field.ErrorList {
	if w != nil && (*w < 0 || *w > maxIPVSWeight) {
		return field.ErrorList{field.Invalid(p, *w, "weight must be between 0 (no new connections) and 65535")}
	}
	return nil
}

type addrPort struct {
	addr netip.Addr
	port int32
}

func validateBackends(p *field.Path, s *v1alpha1.VirtualService, keepsPort bool, families map[agentvalidation.Family]bool) field.ErrorList {
	var errs field.ErrorList
	b := &s.Backends
	if (b.SelectedNodes != nil) == (b.Static != nil) {
		errs = append(errs, field.Invalid(p, backendKinds(b), msgBackendsOne))
	}
	if sn := b.SelectedNodes; sn != nil {
		if sn.Port != nil {
			if validatePort(p.Child("selectedNodes", "port"), *sn.Port, &errs) && keepsPort && *sn.Port != s.Port {
				errs = append(errs, field.Invalid(p.Child("selectedNodes", "port"), *sn.Port, msgDRPort))
			}
		}
		errs = append(errs, validateWeight(p.Child("selectedNodes", "weight"), sn.Weight)...)
	}
	if b.Static == nil {
		return errs
	}
	sp := p.Child("static")
	switch n := len(b.Static); {
	case n == 0:
		errs = append(errs, field.Required(sp, fmt.Sprintf("must list 1 to %d backends, or be left out", v1alpha1.MaxStaticBackends)))
	case n > v1alpha1.MaxStaticBackends:
		errs = append(errs, field.TooMany(sp, n, v1alpha1.MaxStaticBackends))
	}
	seen := map[addrPort]bool{}
	for i := range b.Static {
		sb := &b.Static[i]
		ip := sp.Index(i)
		a, ok := validateLBCAddress(ip.Child("address"), sb.Address, &errs)
		if ok && !families[agentvalidation.FamilyOf(a)] && len(families) > 0 {
			errs = append(errs, field.Invalid(ip.Child("address"), sb.Address, msgStaticFamily))
		}
		port := s.Port // the effective port
		if sb.Port != nil {
			if validatePort(ip.Child("port"), *sb.Port, &errs) && keepsPort && *sb.Port != s.Port {
				errs = append(errs, field.Invalid(ip.Child("port"), *sb.Port, msgDRPort))
			}
			port = *sb.Port
		}
		errs = append(errs, validateWeight(ip.Child("weight"), sb.Weight)...)
		if ok {
			k := addrPort{a, port}
			if seen[k] {
				errs = append(errs, field.Invalid(ip, netip.AddrPortFrom(a, uint16(port)).String(), msgStaticOnce))
			}
			seen[k] = true
		}
	}
	return errs
}

func backendKinds(b *v1alpha1.Backends) string {
	var kinds []string
	if b.SelectedNodes != nil {
		kinds = append(kinds, "selectedNodes")
	}
	if b.Static != nil {
		kinds = append(kinds, "static")
	}
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, ", ")
}

func validateServiceHealthCheck(p *field.Path, hc *v1alpha1.ServiceHealthCheck) field.ErrorList {
	var errs field.ErrorList
	var kinds []string
	if hc.TCP != nil {
		kinds = append(kinds, "tcp")
		if hc.TCP.Port != nil {
			validatePort(p.Child("tcp", "port"), *hc.TCP.Port, &errs)
		}
	}
	if h := hc.HTTP; h != nil {
		kinds = append(kinds, "http")
		errs = append(errs, validateServiceHTTPCheck(p.Child("http"), h)...)
	}
	if hc.Exec != nil {
		kinds = append(kinds, "exec")
		errs = append(errs, validateLBCExec(p.Child("exec"), hc.Exec)...)
	}
	if len(kinds) != 1 {
		errs = append(errs, field.Invalid(p, kindList(kinds), msgHealthCheckOne))
	}
	errs = append(errs, validateTiming(p, &hc.ProbeTiming)...)
	return errs
}

func kindList(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, ", ")
}

func validateServiceHTTPCheck(p *field.Path, h *v1alpha1.ServiceHTTPCheck) field.ErrorList {
	var errs field.ErrorList
	scheme := h.Scheme
	switch scheme {
	case "":
		scheme = v1alpha1.URISchemeHTTP
	case v1alpha1.URISchemeHTTP, v1alpha1.URISchemeHTTPS:
	default:
		errs = append(errs, field.NotSupported(p.Child("scheme"), scheme, []v1alpha1.URIScheme{v1alpha1.URISchemeHTTP, v1alpha1.URISchemeHTTPS}))
	}
	if h.Port != nil {
		validatePort(p.Child("port"), *h.Port, &errs)
	}
	if h.Path != "" && (len(h.Path) > maxPathLen || !pathRE.MatchString(h.Path)) {
		errs = append(errs, field.Invalid(p.Child("path"), h.Path, "path must start with '/' and hold no whitespace, at most 1024 characters"))
	}
	errs = append(errs, validateExpectStatus(p.Child("expectStatus"), h.ExpectStatus)...)
	if h.CASecretRef != nil {
		errs = append(errs, validateSecretRef(p.Child("caSecretRef"), h.CASecretRef)...)
	}
	if h.CAFile != "" && !strings.HasPrefix(h.CAFile, "/") {
		errs = append(errs, field.Invalid(p.Child("caFile"), h.CAFile, "caFile must be an absolute path"))
	}
	n := 0
	for _, set := range []bool{h.CASecretRef != nil, h.CAFile != "", h.InsecureSkipVerify} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, field.Invalid(p, n, msgCAOne))
	}
	if scheme != v1alpha1.URISchemeHTTPS && (n > 0 || h.ServerName != "") {
		errs = append(errs, field.Invalid(p.Child("scheme"), scheme, msgTLSNeedsHTTPS))
	}
	return errs
}

func validateExpectStatus(p *field.Path, codes []int32) field.ErrorList {
	var errs field.ErrorList
	if codes != nil && len(codes) == 0 {
		errs = append(errs, field.Required(p, "must list at least one status code, or be left out (default [200])"))
	}
	if n := len(codes); n > v1alpha1.MaxExpectStatus {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxExpectStatus))
	}
	for i, c := range codes {
		if c < 100 || c > 599 {
			errs = append(errs, field.Invalid(p.Index(i), c, "must be an HTTP status code, 100 to 599"))
		}
	}
	return errs
}

func validateLBCExec(p *field.Path, e *v1alpha1.ExecCheck) field.ErrorList {
	var errs field.ErrorList
	cp := p.Child("command")
	switch n := len(e.Command); {
	case n == 0:
		return field.ErrorList{field.Required(cp, "must list the program (an absolute path) and its arguments")}
	case n > v1alpha1.MaxCommandArgs:
		errs = append(errs, field.TooMany(cp, n, v1alpha1.MaxCommandArgs))
	}
	if !strings.HasPrefix(e.Command[0], "/") {
		errs = append(errs, field.Invalid(cp.Index(0), e.Command[0], msgExecAbsolute))
	}
	return errs
}

func validateTiming(p *field.Path, t *v1alpha1.ProbeTiming) field.ErrorList {
	var errs field.ErrorList
	interval := 2 * time.Second // v1alpha1.DefaultCheckInterval
	if t.Interval != nil {
		interval = t.Interval.Duration
		switch {
		case !wholeMillis(interval):
			errs = append(errs, field.Invalid(p.Child("interval"), interval.String(), msgDuration))
		case interval < agentvalidation.MinCheckInterval || interval > agentvalidation.MaxCheckInterval:
			errs = append(errs, field.Invalid(p.Child("interval"), interval.String(), msgInterval))
		}
	}
	if t.Timeout != nil {
		d := t.Timeout.Duration
		switch {
		case d <= 0:
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), msgTimeoutPositive))
		case !wholeMillis(d):
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), msgDuration))
		case d > interval:
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), msgTimeoutInterval))
		}
	}
	for _, rf := range []struct {
		name string
		v    *int32
	}{{"rise", t.Rise}, {"fall", t.Fall}} {
		if rf.v != nil && (*rf.v < 1 || *rf.v > agentvalidation.MaxRiseFall) {
			errs = append(errs, field.Invalid(p.Child(rf.name), *rf.v, fmt.Sprintf("%s must be between 1 and %d", rf.name, agentvalidation.MaxRiseFall)))
		}
	}
	return errs
}

func validateLBCTrackChecks(p *field.Path, checks []v1alpha1.TrackCheck) field.ErrorList {
	var errs field.ErrorList
	if n := len(checks); n > v1alpha1.MaxTrackChecks {
		errs = append(errs, field.TooMany(p, n, v1alpha1.MaxTrackChecks))
	}
	names := map[string]bool{}
	for i := range checks {
		c := &checks[i]
		cp := p.Index(i)
		errs = append(errs, validateLabel(cp.Child("name"), c.Name, names)...)
		if c.Weight < -agentvalidation.MaxWeight || c.Weight > agentvalidation.MaxWeight {
			errs = append(errs, field.Invalid(cp.Child("weight"), c.Weight, "weight must be between -254 and 254 (0: give the virtual IPs up while the check fails)"))
		}
		var kinds []string
		if c.TCP != nil {
			kinds = append(kinds, "tcp")
			if _, err := netip.ParseAddrPort(c.TCP.Address); err != nil || strings.HasSuffix(c.TCP.Address, ":0") {
				errs = append(errs, field.Invalid(cp.Child("tcp", "address"), c.TCP.Address, msgTCPAddress))
			}
		}
		if h := c.HTTP; h != nil {
			kinds = append(kinds, "http")
			errs = append(errs, validateLBCHTTPCheck(cp.Child("http"), h)...)
		}
		if c.Exec != nil {
			kinds = append(kinds, "exec")
			errs = append(errs, validateLBCExec(cp.Child("exec"), c.Exec)...)
		}
		if c.Interface != nil {
			kinds = append(kinds, "interface")
			errs = append(errs, agentvalidation.ValidateInterfaceName(cp.Child("interface", "name"), c.Interface.Name)...)
		}
		if len(kinds) != 1 {
			errs = append(errs, field.Invalid(cp, kindList(kinds), msgTrackCheckOne))
		}
		errs = append(errs, validateTiming(cp, &c.ProbeTiming)...)
	}
	return errs
}

func validateLBCHTTPCheck(p *field.Path, h *v1alpha1.HTTPCheck) field.ErrorList {
	var errs field.ErrorList
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Invalid(p.Child("url"), h.URL, msgURL))
		u = nil
	}
	errs = append(errs, validateExpectStatus(p.Child("expectStatus"), h.ExpectStatus)...)
	if h.CAFile != "" && !strings.HasPrefix(h.CAFile, "/") {
		errs = append(errs, field.Invalid(p.Child("caFile"), h.CAFile, "caFile must be an absolute path"))
	}
	if h.CAFile != "" && h.InsecureSkipVerify {
		errs = append(errs, field.Invalid(p.Child("insecureSkipVerify"), true, msgCAInsecure))
	}
	if u != nil && u.Scheme != "https" && (h.CAFile != "" || h.InsecureSkipVerify || h.ServerName != "") {
		errs = append(errs, field.Invalid(p.Child("url"), h.URL, msgTLSNeedsHTTPSURL))
	}
	return errs
}

// ValidateLoadBalancerConfigSet checks what no single object's validation
// (nor the CRD) can: that the LoadBalancerConfigs of one cluster do not
// share a virtual IP address, nor a VRID in one address family on one
// interface (an entry without interface may be on any interface). Such a
// collision makes two virtual routers fight on the same segment. The
// operator runs it over every LoadBalancerConfig before rendering (and
// reports the later object, by name, as Degraded); `vipvs render` runs it
// over its input. Each error's path starts with the object's name, e.g.
// loadBalancerConfig[ingress].spec.virtualIPs[0].vrid. Objects are
// compared in the order given; invalid addresses are skipped (their own
// validation reports them).
func ValidateLoadBalancerConfigSet(lbcs []v1alpha1.LoadBalancerConfig) field.ErrorList {
	type owner struct {
		key  vipKey
		addr netip.Addr
		path *field.Path
		lbc  string
	}
	var errs field.ErrorList
	var seen []owner
	for i := range lbcs {
		c := &lbcs[i]
		p := field.NewPath("loadBalancerConfig").Key(c.Name).Child("spec", "virtualIPs")
		var mine []owner
		for j, v := range c.Spec.VirtualIPs {
			a, err := netip.ParseAddr(v.Address)
			if err != nil {
				continue
			}
			o := owner{vipKey{v.VRID, agentvalidation.FamilyOf(a), v.Interface}, a, p.Index(j), c.Name}
			for _, s := range seen {
				if s.addr == a {
					errs = append(errs, field.Invalid(o.path.Child("address"), v.Address, fmt.Sprintf("address is already a virtual IP of LoadBalancerConfig %q (%s): a virtual IP belongs to one LoadBalancerConfig", s.lbc, s.path)))
				}
				if o.key.vrid != 0 && s.key.vrid == o.key.vrid && s.key.fam == o.key.fam && (s.key.iface == "" || o.key.iface == "" || s.key.iface == o.key.iface) {
					errs = append(errs, field.Invalid(o.path.Child("vrid"), v.VRID, fmt.Sprintf("vrid is already used by LoadBalancerConfig %q (%s) in the same address family: VRIDs must be unique per segment across LoadBalancerConfigs", s.lbc, s.path)))
				}
			}
			mine = append(mine, o)
		}
		seen = append(seen, mine...)
	}
	return errs
}

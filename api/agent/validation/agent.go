// Package validation checks the agent's configuration file
// (agent.vipvs.io/v1alpha1 AgentConfig). It is the one validation of that
// API: the agent and `vipvs render` call the same function, so both reject
// the same input with the same message, and each message names the field
// path, the value and what is allowed
// (k8s.io/apimachinery/pkg/util/validation/field). It imports neither the
// LoadBalancerConfig types nor a Kubernetes client, so that the agent
// binary (agentd/) links neither; api/validation, the LoadBalancerConfig's
// validation, uses its address families, interface names and interval
// limits.
package validation

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Limits of the advertisement interval, from the packet formats: VRRPv3
// carries centiseconds in 12 bits, VRRPv2 seconds in 8 bits.
const (
	// MinAdvertIntervalV3 is the shortest VRRPv3 interval.
	MinAdvertIntervalV3 = 10 * time.Millisecond
	// MaxAdvertIntervalV3 is the longest VRRPv3 interval.
	MaxAdvertIntervalV3 = 4095 * 10 * time.Millisecond
	// StepAdvertIntervalV3 is the VRRPv3 interval's unit.
	StepAdvertIntervalV3 = 10 * time.Millisecond
	// MinAdvertIntervalV2 is the shortest VRRPv2 interval.
	MinAdvertIntervalV2 = time.Second
	// MaxAdvertIntervalV2 is the longest VRRPv2 interval.
	MaxAdvertIntervalV2 = 255 * time.Second
)

// Limits of the agent configuration that are not defaults.
const (
	maxPreemptDelay    = time.Hour
	maxNotifyTimeout   = time.Hour
	maxAnnounceCount   = 100
	maxRepeatDelay     = time.Minute
	minRefreshInterval = time.Second
	maxRefreshInterval = time.Hour
	maxIfNameLen       = 15  // IFNAMSIZ - 1
	maxSocketPathLen   = 107 // sizeof(sun_path) - 1
	redacted           = "<redacted>"
)

// Family is the address family of a virtual router, known from its first
// valid VIP.
type Family int

// The address families.
const (
	// FamilyUnknown is the family of a router without a valid VIP.
	FamilyUnknown Family = iota
	// FamilyIPv4 is IPv4.
	FamilyIPv4
	// FamilyIPv6 is IPv6.
	FamilyIPv6
)

// String returns "IPv4", "IPv6" or "unknown".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "IPv4"
	case FamilyIPv6:
		return "IPv6"
	}
	return "unknown"
}

// FamilyOf returns the family of a valid address.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// vipOwner is where a VIP address is first listed.
type vipOwner struct {
	path   *field.Path
	router int
}

// ValidateAgentConfig checks an agent configuration and returns every
// problem found, each naming its field path and value, e.g.
//
//	virtualRouters[1].vrid: Invalid value: 0: must be between 1 and 255
//
// It accepts both a configuration with defaults applied
// (agentv1alpha1.SetDefaults) and one without: an unset optional field is
// valid, and cross-field checks use its default. The authPassword value is
// never included in a message.
func ValidateAgentConfig(c *agentv1alpha1.AgentConfig) field.ErrorList {
	if c == nil {
		return field.ErrorList{field.Required(field.NewPath("agentConfig"), "the configuration is empty")}
	}
	var errs field.ErrorList
	switch c.APIVersion {
	case agentv1alpha1.GroupVersion:
	case "":
		errs = append(errs, field.Required(field.NewPath("apiVersion"), fmt.Sprintf("must be %q", agentv1alpha1.GroupVersion)))
	default:
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{agentv1alpha1.GroupVersion}))
	}
	switch c.Kind {
	case agentv1alpha1.Kind:
	case "":
		errs = append(errs, field.Required(field.NewPath("kind"), fmt.Sprintf("must be %q", agentv1alpha1.Kind)))
	default:
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{agentv1alpha1.Kind}))
	}
	if c.NodeName != "" {
		if msg := DNS1123Subdomain(c.NodeName); msg != "" {
			errs = append(errs, field.Invalid(field.NewPath("nodeName"), c.NodeName, msg))
		}
	}
	if c.Interface != "" {
		errs = append(errs, ValidateInterfaceName(field.NewPath("interface"), c.Interface)...)
	}
	errs = append(errs, validateStatus(field.NewPath("status"), c.Status)...)
	errs = append(errs, validateNotify(field.NewPath("notify"), c.Notify)...)
	errs = append(errs, validateIPVS(field.NewPath("ipvs"), c.IPVS)...)
	checkNames, cerrs := validateChecks(field.NewPath("checks"), c.Checks)
	errs = append(errs, cerrs...)
	errs = append(errs, validateVirtualRouters(field.NewPath("virtualRouters"), c)...)
	errs = append(errs, validateModes(field.NewPath("virtualRouters"), c)...)
	errs = append(errs, validateBGP(field.NewPath("bgp"), c.BGP)...)
	for i := range c.VirtualRouters {
		errs = append(errs, validateTrackChecks(field.NewPath("virtualRouters").Index(i), &c.VirtualRouters[i], checkNames)...)
	}
	return errs
}

func validateStatus(p *field.Path, s *agentv1alpha1.Status) field.ErrorList {
	if s == nil {
		return nil
	}
	var errs field.ErrorList
	if s.ListenAddress != nil && *s.ListenAddress != "" {
		if msg := hostPort(*s.ListenAddress); msg != "" {
			errs = append(errs, field.Invalid(p.Child("listenAddress"), *s.ListenAddress, msg))
		}
	}
	if s.SocketPath != nil && *s.SocketPath != "" {
		sp := p.Child("socketPath")
		switch path := *s.SocketPath; {
		case !filepath.IsAbs(path):
			errs = append(errs, field.Invalid(sp, path, `must be an absolute path, or "" to disable the socket`))
		case len(path) > maxSocketPathLen:
			errs = append(errs, field.Invalid(sp, path, fmt.Sprintf("must be at most %d bytes long (the limit of a unix socket address)", maxSocketPathLen)))
		case strings.ContainsRune(path, 0):
			errs = append(errs, field.Invalid(sp, path, "must not contain a NUL character"))
		}
	}
	return errs
}

// hostPort checks a listen address; it returns what is wrong, or "".
func hostPort(s string) string {
	const form = `must be host:port with an IP address or an empty host (all addresses) and a port between 1 and 65535, e.g. "127.0.0.1:9444" or "[::1]:9444", or "" to disable the server`
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return form
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return form
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return form
	}
	return ""
}

func validateNotify(p *field.Path, n *agentv1alpha1.Notify) field.ErrorList {
	if n == nil {
		return nil
	}
	var errs field.ErrorList
	if len(n.Command)+len(n.Master)+len(n.Backup)+len(n.Fault)+len(n.Stop) == 0 {
		errs = append(errs, field.Required(p.Child("command"), "must list the program (an absolute path) and its arguments, or set master, backup, fault or stop; omit notify to run no command"))
	}
	for _, c := range []struct {
		name string
		argv []string
	}{{"command", n.Command}, {"master", n.Master}, {"backup", n.Backup}, {"fault", n.Fault}, {"stop", n.Stop}} {
		cp := p.Child(c.name)
		if len(c.argv) > 0 && !filepath.IsAbs(c.argv[0]) {
			errs = append(errs, field.Invalid(cp.Index(0), c.argv[0], "must be the absolute path of the program: the command runs without a shell or a PATH lookup"))
		}
		for i, arg := range c.argv {
			if strings.ContainsRune(arg, 0) {
				errs = append(errs, field.Invalid(cp.Index(i), arg, "must not contain a NUL character"))
			}
		}
	}
	if n.Timeout != nil {
		if d := n.Timeout.Duration; d <= 0 || d > maxNotifyTimeout {
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), fmt.Sprintf("must be greater than 0 and at most %v", maxNotifyTimeout)))
		}
	}
	return errs
}

// routerInfo is what the cross-router checks need to know about a router.
// autoInterface stands for the interface of a router that names none: the
// one whose subnet holds its first VIP, found by the agent.
const autoInterface = "(the interface whose subnet holds the VIP)"

type routerInfo struct {
	iface  string
	family Family
}

func validateVirtualRouters(p *field.Path, c *agentv1alpha1.AgentConfig) field.ErrorList {
	var errs field.ErrorList
	switch n := len(c.VirtualRouters); {
	case n == 0:
		return field.ErrorList{field.Required(p, fmt.Sprintf("must list 1 to %d virtual routers", agentv1alpha1.MaxVirtualRouters))}
	case n > agentv1alpha1.MaxVirtualRouters:
		errs = append(errs, field.TooMany(p, n, agentv1alpha1.MaxVirtualRouters))
	}

	// Every VIP address of the file, for the uniqueness of VIPs and the
	// checks that peers and source addresses are not VIPs.
	vips := map[netip.Addr]vipOwner{}
	for i, r := range c.VirtualRouters {
		for j, s := range r.VIPs {
			if pfx, msg := parseVIP(s); msg == "" {
				vp := p.Index(i).Child("vips").Index(j)
				if first, ok := vips[pfx.Addr()]; ok {
					d := field.Duplicate(vp, s)
					d.Detail = fmt.Sprintf("the address is already a VIP at %s; a VIP belongs to one virtual router, once", first.path)
					errs = append(errs, d)
					continue
				}
				vips[pfx.Addr()] = vipOwner{path: vp, router: i}
			}
		}
	}

	names := map[string]*field.Path{}
	type vridKey struct {
		iface  string
		family Family
		vrid   int32
	}
	vrids := map[vridKey]*field.Path{}
	for i := range c.VirtualRouters {
		r := &c.VirtualRouters[i]
		rp := p.Index(i)
		info, rerrs := validateVirtualRouter(rp, r, c.Interface, vips)
		errs = append(errs, rerrs...)
		if r.Name != "" {
			if first, ok := names[r.Name]; ok {
				d := field.Duplicate(rp.Child("name"), r.Name)
				d.Detail = fmt.Sprintf("already the name of %s", first)
				errs = append(errs, d)
			} else {
				names[r.Name] = rp
			}
		}
		if info.iface != "" && info.family != FamilyUnknown && r.VRID >= 1 && r.VRID <= 255 {
			k := vridKey{iface: info.iface, family: info.family, vrid: r.VRID}
			if first, ok := vrids[k]; ok {
				d := field.Duplicate(rp.Child("vrid"), r.VRID)
				d.Detail = fmt.Sprintf("already the VRID of %s on interface %s (%s); a VRID must be unique per interface and address family", first, info.iface, info.family)
				errs = append(errs, d)
			} else {
				vrids[k] = rp
			}
		}
	}
	return errs
}

func validateVirtualRouter(p *field.Path, r *agentv1alpha1.VirtualRouter, defaultIface string, vips map[netip.Addr]vipOwner) (routerInfo, field.ErrorList) {
	var errs field.ErrorList
	var info routerInfo

	if r.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters"))
	} else if msg := DNS1123Label(r.Name); msg != "" {
		errs = append(errs, field.Invalid(p.Child("name"), r.Name, msg))
	}
	if vrrpRouter(r) && (r.VRID < 1 || r.VRID > 255) {
		errs = append(errs, field.Invalid(p.Child("vrid"), r.VRID, "must be between 1 and 255"))
	}

	switch {
	case r.Interface != "":
		ierrs := ValidateInterfaceName(p.Child("interface"), r.Interface)
		errs = append(errs, ierrs...)
		if len(ierrs) == 0 {
			info.iface = r.Interface
		}
	case defaultIface != "":
		info.iface = defaultIface
	default:
		// The agent picks the interface whose subnet holds the first VIP;
		// routers without an interface share the key autoInterface for the
		// VRID uniqueness check.
		info.iface = autoInterface
	}

	version := int32(agentv1alpha1.DefaultVersion)
	if r.Version != nil {
		version = *r.Version
		if version != 2 && version != 3 {
			errs = append(errs, field.Invalid(p.Child("version"), version, "must be 2 or 3"))
		}
	}

	// VIPs, which give the router its family.
	vp := p.Child("vips")
	switch n := len(r.VIPs); {
	case n == 0:
		errs = append(errs, field.Required(vp, fmt.Sprintf("must list 1 to %d addresses of one family", agentv1alpha1.MaxVIPs)))
	case n > agentv1alpha1.MaxVIPs:
		errs = append(errs, field.TooMany(vp, n, agentv1alpha1.MaxVIPs))
	}
	var firstVIP *field.Path
	for j, s := range r.VIPs {
		pfx, msg := parseVIP(s)
		if msg != "" {
			errs = append(errs, field.Invalid(vp.Index(j), s, msg))
			continue
		}
		f := FamilyOf(pfx.Addr())
		if info.family == FamilyUnknown {
			info.family, firstVIP = f, vp.Index(j)
		} else if f != info.family {
			errs = append(errs, field.Invalid(vp.Index(j), s, fmt.Sprintf("must be %s like %s: a virtual router carries addresses of one family (use one router per family for dual stack)", info.family, firstVIP)))
		}
	}

	if version == 2 && info.family == FamilyIPv6 {
		errs = append(errs, field.Invalid(p.Child("version"), version, "VRRP version 2 supports IPv4 only: use version 3 for IPv6 VIPs"))
	}

	if r.Priority != nil && (*r.Priority < 1 || *r.Priority > 255) {
		errs = append(errs, field.Invalid(p.Child("priority"), *r.Priority, "must be between 1 and 255 (255: this node owns the VIPs)"))
	}

	if r.AdvertInterval != nil {
		d := r.AdvertInterval.Duration
		ap := p.Child("advertInterval")
		switch version {
		case 3:
			if d < MinAdvertIntervalV3 || d > MaxAdvertIntervalV3 || d%StepAdvertIntervalV3 != 0 {
				errs = append(errs, field.Invalid(ap, d.String(), fmt.Sprintf("must be between %v and %v in steps of %v for VRRP version 3", MinAdvertIntervalV3, MaxAdvertIntervalV3, StepAdvertIntervalV3)))
			}
		case 2:
			if d < MinAdvertIntervalV2 || d > MaxAdvertIntervalV2 || d%time.Second != 0 {
				errs = append(errs, field.Invalid(ap, d.String(), fmt.Sprintf("must be between %v and %v in whole seconds for VRRP version 2", MinAdvertIntervalV2, MaxAdvertIntervalV2)))
			}
		}
	}

	if r.PreemptDelay != nil {
		d := r.PreemptDelay.Duration
		pp := p.Child("preemptDelay")
		switch {
		case d < 0 || d > maxPreemptDelay:
			errs = append(errs, field.Invalid(pp, d.String(), fmt.Sprintf("must be between 0s and %v", maxPreemptDelay)))
		case d > 0 && r.Preempt != nil && !*r.Preempt:
			errs = append(errs, field.Invalid(pp, d.String(), "must be 0s when preempt is false: a router that does not preempt has nothing to delay"))
		}
	}

	if m := r.ChecksumMode; m != "" {
		cp := p.Child("checksumMode")
		switch {
		case m != agentv1alpha1.ChecksumPseudoHeader && m != agentv1alpha1.ChecksumRFC9568:
			errs = append(errs, field.NotSupported(cp, m, []agentv1alpha1.ChecksumMode{agentv1alpha1.ChecksumPseudoHeader, agentv1alpha1.ChecksumRFC9568}))
		case version == 2:
			errs = append(errs, field.Invalid(cp, m, "applies only to VRRP version 3 with IPv4 (version 2 has one checksum): remove it"))
		case info.family == FamilyIPv6:
			errs = append(errs, field.Invalid(cp, m, "applies only to VRRP version 3 with IPv4 (IPv6 always includes the pseudo-header): remove it"))
		}
	}

	if pw := r.AuthPassword; pw != "" {
		pp := p.Child("authPassword")
		if version != 2 {
			errs = append(errs, field.Invalid(pp, redacted, "applies only to VRRP version 2 (version 3 has no authentication): remove it or set version: 2"))
		}
		if len(pw) > agentv1alpha1.MaxAuthPasswordLength {
			errs = append(errs, field.Invalid(pp, redacted, fmt.Sprintf("must be at most %d bytes long (is %d)", agentv1alpha1.MaxAuthPasswordLength, len(pw))))
		}
	}

	var src netip.Addr
	if s := r.SourceAddress; s != "" {
		sp := p.Child("sourceAddress")
		a, msg := parseNodeAddr(s)
		switch {
		case msg != "":
			errs = append(errs, field.Invalid(sp, s, msg))
		case info.family != FamilyUnknown && FamilyOf(a) != info.family:
			errs = append(errs, field.Invalid(sp, s, fmt.Sprintf("must be %s, the family of the VIPs", info.family)))
		default:
			if owner, ok := vips[a]; ok {
				errs = append(errs, field.Invalid(sp, s, fmt.Sprintf("must be an address of this node, not a VIP (%s)", owner.path)))
			} else {
				src = a
			}
		}
	}

	errs = append(errs, validatePeers(p.Child("unicastPeers"), r.UnicastPeers, info.family, src, vips)...)
	mp := p.Child("multicastPeers")
	errs = append(errs, validatePeers(mp, r.MulticastPeers, info.family, src, vips)...)
	if len(r.MulticastPeers) > 0 && len(r.UnicastPeers) > 0 {
		errs = append(errs, field.Forbidden(mp, "only for multicast mode: with unicastPeers only those peers are heard already; remove multicastPeers"))
	}

	errs = append(errs, validateAnnounce(p.Child("announce"), r.Announce)...)
	errs = append(errs, validateVirtualServices(p.Child("virtualServices"), r.VirtualServices, info.family)...)
	return info, errs
}

func validateAnnounce(p *field.Path, a *agentv1alpha1.Announce) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	if a.Count != nil && (*a.Count < 1 || *a.Count > maxAnnounceCount) {
		errs = append(errs, field.Invalid(p.Child("count"), *a.Count, fmt.Sprintf("must be between 1 and %d", maxAnnounceCount)))
	}
	if a.RepeatDelay != nil {
		if d := a.RepeatDelay.Duration; d < 0 || d > maxRepeatDelay {
			errs = append(errs, field.Invalid(p.Child("repeatDelay"), d.String(), fmt.Sprintf("must be between 0s (no second burst) and %v", maxRepeatDelay)))
		}
	}
	if a.RefreshInterval != nil {
		if d := a.RefreshInterval.Duration; d != 0 && (d < minRefreshInterval || d > maxRefreshInterval) {
			errs = append(errs, field.Invalid(p.Child("refreshInterval"), d.String(), fmt.Sprintf("must be 0s (off) or between %v and %v", minRefreshInterval, maxRefreshInterval)))
		}
	}
	return errs
}

// parseVIP parses a VIP, "address" or "address/length"; it returns what is
// wrong, or "".
func parseVIP(s string) (netip.Prefix, string) {
	const form = `must be an IP address with an optional prefix length, e.g. "192.0.2.100", "192.0.2.100/24" or "2001:db8::100/64"`
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return pfx, form
		}
		pfx = p
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return pfx, form
		}
		if a.Zone() != "" {
			return pfx, "must not have a zone: the router's interface is the zone"
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	a := pfx.Addr()
	switch {
	case a.Is4In6():
		return pfx, "must not be an IPv4-mapped IPv6 address: write IPv4 addresses in dotted decimal"
	case pfx.Bits() == 0:
		return pfx, "must have a prefix length of at least 1"
	case a.IsUnspecified():
		return pfx, "must not be the unspecified address"
	case a.IsLoopback():
		return pfx, "must not be a loopback address"
	case a.IsMulticast():
		return pfx, "must not be a multicast address"
	case a.IsLinkLocalUnicast():
		return pfx, "must not be a link-local address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return pfx, "must not be the broadcast address"
	}
	return pfx, ""
}

// parseNodeAddr parses a source or peer address; it returns what is wrong,
// or "".
func parseNodeAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, `must be an IP address without prefix length, e.g. "192.0.2.11" or "fe80::11"`
	case a.Zone() != "":
		return a, "must not have a zone: the router's interface is the zone"
	case a.Is4In6():
		return a, "must not be an IPv4-mapped IPv6 address: write IPv4 addresses in dotted decimal"
	case a.IsUnspecified():
		return a, "must not be the unspecified address"
	case a.IsLoopback():
		return a, "must not be a loopback address"
	case a.IsMulticast():
		return a, "must not be a multicast address: leave unicastPeers empty for multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, "must not be the broadcast address"
	}
	return a, ""
}

// ValidateInterfaceName checks a Linux interface name as the kernel does
// (dev_valid_name).
func ValidateInterfaceName(p *field.Path, name string) field.ErrorList {
	const rule = "must be a Linux interface name: 1 to 15 bytes, not \".\" or \"..\", without '/', ':', NUL or whitespace"
	if len(name) == 0 || len(name) > maxIfNameLen || name == "." || name == ".." {
		return field.ErrorList{field.Invalid(p, name, rule)}
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/', ':', 0, ' ', '\t', '\n', '\v', '\f', '\r':
			return field.ErrorList{field.Invalid(p, name, rule)}
		}
	}
	return nil
}

// DNS1123Label checks a DNS-1123 label; it returns what is wrong, or "".
func DNS1123Label(s string) string {
	const rule = "must be a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return rule
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return rule
		}
	}
	return ""
}

// DNS1123Subdomain checks a DNS-1123 subdomain (the form of a Kubernetes
// node name); it returns what is wrong, or "".
func DNS1123Subdomain(s string) string {
	const rule = "must be a DNS-1123 subdomain (a Kubernetes node name): at most 253 characters, dot-separated labels of lower-case letters, digits and '-', each starting and ending with a letter or digit"
	if len(s) == 0 || len(s) > 253 {
		return rule
	}
	for _, label := range strings.Split(s, ".") {
		// As Kubernetes, limit the whole name, not each label.
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return rule
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return rule
			}
		}
	}
	return ""
}

// validatePeers checks a list of the other nodes' addresses (unicastPeers,
// multicastPeers): at most MaxUnicastPeers, distinct, in the VIPs' family,
// neither the router's source address nor a VIP.
func validatePeers(pp *field.Path, list []string, fam Family, src netip.Addr, vips map[netip.Addr]vipOwner) field.ErrorList {
	var errs field.ErrorList
	if n := len(list); n > agentv1alpha1.MaxUnicastPeers {
		errs = append(errs, field.TooMany(pp, n, agentv1alpha1.MaxUnicastPeers))
	}
	peers := map[netip.Addr]int{}
	for k, s := range list {
		kp := pp.Index(k)
		a, msg := parseNodeAddr(s)
		if msg != "" {
			errs = append(errs, field.Invalid(kp, s, msg))
			continue
		}
		if fam != FamilyUnknown && FamilyOf(a) != fam {
			errs = append(errs, field.Invalid(kp, s, fmt.Sprintf("must be %s, the family of the VIPs", fam)))
			continue
		}
		if first, ok := peers[a]; ok {
			d := field.Duplicate(kp, s)
			d.Detail = fmt.Sprintf("already listed as %s", pp.Index(first))
			errs = append(errs, d)
			continue
		}
		peers[a] = k
		if a == src {
			errs = append(errs, field.Invalid(kp, s, "must not be the router's own sourceAddress: list the other nodes"))
		}
		if owner, ok := vips[a]; ok {
			errs = append(errs, field.Invalid(kp, s, fmt.Sprintf("must be a node address, not a VIP (%s)", owner.path)))
		}
	}
	return errs
}

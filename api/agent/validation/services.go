package validation

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

var (
	agentProtocols   = []string{string(agentv1alpha1.ProtocolTCP), string(agentv1alpha1.ProtocolUDP), string(agentv1alpha1.ProtocolSCTP)}
	agentSchedulers  = []string{"rr", "wrr", "lc", "wlc", "sh", "mh"}
	agentForwardings = []string{string(agentv1alpha1.ForwardingNAT), string(agentv1alpha1.ForwardingDR), string(agentv1alpha1.ForwardingTunnel)}
)

const (
	minResyncInterval   = time.Second
	maxResyncInterval   = time.Hour
	maxCheckConcurrency = 1024
)

func validateIPVS(p *field.Path, v *agentv1alpha1.IPVS) field.ErrorList {
	if v == nil {
		return nil
	}
	var errs field.ErrorList
	if v.ResyncInterval != nil {
		if d := v.ResyncInterval.Duration; d < minResyncInterval || d > maxResyncInterval {
			errs = append(errs, field.Invalid(p.Child("resyncInterval"), d.String(), fmt.Sprintf("must be between %v and %v", minResyncInterval, maxResyncInterval)))
		}
	}
	if c := v.CheckConcurrency; c != nil && (*c < 1 || *c > maxCheckConcurrency) {
		errs = append(errs, field.Invalid(p.Child("checkConcurrency"), *c, fmt.Sprintf("must be between 1 and %d", maxCheckConcurrency)))
	}
	errs = append(errs, ValidateConnectionSync(p.Child("connectionSync"), v.ConnectionSync)...)
	return errs
}

// validateVirtualServices checks a router's virtualServices; fam is the
// family of its VIPs (FamilyUnknown when they are invalid).
func validateVirtualServices(p *field.Path, svcs []agentv1alpha1.VirtualService, fam Family) field.ErrorList {
	var errs field.ErrorList
	if n := len(svcs); n > agentv1alpha1.MaxVirtualServices {
		errs = append(errs, field.TooMany(p, n, agentv1alpha1.MaxVirtualServices))
	}
	names := map[string]*field.Path{}
	keys := map[string]*field.Path{}
	for i := range svcs {
		s := &svcs[i]
		sp := p.Index(i)
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(sp.Child("name"), `must name the service (a DNS-1123 label, e.g. "api")`))
		case DNS1123Label(s.Name) != "":
			errs = append(errs, field.Invalid(sp.Child("name"), s.Name, DNS1123Label(s.Name)))
		case names[s.Name] != nil:
			d := field.Duplicate(sp.Child("name"), s.Name)
			d.Detail = fmt.Sprintf("already the name of %s", names[s.Name])
			errs = append(errs, d)
		default:
			names[s.Name] = sp
		}
		portOK := validAgentPort(sp.Child("port"), s.Port, &errs)
		proto := s.Protocol
		if proto == "" {
			proto = agentv1alpha1.ProtocolTCP
		}
		if !slices.Contains(agentProtocols, string(proto)) {
			errs = append(errs, field.NotSupported(sp.Child("protocol"), s.Protocol, agentProtocols))
		}
		if portOK {
			k := fmt.Sprintf("%s/%d", proto, s.Port)
			if first, ok := keys[k]; ok {
				d := field.Duplicate(sp.Child("port"), s.Port)
				d.Detail = fmt.Sprintf("%s port %d is already the service %s: a VIP offers one service per protocol and port", proto, s.Port, first)
				errs = append(errs, d)
			} else {
				keys[k] = sp
			}
		}
		if s.Scheduler != "" && !slices.Contains(agentSchedulers, s.Scheduler) {
			errs = append(errs, field.NotSupported(sp.Child("scheduler"), s.Scheduler, agentSchedulers))
		}
		if s.Persistence != nil {
			d := s.Persistence.Duration
			switch {
			case d < time.Second || d > agentv1alpha1.MaxPersistence:
				errs = append(errs, field.Invalid(sp.Child("persistence"), d.String(), fmt.Sprintf("must be between 1s and %v", agentv1alpha1.MaxPersistence)))
			case d%time.Second != 0:
				errs = append(errs, field.Invalid(sp.Child("persistence"), d.String(), "must be whole seconds: IPVS counts persistence in seconds"))
			}
		}
		fwd := s.Forwarding
		if fwd == "" {
			fwd = agentv1alpha1.ForwardingNAT
		}
		if !slices.Contains(agentForwardings, string(fwd)) {
			errs = append(errs, field.NotSupported(sp.Child("forwarding"), s.Forwarding, agentForwardings))
		}
		errs = append(errs, validateRealServers(sp.Child("realServers"), s, fwd, fam)...)
		if s.HealthCheck != nil {
			errs = append(errs, validateRealServerCheck(sp.Child("healthCheck"), s.HealthCheck)...)
		}
	}
	return errs
}

func validateRealServers(p *field.Path, s *agentv1alpha1.VirtualService, fwd agentv1alpha1.Forwarding, fam Family) field.ErrorList {
	var errs field.ErrorList
	switch n := len(s.RealServers); {
	case n == 0:
		return field.ErrorList{field.Required(p, fmt.Sprintf("must list 1 to %d real servers", agentv1alpha1.MaxRealServers))}
	case n > agentv1alpha1.MaxRealServers:
		errs = append(errs, field.TooMany(p, n, agentv1alpha1.MaxRealServers))
	}
	seen := map[netip.AddrPort]*field.Path{}
	for i := range s.RealServers {
		r := &s.RealServers[i]
		rp := p.Index(i)
		a, err := netip.ParseAddr(r.Address)
		switch {
		case r.Address == "":
			errs = append(errs, field.Required(rp.Child("address"), "must be the real server's IP address"))
			continue
		case err != nil || a.Zone() != "":
			errs = append(errs, field.Invalid(rp.Child("address"), r.Address, "must be an IP address without prefix length or zone, e.g. 192.0.2.11"))
			continue
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			errs = append(errs, field.Invalid(rp.Child("address"), r.Address, "must be a unicast address of a real server: not unspecified, multicast or loopback"))
			continue
		case fam != FamilyUnknown && FamilyOf(a) != fam:
			errs = append(errs, field.Invalid(rp.Child("address"), r.Address, fmt.Sprintf("must be %s, the family of the router's VIPs: IPVS does not forward between families", fam)))
			continue
		}
		port := s.Port
		if r.Port != nil {
			port = *r.Port
			if validAgentPort(rp.Child("port"), port, &errs) && fwd != agentv1alpha1.ForwardingNAT && port != s.Port {
				errs = append(errs, field.Invalid(rp.Child("port"), port, fmt.Sprintf("must be the service's port (%d) or unset: %s forwarding cannot change the port", s.Port, fwd)))
			}
		}
		if r.Weight != nil && (*r.Weight < 0 || *r.Weight > agentv1alpha1.MaxRealServerWeight) {
			errs = append(errs, field.Invalid(rp.Child("weight"), *r.Weight, fmt.Sprintf("must be between 0 and %d", agentv1alpha1.MaxRealServerWeight)))
		}
		if port >= 1 && port <= 65535 {
			k := netip.AddrPortFrom(a.Unmap(), uint16(port))
			if first, ok := seen[k]; ok {
				d := field.Duplicate(rp, k.String())
				d.Detail = fmt.Sprintf("already listed as %s", first)
				errs = append(errs, d)
			} else {
				seen[k] = rp
			}
		}
	}
	return errs
}

func validateRealServerCheck(p *field.Path, c *agentv1alpha1.RealServerCheck) field.ErrorList {
	var errs field.ErrorList
	var kinds []string
	if c.TCP != nil {
		kinds = append(kinds, "tcp")
		if c.TCP.Port != nil {
			validAgentPort(p.Child("tcp", "port"), *c.TCP.Port, &errs)
		}
	}
	if h := c.HTTP; h != nil {
		kinds = append(kinds, "http")
		hp := p.Child("http")
		if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
			errs = append(errs, field.NotSupported(hp.Child("scheme"), h.Scheme, []string{"http", "https"}))
		}
		if h.Port != nil {
			validAgentPort(hp.Child("port"), *h.Port, &errs)
		}
		if h.Path != "" && (!strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n")) {
			errs = append(errs, field.Invalid(hp.Child("path"), h.Path, `must be an absolute path without spaces, e.g. "/readyz"`))
		}
		errs = append(errs, validateStatusAndCA(hp, h.ExpectStatus, h.CAFile, h.InsecureSkipVerify)...)
		if h.Scheme != "https" && (h.CAFile != "" || h.InsecureSkipVerify || h.ServerName != "") {
			errs = append(errs, field.Invalid(hp.Child("scheme"), h.Scheme, `caFile, insecureSkipVerify and serverName need scheme "https"`))
		}
	}
	if c.Exec != nil {
		kinds = append(kinds, "exec")
		errs = append(errs, validateExecCommand(p.Child("exec", "command"), c.Exec.Command)...)
	}
	switch len(kinds) {
	case 0:
		errs = append(errs, field.Required(p, "must set one of tcp, http or exec"))
	case 1:
	default:
		errs = append(errs, field.Invalid(p, strings.Join(kinds, ", "), "must set exactly one of tcp, http or exec"))
	}
	errs = append(errs, validateProbeTiming(p, c.Interval, c.Timeout, c.Rise, c.Fall)...)
	return errs
}

func validAgentPort(p *field.Path, port int32, errs *field.ErrorList) bool {
	if port < 1 || port > 65535 {
		*errs = append(*errs, field.Invalid(p, port, "must be between 1 and 65535"))
		return false
	}
	return true
}

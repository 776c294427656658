package agent

import (
	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/balancer"
	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/snat"
)

// openIPVS opens the IPVS table of the agent's network namespace.
func openIPVS() (balancer.Table, error) {
	p, err := ipvs.New()
	if err != nil {
		return nil, err
	}
	return p, nil
}

// snatOpener returns the balancer's OpenSNAT: the nftables source NAT of
// the agent's network namespace (table inet vipvs).
func snatOpener(log logr.Logger) func() (balancer.SourceNAT, error) {
	return func() (balancer.SourceNAT, error) {
		m, err := snat.New(snat.WithLogger(log))
		if err != nil {
			return nil, err
		}
		return sourceNAT{m}, nil
	}
}

// sourceNAT adapts a snat.Manager to the balancer.
type sourceNAT struct{ m *snat.Manager }

func (s sourceNAT) Sync(targets []balancer.SNATTarget) error {
	out := make([]snat.Target, len(targets))
	for i, t := range targets {
		out[i] = snat.Target{VIP: t.VIP, Port: t.Port, Protocol: uint8(t.Protocol), Masquerade: t.Masquerade}
	}
	return s.m.Sync(out)
}

func (s sourceNAT) Delete() error { return s.m.Delete() }

// prepareKernel sets the sysctls NAT services need (see
// snat.EnableConntrack): IPVS keeps conntrack entries for the source NAT to
// match, and the director forwards the replies it brings back.
func prepareKernel(ipv4NAT, ipv6NAT bool) error {
	var fams []snat.Family
	if ipv4NAT {
		fams = append(fams, snat.IPv4)
	}
	if ipv6NAT {
		fams = append(fams, snat.IPv6)
	}
	if len(fams) == 0 {
		return nil
	}
	return snat.EnableConntrack(fams...)
}

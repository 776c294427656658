package render

import (
	"encoding/pem"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/agent/validation"
	"github.com/vipvs/vipvs/api/v1alpha1"
)

// defaultCheckTimeout is v1alpha1.DefaultCheckTimeout, the timeout of a
// check that sets none unless its interval is shorter; the LoadBalancerConfig
// leaves it to the renderer because it depends on the interval.
const defaultCheckTimeout = time.Second

// headerFormat is the first line of every agent config.
const headerFormat = "# Rendered by vipvs from LoadBalancerConfig %s; do not edit.\n"

// renderer renders the agent configs of one defaulted, checked
// LoadBalancerConfig.
type renderer struct {
	lbc      *v1alpha1.LoadBalancerConfig
	vips     []vip
	nodes    []Node    // sorted by name
	prios    [][]int32 // priorities(lbc, nodes): [node][virtual IP]
	password string
	secrets  map[string][]byte
}

// node renders the files of r.nodes[k]. It returns the problems that
// validation finds in the rendered agent config, and an error for what
// cannot happen (an encoding failure).
func (r *renderer) node(k int, pod []byte) (NodeFiles, field.ErrorList, error) {
	n := &r.nodes[k]
	ac := r.agentConfig(k)
	body, err := agentv1alpha1.Marshal(ac)
	if err != nil {
		return NodeFiles{}, nil, err
	}
	data := append([]byte(fmt.Sprintf(headerFormat, r.lbc.Name)), body...)
	verrs, err := checkAgentConfig(data, field.NewPath("nodes").Key(n.Name).Child("agentConfig"))
	if err != nil {
		return NodeFiles{}, nil, err
	}
	mode := ModePublic
	if r.password != "" || r.bgpKeys(ac) {
		mode = ModeSecret
	}
	files := []File{
		{Path: AgentConfigPath(r.lbc.Name, n.Name), Data: data, Mode: mode},
		{Path: StaticPodPath(r.lbc.Name), Data: slices.Clone(pod), Mode: ModePublic},
	}
	for i := range r.lbc.Spec.Services {
		s := &r.lbc.Spec.Services[i]
		if ref := caSecretRef(s); ref != nil {
			files = append(files, File{Path: CAFilePath(r.lbc.Name, s.Name), Data: slices.Clone(r.secrets[SecretKey(*ref)]), Mode: ModePublic})
		}
	}
	if ac.BGP != nil {
		for i, peer := range r.lbc.Spec.BGP.Peers {
			if ref := peer.PasswordSecretRef; ref != nil {
				key := r.secrets[SecretKey(*ref)]
				files = append(files, File{Path: BGPPasswordFilePath(r.lbc.Name, i, key), Data: slices.Clone(key), Mode: ModeSecret})
			}
		}
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return NodeFiles{NodeName: n.Name, Files: files, Hash: sha256Hex(data)}, verrs, nil
}

// checkAgentConfig decodes a rendered agent config as the agent does
// (strictly) and validates it; problems are reported under p.
func checkAgentConfig(data []byte, p *field.Path) (field.ErrorList, error) {
	obj, err := agentv1alpha1.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("decoding the rendered agent config: %w", err)
	}
	var errs field.ErrorList
	for _, e := range validation.ValidateAgentConfig(obj) {
		e := *e
		e.Field = p.String() + "." + e.Field
		errs = append(errs, &e)
	}
	return errs, nil
}

// agentConfig is the agent config of r.nodes[k], as the LoadBalancerConfig
// says it and no more (agentv1alpha1.SetDefaults is not applied, so the
// file shows what was asked for).
func (r *renderer) agentConfig(k int) *agentv1alpha1.AgentConfig {
	s := &r.lbc.Spec
	ac := &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion,
		Kind:       agentv1alpha1.Kind,
		NodeName:   r.nodes[k].Name,
		Status: &agentv1alpha1.Status{
			ListenAddress: ptr(fmt.Sprintf("127.0.0.1:%d", s.AgentStatusPort)),
			SocketPath:    ptr(SocketPath(r.lbc.Name)),
		},
	}
	if cs := s.ConnectionSync; cs != nil {
		ac.IPVS = &agentv1alpha1.IPVS{ConnectionSync: &agentv1alpha1.ConnectionSync{
			Enabled:        cs.Enabled,
			Interface:      cs.Interface,
			SyncID:         cs.SyncID,
			MulticastGroup: cs.MulticastGroup,
			Port:           cs.Port,
			TTL:            cs.TTL,
		}}
	}
	var tracks []agentv1alpha1.TrackCheck
	for i := range s.TrackChecks {
		tc := &s.TrackChecks[i]
		ac.Checks = append(ac.Checks, trackCheck(tc))
		tracks = append(tracks, agentv1alpha1.TrackCheck{Check: tc.Name, Weight: tc.Weight})
	}
	bgp := false
	for _, v := range r.vips {
		f := familyOf(v.addr)
		src, ok := r.nodes[k].firstAddr(f)
		if !ok {
			continue // the node has no address of this family: it sits this VIP out
		}
		if v.spec.IsBGP() {
			ac.VirtualRouters = append(ac.VirtualRouters, r.bgpRouter(v, slices.Clone(tracks)))
			bgp = true
			continue
		}
		ac.VirtualRouters = append(ac.VirtualRouters, r.router(v, r.prios[k][v.index], src, slices.Clone(tracks), k))
	}
	if bgp {
		ac.BGP = r.bgp(k)
	}
	return ac
}

// bgpKeys reports whether ac names a BGP key file.
func (r *renderer) bgpKeys(ac *agentv1alpha1.AgentConfig) bool {
	if ac.BGP == nil {
		return false
	}
	return slices.ContainsFunc(ac.BGP.Peers, func(p agentv1alpha1.BGPPeer) bool { return p.PasswordFile != "" })
}

// bgpRouter is the router of a virtual IP in mode bgp: no VRRP settings,
// the same on every node.
func (r *renderer) bgpRouter(v vip, tracks []agentv1alpha1.TrackCheck) agentv1alpha1.VirtualRouter {
	return agentv1alpha1.VirtualRouter{
		Name:            v.spec.Name,
		Mode:            agentv1alpha1.ModeBGP,
		Interface:       v.spec.Interface,
		VIPs:            []string{vipString(v)},
		TrackChecks:     tracks,
		VirtualServices: r.services(familyOf(v.addr)),
	}
}

// bgp is the bgp section of node k's agent config: spec.bgp with the
// node's byNode entry applied, and each password as the file that holds
// it.
func (r *renderer) bgp(k int) *agentv1alpha1.BGP {
	b := r.lbc.Spec.BGP
	out := &agentv1alpha1.BGP{GracefulShutdownWait: duration(b.GracefulShutdownWait)}
	if es := b.ExternalSpeaker; es != nil {
		out.ExternalSpeaker = &agentv1alpha1.ExternalSpeaker{Table: es.Table, Protocol: clone(es.Protocol)}
		return out
	}
	var node v1alpha1.BGPNode
	for _, n := range b.ByNode {
		if n.NodeName == r.nodes[k].Name {
			node = n
		}
	}
	if b.LocalASN != nil {
		out.LocalASN = *b.LocalASN
	}
	if node.LocalASN != nil {
		out.LocalASN = *node.LocalASN
	}
	out.RouterID = node.RouterID
	if out.RouterID == "" {
		if a, ok := r.nodes[k].firstAddr(ipv4); ok {
			out.RouterID = a.String() // checkBGPNodes: an IPv6-only node sets byNode[].routerID
		}
	}
	if b.ListenPort != nil {
		out.ListenPort = *b.ListenPort
	}
	if f := b.BFDProfile; f != nil {
		out.BFDProfile = &agentv1alpha1.BFDProfile{MinTxInterval: duration(f.MinTxInterval), MinRxInterval: duration(f.MinRxInterval), Multiplier: clone(f.Multiplier)}
	}
	src := map[family]string{}
	for _, s := range node.SourceAddresses {
		if a, err := netip.ParseAddr(s); err == nil {
			src[familyOf(a)] = s
		}
	}
	for i, p := range b.Peers {
		ap := agentv1alpha1.BGPPeer{
			Address:       p.Address,
			ASN:           p.ASN,
			HoldTime:      duration(p.HoldTime),
			KeepaliveTime: duration(p.KeepaliveTime),
			ConnectRetry:  duration(p.ConnectRetry),
			BFD:           p.BFD,
		}
		if p.Port != nil {
			ap.Port = *p.Port
		}
		if p.EBGPMultihop != nil {
			ap.EBGPMultihop = *p.EBGPMultihop
		}
		if a, err := netip.ParseAddr(p.Address); err == nil {
			ap.SourceAddress = src[familyOf(a)]
		}
		if p.PasswordSecretRef != nil {
			ap.PasswordFile = BGPPasswordFilePath(r.lbc.Name, i, r.secrets[SecretKey(*p.PasswordSecretRef)])
		}
		out.Peers = append(out.Peers, ap)
	}
	return out
}

// router is the virtual router of node k for v, with priority prio and
// the node's address src of v's family.
func (r *renderer) router(v vip, prio int32, src netip.Addr, tracks []agentv1alpha1.TrackCheck, k int) agentv1alpha1.VirtualRouter {
	vr := r.lbc.Spec.VRRP
	f := familyOf(v.addr)
	rt := agentv1alpha1.VirtualRouter{
		Name:               v.spec.Name,
		VRID:               v.spec.VRID,
		Interface:          v.spec.Interface,
		Version:            ptr(vr.Version),
		Priority:           ptr(prio),
		AdvertInterval:     duration(vr.AdvertInterval),
		Preempt:            ptr(*vr.Preempt),
		PreemptDelay:       duration(vr.PreemptDelay),
		VIPs:               []string{vipString(v)},
		TrackChecks:        tracks,
		PreemptAfterChecks: r.lbc.Spec.PreemptAfterChecks,
		VirtualServices:    r.services(f),
	}
	if vr.Version == 3 && f == ipv4 && vr.ChecksumMode != "" {
		rt.ChecksumMode = agentv1alpha1.ChecksumMode(vr.ChecksumMode)
	}
	if vr.Version == 2 {
		rt.AuthPassword = r.password
	}
	if *vr.Unicast {
		rt.SourceAddress = src.String()
		var peers []netip.Addr
		for i := range r.nodes {
			if a, ok := r.nodes[i].firstAddr(f); ok && i != k {
				peers = append(peers, a)
			}
		}
		slices.SortFunc(peers, netip.Addr.Compare)
		for _, a := range peers {
			rt.UnicastPeers = append(rt.UnicastPeers, a.String())
		}
	}
	return rt
}

// vipString is v as the agent config lists it: "address/prefixLength", or
// the bare address (a host address) when the prefix length is unset.
func vipString(v vip) string {
	if v.spec.PrefixLength == nil {
		return v.spec.Address
	}
	return fmt.Sprintf("%s/%d", v.spec.Address, *v.spec.PrefixLength)
}

// priorities returns the VRRP priority of each node (sorted by name) for
// each virtual IP, indexed [node][virtual IP], by the rule documented on
// v1alpha1.Priorities:
//   - activeStandby: a node listed in priorities.byNode has its priority;
//     the others, by name, get 100, 99, 98, ... (all nodes, when byNode is
//     empty); the same for every virtual IP.
//   - spread: node k of n gets 100 - ((k - j) mod n) for the virtual IP at
//     index j, so that virtual IP j prefers node j mod n.
func priorities(s *v1alpha1.LoadBalancerConfigSpec, nodes []Node) [][]int32 {
	n := len(nodes)
	out := make([][]int32, n)
	if s.Mode == v1alpha1.ModeSpread {
		for k := range out {
			out[k] = make([]int32, len(s.VirtualIPs))
			for j := range out[k] {
				out[k][j] = v1alpha1.DefaultNamePriority - int32(((k-j)%n+n)%n)
			}
		}
		return out
	}
	byNode := map[string]int32{}
	if s.Priorities != nil {
		for _, np := range s.Priorities.ByNode {
			byNode[np.NodeName] = np.Priority
		}
	}
	next := v1alpha1.DefaultNamePriority
	for k := range out {
		p, ok := byNode[nodes[k].Name]
		if !ok {
			p = next
			next--
		}
		out[k] = make([]int32, len(s.VirtualIPs))
		for j := range out[k] {
			out[k][j] = p
		}
	}
	return out
}

// maxPriority is the highest priority of a virtual IP's router (255 is the
// address owner's).
const maxPriority = 254

// nodePriorities returns priorities(s, members) for nodes, the members and
// the bootstrap node (when not nil) sorted by name: the bootstrap node gets,
// for each virtual IP, one below the lowest member priority, which must
// leave it at least 1.
func nodePriorities(s *v1alpha1.LoadBalancerConfigSpec, nodes []Node, bootstrap *Node) ([][]int32, field.ErrorList) {
	if bootstrap == nil {
		return priorities(s, nodes), nil
	}
	members := make([]Node, 0, len(nodes)-1)
	at := -1
	for k := range nodes {
		if nodes[k].Name == bootstrap.Name {
			at = k
			continue
		}
		members = append(members, nodes[k])
	}
	mp := priorities(s, members)
	low := make([]int32, len(s.VirtualIPs))
	for j := range low {
		low[j] = maxPriority + 1
		for k := range mp {
			low[j] = min(low[j], mp[k][j])
		}
	}
	var errs field.ErrorList
	bp := make([]int32, len(low))
	for j, p := range low {
		bp[j] = p - 1
		if bp[j] < 1 {
			errs = append(errs, field.Invalid(field.NewPath("spec", "priorities"), p,
				fmt.Sprintf("a member has priority %d for spec.virtualIPs[%d]: the bootstrap node %s needs a priority below every member's; raise the members' priorities above 1", p, j, bootstrap.Name)))
		}
	}
	out := slices.Insert(mp, at, bp)
	return out, errs
}

// services are the virtual services of the routers of family f, the same
// on every node.
func (r *renderer) services(f family) []agentv1alpha1.VirtualService {
	var out []agentv1alpha1.VirtualService
	for i := range r.lbc.Spec.Services {
		s := &r.lbc.Spec.Services[i]
		vs := agentv1alpha1.VirtualService{
			Name:       s.Name,
			Port:       s.Port,
			Protocol:   agentv1alpha1.Protocol(s.Protocol),
			Scheduler:  string(s.Scheduler),
			Forwarding: agentv1alpha1.Forwarding(s.Forwarding),
		}
		if ps := s.PersistenceSeconds; ps != nil {
			vs.Persistence = &agentv1alpha1.Duration{Duration: time.Duration(*ps) * time.Second}
		}
		if b := s.Backends.SelectedNodes; b != nil {
			for k := range r.nodes {
				if a, ok := r.nodes[k].firstAddr(f); ok {
					vs.RealServers = append(vs.RealServers, agentv1alpha1.RealServer{Address: a.String(), Port: clone(b.Port), Weight: clone(b.Weight)})
				}
			}
		}
		for _, b := range s.Backends.Static {
			if a, err := netip.ParseAddr(b.Address); err == nil && familyOf(a) == f {
				vs.RealServers = append(vs.RealServers, agentv1alpha1.RealServer{Address: b.Address, Port: clone(b.Port), Weight: clone(b.Weight)})
			}
		}
		if hc := s.HealthCheck; hc != nil {
			vs.HealthCheck = r.realServerCheck(s, hc)
		}
		out = append(out, vs)
	}
	return out
}

func (r *renderer) realServerCheck(s *v1alpha1.VirtualService, hc *v1alpha1.ServiceHealthCheck) *agentv1alpha1.RealServerCheck {
	interval, timeout := timing(&hc.ProbeTiming)
	c := &agentv1alpha1.RealServerCheck{Interval: interval, Timeout: timeout, Rise: clone(hc.Rise), Fall: clone(hc.Fall)}
	if hc.TCP != nil {
		c.TCP = &agentv1alpha1.RealServerTCPCheck{Port: clone(hc.TCP.Port)}
	}
	if h := hc.HTTP; h != nil {
		c.HTTP = &agentv1alpha1.RealServerHTTPCheck{
			Scheme:             strings.ToLower(string(h.Scheme)),
			Port:               clone(h.Port),
			Path:               h.Path,
			ExpectStatus:       slices.Clone(h.ExpectStatus),
			CAFile:             h.CAFile,
			InsecureSkipVerify: h.InsecureSkipVerify,
			ServerName:         h.ServerName,
		}
		if h.CASecretRef != nil {
			c.HTTP.CAFile = CAFilePath(r.lbc.Name, s.Name)
		}
	}
	if hc.Exec != nil {
		c.Exec = &agentv1alpha1.ExecCheck{Command: slices.Clone(hc.Exec.Command)}
	}
	return c
}

// trackCheck is the agent check of a track check.
func trackCheck(tc *v1alpha1.TrackCheck) agentv1alpha1.Check {
	interval, timeout := timing(&tc.ProbeTiming)
	c := agentv1alpha1.Check{Name: tc.Name, Interval: interval, Timeout: timeout, Rise: clone(tc.Rise), Fall: clone(tc.Fall)}
	if tc.TCP != nil {
		c.TCP = &agentv1alpha1.TCPCheck{Address: tc.TCP.Address}
	}
	if h := tc.HTTP; h != nil {
		c.HTTP = &agentv1alpha1.HTTPCheck{
			URL:                h.URL,
			ExpectStatus:       slices.Clone(h.ExpectStatus),
			CAFile:             h.CAFile,
			InsecureSkipVerify: h.InsecureSkipVerify,
			ServerName:         h.ServerName,
		}
	}
	if tc.Exec != nil {
		c.Exec = &agentv1alpha1.ExecCheck{Command: slices.Clone(tc.Exec.Command)}
	}
	if tc.Interface != nil {
		c.Interface = &agentv1alpha1.InterfaceCheck{Name: tc.Interface.Name}
	}
	return c
}

// timing is the interval and timeout of a defaulted check; an unset
// timeout is 1s, or the interval if that is shorter.
func timing(t *v1alpha1.ProbeTiming) (interval, timeout *agentv1alpha1.Duration) {
	interval = duration(t.Interval)
	timeout = duration(t.Timeout)
	if timeout == nil && interval != nil {
		timeout = &agentv1alpha1.Duration{Duration: min(defaultCheckTimeout, interval.Duration)}
	}
	return interval, timeout
}

func caSecretRef(s *v1alpha1.VirtualService) *v1alpha1.SecretKeyReference {
	if s.HealthCheck == nil || s.HealthCheck.HTTP == nil {
		return nil
	}
	return s.HealthCheck.HTTP.CASecretRef
}

// hasPEMCertificate reports whether data holds at least one PEM
// CERTIFICATE block.
func hasPEMCertificate(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			return true
		}
	}
}

func duration(d *metav1.Duration) *agentv1alpha1.Duration {
	if d == nil {
		return nil
	}
	return &agentv1alpha1.Duration{Duration: d.Duration}
}

func ptr[T any](v T) *T { return &v }

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

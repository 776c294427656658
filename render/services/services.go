// Package services translates the Services of type LoadBalancer that the
// operator gave addresses from IPPools (operator/lbservice) into the
// virtual routers of the vipvs agents that announce and balance them: per
// node, one agent-config virtual router per address the node announces,
// with one IPVS virtual service per Service port whose real servers are
// the Service's endpoints.
//
// It is pure: it reads only its Input (the caller lists the objects and
// resolves the pools' nodes) and calls no API, so that the operator can
// run it on every change and compare the result's hash with what the
// nodes run. Its output is sorted: an unchanged input renders identical
// routers, whatever the order of the input's lists.
//
// Forwarding is NAT for every Service. externalTrafficPolicy Cluster
// balances over all the ready endpoints; Local over the endpoints on the
// node itself only (a node without one offers no virtual service for that
// port). Local thus saves the second hop, but the agent's source NAT (see
// docs/forwarding.md) still replaces the client's address today: keeping it
// needs an agent option to skip the source NAT for real servers on the
// director itself, whose replies come back through it (docs/services-design.md).
//
// It lives beside package render, which does the same for the virtual IPs
// of a LoadBalancerConfig, and takes its render.Node.
package services

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/ipam"
	"github.com/vipvs/vipvs/render"
)

// AnnotationScheduler is the Service annotation that chooses the IPVS
// scheduler of its virtual services: rr, wrr, lc, wlc, sh or mh. Default
// wlc for a pool announced by VRRP; a pool announced by BGP always uses mh
// (agentv1alpha1.BGPScheduler), and another value is reported as a
// problem.
const AnnotationScheduler = "vipvs.io/scheduler"

// DefaultBackups is the number of backup nodes of each address of a pool
// announced by VRRP, when Input.Backups is 0.
const DefaultBackups = 1

// MasterPriority is the VRRP priority of an address's master node; its
// backups get one less each, in their order.
const MasterPriority = v1alpha1.DefaultNamePriority

// RouterPrefix starts the name of every router this package renders, so
// that they do not collide with a LoadBalancerConfig's routers in one
// agent config (the admission of LoadBalancerConfigs does not refuse a
// virtual IP named like that: the caller must keep them apart).
const RouterPrefix = "svc-"

// serviceNameLabel is the EndpointSlice label that names its Service.
const serviceNameLabel = discoveryv1.LabelServiceName

// Input is what Render translates.
type Input struct {
	// Pools are the IPPools with the nodes that announce their addresses,
	// in any order. An address of a Service is rendered in the first pool
	// by name that contains it.
	Pools []Pool
	// Services are the Services whose addresses
	// (status.loadBalancer.ingress[].ip) are rendered: the caller passes
	// those of the allocator's class; a Service not of type LoadBalancer
	// is ignored.
	Services []corev1.Service
	// EndpointSlices are the EndpointSlices of the Services (matched by
	// namespace and the kubernetes.io/service-name label).
	EndpointSlices []discoveryv1.EndpointSlice
	// UsedVRIDs are the VRIDs that the routers of mode vrrp must not take:
	// those of the LoadBalancerConfigs' virtual IPs (and of anything else
	// on the segments). Render gives pool addresses VRIDs from 1 to 255
	// without them.
	UsedVRIDs []UsedVRID
	// Backups is the number of backup nodes of each address announced by
	// VRRP (fewer when the pool has fewer nodes). 0 means DefaultBackups.
	Backups int
}

// Pool is an IPPool and the nodes that announce its addresses.
type Pool struct {
	// Pool is the IPPool.
	Pool v1alpha1.IPPool
	// Nodes are the nodes that announce the addresses, in any order: for
	// mode vrrp those of spec.announcement.vrrp.nodeSelector, for mode bgp
	// the members of the LoadBalancerConfig it names. A node without an
	// address of an address's family sits that address out.
	Nodes []render.Node
}

// UsedVRID is a VRID taken on an interface in one address family.
type UsedVRID struct {
	// Interface is the interface of the VRID; "" (unknown: the interface
	// whose subnet holds the VIP) conflicts with every interface.
	Interface string
	// IPv6 is the family: false for IPv4.
	IPv6 bool
	// VRID is the VRID, 1 to 255.
	VRID int32
}

// Output is what Render rendered.
type Output struct {
	// Nodes are the routers of each node that announces at least one
	// address, sorted by node name.
	Nodes []NodeRouters
	// Problems are what could not be rendered as asked, sorted, each a
	// sentence naming the Service or pool (for events and logs); the rest
	// is rendered regardless.
	Problems []string
}

// NodeRouters are the virtual routers of one node.
type NodeRouters struct {
	// Node is the node's name.
	Node string
	// Routers are the node's routers, one per address, sorted by address
	// (IPv4 first).
	Routers []agentv1alpha1.VirtualRouter
}

// pool is a parsed Pool.
type pool struct {
	name   string
	mode   v1alpha1.AnnouncementMode
	iface  string
	ranges []ipam.Range
	nodes  []render.Node // sorted by name
}

func (p *pool) contains(a netip.Addr) bool {
	return slices.ContainsFunc(p.ranges, func(r ipam.Range) bool { return r.Contains(a) })
}

// address is one allocated address and the Services that hold it, oldest
// first.
type address struct {
	addr     netip.Addr
	pool     *pool
	services []*corev1.Service
	vrid     int32
}

// Render translates in into the nodes' routers.
func Render(in Input) Output {
	var problems []string
	pools := parsePools(in.Pools, &problems)
	svcs := make([]*corev1.Service, 0, len(in.Services))
	for i := range in.Services {
		if in.Services[i].Spec.Type == corev1.ServiceTypeLoadBalancer {
			svcs = append(svcs, &in.Services[i])
		}
	}
	slices.SortFunc(svcs, olderService)
	addrs := collectAddresses(svcs, pools, &problems)
	assignVRIDs(addrs, in.UsedVRIDs, &problems)
	eps := indexSlices(in.EndpointSlices)

	backups := in.Backups
	if backups <= 0 {
		backups = DefaultBackups
	}
	// Oldest address first, so that when a node has more routers than an
	// agent config holds, the newest addresses are the ones left out.
	byNode := map[string][]placed{}
	for _, a := range addrs {
		if a.pool.mode == v1alpha1.AnnouncementVRRP && a.vrid == 0 {
			continue // no VRID left: reported
		}
		renderAddress(a, backups, eps, byNode, &problems)
	}
	var out Output
	for name, ps := range byNode {
		slices.SortFunc(ps, func(x, y placed) int { return x.addr.Compare(y.addr) })
		rs := make([]agentv1alpha1.VirtualRouter, len(ps))
		for i := range ps {
			rs[i] = ps[i].router
		}
		out.Nodes = append(out.Nodes, NodeRouters{Node: name, Routers: rs})
	}
	slices.SortFunc(out.Nodes, func(a, b NodeRouters) int { return strings.Compare(a.Node, b.Node) })
	slices.Sort(problems)
	out.Problems = slices.Compact(problems)
	return out
}

// olderService orders Services by creation, then namespace and name: the
// order in which they keep what they hold (VRIDs, ports on a shared
// address).
func olderService(a, b *corev1.Service) int {
	if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

func svcName(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func parsePools(in []Pool, problems *[]string) []*pool {
	var out []*pool
	for i := range in {
		p := &in[i]
		ann := p.Pool.Spec.Announcement
		pl := &pool{name: p.Pool.Name, mode: ann.Mode, nodes: slices.Clone(p.Nodes)}
		switch {
		case ann.Mode == v1alpha1.AnnouncementVRRP && ann.VRRP != nil:
			pl.iface = ann.VRRP.Interface
		case ann.Mode == v1alpha1.AnnouncementBGP && ann.BGP != nil:
		default:
			*problems = append(*problems, fmt.Sprintf("IPPool %s: announcement mode %q without its section: its addresses are not announced", pl.name, ann.Mode))
			continue
		}
		for _, s := range p.Pool.Spec.Addresses {
			r, err := ipam.ParseAddress(string(s))
			if err != nil {
				*problems = append(*problems, fmt.Sprintf("IPPool %s: spec.addresses: %v", pl.name, err))
				continue
			}
			pl.ranges = append(pl.ranges, r)
		}
		slices.SortFunc(pl.nodes, func(a, b render.Node) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, pl)
	}
	slices.SortFunc(out, func(a, b *pool) int { return strings.Compare(a.name, b.name) })
	return out
}

// collectAddresses returns the addresses of svcs (sorted oldest first) in
// the order of their oldest Service.
func collectAddresses(svcs []*corev1.Service, pools []*pool, problems *[]string) []*address {
	var out []*address
	seen := map[netip.Addr]*address{}
	for _, s := range svcs {
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP == "" {
				continue
			}
			a, err := netip.ParseAddr(ing.IP)
			if err != nil || a.Zone() != "" {
				*problems = append(*problems, fmt.Sprintf("Service %s: status.loadBalancer.ingress ip %q is not an IP address", svcName(s), ing.IP))
				continue
			}
			a = a.Unmap()
			if x, ok := seen[a]; ok {
				if !slices.Contains(x.services, s) {
					x.services = append(x.services, s)
				}
				continue
			}
			i := slices.IndexFunc(pools, func(p *pool) bool { return p.contains(a) })
			if i < 0 {
				*problems = append(*problems, fmt.Sprintf("Service %s: address %s is in no IPPool: not announced", svcName(s), a))
				continue
			}
			x := &address{addr: a, pool: pools[i], services: []*corev1.Service{s}}
			seen[a] = x
			out = append(out, x)
		}
	}
	return out
}

// placed is a router of a node and its address.
type placed struct {
	addr   netip.Addr
	router agentv1alpha1.VirtualRouter
}

// assignVRIDs gives each address of a pool in mode vrrp a VRID. The VRIDs
// of one family form one space over all pools and interfaces (so that no
// two pool routers can collide on any segment), without the used VRIDs of
// the family that may be on the pool's interface. addrs are in the order
// of their oldest Service: each takes the first VRID free from a start
// hashed from its address. An address keeps its VRID when a newer Service
// comes (it is placed after the existing ones); only a deletion can move
// the VRID of an address that had probed past the freed one.
func assignVRIDs(addrs []*address, used []UsedVRID, problems *[]string) {
	taken := map[bool]*[256]bool{false: {}, true: {}}
	for _, a := range addrs {
		if a.pool.mode != v1alpha1.AnnouncementVRRP {
			continue
		}
		v6 := a.addr.Is6()
		start := vridStart(a.addr)
		for i := int32(0); i < 255; i++ {
			v := (start-1+i)%255 + 1
			if taken[v6][v] || usedOn(used, a.pool.iface, v6, v) {
				continue
			}
			taken[v6][v] = true
			a.vrid = v
			break
		}
		if a.vrid == 0 {
			*problems = append(*problems, fmt.Sprintf("Service %s: no free VRID for address %s (IPPool %s): not announced", svcName(a.services[0]), a.addr, a.pool.name))
		}
	}
}

func usedOn(used []UsedVRID, iface string, v6 bool, vrid int32) bool {
	return slices.ContainsFunc(used, func(u UsedVRID) bool {
		return u.VRID == vrid && u.IPv6 == v6 && (u.Interface == "" || iface == "" || u.Interface == iface)
	})
}

// hash64 is a well-mixed 64-bit hash of s (FNV alone mixes the last bytes
// of similar strings poorly, and the names and addresses hashed here differ
// in few bytes).
func hash64(s string) uint64 {
	h := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(h[:8])
}

// vridStart is the VRID from which address a probes for a free one.
func vridStart(a netip.Addr) int32 {
	return int32(hash64(a.String())%255) + 1
}

// firstAddr is n's first address of a's family.
func firstAddr(n *render.Node, a netip.Addr) (netip.Addr, bool) {
	for _, x := range n.Addresses {
		if x.Is4() == a.Is4() {
			return x, true
		}
	}
	return netip.Addr{}, false
}

// holders are the nodes that carry a: in mode bgp every pool node with an
// address of a's family, by name; in mode vrrp the first 1+backups of
// them by rendezvous hashing of the address over the node names (master
// first). Rendezvous hashing spreads the addresses over the nodes and,
// when a node leaves, moves only the addresses it held.
func holders(a *address, backups int) []*render.Node {
	var ns []*render.Node
	for i := range a.pool.nodes {
		if _, ok := firstAddr(&a.pool.nodes[i], a.addr); ok {
			ns = append(ns, &a.pool.nodes[i])
		}
	}
	if a.pool.mode == v1alpha1.AnnouncementBGP {
		return ns
	}
	score := func(n *render.Node) uint64 { return hash64(n.Name + "/" + a.addr.String()) }
	slices.SortStableFunc(ns, func(x, y *render.Node) int { return cmp.Compare(score(y), score(x)) })
	return ns[:min(len(ns), 1+backups)]
}

// routerName is the router's name for a: RouterPrefix and the address
// with '-' for '.' and ':' (a DNS-1123 label of at most 44 characters).
func routerName(a netip.Addr) string {
	s := strings.NewReplacer(".", "-", ":", "-").Replace(a.String())
	if strings.HasSuffix(s, "-") {
		s += "0" // "2001:db8::" is "2001:db8::0"
	}
	return RouterPrefix + s
}

func renderAddress(a *address, backups int, eps endpointIndex, byNode map[string][]placed, problems *[]string) {
	hs := holders(a, backups)
	if len(hs) == 0 {
		*problems = append(*problems, fmt.Sprintf("Service %s: IPPool %s has no node with an %s address to announce %s", svcName(a.services[0]), a.pool.name, familyName(a.addr), a.addr))
		return
	}
	if a.pool.mode == v1alpha1.AnnouncementVRRP && len(hs) == 1 {
		*problems = append(*problems, fmt.Sprintf("IPPool %s: address %s has no backup node: only %s announces it", a.pool.name, a.addr, hs[0].Name))
	}
	for rank, n := range hs {
		rt := agentv1alpha1.VirtualRouter{
			Name: routerName(a.addr),
			VIPs: []string{a.addr.String()},
		}
		if a.pool.mode == v1alpha1.AnnouncementBGP {
			rt.Mode = agentv1alpha1.ModeBGP
		} else {
			src, _ := firstAddr(n, a.addr)
			rt.Mode = agentv1alpha1.ModeVRRP
			rt.VRID = a.vrid
			rt.Interface = a.pool.iface
			rt.Priority = ptr(MasterPriority - int32(rank))
			rt.SourceAddress = src.String()
			var peers []netip.Addr
			for _, o := range hs {
				if o != n {
					p, _ := firstAddr(o, a.addr)
					peers = append(peers, p)
				}
			}
			slices.SortFunc(peers, netip.Addr.Compare)
			for _, p := range peers {
				rt.UnicastPeers = append(rt.UnicastPeers, p.String())
			}
		}
		rt.VirtualServices = virtualServices(a, n.Name, eps, problems)
		if len(byNode[n.Name]) == agentv1alpha1.MaxVirtualRouters {
			*problems = append(*problems, fmt.Sprintf("Service %s: node %s already carries %d addresses, the most an agent config holds: %s is not announced there", svcName(a.services[0]), n.Name, agentv1alpha1.MaxVirtualRouters, a.addr))
			continue
		}
		byNode[n.Name] = append(byNode[n.Name], placed{addr: a.addr, router: rt})
	}
}

func familyName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// virtualServices are the services of address a on node: one per port of
// each Service holding a, oldest Service first on a port that two claim.
func virtualServices(a *address, node string, eps endpointIndex, problems *[]string) []agentv1alpha1.VirtualService {
	bgp := a.pool.mode == v1alpha1.AnnouncementBGP
	owner := map[string]*corev1.Service{}
	var out []agentv1alpha1.VirtualService
	for _, s := range a.services {
		sched := scheduler(s, bgp, problems)
		local := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		for _, sp := range s.Spec.Ports {
			proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
			key := fmt.Sprintf("%s/%d", proto, sp.Port)
			if o, ok := owner[key]; ok {
				if o != s {
					*problems = append(*problems, fmt.Sprintf("Service %s: port %s on %s is already Service %s's: not balanced", svcName(s), key, a.addr, svcName(o)))
				}
				continue
			}
			if len(owner) == agentv1alpha1.MaxVirtualServices {
				*problems = append(*problems, fmt.Sprintf("Service %s: port %s on %s is not balanced: the address already has %d ports, the most a virtual router holds", svcName(s), key, a.addr, agentv1alpha1.MaxVirtualServices))
				continue
			}
			owner[key] = s
			onNode := ""
			if local {
				onNode = node
			}
			rss := realServers(s, sp, a.addr, onNode, eps, problems)
			if len(rss) == 0 {
				continue // no endpoint to send to: the agent refuses an empty service
			}
			out = append(out, agentv1alpha1.VirtualService{
				Name:        strings.ToLower(string(proto)) + "-" + fmt.Sprint(sp.Port),
				Port:        sp.Port,
				Protocol:    agentv1alpha1.Protocol(proto),
				Scheduler:   sched,
				Forwarding:  agentv1alpha1.ForwardingNAT,
				RealServers: rss,
			})
		}
	}
	slices.SortFunc(out, func(x, y agentv1alpha1.VirtualService) int {
		return cmp.Or(strings.Compare(string(x.Protocol), string(y.Protocol)), cmp.Compare(x.Port, y.Port))
	})
	return out
}

var schedulers = []string{"rr", "wrr", "lc", "wlc", "sh", "mh"}

func scheduler(s *corev1.Service, bgp bool, problems *[]string) string {
	v, set := s.Annotations[AnnotationScheduler]
	switch {
	case bgp:
		if set && v != agentv1alpha1.BGPScheduler {
			*problems = append(*problems, fmt.Sprintf("Service %s: annotation %s %q is ignored: a pool announced by BGP balances with mh on every node", svcName(s), AnnotationScheduler, v))
		}
		return agentv1alpha1.BGPScheduler
	case !set:
		return agentv1alpha1.DefaultScheduler
	case slices.Contains(schedulers, v):
		return v
	default:
		*problems = append(*problems, fmt.Sprintf("Service %s: annotation %s %q is not one of %s: using %s", svcName(s), AnnotationScheduler, v, strings.Join(schedulers, ", "), agentv1alpha1.DefaultScheduler))
		return agentv1alpha1.DefaultScheduler
	}
}

// endpointIndex holds the EndpointSlices by namespace/service name.
type endpointIndex map[string][]*discoveryv1.EndpointSlice

func indexSlices(in []discoveryv1.EndpointSlice) endpointIndex {
	idx := endpointIndex{}
	for i := range in {
		es := &in[i]
		if name := es.Labels[serviceNameLabel]; name != "" {
			k := es.Namespace + "/" + name
			idx[k] = append(idx[k], es)
		}
	}
	return idx
}

// realServers are the endpoints of Service s for its port sp in the family
// of vip, on node onNode only when it is not "": the ready ones at the
// default weight, the terminating ones that still serve at weight 0 (no
// new connections, the existing ones drain), sorted by address and port.
// The port of each is the EndpointSlice's port of sp's name and protocol:
// the target port, named or numbered, as the EndpointSlice controller
// resolved it for the pods of that slice.
func realServers(s *corev1.Service, sp corev1.ServicePort, vip netip.Addr, onNode string, eps endpointIndex, problems *[]string) []agentv1alpha1.RealServer {
	want := discoveryv1.AddressTypeIPv4
	if vip.Is6() {
		want = discoveryv1.AddressTypeIPv6
	}
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	weights := map[netip.AddrPort]int32{}
	for _, es := range eps[s.Namespace+"/"+s.Name] {
		if es.AddressType != want {
			continue
		}
		var port int32
		for _, p := range es.Ports {
			if deref(p.Name) == sp.Name && cmp.Or(deref(p.Protocol), corev1.ProtocolTCP) == proto && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port < 1 || port > 65535 {
			continue // the slice's pods do not expose the port
		}
		for _, ep := range es.Endpoints {
			if onNode != "" && deref(ep.NodeName) != onNode {
				continue
			}
			c := ep.Conditions
			var w int32
			switch {
			case c.Terminating != nil && *c.Terminating:
				if c.Serving != nil && !*c.Serving {
					continue
				}
				w = 0
			case c.Ready == nil || *c.Ready: // nil: unknown, taken as ready (the API's advice)
				w = agentv1alpha1.DefaultRealServerWeight
			default:
				continue
			}
			for _, as := range ep.Addresses {
				a, err := netip.ParseAddr(as)
				if err != nil || a.Zone() != "" || a.Unmap().Is4() != vip.Is4() {
					continue
				}
				k := netip.AddrPortFrom(a.Unmap(), uint16(port))
				if old, ok := weights[k]; !ok || w > old {
					weights[k] = w // an endpoint in two slices (mid-update): the ready one wins
				}
			}
		}
	}
	keys := make([]netip.AddrPort, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.AddrPort.Compare)
	if len(keys) > agentv1alpha1.MaxRealServers {
		*problems = append(*problems, fmt.Sprintf("Service %s: port %s/%d has %d endpoints on %s; IPVS gets the first %d by address", svcName(s), proto, sp.Port, len(keys), vip, agentv1alpha1.MaxRealServers))
		keys = keys[:agentv1alpha1.MaxRealServers]
	}
	out := make([]agentv1alpha1.RealServer, 0, len(keys))
	for _, k := range keys {
		rs := agentv1alpha1.RealServer{Address: k.Addr().String(), Port: ptr(int32(k.Port()))}
		if w := weights[k]; w != agentv1alpha1.DefaultRealServerWeight {
			rs.Weight = ptr(w)
		}
		out = append(out, rs)
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

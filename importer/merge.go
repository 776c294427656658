package importer

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// router is one virtual router (one VRID of one family) as the imported
// nodes run it.
type router struct {
	fam       string
	vrid      int32
	insts     []*instance // by node index; nil where the node does not run it
	first     *instance
	firstNode int
	iface     string // "" when the nodes disagree
	entries   []svcEntry
	sig       routerSig
}

// routerSig is what a LoadBalancerConfig holds once for all its virtual
// routers: routers are grouped into one LoadBalancerConfig only when these
// agree.
type routerSig struct {
	vrrp       string
	priorities string
	tracks     string
	services   string            // ports, protocols and settings, without backends
	backends   map[string]string // by family: the backends of each port
}

// merger builds LoadBalancerConfigs from the nodes' configurations.
type merger struct {
	n         *notes
	errs      []error
	nodes     []*nodeConf
	routers   []*router
	byKey     map[string]svcEntry // services by svcEntry.key, from the first node that has it
	selector  map[string]string
	namespace string
}

func (m *merger) fail(pos Pos, keyword, format string, args ...any) {
	m.errs = append(m.errs, errorf(pos, keyword, format, args...))
}

// collect finds the virtual routers and checks that the nodes agree on
// what a virtual router shares.
func (m *merger) collect() {
	// A VRID is a router's identity, unless a file uses it twice in one
	// family (on different interfaces, as keepalived allows): then the
	// interface is part of it.
	perIface := map[string]bool{}
	for _, nc := range m.nodes {
		seen := map[string]bool{}
		for _, in := range nc.instances {
			k := in.family() + "/" + strconv.Itoa(int(in.vrid))
			if len(in.vips) > 0 && seen[k] {
				perIface[k] = true
			}
			seen[k] = true
		}
	}
	byKey := map[string]*router{}
	for ni, nc := range m.nodes {
		for _, in := range nc.instances {
			if len(in.vips) == 0 {
				continue
			}
			key := in.family() + "/" + strconv.Itoa(int(in.vrid))
			if perIface[key] {
				key += "/" + in.iface
			}
			r, ok := byKey[key]
			if !ok {
				r = &router{fam: in.family(), vrid: in.vrid, insts: make([]*instance, len(m.nodes)), first: in, firstNode: ni, iface: in.iface}
				byKey[key] = r
				m.routers = append(m.routers, r)
			} else if r.insts[ni] != nil {
				m.fail(in.vridPos, "virtual_router_id", "%d is also the virtual_router_id of vrrp_instance %s (%s) in the same family on the same interface: vipvs needs different interfaces for that", in.vrid, r.insts[ni].name, r.insts[ni].pos)
				continue
			} else {
				m.agree(r, in)
			}
			r.insts[ni] = in
		}
	}
}

// agree compares a node's instance with the router's first.
func (m *merger) agree(r *router, in *instance) {
	f := r.first
	from := fmt.Sprintf("vrrp_instance %s at %s", f.name, f.pos)
	if vipList(in.vips) != vipList(f.vips) {
		m.fail(in.pos, "vrrp_instance", "virtual IPs %s differ from %s (%s): the nodes of one virtual router must agree", vipList(in.vips), vipList(f.vips), from)
	}
	if in.version != f.version {
		m.fail(in.pos, "vrrp_instance", "VRRP version %d differs from %d of %s", in.version, f.version, from)
	}
	if in.advert != f.advert {
		m.fail(in.advertPos, "advert_int", "%v differs from %v of %s: the nodes of one virtual router must agree", in.advert, f.advert, from)
	}
	if in.password != f.password {
		m.fail(in.pos, "authentication", "the password differs from that of %s (neither is shown): the nodes of one virtual router must agree", from)
	}
	if (len(in.peers) > 0) != (len(f.peers) > 0) {
		m.fail(in.pos, "vrrp_instance", "unicast and multicast mixed: %s uses the other: the nodes of one virtual router must agree", from)
	}
	if in.preempt != f.preempt || in.preemptDelay != f.preemptDelay {
		m.n.add(in.preemptPos, "vrrp_instance", "preemption (preempt %t, delay %v) differs from %s (preempt %t, delay %v): vipvs has one setting for all nodes: imported the first", in.preempt, in.preemptDelay, from, f.preempt, f.preemptDelay)
	}
	if jsonString(in.tracks) != jsonString(f.tracks) {
		m.n.add(in.pos, "vrrp_instance", "its tracked scripts and interfaces differ from %s: vipvs runs the same track checks on every node: imported the first", from)
	}
	if in.iface != r.iface && r.iface != "" {
		m.n.add(in.ifacePos, "interface", "%s differs from %s of %s: the virtual IPs are imported without interface (each node uses the interface whose subnet holds the VIP)", in.iface, r.iface, from)
		r.iface = ""
	}
}

func vipList(vips []vip) string {
	s := make([]string, len(vips))
	for i, v := range vips {
		s[i] = v.addr.String()
		if v.prefix != 0 {
			s[i] += "/" + strconv.Itoa(int(v.prefix))
		}
	}
	return strings.Join(s, ",")
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v) // unreachable: plain API types
	}
	return string(b)
}

// nodeNotes reports per router what only several files can tell:
// priorities, peers and nodes without the router.
func (m *merger) nodeNotes(r *router) {
	f := r.first
	var have, missing []string
	prios := map[int32]bool{}
	srcs := map[netip.Addr]string{}
	for ni, in := range r.insts {
		if in == nil {
			missing = append(missing, m.nodes[ni].file)
			continue
		}
		have = append(have, m.nodes[ni].node)
		prios[in.priority] = true
		if in.unicastSrc.IsValid() {
			srcs[in.unicastSrc] = m.nodes[ni].node
		}
	}
	switch {
	case len(m.nodes) == 1:
		m.n.add(f.priorityPos, "priority", "%d is node %s's priority; the other nodes' are unknown: import every node's file (-f FILE, or --node NAME=FILE) or list the other nodes in spec.priorities.byNode (unlisted nodes get 100, 99, ... in name order)", f.priority, m.nodes[0].node)
	case len(prios) == 1 && len(have) > 1:
		m.n.add(f.priorityPos, "priority", "every node has priority %d: as in keepalived, the node with the highest address wins a tie (VRRP); give the preferred node a higher priority in spec.priorities.byNode to make the master predictable", f.priority)
	}
	if len(missing) > 0 {
		m.n.add(f.pos, "vrrp_instance", "not in %s: the LoadBalancerConfig lists priorities only for %s; make its nodeSelector select only the nodes that run it", strings.Join(missing, ", "), strings.Join(have, ", "))
	}
	for ni, in := range r.insts {
		if in == nil {
			continue
		}
		if in.unicastSrc.IsValid() {
			m.n.add(in.srcPos, "unicast_src_ip", "no equivalent: the agent sends from node %s's InternalIP (of the VIP's family): check that it is %s", m.nodes[ni].node, in.unicastSrc)
		}
		if len(in.peers) == 0 {
			continue
		}
		if len(m.nodes) == 1 {
			m.n.add(in.peersPos, "unicast_peer", "imported as unicast: true; vipvs sends to the selected nodes' InternalIPs, not to a list, and drops adverts from other sources: the nodeSelector must select exactly the nodes at %s and this one", addrList(in.peers))
			continue
		}
		var strangers []netip.Addr
		for _, p := range in.peers {
			if _, ok := srcs[p]; !ok {
				strangers = append(strangers, p)
			}
		}
		if len(strangers) > 0 {
			m.n.add(in.peersPos, "unicast_peer", "%s is not the unicast_src_ip of an imported file: vipvs sends adverts only to the selected nodes; import that node's file or make the nodeSelector select it", addrList(strangers))
		}
	}
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// mergeServices keeps, for each virtual IP, port and protocol, the first
// node's virtual_server and reports where other nodes differ.
func (m *merger) mergeServices() {
	m.byKey = map[string]svcEntry{}
	for _, nc := range m.nodes {
		for _, e := range nc.services {
			k := e.key()
			first, ok := m.byKey[k]
			if !ok {
				m.byKey[k] = e
				continue
			}
			if jsonString(first.svc) != jsonString(e.svc) {
				m.n.add(e.pos, "virtual_server", "differs from the virtual_server at %s: vipvs has one service for all nodes: imported that one", first.pos)
			}
		}
	}
	for _, r := range m.routers {
		for _, v := range r.first.vips {
			for _, nc := range m.nodes {
				for _, e := range nc.services {
					if e.vip == v.addr && m.byKey[e.key()].pos == e.pos && !slices.ContainsFunc(r.entries, func(x svcEntry) bool { return x.key() == e.key() }) {
						r.entries = append(r.entries, e)
					}
				}
			}
		}
	}
}

// serviceSettings is a service without its backends, for comparison.
func serviceSettings(s v1alpha1.VirtualService) string {
	s.Backends = v1alpha1.Backends{}
	return jsonString(s)
}

// signature computes what groups routers.
func (m *merger) signature(r *router) {
	f := r.first
	vrrp := struct {
		Version  int32
		Advert   time.Duration
		Password string
		Unicast  bool
		Preempt  bool
		Delay    time.Duration
	}{f.version, f.advert, f.password, len(f.peers) > 0, f.preempt, f.preemptDelay}
	var prios []v1alpha1.NodePriority
	for ni, in := range r.insts {
		if in != nil {
			prios = append(prios, v1alpha1.NodePriority{NodeName: m.nodes[ni].node, Priority: in.priority})
		}
	}
	type port struct {
		Port     int32
		Protocol v1alpha1.Protocol
		Settings string
	}
	var ports []port
	backends := map[string]map[string]string{} // family -> port key -> backends
	for _, e := range r.entries {
		pk := fmt.Sprintf("%d/%s", e.svc.Port, e.svc.Protocol)
		settings := serviceSettings(e.svc)
		i := slices.IndexFunc(ports, func(p port) bool { return p.Port == e.svc.Port && p.Protocol == e.svc.Protocol })
		switch {
		case i < 0:
			ports = append(ports, port{e.svc.Port, e.svc.Protocol, settings})
		case ports[i].Settings != settings:
			m.n.add(e.pos, "virtual_server", "its settings differ from another virtual_server of port %d of the same vrrp_instance: vipvs offers one service per port on all the virtual IPs: imported the first", e.svc.Port)
		}
		fam := familyOf(e.vip)
		if backends[fam] == nil {
			backends[fam] = map[string]string{}
		}
		b := jsonString(e.svc.Backends.Static)
		if prev, ok := backends[fam][pk]; !ok {
			backends[fam][pk] = b
		} else if prev != b {
			m.n.add(e.pos, "virtual_server", "its real servers differ from another virtual_server of port %d of the same vrrp_instance: vipvs offers one service per port on all the virtual IPs: imported the first one's", e.svc.Port)
		}
	}
	slices.SortFunc(ports, func(a, b port) int {
		return strings.Compare(fmt.Sprintf("%05d/%s", a.Port, a.Protocol), fmt.Sprintf("%05d/%s", b.Port, b.Protocol))
	})
	r.sig = routerSig{
		vrrp:       jsonString(vrrp),
		priorities: jsonString(prios),
		tracks:     jsonString(f.tracks),
		services:   jsonString(ports),
		backends:   map[string]string{},
	}
	for fam, byPort := range backends {
		r.sig.backends[fam] = jsonString(byPort) // map keys are sorted by encoding/json
	}
}

// differs names what two routers' signatures do not share, or "".
func differs(a, b routerSig) string {
	var d []string
	if a.vrrp != b.vrrp {
		d = append(d, "VRRP settings (version, advert_int, password, unicast or preemption)")
	}
	if a.priorities != b.priorities {
		d = append(d, "priorities")
	}
	if a.tracks != b.tracks {
		d = append(d, "tracked scripts and interfaces")
	}
	if a.services != b.services {
		d = append(d, "virtual_servers")
	}
	for fam, x := range a.backends {
		if y, ok := b.backends[fam]; ok && x != y {
			d = append(d, "real servers")
			break
		}
	}
	return strings.Join(d, ", ")
}

// group is the routers of one LoadBalancerConfig.
type group struct {
	routers []*router
}

// compatible reports whether r may join g: same settings, and the same
// real servers in each family both have.
func (g *group) compatible(r *router) bool {
	for _, o := range g.routers {
		if differs(o.sig, r.sig) != "" {
			return false
		}
	}
	return true
}

// build groups the routers and renders one LoadBalancerConfig per group.
func (m *merger) build() ([]v1alpha1.LoadBalancerConfig, []Secret) {
	for _, r := range m.routers {
		m.nodeNotes(r)
	}
	m.mergeServices()
	for _, r := range m.routers {
		m.signature(r)
	}
	var groups []*group
	for _, r := range m.routers {
		placed := false
		for _, g := range groups {
			if g.compatible(r) {
				g.routers = append(g.routers, r)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, &group{routers: []*router{r}})
		}
	}
	vrids := m.allocator()
	lbcNames := uniqueNames{}
	var lbcs []v1alpha1.LoadBalancerConfig
	var secrets []Secret
	for gi, g := range groups {
		f := g.routers[0].first
		c := v1alpha1.LoadBalancerConfig{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "LoadBalancerConfig"}}
		c.Name = lbcNames.take(label(f.name, "keepalived", 63))
		if gi > 0 {
			m.n.add(f.pos, "vrrp_instance", "a LoadBalancerConfig of its own (%s): its %s differ from those of %s (LoadBalancerConfig %s)", c.Name, differs(groups[0].routers[0].sig, g.routers[0].sig), groups[0].routers[0].first.name, lbcs[0].Name)
			c.Spec.AgentStatusPort = v1alpha1.DefaultAgentStatusPort + int32(gi)
			m.n.add(f.pos, "vrrp_instance", "agentStatusPort %d: each LoadBalancerConfig runs its own agent on a node, and the %d LoadBalancerConfigs of this import select the same nodes", c.Spec.AgentStatusPort, len(groups))
		}
		m.nodeSelector(&c, g)
		m.vrrp(&c, g, &secrets)
		m.virtualIPs(&c, g, vrids)
		m.services(&c, g)
		c.Spec.TrackChecks = f.tracks
		lbcs = append(lbcs, c)
	}
	m.syncGroupNotes(groups, lbcs)
	m.gatewayNotes(groups)
	return lbcs, secrets
}

// syncGroupNotes says what became of each vrrp_sync_group.
func (m *merger) syncGroupNotes(groups []*group, lbcs []v1alpha1.LoadBalancerConfig) {
	for ni, nc := range m.nodes {
		for _, sg := range nc.syncGroups {
			var where []string
			distinct := map[string]bool{}
			for _, member := range sg.members {
				for gi, g := range groups {
					for _, r := range g.routers {
						if in := r.insts[ni]; in != nil && in.name == member {
							where = append(where, member+" in "+lbcs[gi].Name)
							distinct[lbcs[gi].Name] = true
						}
					}
				}
			}
			switch {
			case len(distinct) == 0:
				m.n.add(sg.pos, "vrrp_sync_group", "vipvs has no sync groups, and none of its instances holds a virtual IP the import keeps: ignored")
			case len(distinct) > 1:
				m.n.add(sg.pos, "vrrp_sync_group", "vipvs has no sync groups, and its instances end up in different LoadBalancerConfigs (%s): they no longer fail over together; give them the same priorities and track checks (then one LoadBalancerConfig holds them), or check that they need not move together", strings.Join(where, ", "))
			default:
				m.n.add(sg.pos, "vrrp_sync_group", "vipvs has no sync groups: its instances share one LoadBalancerConfig (%s), whose virtual IPs have the same node priorities and track checks, so they normally fail over together", strings.Join(where, ", "))
			}
		}
	}
}

// gatewayNotes points out a virtual IP without services in the subnet of
// NAT real servers: keepalived LVS-NAT setups make the director the real
// servers' default gateway; vipvs does not need that.
func (m *merger) gatewayNotes(groups []*group) {
	var natBackends []netip.Addr
	for _, r := range m.routers {
		for _, e := range r.entries {
			if e.svc.Forwarding == "" || e.svc.Forwarding == v1alpha1.ForwardingNAT {
				for _, b := range e.svc.Backends.Static {
					natBackends = append(natBackends, netip.MustParseAddr(b.Address))
				}
			}
		}
	}
	for _, g := range groups {
		for _, r := range g.routers {
			if len(r.entries) > 0 {
				continue
			}
			for _, v := range r.first.vips {
				if v.prefix == 0 {
					continue
				}
				p := netip.PrefixFrom(v.addr, int(v.prefix)).Masked()
				if slices.ContainsFunc(natBackends, p.Contains) {
					m.n.add(v.pos, v.addr.String(), "in the subnet of NAT real servers: if it is their default gateway, vipvs does not need it (its NAT services source-NAT the traffic, so replies come back through the master anyway); drop it after the migration")
					break
				}
			}
		}
	}
}

func (m *merger) nodeSelector(c *v1alpha1.LoadBalancerConfig, g *group) {
	if len(m.selector) > 0 {
		c.Spec.NodeSelector.MatchLabels = m.selector
		return
	}
	c.Spec.NodeSelector.MatchLabels = map[string]string{"node-role.kubernetes.io/control-plane": ""}
	var nodes []string
	r := g.routers[0]
	for ni, in := range r.insts {
		if in != nil {
			nodes = append(nodes, m.nodes[ni].node)
		}
	}
	m.n.add(r.first.pos, "vrrp_instance", "LoadBalancerConfig %s: the nodeSelector cannot be derived from keepalived.conf: node-role.kubernetes.io/control-plane=\"\" is a placeholder; make it select exactly the nodes that ran this configuration (%s), or pass --node-selector KEY=VALUE", c.Name, strings.Join(nodes, ", "))
}

func (m *merger) vrrp(c *v1alpha1.LoadBalancerConfig, g *group, secrets *[]Secret) {
	r := g.routers[0]
	f := r.first
	v := &v1alpha1.VRRP{
		Version:        f.version,
		AdvertInterval: &metav1.Duration{Duration: f.advert},
		Unicast:        ptr(len(f.peers) > 0),
	}
	if !f.preempt {
		v.Preempt = ptr(false)
	}
	if f.preemptDelay > 0 {
		v.PreemptDelay = &metav1.Duration{Duration: f.preemptDelay}
	}
	if f.password != "" {
		s := Secret{Namespace: m.namespace, Name: c.Name + "-vrrp", Key: "password", Value: f.password, Pos: f.passwordPos}
		v.PasswordSecretRef = &v1alpha1.SecretKeyReference{Namespace: s.Namespace, Name: s.Name, Key: s.Key}
		*secrets = append(*secrets, s)
		m.n.add(f.passwordPos, "auth_pass", "the VRRPv2 password goes into Secret %s/%s, key %s (keepalived sends at most its first 8 characters: the Secret holds what it sends); the LoadBalancerConfig only names the Secret", s.Namespace, s.Name, s.Key)
	}
	if f.version == 2 && !m.versionExplicit(g) {
		m.n.add(f.pos, "vrrp_instance", "keepalived's default VRRP version is 2: imported as version 2, so that keepalived and vipvs nodes can share the virtual router during a migration; set version 3 once every node runs vipvs")
	}
	c.Spec.VRRP = v
	var prios []v1alpha1.NodePriority
	for ni, in := range r.insts {
		if in != nil {
			prios = append(prios, v1alpha1.NodePriority{NodeName: m.nodes[ni].node, Priority: in.priority})
		}
	}
	c.Spec.Priorities = &v1alpha1.Priorities{ByNode: prios}
}

// versionExplicit reports whether the VRRP version was written in the
// configuration (instance version or global vrrp_version).
func (m *merger) versionExplicit(g *group) bool {
	f := g.routers[0].first
	return f.versionPos != (Pos{}) || m.nodes[g.routers[0].firstNode].globalVersion
}

// vridAllocator hands out the VRIDs of additional addresses: vipvs runs
// one virtual router per address.
type vridAllocator struct {
	used map[string]bool // family/vrid
}

func (m *merger) allocator() *vridAllocator {
	a := &vridAllocator{used: map[string]bool{}}
	for _, r := range m.routers {
		a.used[r.fam+"/"+strconv.Itoa(int(r.vrid))] = true
	}
	return a
}

// take returns the first free VRID of the family after near (wrapping
// around): next to the instance's own, and away from the low numbers
// that routers use by default.
func (a *vridAllocator) take(fam string, near int32) (int32, bool) {
	for i := int32(1); i <= 255; i++ {
		v := (near+i-1)%255 + 1
		k := fam + "/" + strconv.Itoa(int(v))
		if !a.used[k] {
			a.used[k] = true
			return v, true
		}
	}
	return 0, false
}

func (m *merger) virtualIPs(c *v1alpha1.LoadBalancerConfig, g *group, vrids *vridAllocator) {
	names := uniqueNames{}
	for _, r := range g.routers {
		base := label(r.first.name, "vip", 60)
		for i, v := range r.first.vips {
			x := v1alpha1.VirtualIP{Name: names.take(base), Address: v.addr.String(), VRID: r.vrid}
			if v.prefix != 0 {
				x.PrefixLength = ptr(v.prefix)
			}
			x.Interface = m.vipInterface(r, i)
			if i > 0 {
				vrid, ok := vrids.take(familyOf(v.addr), r.vrid)
				if !ok {
					m.fail(v.pos, v.addr.String(), "needs a virtual router of its own in vipvs, and every VRID of its family is taken")
					continue
				}
				x.VRID = vrid
				m.n.add(v.pos, v.addr.String(), "vipvs runs one virtual router per address: this one gets vrid %d, unused in the imported files; check that no other VRRP router on the segment uses it (keepalived nodes, which advertise it under vrid %d, cannot share this router with vipvs nodes during a migration)", vrid, r.vrid)
			}
			c.Spec.VirtualIPs = append(c.Spec.VirtualIPs, x)
		}
	}
}

// vipInterface is the interface of the router's i-th address: its dev,
// else the instance's interface, when every node agrees.
func (m *merger) vipInterface(r *router, i int) string {
	iface := ""
	for ni, in := range r.insts {
		if in == nil || i >= len(in.vips) {
			continue
		}
		this := in.vips[i].dev
		if this == "" {
			this = in.iface
		}
		switch {
		case ni == r.firstNode:
			iface = this
		case this != iface:
			return ""
		}
	}
	if r.iface == "" {
		return ""
	}
	return iface
}

// knownPorts names the services of well-known ports.
var knownPorts = map[int32]string{
	22: "ssh", 53: "dns", 80: "http", 443: "https", 636: "ldaps", 1936: "router-health", 2379: "etcd",
	3306: "mysql", 5432: "postgresql", 6443: "kube-apiserver", 8080: "http-alt", 8443: "https-alt",
	22623: "machine-config",
}

func serviceName(port int32, proto v1alpha1.Protocol) string {
	p := strings.ToLower(string(proto))
	if p == "" {
		p = "tcp"
	}
	if n, ok := knownPorts[port]; ok {
		if p == "tcp" {
			return n
		}
		return n + "-" + p
	}
	return fmt.Sprintf("%s-%d", p, port)
}

func (m *merger) services(c *v1alpha1.LoadBalancerConfig, g *group) {
	names := uniqueNames{}
	type slot struct {
		svc      v1alpha1.VirtualService
		families map[string]bool
		vips     map[netip.Addr]bool
		pos      Pos
	}
	var slots []*slot
	for _, r := range g.routers {
		for _, e := range r.entries {
			i := slices.IndexFunc(slots, func(s *slot) bool { return s.svc.Port == e.svc.Port && s.svc.Protocol == e.svc.Protocol })
			if i < 0 {
				s := &slot{svc: e.svc, families: map[string]bool{familyOf(e.vip): true}, vips: map[netip.Addr]bool{e.vip: true}, pos: e.pos}
				s.svc.Backends.Static = slices.Clone(e.svc.Backends.Static)
				slots = append(slots, s)
				continue
			}
			s := slots[i]
			s.vips[e.vip] = true
			if fam := familyOf(e.vip); !s.families[fam] {
				s.families[fam] = true
				s.svc.Backends.Static = append(s.svc.Backends.Static, e.svc.Backends.Static...)
			}
		}
	}
	for _, s := range slots {
		var others []string
		for _, v := range c.Spec.VirtualIPs {
			if a := netip.MustParseAddr(v.Address); !s.vips[a] && s.families[familyOf(a)] {
				others = append(others, v.Address)
			}
		}
		if len(others) > 0 {
			m.n.add(s.pos, "virtual_server", "vipvs offers every service of a LoadBalancerConfig on all its virtual IPs: port %d is also offered on %s", s.svc.Port, strings.Join(others, ", "))
		}
		s.svc.Name = names.take(serviceName(s.svc.Port, s.svc.Protocol))
		c.Spec.Services = append(c.Spec.Services, s.svc)
	}
}

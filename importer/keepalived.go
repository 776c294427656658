package importer

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// keepalived's defaults, where they differ from vipvs's or must be written
// out to keep keepalived's behaviour.
const (
	kaPriority       = 100
	kaAdvertInterval = time.Second
	kaVRRPVersion    = 2
	kaScriptInterval = time.Second
	kaDelayLoop      = 60 * time.Second
	kaConnectTimeout = 5 * time.Second
	kaPersistence    = 360 // seconds: "persistence_timeout" without a value
	kaMaxPassword    = 8   // keepalived sends the first 8 characters of auth_pass
	maxVIPPriority   = 254
	maxAdvertV3      = 40950 * time.Millisecond
)

// validInterface reports whether name is an interface name the API
// accepts: 1 to 15 bytes, not "." or "..", without '/', ':' or
// whitespace.
func validInterface(name string) bool {
	return len(name) >= 1 && len(name) <= 15 && name != "." && name != ".." && !strings.ContainsAny(name, "/: \t\n\v\f\r\x00")
}

// nodeConf is one node's keepalived configuration, as far as vipvs can
// use it.
type nodeConf struct {
	node        string
	file        string
	routerID    string
	routerIDPos Pos
	// globalVersion is set when global_defs sets vrrp_version.
	globalVersion bool
	instances     []*instance
	syncGroups    []syncGroup
	services      []svcEntry
}

// instance is a vrrp_instance.
type instance struct {
	name         string
	pos          Pos
	iface        string
	ifacePos     Pos
	vrid         int32
	vridPos      Pos
	priority     int32
	priorityPos  Pos
	advert       time.Duration
	advertPos    Pos
	version      int32
	versionPos   Pos
	password     string // as keepalived sends it: at most 8 characters
	passwordPos  Pos
	preempt      bool
	preemptPos   Pos
	preemptDelay time.Duration
	delayPos     Pos
	unicastSrc   netip.Addr
	srcPos       Pos
	peers        []netip.Addr
	peersPos     Pos
	vips         []vip
	tracks       []v1alpha1.TrackCheck
}

// family is the instance's address family: that of its first virtual IP.
func (in *instance) family() string {
	if len(in.vips) == 0 {
		return ""
	}
	return familyOf(in.vips[0].addr)
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// syncGroup is a vrrp_sync_group.
type syncGroup struct {
	name    string
	pos     Pos
	members []string
}

// vip is one address of a virtual_ipaddress (or _excluded) block.
type vip struct {
	addr     netip.Addr
	prefix   int32 // 0: none given
	dev      string
	pos      Pos
	excluded bool
}

// trackRef is a line of a track_script or track_interface block.
type trackRef struct {
	pos    Pos
	key    string
	script string // the vrrp_script's name, or "" for an interface
	iface  string
	weight *int32
}

// vrrpScript is a vrrp_script with its translation.
type vrrpScript struct {
	name      string
	pos       Pos
	scriptPos Pos
	interval  time.Duration
	timeout   time.Duration
	weight    int32
	rise      int32
	fall      int32
	checks    []v1alpha1.TrackCheck // translated; names are "" or a suffix
	usable    bool
}

// fileTranslator translates one node's statements.
type fileTranslator struct {
	n           *notes
	errs        []error
	conf        *nodeConf
	vrrpVersion int32
	scripts     map[string]*vrrpScript
	trackRefs   map[*instance][]trackRef
	syncGroups  []*stmt
	vsGroups    map[string]*stmt
	vservers    []*stmt
}

func (t *fileTranslator) note(s *stmt, format string, args ...any) {
	t.n.add(s.pos, s.key, format, args...)
}

func (t *fileTranslator) fail(s *stmt, format string, args ...any) {
	t.errs = append(t.errs, errorf(s.pos, s.key, format, args...))
}

// valueLine reports whether a line of a value block (addresses, peers,
// tracked names) is one: a block there means a misplaced brace.
func (t *fileTranslator) valueLine(s *stmt, block string) bool {
	if s.hasBlock {
		t.fail(s, "opens a block inside %s: is a '}' missing before this line?", block)
		return false
	}
	return true
}

// ignore notes a statement that has no equivalent, with its block.
func (t *fileTranslator) ignore(s *stmt, why string) {
	if len(s.block) > 0 && s.close.File == s.pos.File && s.close.Line > s.pos.Line {
		why += fmt.Sprintf(" (the whole block, to line %d)", s.close.Line)
	}
	t.note(s, "%s", why)
}

const noEquivalent = "no equivalent in vipvs: ignored"

// topLevel lists keepalived's top-level keywords: true for a block.
var topLevel = map[string]bool{
	"global_defs": true, "vrrp_script": true, "vrrp_instance": true, "vrrp_sync_group": true,
	"virtual_server": true, "virtual_server_group": true, "static_ipaddress": true,
	"static_routes": true, "static_rules": true, "linkbeat_interfaces": true,
	"static_track_group": true, "track_group": true, "vrrp_track_file": true,
	"track_file": true, "vrrp_track_process": true, "track_process": true,
	"garp_group": true, "bfd_instance": true, "SSL": true,
	"net_namespace": false, "net_namespace_ipvs": false, "namespace_with_ipsets": false,
	"instance": false, "use_pid_dir": false, "linkbeat_use_polling": false, "child_wait_time": false,
}

// translateFile reads one node's statement tree.
func translateFile(stmts []*stmt, node, file string, n *notes) (*nodeConf, error) {
	t := &fileTranslator{
		n:         n,
		conf:      &nodeConf{node: node, file: file},
		scripts:   map[string]*vrrpScript{},
		trackRefs: map[*instance][]trackRef{},
		vsGroups:  map[string]*stmt{},
	}
	var rest []*stmt
	for _, s := range stmts {
		block, known := topLevel[s.key]
		switch {
		case !known:
			t.fail(s, "unknown top-level keyword: not a keepalived configuration block (a missing '}' before it, or a typo?)")
		case block && !s.hasBlock:
			t.fail(s, "needs a { ... } block")
		case !block && s.hasBlock:
			t.fail(s, "takes no block")
		case s.key == "global_defs":
			// First: its defaults (vrrp_version) apply wherever it is.
			t.globalDefs(s)
		default:
			rest = append(rest, s)
		}
	}
	for _, s := range rest {
		switch s.key {
		case "vrrp_script":
			t.vrrpScript(s)
		case "vrrp_instance":
			t.vrrpInstance(s)
		case "vrrp_sync_group":
			t.syncGroups = append(t.syncGroups, s)
		case "virtual_server":
			t.vservers = append(t.vservers, s)
		case "virtual_server_group":
			if s.arg(0) == "" {
				t.fail(s, "needs a name")
			} else {
				t.vsGroups[s.arg(0)] = s
			}
		case "static_ipaddress", "static_routes", "static_rules":
			t.ignore(s, "no equivalent: configure the node's own addresses and routes with its network configuration (NetworkManager, a MachineConfig)")
		case "vrrp_track_file", "track_file":
			t.ignore(s, "file tracking has no equivalent: use an exec track check that tests the file")
		case "vrrp_track_process", "track_process":
			t.ignore(s, "process tracking has no equivalent: use a tcp or http track check on the port the process serves")
		case "bfd_instance":
			t.ignore(s, "BFD has no equivalent in vipvs: ignored")
		case "SSL":
			t.ignore(s, "SSL_GET client certificates have no equivalent: vipvs's https checks present none")
		default:
			t.ignore(s, noEquivalent)
		}
	}
	t.syncGroupsDone()
	t.resolveTracks()
	t.virtualServers()
	if len(t.errs) > 0 {
		return nil, joinErrors(t.errs)
	}
	return t.conf, nil
}

func (t *fileTranslator) globalDefs(g *stmt) {
	for _, s := range g.block {
		switch {
		case s.key == "router_id":
			t.conf.routerID, t.conf.routerIDPos = s.arg(0), s.pos
		case s.key == "vrrp_version":
			if v, ok := t.intArg(s, 2, 3); ok {
				t.vrrpVersion = int32(v)
				t.conf.globalVersion = true
			}
		case strings.HasPrefix(s.key, "notification_email") || strings.HasPrefix(s.key, "smtp_") || s.key == "no_email_faults":
			t.ignore(s, "e-mail notifications have no equivalent: alert on the agent's metrics (vipvs_vrrp_state, vipvs_vrrp_transitions_total) instead")
		case s.key == "enable_script_security" || s.key == "script_user":
			t.note(s, "no equivalent: exec checks run as the agent's user, without a shell")
		case strings.HasPrefix(s.key, "vrrp_garp") || strings.HasPrefix(s.key, "vrrp_gna") ||
			strings.HasPrefix(s.key, "vrrp_min_garp") || strings.HasPrefix(s.key, "vrrp_lower_prio"):
			t.note(s, "no LoadBalancerConfig field: the agent sends a burst of gratuitous ARPs (IPv4) or neighbour advertisements (IPv6) on becoming master and repeats it")
		case s.key == "vrrp_mcast_group4" && s.arg(0) == "224.0.0.18", s.key == "vrrp_mcast_group6" && s.arg(0) == "ff02::12":
		case s.key == "vrrp_mcast_group4" || s.key == "vrrp_mcast_group6":
			t.note(s, "no equivalent: vipvs uses the standard VRRP groups 224.0.0.18 and ff02::12 in multicast mode (unicast is its default)")
		case s.key == "vrrp_check_unicast_src":
			// vipvs always drops unicast adverts from sources that are not selected nodes.
		case s.key == "vrrp_strict":
			t.note(s, "no equivalent: vipvs follows the RFC's receive checks always; it has no strict mode adding firewall rules")
		case s.key == "vrrp_iptables" || s.key == "vrrp_ipsets" || s.key == "vrrp_nftables":
			t.note(s, "no equivalent: vipvs adds no firewall rules for the VIPs (only the SNAT rules of NAT services)")
		case strings.HasPrefix(s.key, "lvs_"):
			t.note(s, "no equivalent in vipvs (IPVS connection synchronisation and timeouts are not managed): ignored")
		case strings.HasSuffix(s.key, "_priority") || strings.HasSuffix(s.key, "_no_swap") ||
			strings.HasSuffix(s.key, "_rt_priority") || strings.HasSuffix(s.key, "_cpu_affinity") ||
			strings.HasSuffix(s.key, "_rlimit_rttime"):
			t.note(s, "process scheduling setting of keepalived: no equivalent, ignored")
		default:
			t.ignore(s, noEquivalent)
		}
	}
}

// intArg parses the statement's first argument as an integer in
// [lo, hi].
func (t *fileTranslator) intArg(s *stmt, lo, hi int64) (int64, bool) {
	return t.intAt(s, 0, lo, hi)
}

func (t *fileTranslator) intAt(s *stmt, i int, lo, hi int64) (int64, bool) {
	v, err := strconv.ParseInt(s.arg(i), 10, 64)
	if err != nil || v < lo || v > hi {
		t.fail(s, "needs a whole number from %d to %d, not %q", lo, hi, s.arg(i))
		return 0, false
	}
	return v, true
}

// clampedInt parses the first argument as an integer in [lo, hi] as
// keepalived does, and cuts it to vipvs's largest value, with a note.
func (t *fileTranslator) clampedInt(s *stmt, lo, hi, most int64) (int64, bool) {
	v, ok := t.intArg(s, lo, hi)
	if ok && v > most {
		t.note(s, "%d is more than vipvs's largest, %d: imported as %d", v, most, most)
		v = most
	}
	return v, ok
}

// seconds parses the statement's i-th argument as keepalived's <TIMER>:
// seconds with an optional fraction, rounded to milliseconds.
func (t *fileTranslator) seconds(s *stmt, i int, lo, hi time.Duration) (time.Duration, bool) {
	d, ok := parseSeconds(s.arg(i))
	if !ok || d < lo || d > hi {
		t.fail(s, "needs a time in seconds from %v to %v, not %q", lo.Seconds(), hi.Seconds(), s.arg(i))
		return 0, false
	}
	return d, true
}

func parseSeconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e6 || strings.ContainsAny(s, "xXpPeEnN_") {
		return 0, false
	}
	return time.Duration(math.Round(f*1000)) * time.Millisecond, true
}

func (t *fileTranslator) vrrpScript(s *stmt) {
	name := s.arg(0)
	if name == "" {
		t.fail(s, "needs a name")
		return
	}
	sc := &vrrpScript{name: name, pos: s.pos, interval: kaScriptInterval, rise: 1, fall: 1}
	var argv []string
	for _, c := range s.block {
		switch c.key {
		case "script":
			argv, sc.scriptPos = scriptArgv(c.args), c.pos
		case "interval":
			if d, ok := t.seconds(c, 0, time.Second, time.Hour); ok {
				sc.interval = d
			}
		case "timeout":
			if d, ok := t.seconds(c, 0, time.Second, time.Hour); ok {
				sc.timeout = d
			}
		case "weight":
			if w, ok := t.intArg(c, -253, 253); ok {
				sc.weight = int32(w)
			}
			if c.arg(1) == "reverse" {
				t.note(c, "'reverse' has no equivalent: vipvs applies the weight while the check fails (negative) or succeeds (positive); the check is imported without reverse, rework it")
			}
		case "rise":
			if v, ok := t.clampedInt(c, 1, math.MaxInt32, 100); ok {
				sc.rise = int32(v)
			}
		case "fall":
			if v, ok := t.clampedInt(c, 1, math.MaxInt32, 100); ok {
				sc.fall = int32(v)
			}
		case "user":
			t.note(c, "no equivalent: exec checks run as the agent's user")
		case "init_fail":
			t.note(c, "no equivalent: a vipvs check starts unknown and counts rise successes before it is healthy")
		default:
			t.ignore(c, noEquivalent)
		}
	}
	if len(argv) == 0 {
		t.fail(s, "has no script")
		return
	}
	// keepalived's default timeout is the interval; a longer one is cut
	// to the interval, since vipvs never overlaps two probes.
	switch {
	case sc.timeout == 0:
		sc.timeout = sc.interval
	case sc.timeout > sc.interval:
		t.n.add(s.pos, s.key, "timeout %v is longer than the interval %v: cut to the interval (vipvs never runs two probes of a check at once)", sc.timeout, sc.interval)
		sc.timeout = sc.interval
	}
	sc.checks, sc.usable = translateScript(argv, sc, t.n)
	if _, dup := t.scripts[name]; dup {
		t.note(s, "a second vrrp_script %s: this one replaces the first", name)
	}
	t.scripts[name] = sc
}

// scriptArgv splits a script line as keepalived does: each word of the
// line, and inside a quoted word, unquoted spaces separate the program's
// arguments (single or double quotes group).
func scriptArgv(args []token) []string {
	var argv []string
	for _, a := range args {
		if a.quoted {
			argv = append(argv, splitWords(a.text)...)
		} else {
			argv = append(argv, a.text)
		}
	}
	return argv
}

// splitWords splits a command string at unquoted whitespace; single and
// double quotes group and are removed.
func splitWords(s string) []string {
	var words []string
	var b strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			b.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, b.String())
	}
	return words
}

func (t *fileTranslator) vrrpInstance(s *stmt) {
	in := &instance{
		name: s.arg(0), pos: s.pos, priority: kaPriority, advert: kaAdvertInterval,
		preempt: true, priorityPos: s.pos, advertPos: s.pos, preemptPos: s.pos,
	}
	if in.name == "" {
		t.fail(s, "needs a name")
		return
	}
	vridSet := false
	var version int32
	var auth *stmt
	var masterState *stmt
	for _, c := range s.block {
		switch c.key {
		case "state":
			switch c.arg(0) {
			case "MASTER":
				masterState = c
				t.note(c, "no equivalent: every vipvs node starts as backup and the one of highest priority (byNode) becomes master after about three advert intervals; the priorities decide")
			case "BACKUP":
			default:
				t.fail(c, "must be MASTER or BACKUP, not %q", c.arg(0))
			}
		case "interface":
			in.iface, in.ifacePos = c.arg(0), c.pos
		case "virtual_router_id":
			if v, ok := t.intArg(c, 1, 255); ok {
				in.vrid, in.vridPos, vridSet = int32(v), c.pos, true
			} else {
				vridSet = true // reported
			}
		case "priority":
			if v, ok := t.intArg(c, 1, 255); ok {
				in.priority, in.priorityPos = int32(v), c.pos
				if v == 255 {
					in.priority = maxVIPPriority
					t.note(c, "255 (address owner) is not a vipvs priority: a VIP is never a node's own address; imported as 254")
				}
			}
		case "advert_int":
			if d, ok := t.seconds(c, 0, 10*time.Millisecond, 255*time.Second); ok {
				in.advert, in.advertPos = d, c.pos
			}
		case "nopreempt", "no_preempt":
			in.preempt, in.preemptPos = false, c.pos
		case "preempt":
			in.preempt, in.preemptPos = true, c.pos
		case "preempt_delay":
			if d, ok := t.seconds(c, 0, 0, 1000*time.Second); ok {
				in.preemptDelay, in.delayPos = d, c.pos
			}
		case "authentication":
			auth = c
		case "version":
			if v, ok := t.intArg(c, 2, 3); ok {
				version, in.versionPos = int32(v), c.pos
			}
		case "native_ipv6":
		case "unicast_src_ip":
			a, err := netip.ParseAddr(c.arg(0))
			if err != nil {
				t.fail(c, "needs an IP address, not %q", c.arg(0))
				continue
			}
			in.unicastSrc, in.srcPos = a, c.pos
		case "unicast_peer":
			in.peersPos = c.pos
			if len(c.block) == 0 {
				t.note(c, "an empty peer list: keepalived falls back to multicast, and so does the import")
			}
			for _, p := range c.block {
				if !t.valueLine(p, c.key) {
					continue
				}
				a, err := netip.ParseAddr(p.key)
				if err != nil {
					t.fail(p, "needs a peer's IP address")
					continue
				}
				in.peers = append(in.peers, a)
				if len(p.args) > 0 {
					t.note(p, "%s: no equivalent: vipvs checks the TTL (255) of every advert as the RFC says", p.argLine())
				}
			}
		case "check_unicast_src":
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, v := range c.block {
				if !t.valueLine(v, c.key) {
					continue
				}
				if x, ok := t.vipLine(v, c.key == "virtual_ipaddress_excluded"); ok {
					in.vips = append(in.vips, x)
				}
			}
		case "track_script", "track_interface":
			for _, r := range c.block {
				if !t.valueLine(r, c.key) {
					continue
				}
				ref := trackRef{pos: r.pos, key: r.key}
				if c.key == "track_script" {
					ref.script = r.key
				} else {
					ref.iface = r.key
				}
				t.trackOptions(r, &ref)
				t.trackRefs[in] = append(t.trackRefs[in], ref)
			}
		case "track_file", "track_process", "track_bfd":
			t.ignore(c, "no equivalent: use an exec, tcp or http track check instead")
		case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted",
			"notify_master_rx_lower_pri", "notify_priority_changes":
			t.note(c, "no LoadBalancerConfig field: notify commands are set per node in the agent's configuration (notify.master, notify.backup, notify.fault, notify.stop), called with keepalived's arguments")
		case "smtp_alert":
			t.note(c, "e-mail notifications have no equivalent: alert on the agent's metrics instead")
		case "mcast_src_ip":
			t.note(c, "no equivalent: the agent sends from the interface's primary address")
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
			"garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_extra_if", "garp_extra_if_vmac":
			t.note(c, "no LoadBalancerConfig field: the agent sends a burst of gratuitous ARPs or neighbour advertisements on becoming master and repeats it")
		case "use_vmac", "vmac_xmit_base", "use_vmac_addr", "use_ipvlan":
			t.note(c, "no equivalent: the agent holds the VIP with the interface's own MAC address and announces it with gratuitous ARP")
		case "dont_track_primary":
			t.note(c, "no equivalent: the agent always watches the VIP's interface")
		case "virtual_routes", "virtual_rules":
			t.ignore(c, "no equivalent: vipvs adds only the addresses")
		case "accept", "no_accept":
			t.note(c, "no equivalent: the master accepts packets to its VIPs (IPVS needs them)")
		case "debug":
			t.note(c, "ignored: set the agent's log verbosity instead")
		default:
			t.ignore(c, noEquivalent)
		}
	}
	if !vridSet {
		t.fail(s, "has no virtual_router_id (keepalived requires one too)")
		return
	}
	t.checkFamilies(in)
	t.resolveVersion(in, version)
	if masterState != nil {
		if !in.preempt {
			t.n.add(in.preemptPos, "nopreempt", "keepalived ignores nopreempt with state MASTER: imported as preempt: true")
			in.preempt = true
		}
		if in.preemptDelay > 0 {
			t.n.add(in.delayPos, "preempt_delay", "keepalived ignores preempt_delay with state MASTER: not imported")
			in.preemptDelay = 0
		}
	}
	if in.preemptDelay > 0 {
		if !in.preempt {
			t.n.add(in.delayPos, "preempt_delay", "keepalived ignores preempt_delay with nopreempt: not imported")
			in.preemptDelay = 0
		} else {
			t.n.add(in.delayPos, "preempt_delay", "approximated: vipvs waits %v only after its agent starts; keepalived also waited after seeing a master of lower priority", in.preemptDelay)
		}
	}
	if in.version == 2 {
		kept := in.vips[:0]
		for _, v := range in.vips {
			if v.addr.Is6() {
				t.n.add(v.pos, v.addr.String(), "an IPv6 address in a VRRP version 2 instance: vipvs holds IPv6 addresses with version 3 only: not imported; give it a vrrp_instance of its own")
				continue
			}
			kept = append(kept, v)
		}
		in.vips = kept
	}
	if auth != nil {
		t.authentication(in, auth)
	}
	switch {
	case in.version == 2 && in.advert%time.Second != 0:
		d := max(time.Second, in.advert.Round(time.Second))
		t.n.add(in.advertPos, "advert_int", "VRRP version 2 advertises in whole seconds: %v rounded to %v, as keepalived does", in.advert, d)
		in.advert = d
	case in.version == 3 && in.advert > maxAdvertV3:
		t.n.add(in.advertPos, "advert_int", "VRRP version 3 advertises at most every %v: imported as %v", maxAdvertV3, maxAdvertV3)
		in.advert = maxAdvertV3
	case in.version == 3 && in.advert%(10*time.Millisecond) != 0:
		d := max(10*time.Millisecond, in.advert.Round(10*time.Millisecond))
		t.n.add(in.advertPos, "advert_int", "VRRP version 3 advertises in centiseconds: %v rounded to %v", in.advert, d)
		in.advert = d
	}
	if in.iface != "" && !validInterface(in.iface) {
		t.n.add(in.ifacePos, "interface", "%q is not a Linux interface name vipvs accepts (1 to 15 characters without '/', ':' or whitespace): the virtual IPs are imported without interface (each node uses the interface whose subnet holds the VIP)", in.iface)
		in.iface = ""
	}
	if len(in.vips) == 0 {
		t.note(s, "has no usable virtual_ipaddress: nothing to import")
	}
	t.conf.instances = append(t.conf.instances, in)
}

// vipLine reads one line of a virtual_ipaddress block.
func (t *fileTranslator) vipLine(v *stmt, excluded bool) (vip, bool) {
	x := vip{pos: v.pos, excluded: excluded}
	if p, err := netip.ParsePrefix(v.key); err == nil {
		x.addr, x.prefix = p.Addr(), int32(p.Bits())
	} else if a, err := netip.ParseAddr(v.key); err == nil {
		x.addr = a
	} else {
		t.fail(v, "needs an IP address with an optional /prefix length")
		return x, false
	}
	x.addr = x.addr.Unmap()
	for i := 0; i < len(v.args); i++ {
		opt, val := v.args[i].text, ""
		switch opt {
		case "dev", "brd", "scope", "label", "peer", "preferred_lft", "track_group":
			if i+1 >= len(v.args) {
				t.fail(v, "%s needs a value", opt)
				return x, false
			}
			i++
			val = v.args[i].text
		}
		switch opt {
		case "dev":
			if !validInterface(val) {
				t.n.add(v.pos, v.key, "dev %q is not a Linux interface name vipvs accepts (1 to 15 characters without '/', ':' or whitespace): ignored", val)
				continue
			}
			x.dev = val
		case "label":
			t.n.add(v.pos, v.key, "label %s: no equivalent: vipvs adds the address without a label (ip address still lists it)", val)
		case "brd", "scope", "preferred_lft":
			t.n.add(v.pos, v.key, "%s %s: no equivalent: vipvs adds the address with the kernel's defaults", opt, val)
		case "no_track":
			t.n.add(v.pos, v.key, "no_track has no equivalent: the agent puts a deleted VIP back")
		case "-nodad", "nodad":
			// vipvs adds IPv6 VIPs without DAD anyway.
		default:
			t.n.add(v.pos, v.key, "option %s: no equivalent in vipvs: ignored", opt)
		}
	}
	if !x.addr.IsGlobalUnicast() {
		t.n.add(v.pos, v.key, "not a unicast address vipvs can hold (loopback, link-local, multicast or unspecified): skipped")
		return x, false
	}
	if excluded {
		t.n.add(v.pos, v.key, "virtual_ipaddress_excluded: vipvs advertises every address; this one becomes a virtual IP of its own (see its vrid)")
	}
	return x, true
}

// checkFamilies drops addresses of another family than the instance's
// first, as keepalived does (excluded addresses may be of either family).
func (t *fileTranslator) checkFamilies(in *instance) {
	fam := ""
	kept := in.vips[:0]
	for _, v := range in.vips {
		if !v.excluded {
			if fam == "" {
				fam = familyOf(v.addr)
			} else if familyOf(v.addr) != fam {
				t.n.add(v.pos, v.addr.String(), "an %s address in an %s instance: keepalived ignores it, and so does the import", familyOf(v.addr), fam)
				continue
			}
		}
		kept = append(kept, v)
	}
	in.vips = kept
	// An instance of excluded addresses only takes its family from them.
	slices.SortStableFunc(in.vips, func(a, b vip) int {
		switch {
		case a.excluded == b.excluded:
			return 0
		case b.excluded:
			return -1
		}
		return 1
	})
}

// resolveVersion sets the instance's VRRP version as keepalived does: the
// instance's version, else global_defs' vrrp_version, else 2; IPv6 always
// 3.
func (t *fileTranslator) resolveVersion(in *instance, version int32) {
	switch {
	case version != 0:
		in.version = version
	case t.vrrpVersion != 0:
		in.version = t.vrrpVersion
	default:
		in.version = kaVRRPVersion
	}
	if in.family() == "IPv6" && in.version != 3 {
		if version == 2 {
			t.n.add(in.versionPos, "version", "IPv6 instances always run VRRP version 3 in keepalived: imported as version 3")
		}
		in.version = 3
	}
}

func (t *fileTranslator) authentication(in *instance, auth *stmt) {
	var typ, pass *stmt
	for _, c := range auth.block {
		switch c.key {
		case "auth_type":
			typ = c
		case "auth_pass":
			pass = c
		default:
			t.ignore(c, noEquivalent)
		}
	}
	switch {
	case typ == nil || pass == nil:
		t.note(auth, "needs auth_type and auth_pass: keepalived sends no authentication, and neither will vipvs")
	case typ.arg(0) == "AH":
		t.note(typ, "IPsec AH authentication has no equivalent: not imported; the nodes run VRRP without authentication")
	case typ.arg(0) != "PASS":
		t.fail(typ, "must be PASS or AH, not %q", typ.arg(0))
	case in.version == 3:
		t.note(auth, "VRRP version 3 has no authentication: keepalived ignores the block, and so does the import")
	case pass.arg(0) == "":
		t.fail(pass, "needs a password")
	default:
		in.password, in.passwordPos = pass.arg(0), pass.pos
		if len(in.password) > kaMaxPassword {
			in.password = in.password[:kaMaxPassword]
		}
	}
}

// trackOptions reads "weight N [reverse|noreverse]" after a tracked name.
func (t *fileTranslator) trackOptions(r *stmt, ref *trackRef) {
	for i := 0; i < len(r.args); i++ {
		switch r.args[i].text {
		case "weight":
			w, ok := t.intAt(r, i+1, -254, 254)
			if !ok {
				return
			}
			ref.weight = ptr(int32(w))
			i++
		case "reverse":
			t.n.add(r.pos, r.key, "'reverse' has no equivalent: imported without it, rework the check")
		case "noreverse", "no_reverse":
		default:
			t.n.add(r.pos, r.key, "option %s: no equivalent in vipvs: ignored", r.args[i].text)
		}
	}
}

// syncGroupsDone applies the vrrp_sync_groups: their tracking applies to
// every member, and keepalived zeroes the members' own tracking weights
// unless sync_group_tracking_weight is set.
func (t *fileTranslator) syncGroupsDone() {
	byName := map[string]*instance{}
	for _, in := range t.conf.instances {
		byName[in.name] = in
	}
	for _, g := range t.syncGroups {
		var members []*instance
		keepWeights := false
		var groupRefs []trackRef
		for _, c := range g.block {
			switch c.key {
			case "group":
				for _, m := range c.block {
					in, ok := byName[m.key]
					if !ok {
						t.fail(m, "is not a vrrp_instance of this file")
						continue
					}
					members = append(members, in)
				}
			case "sync_group_tracking_weight":
				keepWeights = true
			case "track_script", "track_interface":
				for _, r := range c.block {
					ref := trackRef{pos: r.pos, key: r.key}
					if c.key == "track_script" {
						ref.script = r.key
					} else {
						ref.iface = r.key
					}
					t.trackOptions(r, &ref)
					groupRefs = append(groupRefs, ref)
				}
			case "notify", "notify_master", "notify_backup", "notify_fault", "notify_stop":
				t.note(c, "no LoadBalancerConfig field: notify commands are set per node in the agent's configuration; vipvs calls them per virtual router (INSTANCE), never per GROUP")
			case "global_tracking":
				keepWeights = true
			default:
				t.ignore(c, noEquivalent)
			}
		}
		sg := syncGroup{name: g.arg(0), pos: g.pos}
		for _, in := range members {
			sg.members = append(sg.members, in.name)
		}
		t.conf.syncGroups = append(t.conf.syncGroups, sg)
		for _, in := range members {
			if !keepWeights {
				for i, ref := range t.trackRefs[in] {
					if ref.script != "" {
						t.trackRefs[in][i].weight = ptr(int32(0))
						t.n.add(ref.pos, ref.key, "in sync group %s keepalived sets the weight to 0 (go to FAULT while failing): imported with weight 0", g.arg(0))
					}
				}
			}
			t.trackRefs[in] = append(t.trackRefs[in], groupRefs...)
		}
	}
}

// resolveTracks turns each instance's tracked scripts and interfaces into
// track checks.
func (t *fileTranslator) resolveTracks() {
	for _, in := range t.conf.instances {
		names := uniqueNames{}
		for _, ref := range t.trackRefs[in] {
			if ref.iface != "" {
				if !validInterface(ref.iface) {
					t.n.add(ref.pos, ref.key, "not a Linux interface name vipvs accepts (1 to 15 characters without '/', ':' or whitespace): not imported")
					continue
				}
				w := int32(0)
				if ref.weight != nil {
					w = *ref.weight
				}
				in.tracks = append(in.tracks, v1alpha1.TrackCheck{
					Name:      names.take(label("if-"+ref.iface, "interface", 63)),
					Weight:    w,
					Interface: &v1alpha1.InterfaceCheck{Name: ref.iface},
				})
				continue
			}
			sc, ok := t.scripts[ref.script]
			if !ok {
				t.n.add(ref.pos, ref.key, "no vrrp_script of this name: keepalived ignores the line, and so does the import")
				continue
			}
			if !sc.usable {
				t.n.add(ref.pos, ref.key, "the vrrp_script is not imported (see %s): the instance is not tracked by it", sc.pos)
				continue
			}
			w := sc.weight
			if ref.weight != nil {
				w = *ref.weight
			}
			parts, how := splitWeight(w, len(sc.checks))
			if how != "" {
				t.n.add(ref.pos, ref.key, "%s", how)
			}
			base := names.take(label(sc.name, "script", 61))
			for i, c := range sc.checks {
				c.Name = base
				if i > 0 {
					c.Name = names.take(base + "-" + strconv.Itoa(i+1))
				}
				c.Weight = parts[i]
				in.tracks = append(in.tracks, c)
			}
		}
	}
}

// splitWeight divides a script's weight among the n checks it became, and
// says how when that is not exact. Weight 0 (FAULT while failing) is
// exact: each check gets 0. A negative weight goes in full to each check:
// any failure lowers the priority by at least as much as keepalived did
// (several failures lower it more). A positive weight is split so that the
// parts add up to it: a node whose checks all pass gets exactly keepalived's
// bonus, one whose checks partly pass gets part of it (keepalived gave
// none).
func splitWeight(w int32, n int) ([]int32, string) {
	parts := make([]int32, n)
	if n <= 1 || w == 0 {
		for i := range parts {
			parts[i] = w
		}
		return parts, ""
	}
	if w < 0 || w < int32(n) {
		for i := range parts {
			parts[i] = w
		}
		return parts, fmt.Sprintf("the script's weight %d applies to each of its %d checks: any failing check changes the priority by %d as in keepalived, several failing checks by more", w, n, w)
	}
	for i := range parts {
		parts[i] = w / int32(n)
	}
	parts[0] += w % int32(n)
	return parts, fmt.Sprintf("the script's weight %d is split among its %d checks (%s): a node whose checks all pass gets +%d as in keepalived; one whose checks partly pass gets part of it, where keepalived gave nothing", w, n, joinInts(parts), w)
}

func joinInts(v []int32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ", ")
}

func ptr[T any](v T) *T { return &v }

// joinErrors joins errors one per line.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &errorList{errs: errs}
}

type errorList struct{ errs []error }

func (e *errorList) Error() string {
	lines := make([]string, len(e.errs))
	for i, err := range e.errs {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

func (e *errorList) Unwrap() []error { return e.errs }

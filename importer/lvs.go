package importer

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// svcEntry is one virtual_server on one virtual IP address, translated
// (without name): its backends are those of the address's family.
type svcEntry struct {
	vip netip.Addr
	pos Pos
	svc v1alpha1.VirtualService
}

// key identifies the service of an entry on its address.
func (e svcEntry) key() string {
	return fmt.Sprintf("%s/%d/%s", e.vip, e.svc.Port, e.svc.Protocol)
}

// checkDefaults are the checker settings a virtual_server passes to its
// real servers and a real server to its checkers.
type checkDefaults struct {
	delayLoop        time.Duration
	connectTimeout   time.Duration
	delayBeforeRetry time.Duration
	retry            int64 // -1: the checker's default
	virtualhost      string
}

// readDefault reads a checker default; it reports whether the statement
// was one.
func (t *fileTranslator) readDefault(c *stmt, d *checkDefaults) bool {
	switch c.key {
	case "delay_loop":
		if v, ok := t.seconds(c, 0, time.Millisecond, 24*time.Hour); ok {
			d.delayLoop = v
		}
	case "connect_timeout":
		if v, ok := t.seconds(c, 0, time.Millisecond, time.Hour); ok {
			d.connectTimeout = v
		}
	case "delay_before_retry":
		if v, ok := t.seconds(c, 0, 0, time.Hour); ok {
			d.delayBeforeRetry = v
		}
	case "retry", "nb_get_retry", "nb_sock_retry":
		if v, ok := t.clampedInt(c, 0, math.MaxInt32, 99); ok {
			d.retry = v
		}
	case "virtualhost":
		d.virtualhost = c.arg(0)
	case "warmup":
		t.note(c, "no equivalent: vipvs starts probing at once")
	case "alpha":
		t.note(c, "no equivalent: vipvs keeps a new backend in service until its check has failed fall times")
	case "inhibit_on_failure":
		// vipvs always drains a failed backend with weight 0.
	case "log_all_failures", "smtp_alert", "snmp_name", "omega":
		t.note(c, noEquivalent)
	default:
		return false
	}
	return true
}

// vsTarget is one address and port a virtual_server serves.
type vsTarget struct {
	addr netip.Addr
	port int32
}

// virtualServers translates the virtual_server blocks, now that the
// instances (and so the virtual IP addresses) are known.
func (t *fileTranslator) virtualServers() {
	vips := map[netip.Addr]bool{}
	for _, in := range t.conf.instances {
		for _, v := range in.vips {
			vips[v.addr] = true
		}
	}
	for _, s := range t.vservers {
		targets, ok := t.vsTargets(s, vips)
		if !ok {
			continue
		}
		svc, backends, ok := t.virtualServer(s)
		if !ok {
			continue
		}
		for _, tg := range targets {
			e := svcEntry{vip: tg.addr, pos: s.pos, svc: svc}
			e.svc.Port = tg.port
			e.svc.Backends.Static = nil
			for _, b := range backends {
				if familyOf(b.addr) != familyOf(tg.addr) {
					t.n.add(b.pos, "real_server", "%s is not in the family of %s: skipped (vipvs gives each virtual IP the backends of its own family)", b.addr, tg.addr)
					continue
				}
				sb := v1alpha1.StaticBackend{Address: b.addr.String(), Weight: b.weight}
				if b.port != 0 && b.port != tg.port {
					if svc.Forwarding == v1alpha1.ForwardingDR || svc.Forwarding == v1alpha1.ForwardingTunnel {
						t.n.add(b.pos, "real_server", "port %d: direct routing and tunnelling cannot change the port (IPVS ignores it): the backend gets port %d", b.port, tg.port)
					} else {
						sb.Port = ptr(b.port)
					}
				}
				e.svc.Backends.Static = append(e.svc.Backends.Static, sb)
			}
			if len(e.svc.Backends.Static) == 0 {
				t.note(s, "no usable real_server for %s: skipped", tg.addr)
				continue
			}
			t.conf.services = append(t.conf.services, e)
		}
	}
}

// vsTargets resolves a virtual_server's header (IP PORT, group NAME or
// fwmark N) to the virtual IP addresses and ports it serves.
func (t *fileTranslator) vsTargets(s *stmt, vips map[netip.Addr]bool) ([]vsTarget, bool) {
	switch s.arg(0) {
	case "":
		t.fail(s, "needs an address and port, group NAME or fwmark N")
		return nil, false
	case "fwmark":
		t.ignore(s, "firewall-mark services have no equivalent: vipvs services are a port on the virtual IPs; skipped")
		return nil, false
	case "group":
		g, ok := t.vsGroups[s.arg(1)]
		if !ok {
			t.fail(s, "virtual_server_group %q is not defined", s.arg(1))
			return nil, false
		}
		var targets []vsTarget
		for _, e := range g.block {
			if e.key == "fwmark" {
				t.note(e, "firewall-mark services have no equivalent: skipped")
				continue
			}
			port, ok := t.vsPort(e, 0)
			if !ok {
				continue
			}
			matched := false
			for _, a := range sortedAddrs(vips) {
				if in, err := addrSpecContains(e.key, a); err != nil {
					t.fail(e, "needs an address, address range or prefix: %v", err)
					break
				} else if in {
					targets = append(targets, vsTarget{a, port})
					matched = true
				}
			}
			if !matched {
				t.note(e, "holds no virtual_ipaddress of a vrrp_instance: vipvs offers services only on its virtual IPs; skipped")
			} else if strings.ContainsAny(e.key, "-/") {
				t.note(e, "a range: only its virtual IPs are served (%s)", joinTargets(targets))
			}
		}
		return targets, len(targets) > 0
	}
	a, err := netip.ParseAddr(s.arg(0))
	if err != nil {
		t.fail(s, "needs an IP address, not %q", s.arg(0))
		return nil, false
	}
	if s.arg(1) == "" {
		t.ignore(s, "a service of all ports (persistent, without port) has no equivalent: vipvs services have a port; skipped")
		return nil, false
	}
	port, ok := t.vsPort(s, 1)
	if !ok {
		return nil, false
	}
	a = a.Unmap()
	if !vips[a] {
		t.ignore(s, fmt.Sprintf("%s is not a virtual_ipaddress of any vrrp_instance: vipvs offers services only on its virtual IPs; skipped", a))
		return nil, false
	}
	return []vsTarget{{a, port}}, true
}

func (t *fileTranslator) vsPort(s *stmt, i int) (int32, bool) {
	if s.arg(i) == "" {
		t.note(s, "a service of all ports (without port) has no equivalent: skipped")
		return 0, false
	}
	p, ok := t.intAt(s, i, 1, 65535)
	return int32(p), ok
}

func joinTargets(ts []vsTarget) string {
	s := make([]string, len(ts))
	for i, tg := range ts {
		s[i] = tg.addr.String()
	}
	return strings.Join(s, ", ")
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// addrSpecContains reports whether a virtual_server_group address (an
// address, A.B.C.D-E, A-B or a prefix) holds a.
func addrSpecContains(spec string, a netip.Addr) (bool, error) {
	if p, err := netip.ParsePrefix(spec); err == nil {
		return p.Masked().Contains(a), nil
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return false, err
	}
	if !isRange {
		return first.Unmap() == a, nil
	}
	last, err := netip.ParseAddr(hi)
	if err != nil {
		// A.B.C.D-E: the last part of the first address.
		n, nerr := strconv.Atoi(hi)
		if nerr != nil || !first.Is4() || n < 0 || n > 255 {
			return false, fmt.Errorf("bad range %q", spec)
		}
		b := first.As4()
		b[3] = byte(n)
		last = netip.AddrFrom4(b)
	}
	return first.Compare(a) <= 0 && a.Compare(last) <= 0, nil
}

// backend is a real_server, translated.
type backend struct {
	addr   netip.Addr
	port   int32
	weight *int32
	pos    Pos
}

// scheduler maps keepalived's lb_algo to vipvs's.
var schedulers = map[string]v1alpha1.Scheduler{
	"rr": v1alpha1.SchedulerRoundRobin, "wrr": v1alpha1.SchedulerWeightedRoundRobin,
	"lc": v1alpha1.SchedulerLeastConnection, "wlc": v1alpha1.SchedulerWeightedLeastConnection,
	"sh": v1alpha1.SchedulerSourceHashing, "mh": v1alpha1.SchedulerMaglevHashing,
}

// virtualServer translates a virtual_server's body: the service (without
// port and backends) and its real servers.
func (t *fileTranslator) virtualServer(s *stmt) (v1alpha1.VirtualService, []backend, bool) {
	var svc v1alpha1.VirtualService
	defs := checkDefaults{retry: -1}
	var rss []*stmt
	ok := true
	for _, c := range s.block {
		if t.readDefault(c, &defs) {
			continue
		}
		switch c.key {
		case "lb_algo", "lvs_sched":
			if sch, known := schedulers[c.arg(0)]; known {
				svc.Scheduler = sch
			} else {
				svc.Scheduler = v1alpha1.SchedulerWeightedLeastConnection
				t.note(c, "scheduler %s has no equivalent (vipvs has rr, wrr, lc, wlc, sh and mh): imported as wlc", c.arg(0))
			}
		case "lb_kind", "lvs_method":
			switch c.arg(0) {
			case "NAT":
				svc.Forwarding = v1alpha1.ForwardingNAT
			case "DR":
				svc.Forwarding = v1alpha1.ForwardingDR
			case "TUN":
				svc.Forwarding = v1alpha1.ForwardingTunnel
				if len(c.args) > 1 && c.arg(2) != "ipip" {
					t.note(c, "tunnel options %q: vipvs tunnels with IP-in-IP only", strings.Join(argTexts(c.args[1:]), " "))
				}
			default:
				t.fail(c, "must be NAT, DR or TUN, not %q", c.arg(0))
				ok = false
			}
		case "persistence_timeout":
			secs := int64(kaPersistence)
			if c.arg(0) != "" {
				v, good := t.clampedInt(c, 1, math.MaxInt32, 86400)
				if !good {
					ok = false
					continue
				}
				secs = v
			}
			svc.PersistenceSeconds = ptr(int32(secs))
		case "protocol":
			switch c.arg(0) {
			case "TCP", "UDP", "SCTP":
				svc.Protocol = v1alpha1.Protocol(c.arg(0))
			default:
				t.fail(c, "must be TCP, UDP or SCTP, not %q", c.arg(0))
				ok = false
			}
		case "real_server":
			rss = append(rss, c)
		case "sorry_server", "sorry_server_inhibit", "sorry_server_lvs_method":
			t.ignore(c, "no equivalent: vipvs has no sorry server; when every backend fails, new connections fail")
		case "quorum", "hysteresis", "quorum_up", "quorum_down":
			t.note(c, "no equivalent: vipvs has no quorum; alert on the agent's check metrics instead")
		case "ha_suspend":
			t.note(c, "no equivalent: ignored")
		case "persistence_granularity", "persistence_engine", "ops", "flag-1", "flag-2", "flag-3",
			"sh-port", "sh-fallback", "mh-port", "mh-fallback":
			t.note(c, "no equivalent: the IPVS service is created without %s", c.key)
		case "ip_family":
		default:
			t.ignore(c, noEquivalent)
		}
	}
	backends, hc := t.realServers(rss, defs)
	svc.HealthCheck = hc
	return svc, backends, ok && len(backends) > 0
}

func argTexts(ts []token) []string {
	s := make([]string, len(ts))
	for i, x := range ts {
		s[i] = x.text
	}
	return s
}

// checked is a real server's translated checker.
type checked struct {
	hc    *v1alpha1.ServiceHealthCheck
	key   string // the check with the real server's address and port generalised
	pos   Pos
	kw    string
	notes notes
}

// realServers translates the real servers and chooses the service's one
// health check: the first real server's first checker. vipvs runs one
// check for every backend of a service; a real server whose checker
// differs, or that has none, is reported.
func (t *fileTranslator) realServers(rss []*stmt, vsDefs checkDefaults) ([]backend, *v1alpha1.ServiceHealthCheck) {
	var backends []backend
	var chosen *checked
	for _, r := range rss {
		a, err := netip.ParseAddr(r.arg(0))
		if err != nil {
			t.fail(r, "needs an IP address, not %q", r.arg(0))
			continue
		}
		a = a.Unmap()
		b := backend{addr: a, pos: r.pos}
		if r.arg(1) != "" {
			p, ok := t.intAt(r, 1, 1, 65535)
			if !ok {
				continue
			}
			b.port = int32(p)
		}
		defs := vsDefs
		var checks []checked
		for _, c := range r.block {
			if t.readDefault(c, &defs) {
				continue
			}
			switch c.key {
			case "weight":
				if w, ok := t.intArg(c, 0, 65535); ok && w != 1 {
					b.weight = ptr(int32(w))
				}
			case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK":
				if ck, ok := t.checker(c, b, defs); ok {
					checks = append(checks, ck)
				}
			case "SMTP_CHECK", "DNS_CHECK", "BFD_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK":
				t.ignore(c, "no equivalent (vipvs checks backends with tcp, http(s) or exec): not imported; a MISC_CHECK-style exec check can do it")
			case "lb_kind", "lvs_method":
				t.note(c, "no equivalent: vipvs forwards to every backend of a service the same way (the service's forwarding)")
			case "notify_up", "notify_down":
				t.note(c, "no equivalent: vipvs calls no command when a backend goes up or down; alert on vipvs_check_up instead")
			case "uthreshold", "lthreshold":
				t.note(c, "no equivalent: the IPVS real server is created without connection thresholds")
			default:
				t.ignore(c, noEquivalent)
			}
		}
		if !a.IsGlobalUnicast() {
			t.n.add(r.pos, r.key, "%s is not a unicast address vipvs can balance to (a backend on the director itself: use backends.selectedNodes): skipped", a)
			continue
		}
		backends = append(backends, b)
		switch {
		case len(checks) == 0:
		case chosen == nil:
			chosen = &checks[0]
			t.n.list = append(t.n.list, chosen.notes.list...)
		case checks[0].key != chosen.key:
			t.n.add(checks[0].pos, checks[0].kw, "differs from the checker at %s: vipvs runs one health check for every backend of a service, that one", chosen.pos)
		default:
			// The same check: report only what the chosen checker's notes
			// do not already say (e.g. misc_dynamic on this one alone).
			for _, note := range checks[0].notes.list {
				if !slices.ContainsFunc(chosen.notes.list, func(c Note) bool { return c.Keyword == note.Keyword && c.Message == note.Message }) {
					t.n.list = append(t.n.list, note)
				}
			}
		}
		for _, extra := range checks[min(1, len(checks)):] {
			t.n.add(extra.pos, extra.kw, "a second checker of the real server: vipvs runs one health check per service: not imported")
		}
	}
	if chosen == nil {
		return backends, nil
	}
	for _, r := range rss {
		if !hasChecker(r) {
			t.n.add(r.pos, r.key, "has no checker: vipvs checks it with the service's health check (from %s)", chosen.pos)
		}
	}
	return backends, chosen.hc
}

func hasChecker(r *stmt) bool {
	for _, c := range r.block {
		switch c.key {
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "BFD_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK":
			return true
		}
	}
	return false
}

// registeredStatus are the HTTP status codes with a name: a range of
// status_code is narrowed to these (expectStatus holds at most 16).
var registeredStatus = []int32{
	100, 101, 102, 103,
	200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
	300, 301, 302, 303, 304, 305, 307, 308,
	400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418,
	421, 422, 423, 424, 425, 426, 428, 429, 431, 451,
	500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
}

// checker translates one checker block of a real server. Its notes are
// kept aside: only the checker that becomes the service's reports them.
func (t *fileTranslator) checker(c *stmt, b backend, defs checkDefaults) (checked, bool) {
	ck := checked{pos: c.pos, kw: c.key}
	hc := &v1alpha1.ServiceHealthCheck{}
	retryDefault := int64(1)
	var miscTimeout time.Duration
	var port int32
	var misc []string
	var miscPos Pos
	var http *v1alpha1.ServiceHTTPCheck
	if c.key == "HTTP_GET" || c.key == "SSL_GET" {
		http = &v1alpha1.ServiceHTTPCheck{}
		if c.key == "SSL_GET" {
			// keepalived's SSL_GET does not verify the server's certificate.
			http.Scheme, http.InsecureSkipVerify = v1alpha1.URISchemeHTTPS, true
		}
	}
	sni := false
	urls := 0
	for _, o := range c.block {
		if t.readDefault(o, &defs) {
			continue
		}
		switch o.key {
		case "connect_port":
			p, ok := t.intArg(o, 1, 65535)
			if !ok {
				return ck, false
			}
			port = int32(p)
		case "connect_ip":
			ck.notes.add(o.pos, o.key, "no equivalent: vipvs checks the backend's own address; not imported")
		case "bindto", "bind_port", "bind_if", "fwmark":
			ck.notes.add(o.pos, o.key, "no equivalent: the agent connects from the node's own address: ignored")
		case "misc_path":
			if c.key != "MISC_CHECK" {
				t.ignore(o, noEquivalent)
				continue
			}
			misc, miscPos = scriptArgv(o.args), o.pos
		case "misc_timeout":
			if d, ok := t.seconds(o, 0, time.Millisecond, time.Hour); ok {
				miscTimeout = d
			}
		case "misc_dynamic":
			ck.notes.add(o.pos, o.key, "no equivalent: the exit code only says healthy (0) or not; the backend's weight stays as configured")
		case "user":
			ck.notes.add(o.pos, o.key, "no equivalent: exec checks run as the agent's user")
		case "url":
			if http == nil {
				t.ignore(o, noEquivalent)
				continue
			}
			urls++
			if urls > 1 {
				ck.notes.add(o.pos, o.key, "a second url: vipvs checks one path per service: not imported")
				continue
			}
			if !t.url(o, http, &ck.notes) {
				return ck, false
			}
		case "enable_sni":
			sni = true
		case "http_protocol", "fast_recovery":
			ck.notes.add(o.pos, o.key, "no equivalent: ignored")
		default:
			t.ignore(o, noEquivalent)
		}
	}
	switch c.key {
	case "TCP_CHECK":
		hc.TCP = &v1alpha1.ServiceTCPCheck{}
		if port != 0 && port != b.port {
			hc.TCP.Port = ptr(port)
		}
	case "HTTP_GET", "SSL_GET":
		if urls == 0 {
			ck.notes.add(c.pos, c.key, "has no url: keepalived checks nothing without one; imported as GET / expecting 200")
		}
		if port != 0 && port != b.port {
			http.Port = ptr(port)
		}
		if defs.virtualhost != "" {
			if c.key == "SSL_GET" && sni {
				http.ServerName = defs.virtualhost
				ck.notes.add(c.pos, c.key, "virtualhost %s is sent as TLS server name; the Host header stays the backend's address", defs.virtualhost)
			} else {
				ck.notes.add(c.pos, c.key, "virtualhost %s: no equivalent: the Host header is the backend's address", defs.virtualhost)
			}
		}
		hc.HTTP = http
	case "MISC_CHECK":
		retryDefault = 0
		if len(misc) == 0 {
			t.fail(c, "has no misc_path")
			return ck, false
		}
		hc.Exec = &v1alpha1.ExecCheck{Command: t.miscCommand(misc, miscPos, b, &ck.notes)}
	}
	interval := defs.delayLoop
	if interval == 0 {
		interval = kaDelayLoop
	}
	interval = clampInterval(interval, c, &ck.notes)
	timeout := defs.connectTimeout
	if timeout == 0 {
		timeout = kaConnectTimeout
	}
	if c.key == "MISC_CHECK" {
		timeout = miscTimeout
		if timeout == 0 {
			timeout = interval
		}
	}
	if timeout > interval {
		ck.notes.add(c.pos, c.key, "timeout %v is longer than delay_loop %v: cut to it (vipvs never runs two probes of a check at once)", timeout, interval)
		timeout = interval
	}
	retry := defs.retry
	if retry < 0 {
		retry = retryDefault
	}
	if retry > 0 {
		dbr := defs.delayBeforeRetry
		if dbr == 0 {
			dbr = time.Second
			if http != nil {
				dbr = 3 * time.Second
			}
		}
		ck.notes.add(c.pos, c.key, "retry %d: keepalived marked a backend down after %d failures in a row, retrying %v apart; vipvs probes every %v and marks it down after fall %d", retry, retry+1, dbr, interval, retry+1)
	}
	hc.ProbeTiming = timing(interval, timeout, 1, int32(retry+1))
	ck.hc = hc
	// The comparison key: the same check on another real server.
	norm := *hc
	if hc.Exec != nil {
		norm.Exec = &v1alpha1.ExecCheck{Command: generalise(hc.Exec.Command, b)}
	}
	key, _ := json.Marshal(norm)
	ck.key = string(key)
	return ck, true
}

func clampInterval(d time.Duration, c *stmt, n *notes) time.Duration {
	switch {
	case d < 100*time.Millisecond:
		n.add(c.pos, c.key, "interval %v is shorter than vipvs's 100ms: imported as 100ms", d)
		return 100 * time.Millisecond
	case d > time.Hour:
		n.add(c.pos, c.key, "interval %v is longer than vipvs's 1h: imported as 1h", d)
		return time.Hour
	}
	return d
}

// url reads an HTTP_GET/SSL_GET url block.
func (t *fileTranslator) url(u *stmt, h *v1alpha1.ServiceHTTPCheck, n *notes) bool {
	for _, o := range u.block {
		switch o.key {
		case "path":
			h.Path = o.arg(0)
			if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t") {
				t.fail(o, "must start with '/' and hold no spaces, not %q", h.Path)
				return false
			}
		case "status_code":
			codes, truncated, ok := statusCodes(o.args)
			if !ok {
				t.fail(o, "needs status codes or ranges (e.g. 200 or 200-299), not %q", o.argLine())
				return false
			}
			if truncated {
				n.add(o.pos, o.key, "covers more than 16 registered status codes: expectStatus takes the first 16")
			}
			h.ExpectStatus = codes
		case "digest", "regex", "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			n.add(o.pos, o.key, "no equivalent: vipvs checks the status code only")
		case "virtualhost":
			n.add(o.pos, o.key, "no equivalent: the Host header is the backend's address")
		default:
			t.ignore(o, noEquivalent)
		}
	}
	if h.ExpectStatus == nil {
		n.add(u.pos, u.key, "no status_code: keepalived accepted any 2xx status, the check expects 200; list others in expectStatus if the backends answer them")
	}
	return true
}

// statusCodes reads status_code's codes and ranges.
func statusCodes(args []token) ([]int32, bool, bool) {
	var codes []int32
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a.text, "-")
		l, err := strconv.Atoi(lo)
		if err != nil || l < 100 || l > 599 {
			return nil, false, false
		}
		h := l
		if isRange {
			if h, err = strconv.Atoi(hi); err != nil || h < l || h > 599 {
				return nil, false, false
			}
			for _, c := range registeredStatus {
				if int(c) >= l && int(c) <= h && !slices.Contains(codes, c) {
					codes = append(codes, c)
				}
			}
			continue
		}
		if !slices.Contains(codes, int32(l)) {
			codes = append(codes, int32(l))
		}
	}
	if len(codes) == 0 {
		return nil, false, false
	}
	if len(codes) > v1alpha1.MaxExpectStatus {
		return codes[:v1alpha1.MaxExpectStatus], true, true
	}
	return codes, false, true
}

// miscCommand turns a MISC_CHECK's misc_path into a command. keepalived
// scripts usually take the real server's address (and port) as
// arguments; vipvs runs one command for every backend and passes the
// backend in VIPVS_BACKEND_ADDRESS and VIPVS_BACKEND_PORT, so such
// arguments become those variables, through the shell.
func (t *fileTranslator) miscCommand(argv []string, pos Pos, b backend, n *notes) []string {
	gen := generalise(argv, b)
	if slices.Equal(gen, argv) && path.IsAbs(argv[0]) && !needsShell(argv) {
		return argv
	}
	if !slices.Equal(gen, argv) {
		n.add(pos, "misc_path", "the real server's address or port was an argument: the command now runs through /bin/sh -c with $VIPVS_BACKEND_ADDRESS and $VIPVS_BACKEND_PORT in their place, which the agent sets for each backend")
	} else {
		n.add(pos, "misc_path", "runs through /bin/sh -c: it needs a shell or has no absolute path")
	}
	words := make([]string, len(gen))
	for i, w := range gen {
		if strings.Contains(w, "$VIPVS_BACKEND_") {
			words[i] = `"` + w + `"`
		} else {
			words[i] = shellJoin([]string{w})
		}
	}
	return []string{"/bin/sh", "-c", strings.Join(words, " ")}
}

// generalise replaces the real server's address and port in a command
// with the variables the agent sets.
func generalise(argv []string, b backend) []string {
	addr := b.addr.String()
	out := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case i > 0 && b.port != 0 && a == addr+":"+strconv.Itoa(int(b.port)):
			a = "$VIPVS_BACKEND_ADDRESS:$VIPVS_BACKEND_PORT"
		case i > 0 && a == addr:
			a = "$VIPVS_BACKEND_ADDRESS"
		case i > 0 && b.port != 0 && a == strconv.Itoa(int(b.port)):
			a = "$VIPVS_BACKEND_PORT"
		}
		out[i] = a
	}
	return out
}

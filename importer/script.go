package importer

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// translateScript turns a vrrp_script's command into track checks, with
// the shapes people run recognised:
//
//   - curl of an http(s) URL, possibly several joined by "&&" and wrapped
//     in timeout(1): one http check per URL;
//   - nc -z HOST PORT and bash's </dev/tcp/HOST/PORT: a tcp check;
//   - pidof, pgrep, killall -0, systemctl is-active: a process check,
//     which vipvs does not have: not imported, with a note;
//   - anything else: an exec check of the command (through /bin/sh -c
//     when it needs a shell or names its program without a path).
//
// The checks carry the script's timing; names and weights are set by the
// caller. It reports false when the script is not imported.
func translateScript(argv []string, sc *vrrpScript, n *notes) ([]v1alpha1.TrackCheck, bool) {
	pos := sc.scriptPos
	timeout := sc.timeout
	cmd := argv
	if d, rest, ok := stripTimeout(argv); ok {
		cmd = rest
		timeout = min(timeout, d)
	}
	if len(cmd) == 0 {
		n.add(pos, "script", "runs nothing: the vrrp_script is not imported")
		return nil, false
	}
	parts := splitAnd(cmd)
	var checks []v1alpha1.TrackCheck
	var said []string
	native := true
	process := ""
	for _, p := range parts {
		c, desc, kind := classify(p)
		switch kind {
		case kindHTTP, kindTCP:
			c.ProbeTiming = timing(sc.interval, min(timeout, c.Timeout.Duration), sc.rise, sc.fall)
			checks = append(checks, c)
			said = append(said, desc)
		case kindProcess:
			process = strings.Join(p, " ")
			native = false
		default:
			native = false
		}
	}
	and := ""
	if len(parts) > 1 {
		and = fmt.Sprintf("; keepalived runs %s without a shell, so '&&' and what follows reached it as arguments, while the import does what the script says: every command must succeed", cmd[0])
	}
	if native {
		kind := "a native track check"
		if len(checks) > 1 {
			kind = fmt.Sprintf("%d native track checks", len(checks))
		}
		n.add(pos, "script", "became %s: %s%s", kind, strings.Join(said, "; "), and)
		return checks, true
	}
	if process != "" && len(parts) == 1 {
		n.add(pos, "script", "%q checks a process: vipvs has no process check and the vrrp_script is not imported; track what the process serves instead, e.g. a tcp track check on its port (127.0.0.1:PORT) or an http check of its health URL", process)
		return nil, false
	}
	// An exec check: directly when keepalived would exec it, else through
	// the shell.
	c := v1alpha1.TrackCheck{ProbeTiming: timing(sc.interval, timeout, sc.rise, sc.fall)}
	switch {
	case len(parts) == 1 && path.IsAbs(cmd[0]) && !needsShell(cmd):
		c.Exec = &v1alpha1.ExecCheck{Command: cmd}
		hint := ""
		if strings.Contains(path.Base(cmd[0]), "apiserver") {
			hint = "; if it curls the local API server (kubeadm's check_apiserver.sh does), an http track check of https://127.0.0.1:6443/readyz with caFile /etc/kubernetes/pki/ca.crt does the same without the script"
		}
		n.add(pos, "script", "became an exec track check of %s: the program must exist on every node, where the agent runs it as its own user, without a shell%s", cmd[0], hint)
	default:
		c.Exec = &v1alpha1.ExecCheck{Command: []string{"/bin/sh", "-c", shellJoin(cmd)}}
		why := "it needs a shell"
		if !path.IsAbs(cmd[0]) {
			why = fmt.Sprintf("%s has no absolute path (the shell looks it up)", cmd[0])
		}
		n.add(pos, "script", "became an exec track check through /bin/sh -c, because %s%s; a native tcp or http check is better where one fits", why, and)
	}
	return []v1alpha1.TrackCheck{c}, true
}

func timing(interval, timeout time.Duration, rise, fall int32) v1alpha1.ProbeTiming {
	return v1alpha1.ProbeTiming{
		Interval: &metav1.Duration{Duration: interval},
		Timeout:  &metav1.Duration{Duration: timeout},
		Rise:     ptr(rise),
		Fall:     ptr(fall),
	}
}

// stripTimeout removes a leading timeout(1) wrapper and returns its
// duration.
func stripTimeout(argv []string) (time.Duration, []string, bool) {
	if len(argv) < 3 || path.Base(argv[0]) != "timeout" {
		return 0, nil, false
	}
	i := 1
	for i < len(argv) && strings.HasPrefix(argv[i], "-") {
		switch argv[i] {
		case "-s", "-k", "--signal", "--kill-after":
			i++
		}
		i++
	}
	if i >= len(argv)-1 {
		return 0, nil, false
	}
	d, ok := parseTimeoutDuration(argv[i])
	if !ok || d <= 0 {
		return 0, nil, false
	}
	return d, argv[i+1:], true
}

// parseTimeoutDuration parses timeout(1)'s DURATION: a number with an
// optional unit s, m, h or d.
func parseTimeoutDuration(s string) (time.Duration, bool) {
	mult := time.Second
	if s != "" {
		switch s[len(s)-1] {
		case 's':
			s = s[:len(s)-1]
		case 'm':
			mult, s = time.Minute, s[:len(s)-1]
		case 'h':
			mult, s = time.Hour, s[:len(s)-1]
		case 'd':
			mult, s = 24*time.Hour, s[:len(s)-1]
		}
	}
	d, ok := parseSeconds(s)
	if !ok || d > time.Hour {
		return 0, false
	}
	total := time.Duration(d.Seconds() * float64(mult))
	return total, total <= 24*time.Hour
}

// splitAnd splits a command at "&&" words.
func splitAnd(argv []string) [][]string {
	var parts [][]string
	start := 0
	for i, a := range argv {
		if a == "&&" {
			if i > start {
				parts = append(parts, argv[start:i])
			}
			start = i + 1
		}
	}
	if start < len(argv) {
		parts = append(parts, argv[start:])
	}
	return parts
}

// needsShell reports whether a command uses shell syntax.
func needsShell(argv []string) bool {
	for _, a := range argv {
		switch a {
		case "&&", "||", ";", "|", "&", "!":
			return true
		}
		if strings.HasPrefix(a, ">") || strings.HasPrefix(a, "<") || strings.HasPrefix(a, "2>") ||
			strings.HasPrefix(a, "&>") || strings.Contains(a, "$(") || strings.Contains(a, "`") ||
			strings.ContainsAny(a, ";|") {
			return true
		}
	}
	return false
}

// shellJoin quotes a command for sh -c, leaving shell operators as they
// are.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case a == "":
			out[i] = "''"
		case needsShell([]string{a}) || !strings.ContainsAny(a, " \t\n'\"\\*?[]{}~#$"):
			out[i] = a
		default:
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

type checkKind int

const (
	kindOther checkKind = iota
	kindHTTP
	kindTCP
	kindProcess
)

// classify recognises one command of a script. For http and tcp it
// returns the check (with its own timeout in Timeout, or 0) and a
// description.
func classify(argv []string) (v1alpha1.TrackCheck, string, checkKind) {
	var c v1alpha1.TrackCheck
	c.Timeout = &metav1.Duration{Duration: time.Hour}
	prog := path.Base(argv[0])
	if d, rest, ok := stripTimeout(argv); ok {
		argv, prog = rest, path.Base(rest[0])
		c.Timeout.Duration = d
	}
	switch {
	case (prog == "sh" || prog == "bash") && len(argv) == 3 && argv[1] == "-c":
		inner := splitWords(argv[2])
		if len(inner) == 1 {
			return classify(inner)
		}
	case prog == "curl":
		req, ok := parseCurl(argv[1:])
		if !ok {
			return c, "", kindOther
		}
		c.HTTP = &v1alpha1.HTTPCheck{URL: req.url}
		if strings.HasPrefix(req.url, "https://") {
			c.HTTP.InsecureSkipVerify = req.insecure
			if !req.insecure {
				c.HTTP.CAFile = req.caFile
			}
		}
		if req.timeout > 0 {
			c.Timeout.Duration = min(c.Timeout.Duration, req.timeout)
		}
		return c, req.describe(), kindHTTP
	case prog == "nc" || prog == "ncat" || prog == "netcat":
		if addr, ok := parseNC(argv[1:]); ok {
			c.TCP = &v1alpha1.TCPCheck{Address: addr}
			return c, "tcp connect to " + addr, kindTCP
		}
	case strings.HasPrefix(argv[0], "</dev/tcp/") && len(argv) == 1:
		hp := strings.Split(strings.TrimPrefix(argv[0], "</dev/tcp/"), "/")
		if len(hp) == 2 {
			if addr, ok := tcpAddress(hp[0], hp[1]); ok {
				c.TCP = &v1alpha1.TCPCheck{Address: addr}
				return c, "tcp connect to " + addr + " (was bash's /dev/tcp)", kindTCP
			}
		}
	case prog == "pidof" || prog == "pgrep",
		(prog == "killall" || prog == "pkill") && len(argv) > 1 && argv[1] == "-0",
		prog == "systemctl" && len(argv) > 1 && argv[1] == "is-active":
		return c, "", kindProcess
	}
	return c, "", kindOther
}

// curlRequest is what a curl command line asks for.
type curlRequest struct {
	url      string
	insecure bool
	fail     bool
	follow   bool
	head     bool
	caFile   string
	timeout  time.Duration
	mapped   string // a host the import replaced, e.g. "0"
}

// parseCurl reads the curl options that health checks use; any other
// option (headers, methods, credentials, proxies, data) makes the command
// one the import does not translate.
func parseCurl(args []string) (curlRequest, bool) {
	var r curlRequest
	var urls []string
	withValue := map[string]string{
		"o": "output", "m": "max-time", "w": "write-out", "A": "user-agent", "e": "referer",
		"X": "request", "H": "header", "u": "user", "x": "proxy", "E": "cert", "d": "data",
	}
	apply := func(opt, val string) bool {
		switch opt {
		case "insecure":
			r.insecure = true
		case "location":
			r.follow = true
		case "fail", "fail-with-body":
			r.fail = true
		case "head":
			r.head = true
		case "silent", "show-error", "verbose", "4", "6", "ipv4", "ipv6", "globoff", "http1.1", "http2",
			"compressed", "no-keepalive", "fail-early", "no-buffer", "q", "disable", "progress-bar",
			"output", "write-out", "user-agent", "referer", "noproxy":
		case "max-time", "connect-timeout":
			d, ok := parseSeconds(val)
			if !ok || d <= 0 {
				return false
			}
			if r.timeout == 0 || d < r.timeout {
				r.timeout = d
			}
		case "cacert":
			r.caFile = val
		case "request":
			return val == "GET"
		case "url":
			urls = append(urls, val)
		default:
			return false
		}
		return true
	}
	short := map[byte]string{
		'k': "insecure", 'L': "location", 'f': "fail", 's': "silent", 'S': "show-error", 'v': "verbose",
		'I': "head", '4': "4", '6': "6", 'g': "globoff", 'q': "q", 'N': "no-buffer", '#': "progress-bar",
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--"):
			opt, val, hasVal := strings.Cut(a[2:], "=")
			switch opt {
			case "output", "max-time", "connect-timeout", "cacert", "write-out", "user-agent", "referer",
				"request", "url", "noproxy", "header", "user", "proxy", "cert", "data", "resolve", "interface":
				if !hasVal {
					if i+1 >= len(args) {
						return r, false
					}
					i++
					val = args[i]
				}
			}
			if !apply(opt, val) {
				return r, false
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				if long, ok := withValue[string(a[j])]; ok {
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return r, false
						}
						i++
						val = args[i]
					}
					if !apply(long, val) {
						return r, false
					}
					break
				}
				long, ok := short[a[j]]
				if !ok || !apply(long, "") {
					return r, false
				}
			}
		default:
			urls = append(urls, a)
		}
	}
	if len(urls) != 1 {
		return r, false
	}
	u := urls[0]
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil {
		return r, false
	}
	switch h := pu.Hostname(); h {
	case "0", "0.0.0.0", "::":
		r.mapped = h
		if pu.Port() != "" {
			pu.Host = net.JoinHostPort("127.0.0.1", pu.Port())
		} else {
			pu.Host = "127.0.0.1"
		}
		if h == "::" {
			pu.Host = strings.Replace(pu.Host, "127.0.0.1", "[::1]", 1)
		}
	}
	r.url = pu.String()
	return r, true
}

func (r curlRequest) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "http GET %s", r.url)
	var diffs []string
	if r.mapped != "" {
		diffs = append(diffs, fmt.Sprintf("host %s (this node) became the loopback address", r.mapped))
	}
	if r.insecure && strings.HasPrefix(r.url, "https://") {
		diffs = append(diffs, "certificate not verified, as with curl -k")
	}
	if r.fail {
		diffs = append(diffs, "curl -f accepted any status below 400, the check expects 200")
	} else {
		diffs = append(diffs, "without -f curl accepted any HTTP answer, the check expects 200")
	}
	if r.follow {
		diffs = append(diffs, "curl -L followed redirects, the check does not")
	}
	if r.head {
		diffs = append(diffs, "curl -I sent HEAD, the check sends GET")
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(diffs, "; "))
	return b.String()
}

// parseNC reads "nc -z [-w N] [-v] HOST PORT".
func parseNC(args []string) (string, bool) {
	zero := false
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-z", "-zv", "-vz":
			zero = true
		case "-v", "-n", "-4", "-6":
		case "-w":
			i++
		default:
			if strings.HasPrefix(a, "-") {
				return "", false
			}
			rest = append(rest, a)
		}
	}
	if !zero || len(rest) != 2 {
		return "", false
	}
	return tcpAddress(rest[0], rest[1])
}

// tcpAddress makes an IP:port of a host (an IP address or localhost) and
// a port.
func tcpAddress(host, port string) (string, bool) {
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", false
	}
	if host == "localhost" || host == "0" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)).String(), true
}

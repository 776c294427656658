package agentlab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// KeepalivedBin is where Debian installs keepalived.
const KeepalivedBin = "/usr/sbin/keepalived"

// KeepalivedInstance is one keepalived vrrp_instance on one node.
type KeepalivedInstance struct {
	Name      string // instance name, e.g. "VI_1"
	Interface string
	VRID      int
	Priority  int
	Version   int           // 2 or 3
	Interval  time.Duration // advert_int; whole seconds for version 2
	NoPreempt bool
	Password  string // auth_type PASS (version 2 only); "" means none
	// SourceAddress and UnicastPeers make the instance unicast
	// (unicast_src_ip, unicast_peer); no peers means multicast.
	SourceAddress netip.Addr
	UnicastPeers  []netip.Addr
	VIPs          []netip.Prefix
}

// KeepalivedConfig is a whole keepalived.conf of the shape OpenShift's
// on-premise template and the captures in testdata/keepalived use.
type KeepalivedConfig struct {
	RouterID  string
	Instances []KeepalivedInstance
}

var keepalivedTmpl = template.Must(template.New("keepalived.conf").Funcs(template.FuncMap{
	"interval": func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) },
}).Parse(`global_defs {
  router_id {{.RouterID}}
  vrrp_garp_master_delay 1
  vrrp_garp_master_repeat 2
}
{{- range .Instances}}
vrrp_instance {{.Name}} {
  state BACKUP
  interface {{.Interface}}
  virtual_router_id {{.VRID}}
  priority {{.Priority}}
  advert_int {{interval .Interval}}
  version {{.Version}}
{{- if .NoPreempt}}
  nopreempt
{{- end}}
{{- if .UnicastPeers}}
  unicast_src_ip {{.SourceAddress}}
  unicast_peer {
{{- range .UnicastPeers}}
    {{.}}
{{- end}}
  }
{{- end}}
{{- if .Password}}
  authentication {
    auth_type PASS
    auth_pass {{.Password}}
  }
{{- end}}
  virtual_ipaddress {
{{- range .VIPs}}
    {{.}}
{{- end}}
  }
}
{{- end}}
`))

// Render writes the keepalived.conf text.
func (c KeepalivedConfig) Render() ([]byte, error) {
	var b bytes.Buffer
	if err := keepalivedTmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("rendering keepalived.conf: %w", err)
	}
	return b.Bytes(), nil
}

// KeepalivedInstanceFor renders r as the keepalived instance of node i
// (1-based) of c's lab, with the same defaults as Config: priority 100,
// version 3, 1 s, and unicast peers = every other node of the lab.
func (c *Cluster) KeepalivedInstanceFor(i int, r Router) KeepalivedInstance {
	nodes := c.Lab.Nodes()
	n := nodes[i-1]
	k := KeepalivedInstance{
		Name: r.Name, Interface: n.IfName, VRID: r.VRID, Priority: 100, Version: 3,
		Interval: time.Second, NoPreempt: r.NoPreempt, Password: r.Password, VIPs: r.VIPs,
	}
	if i-1 < len(r.Priorities) {
		k.Priority = r.Priorities[i-1]
	}
	if r.Version != 0 {
		k.Version = r.Version
	}
	if r.Interval != 0 {
		k.Interval = r.Interval
	}
	if r.Unicast {
		k.SourceAddress = addrOf(n, r.IPv6)
		for j, peer := range nodes {
			if j != i-1 {
				k.UnicastPeers = append(k.UnicastPeers, addrOf(peer, r.IPv6))
			}
		}
	}
	return k
}

// Keepalived is a keepalived process (VRRP subsystem only) in a lab node.
type Keepalived struct {
	Node       *lab.Host
	Dir        string // config, pid files
	ConfigPath string
	Proc       *lab.Proc
	logStart   int64 // size of the log before this run started
}

// NewKeepalived writes cfg into dir (which must exist) for node n. It starts
// nothing.
func NewKeepalived(n *lab.Host, dir string, cfg KeepalivedConfig) (*Keepalived, error) {
	b, err := cfg.Render()
	if err != nil {
		return nil, err
	}
	k := &Keepalived{Node: n, Dir: dir, ConfigPath: filepath.Join(dir, "keepalived.conf")}
	if err := os.WriteFile(k.ConfigPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("writing keepalived.conf of %s: %w", n.Name, err)
	}
	return k, nil
}

// Start runs keepalived in the foreground in its node's namespace, VRRP
// only, logging to the console (the lab's log file of the process) and not
// to syslog, with its own pid files, without respawning its VRRP child: when
// that child dies the parent exits too. Its log is the lab's
// <node>-keepalived.log; a restart appends to it.
func (k *Keepalived) Start() error {
	if k.Proc != nil && !k.Proc.Exited() {
		return fmt.Errorf("keepalived on %s is already running", k.Node.Name)
	}
	for _, f := range []string{"k.pid", "v.pid", "c.pid"} {
		_ = os.Remove(filepath.Join(k.Dir, f))
	}
	argv := []string{KeepalivedBin,
		"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "--dont-respawn",
		"--use-file", k.ConfigPath,
		"--pid", filepath.Join(k.Dir, "k.pid"),
		"--vrrp_pid", filepath.Join(k.Dir, "v.pid"),
		"--checkers_pid", filepath.Join(k.Dir, "c.pid"),
	}
	logPath := ""
	if k.Proc != nil {
		logPath = k.Proc.LogPath
	}
	var size int64
	if logPath != "" {
		if st, err := os.Stat(logPath); err == nil {
			size = st.Size()
		}
	}
	p, err := k.Node.Start("keepalived", argv, nil, logPath)
	if err != nil {
		return err
	}
	k.Proc, k.logStart = p, size
	return nil
}

// VRRPPid reads the PID of keepalived's VRRP child from its pid file.
func (k *Keepalived) VRRPPid() (int, error) {
	b, err := os.ReadFile(filepath.Join(k.Dir, "v.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading keepalived's VRRP pid on %s: %w", k.Node.Name, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Log returns keepalived's log of the current run.
func (k *Keepalived) Log() string {
	if k.Proc == nil {
		return ""
	}
	b, err := os.ReadFile(k.Proc.LogPath)
	if err != nil || int64(len(b)) < k.logStart {
		return ""
	}
	return string(b[k.logStart:])
}

var keepalivedStateRE = regexp.MustCompile(`\(([^)]+)\) Entering (MASTER|BACKUP|FAULT) STATE`)

// States returns the states instance entered during the current run, in
// order, from keepalived's "(VI_1) Entering MASTER STATE" log lines.
func (k *Keepalived) States(instance string) []string {
	var out []string
	for _, m := range keepalivedStateRE.FindAllStringSubmatch(k.Log(), -1) {
		if m[1] == instance {
			out = append(out, m[2])
		}
	}
	return out
}

// State returns the last state instance entered during the current run:
// MASTER, BACKUP or FAULT; "STOP" once the process has exited, "" before
// the first transition.
func (k *Keepalived) State(instance string) string {
	if k.Proc == nil || k.Proc.Exited() {
		return "STOP"
	}
	s := k.States(instance)
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// WaitState waits until instance's last state is want.
func (k *Keepalived) WaitState(instance, want string, timeout time.Duration) error {
	return lab.WaitFor(timeout, fmt.Sprintf("keepalived on %s to enter %s for %s", k.Node.Name, want, instance), func() (bool, error) {
		return k.State(instance) == want, nil
	})
}

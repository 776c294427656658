package bgplab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// FRR programs from Debian's frr package.
const (
	frrDir = "/usr/lib/frr"
	Vtysh  = "/usr/bin/vtysh"
	// frrRunDir is where -N <pathspace> makes every FRR daemon create
	// <frrRunDir>/<pathspace>, even with every path overridden.
	frrRunDir = "/var/run/frr"
	// frrTmpDir is where a killed FRR daemon leaves <daemon>.<pid>/.
	frrTmpDir = "/var/tmp/frr"
	// stopTimeout bounds how long a daemon has to exit after SIGTERM.
	stopTimeout = 5 * time.Second
)

// HaveFRR reports why FRR cannot run here ("" when it can).
func HaveFRR() string {
	for _, p := range []string{frrDir + "/zebra", frrDir + "/bgpd", frrDir + "/bfdd", Vtysh} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("FRR is not installed (%s: %v): run hack/install-deps.sh (Debian package frr)", p, err)
		}
	}
	return ""
}

// FRRNeighbor is one BGP neighbour of the FRR router.
type FRRNeighbor struct {
	Address netip.Addr
	ASN     uint32
}

// FRRConfig describes the FRR router.
type FRRConfig struct {
	// ASN and RouterID of the router.
	ASN      uint32
	RouterID netip.Addr
	// Neighbors are the nodes, IPv4 and IPv6 sessions; one peer group per
	// family, with BFD.
	Neighbors []FRRNeighbor
	// HoldTime and Keepalive are the BGP timers in seconds.
	HoldTime, Keepalive int
	// BFDInterval (ms) and BFDMultiplier are the BFD profile "lab".
	BFDInterval, BFDMultiplier int
	// MaximumPaths is the ECMP width.
	MaximumPaths int
}

// FRR is a running FRR router: zebra, bgpd and bfdd in one namespace.
type FRR struct {
	Host *lab.Host
	// Name is the FRR pathspace (-N), the host's namespace name.
	Name string
	// vtyBase is the directory vtysh is pointed at; the daemons' vty
	// sockets are in vtyBase/Name (vtysh appends the pathspace).
	vtyBase string
	procs   []*lab.Proc
	// createdTmp is true when /var/tmp/frr did not exist before the start.
	createdTmp bool
}

// frrConfs are the daemons' configuration files (one per daemon: a daemon
// reading another's commands reports errors).
var frrConfs = map[string]string{
	"zebra": `hostname {{.Name}}
log stdout informational
!
`,
	"bfdd": `hostname {{.Name}}
log stdout informational
!
bfd
 profile lab
  receive-interval {{.C.BFDInterval}}
  transmit-interval {{.C.BFDInterval}}
  detect-multiplier {{.C.BFDMultiplier}}
 exit
exit
!
`,
	// The nodes' GRACEFUL_SHUTDOWN routes get local-preference 0 (RFC
	// 8326), so they leave the multipath set at once.
	"bgpd": `frr defaults traditional
hostname {{.Name}}
log stdout informational
!
bgp community-list standard GSHUT seq 5 permit graceful-shutdown
!
route-map FROM-NODES permit 10
 match community GSHUT
 set local-preference 0
exit
route-map FROM-NODES permit 20
exit
!
router bgp {{.C.ASN}}
 bgp router-id {{.C.RouterID}}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp bestpath as-path multipath-relax
 neighbor NODES peer-group
 neighbor NODES timers {{.C.Keepalive}} {{.C.HoldTime}}
 neighbor NODES timers connect 2
 neighbor NODES bfd
 neighbor NODES bfd profile lab
 neighbor NODES6 peer-group
 neighbor NODES6 timers {{.C.Keepalive}} {{.C.HoldTime}}
 neighbor NODES6 timers connect 2
 neighbor NODES6 bfd
 neighbor NODES6 bfd profile lab
{{- range .C.Neighbors}}
 neighbor {{.Address}} remote-as {{.ASN}}
 neighbor {{.Address}} peer-group {{if .Address.Is4}}NODES{{else}}NODES6{{end}}
{{- end}}
 !
 address-family ipv4 unicast
  maximum-paths {{.C.MaximumPaths}}
  neighbor NODES route-map FROM-NODES in
  no neighbor NODES6 activate
 exit-address-family
 !
 address-family ipv6 unicast
  maximum-paths {{.C.MaximumPaths}}
  neighbor NODES6 activate
  neighbor NODES6 route-map FROM-NODES in
 exit-address-family
exit
!
`,
}

// StartFRR writes the router's configuration and starts zebra, bgpd and bfdd
// in h's namespace. The test's cleanup stops them (SIGTERM, then SIGKILL,
// by PID) and removes their leftovers.
func StartFRR(t interface {
	TempDir() string
	Cleanup(func())
	Logf(string, ...any)
}, h *lab.Host, cfg FRRConfig) (*FRR, error) {
	// Not t.TempDir: the daemons run as user frr, who cannot enter the
	// test's private temporary directory.
	dir, err := os.MkdirTemp("", "bgplab-frr-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &FRR{Host: h, Name: h.Namespace, vtyBase: filepath.Join(dir, "vty")}
	if _, err := os.Stat(frrTmpDir); errors.Is(err, os.ErrNotExist) {
		f.createdTmp = true
	}
	vtyDir := filepath.Join(f.vtyBase, f.Name)
	if err := os.MkdirAll(vtyDir, 0o755); err != nil {
		return nil, err
	}
	// The daemons drop to user frr (who is in the vty group frrvty, which
	// FRR insists on), so their directory is frr's.
	uid, gid, err := frrUser()
	if err != nil {
		return nil, err
	}
	for daemon, text := range frrConfs {
		var conf bytes.Buffer
		if err := template.Must(template.New(daemon).Parse(text)).Execute(&conf, struct {
			Name string
			C    FRRConfig
		}{f.Name, cfg}); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, daemon+".conf"), conf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	if err := chownTree(dir, uid, gid); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := f.Stop(); err != nil {
			t.Logf("stopping FRR in %s: %v", h.Name, err)
		}
	})
	zserv := filepath.Join(dir, "zserv.api")
	for _, d := range []struct {
		name  string
		extra []string
	}{
		{"zebra", nil},
		{"bfdd", []string{"--bfdctl", filepath.Join(dir, "bfdd.sock")}},
		{"bgpd", nil},
	} {
		argv := append([]string{
			filepath.Join(frrDir, d.name),
			"-N", f.Name,
			"-f", filepath.Join(dir, d.name+".conf"),
			"-i", filepath.Join(dir, d.name+".pid"),
			"--vty_socket", vtyDir,
			"-z", zserv,
			"-u", "frr", "-g", "frr",
			"-P", "0", // no TCP vty
			"--log", "stdout",
		}, d.extra...)
		p, err := h.Start("frr-"+d.name, argv, nil, "")
		if err != nil {
			return f, err
		}
		f.procs = append(f.procs, p)
		// Each daemon needs the previous one's socket (bgpd and bfdd talk
		// to zebra): wait until its vty socket exists.
		sock := filepath.Join(vtyDir, d.name+".vty")
		if err := lab.WaitFor(20*time.Second, d.name+" vty socket", func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("%s exited: %s", d.name, p.LogTail(20))
			}
			_, err := os.Stat(sock)
			return err == nil, nil
		}); err != nil {
			return f, err
		}
	}
	return f, nil
}

// Vtysh runs one vtysh command against this router and returns its output.
func (f *FRR) Vtysh(ctx context.Context, cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, Vtysh, "--vty_socket", f.vtyBase, "-N", f.Name, "-c", cmd)
	// stderr has "Can't open configuration file .../vtysh.conf": there is
	// none, and none is needed.
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return out, fmt.Errorf("vtysh -c %q: %w: %s%s", cmd, err, out, stderr.Bytes())
	}
	return out, nil
}

// Configure applies configuration commands (as typed after `configure
// terminal`) to the running router.
func (f *FRR) Configure(ctx context.Context, cmds ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"--vty_socket", f.vtyBase, "-N", f.Name, "-c", "configure terminal"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	c := exec.CommandContext(ctx, Vtysh, args...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return fmt.Errorf("vtysh configure %q: %w: %s%s", cmds, err, out, stderr.Bytes())
	}
	return nil
}

// Route is FRR's view of one route (`show ip route <prefix> json`).
type Route struct {
	Protocol  string `json:"protocol"`
	Selected  bool   `json:"selected"`
	Installed bool   `json:"installed"`
	Nexthops  []struct {
		IP     string `json:"ip"`
		FIB    bool   `json:"fib"`
		Active bool   `json:"active"`
	} `json:"nexthops"`
}

// FIBNexthops returns the next hops of prefix that zebra installed in the
// kernel (selected route, nexthops with "fib": true), as FRR reports them
// (`show ip route` or `show ipv6 route`).
func (f *FRR) FIBNexthops(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	show := "show ip route "
	if prefix.Addr().Is6() {
		show = "show ipv6 route "
	}
	out, err := f.Vtysh(ctx, show+prefix.String()+" json")
	if err != nil {
		return nil, err
	}
	var m map[string][]Route
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parsing %s json: %w: %s", show, err, out)
	}
	var nhs []netip.Addr
	for _, r := range m[prefix.String()] {
		if !r.Selected || !r.Installed {
			continue
		}
		for _, nh := range r.Nexthops {
			if !nh.FIB {
				continue
			}
			a, err := netip.ParseAddr(nh.IP)
			if err != nil {
				return nil, fmt.Errorf("next hop %q: %w", nh.IP, err)
			}
			nhs = append(nhs, a)
		}
	}
	return nhs, nil
}

// Stop stops the daemons (SIGTERM, then SIGKILL after stopTimeout), in the
// reverse order of their start, and removes their leftovers: the empty
// /var/run/frr/<name> that -N creates and /var/tmp/frr/<daemon>.<pid>.
// It is idempotent.
func (f *FRR) Stop() error {
	var errs []error
	for i := len(f.procs) - 1; i >= 0; i-- {
		p := f.procs[i]
		if !p.Exited() {
			_ = p.Signal(syscall.SIGTERM)
			if _, err := p.Wait(stopTimeout); err != nil {
				errs = append(errs, p.Kill())
			}
		}
		daemon := strings.TrimPrefix(p.Name, "frr-")
		if err := os.RemoveAll(filepath.Join(frrTmpDir, fmt.Sprintf("%s.%d", daemon, p.Pid()))); err != nil {
			errs = append(errs, err)
		}
	}
	f.procs = nil
	// /var/tmp/frr itself, when this lab created it and left it empty
	// (os.Remove does not remove a directory with anything in it).
	if f.createdTmp {
		_ = os.Remove(frrTmpDir)
	}
	if f.Name != "" {
		if err := os.RemoveAll(filepath.Join(frrRunDir, f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// frrUser returns the uid and gid of the user frr, which the package creates.
func frrUser() (uid, gid int, err error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return 0, 0, fmt.Errorf("FRR's user: %w (is the frr package installed?)", err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, err
	}
	gid, err = strconv.Atoi(u.Gid)
	return uid, gid, err
}

// chownTree gives dir and everything in it to uid:gid.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

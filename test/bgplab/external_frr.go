package bgplab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// SpeakerConfig is the FRR of a node in the external-speaker mode
// (bgp.externalSpeaker, agent/routetable): zebra imports the agent's routing
// table into its RIB and bgpd redistributes it to the upstream router. It is
// the configuration docs/external-speaker.md shows.
type SpeakerConfig struct {
	// Table is the kernel table the agent writes (1 to 252 for FRR's
	// "ip import-table").
	Table uint32
	// ASN and RouterID of the node's BGP speaker.
	ASN      uint32
	RouterID netip.Addr
	// Upstream is the router the node peers with, and its ASN.
	Upstream    netip.Addr
	UpstreamASN uint32
	// HoldTime and Keepalive are the BGP timers in seconds.
	HoldTime, Keepalive int
}

// speakerConfs are the node's daemon configurations.
var speakerConfs = map[string]string{
	"zebra": `hostname {{.Name}}
log stdout informational
!
ip import-table {{.C.Table}}
!
`,
	"bgpd": `frr defaults traditional
hostname {{.Name}}
log stdout informational
!
ip prefix-list VIP-HOST-ROUTES seq 5 permit 0.0.0.0/0 ge 32
!
route-map VIPS permit 10
 match ip address prefix-list VIP-HOST-ROUTES
exit
!
router bgp {{.C.ASN}}
 bgp router-id {{.C.RouterID}}
 no bgp ebgp-requires-policy
 neighbor {{.C.Upstream}} remote-as {{.C.UpstreamASN}}
 neighbor {{.C.Upstream}} timers {{.C.Keepalive}} {{.C.HoldTime}}
 neighbor {{.C.Upstream}} timers connect 2
 !
 address-family ipv4 unicast
  redistribute table {{.C.Table}} route-map VIPS
 exit-address-family
exit
!
`,
}

// SpeakerConf renders daemon's ("zebra" or "bgpd") configuration for host
// name name.
func SpeakerConf(daemon, name string, cfg SpeakerConfig) (string, error) {
	text, ok := speakerConfs[daemon]
	if !ok {
		return "", fmt.Errorf("no configuration for FRR daemon %q", daemon)
	}
	var b bytes.Buffer
	if err := template.Must(template.New(daemon).Parse(text)).Execute(&b, struct {
		Name string
		C    SpeakerConfig
	}{name, cfg}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// StartSpeaker starts zebra and bgpd in h's namespace with the
// configuration of cfg, as StartFRR does for the router (same paths and
// clean-up: the test's cleanup stops them by PID and removes their
// leftovers).
func StartSpeaker(t interface {
	TempDir() string
	Cleanup(func())
	Logf(string, ...any)
}, h *lab.Host, cfg SpeakerConfig) (*FRR, error) {
	// Not t.TempDir: the daemons run as user frr.
	dir, err := os.MkdirTemp("", "bgplab-speaker-")
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
	uid, gid, err := frrUser()
	if err != nil {
		return nil, err
	}
	for daemon := range speakerConfs {
		conf, err := SpeakerConf(daemon, f.Name, cfg)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, daemon+".conf"), []byte(conf), 0o644); err != nil {
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
	for _, daemon := range []string{"zebra", "bgpd"} {
		argv := []string{
			filepath.Join(frrDir, daemon),
			"-N", f.Name,
			"-f", filepath.Join(dir, daemon+".conf"),
			"-i", filepath.Join(dir, daemon+".pid"),
			"--vty_socket", vtyDir,
			"-z", zserv,
			"-u", "frr", "-g", "frr",
			"-P", "0",
			"--log", "stdout",
		}
		p, err := h.Start("frr-"+daemon, argv, nil, "")
		if err != nil {
			return f, err
		}
		f.procs = append(f.procs, p)
		sock := filepath.Join(vtyDir, daemon+".vty")
		if err := lab.WaitFor(20*time.Second, daemon+" vty socket", func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("%s exited: %s", daemon, p.LogTail(20))
			}
			_, err := os.Stat(sock)
			return err == nil, nil
		}); err != nil {
			return f, err
		}
	}
	return f, nil
}

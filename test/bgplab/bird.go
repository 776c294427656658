package bgplab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// BIRD programs from Debian's bird2 package.
const (
	Bird  = "/usr/sbin/bird"
	Birdc = "/usr/sbin/birdc"
)

// HaveBIRD reports why BIRD 2 cannot run here ("" when it can).
func HaveBIRD() string {
	for _, p := range []string{Bird, Birdc} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("BIRD 2 is not installed (%s: %v): run hack/install-deps.sh (Debian package bird2)", p, err)
		}
	}
	return ""
}

// BIRDConfig describes the BIRD router.
type BIRDConfig struct {
	ASN       uint32
	RouterID  netip.Addr
	Neighbors []FRRNeighbor
	// HoldTime and Keepalive are the BGP timers in seconds.
	HoldTime, Keepalive int
	// BFDInterval (ms) and BFDMultiplier; BFDInterval 0 turns BFD off.
	BFDInterval, BFDMultiplier int
}

// BIRD is a running BIRD 2 router.
type BIRD struct {
	Host   *lab.Host
	socket string
	proc   *lab.Proc
}

// BIRD's defaults (connect delay 5 s, connect retry 120 s, error wait 60-300
// s) would make a session take minutes to come back in a test.
const birdConf = `router id {{.RouterID}};
log stderr all;
protocol device { }
{{- if .BFDInterval}}
protocol bfd {
  interface "*" {
    min rx interval {{.BFDInterval}} ms;
    min tx interval {{.BFDInterval}} ms;
    multiplier {{.BFDMultiplier}};
  };
}
{{- end}}
template bgp nodes {
  local as {{.ASN}};
  hold time {{.HoldTime}};
  keepalive time {{.Keepalive}};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 4;
  {{- if .BFDInterval}}
  bfd on;
  {{- end}}
  ipv4 { import all; export none; };
}
{{- range $i, $n := .Neighbors}}
protocol bgp node{{$i}} from nodes { neighbor {{$n.Address}} as {{$n.ASN}}; }
{{- end}}
`

// StartBIRD writes the configuration and starts bird in the foreground in
// h's namespace; the test's cleanup stops it by PID.
func StartBIRD(t interface {
	TempDir() string
	Cleanup(func())
	Logf(string, ...any)
}, h *lab.Host, cfg BIRDConfig) (*BIRD, error) {
	dir := t.TempDir()
	var conf bytes.Buffer
	if err := template.Must(template.New("bird").Parse(birdConf)).Execute(&conf, cfg); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	b := &BIRD{Host: h, socket: filepath.Join(dir, "bird.ctl")}
	p, err := h.Start("bird", []string{Bird, "-f", "-c", confPath, "-s", b.socket, "-P", filepath.Join(dir, "bird.pid")}, nil, "")
	if err != nil {
		return nil, err
	}
	b.proc = p
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Logf("stopping BIRD in %s: %v", h.Name, err)
		}
	})
	if err := lab.WaitFor(20*time.Second, "bird control socket", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("bird exited: %s", p.LogTail(20))
		}
		_, err := os.Stat(b.socket)
		return err == nil, nil
	}); err != nil {
		return b, err
	}
	return b, nil
}

// Birdc runs one birdc command and returns its output.
func (b *BIRD) Birdc(ctx context.Context, cmd ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Birdc, append([]string{"-s", b.socket}, cmd...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("birdc %q: %w: %s", cmd, err, out)
	}
	return out, nil
}

// Stop stops bird (SIGTERM, then SIGKILL); it is idempotent.
func (b *BIRD) Stop() error {
	if b.proc == nil || b.proc.Exited() {
		return nil
	}
	_ = b.proc.Signal(syscall.SIGTERM)
	if _, err := b.proc.Wait(stopTimeout); err != nil {
		return b.proc.Kill()
	}
	return nil
}

package bgplab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/test/lab"
)

// Bench is the lab of the active/active BGP figures of `make bench`
// (test/bench): the FRR router c1 (ECMP over up to 8 paths, L4 hash, BFD
// profile "lab", hold 9 s, keepalive 3 s), the client c2 behind it, and
// three nodes announcing the same VIP (BenchVIP) over IPv4:
//
//   - n1 runs the real agent (vipvs-agent) at BFD 300 ms x 3 throughout,
//     so that the VIP is always served;
//   - n2 runs the real agent with the BFD setting of SetBFD: the vipvs node
//     the figures are about (SpeakerVIPVS);
//   - n3 runs FRR as the node's speaker (zebra, bgpd and bfdd, the VIP on
//     lo and a `network` statement) with the same setting: the reference
//     (SpeakerFRR), the closest stand-in for MetalLB's FRR mode that runs
//     here.
//
// Every node serves TCP on BenchPort and answers with its name. Create it
// with NewBench and release it with Close.
type Bench struct {
	opts   BenchOptions
	l      *lab.Lab
	router *lab.Host
	client *lab.Host
	frr    *FRR
	ref    *FRR // n3's FRR
	dir    string
	agents map[int]*lab.Proc
	serve  map[int]func()
	bfd    time.Duration
	t      *benchT
}

// Speaker is the node a measurement is about.
type Speaker string

// The measured nodes.
const (
	// SpeakerVIPVS is n2, running vipvs-agent.
	SpeakerVIPVS Speaker = "vipvs"
	// SpeakerFRR is n3, running FRR (bgpd and bfdd) as its speaker.
	SpeakerFRR Speaker = "FRR"
)

// The bench lab's addresses and timers.
var (
	// BenchVIP is the VIP every node announces.
	BenchVIP = netip.MustParseAddr("203.0.113.10")
	// BenchPort is the TCP port every node serves.
	BenchPort = 8080
	// BenchHoldTime and BenchKeepalive are the BGP timers of every session.
	BenchHoldTime, BenchKeepalive = 9 * time.Second, 3 * time.Second
	// BenchProbeEvery is how often the client opens a new TCP connection.
	BenchProbeEvery = 5 * time.Millisecond
)

const (
	benchRouterASN  = 65000
	benchDefaultBFD = 300 * time.Millisecond
	benchBFDMult    = 3
)

var (
	benchClientNet  = netip.MustParsePrefix("198.51.100.0/24")
	benchRouterSide = netip.MustParsePrefix("198.51.100.1/24")
	benchClientSide = netip.MustParsePrefix("198.51.100.2/24")
)

// BenchOptions configure NewBench.
type BenchOptions struct {
	// Agent is the vipvs-agent binary.
	Agent string
	// LogDir receives the processes' logs; "" makes a temporary directory
	// that Close removes.
	LogDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// benchT gives StartFRR what it needs of a testing.T outside a test: a
// stack of clean-ups that Bench.Close runs, and a log.
type benchT struct {
	log      io.Writer
	cleanups []func()
}

// TempDir makes a temporary directory removed by Close.
func (t *benchT) TempDir() string {
	d, err := os.MkdirTemp("", "bgpbench-")
	if err != nil {
		t.Logf("making a temporary directory: %v", err)
		return os.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// Cleanup adds fn to the clean-ups Close runs, last added first.
func (t *benchT) Cleanup(fn func()) { t.cleanups = append(t.cleanups, fn) }

// Logf writes one line to the log.
func (t *benchT) Logf(format string, args ...any) {
	fmt.Fprintf(t.log, format+"\n", args...)
}

func (t *benchT) run() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

// NewBench builds the lab and starts every speaker at BFD 300 ms x 3. It
// needs root, FRR (HaveFRR) and the agent binary.
func NewBench(opts BenchOptions) (_ *Bench, err error) {
	if why := HaveFRR(); why != "" {
		return nil, errors.New(why)
	}
	if _, err := os.Stat(opts.Agent); err != nil {
		return nil, fmt.Errorf("the agent binary: %w", err)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	l, err := lab.New(lab.Options{Nodes: 3, Clients: 2, LogDir: opts.LogDir})
	if err != nil {
		return nil, err
	}
	b := &Bench{opts: opts, l: l, router: l.Client(1), client: l.Client(2), agents: map[int]*lab.Proc{}, serve: map[int]func(){}, bfd: benchDefaultBFD, t: &benchT{log: opts.Log}}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	for k, v := range map[string]string{
		"net.ipv4.ip_forward":                  "1",
		"net.ipv4.fib_multipath_hash_policy":   "1",
		"net.ipv4.conf.all.send_redirects":     "0",
		"net.ipv4.conf.default.send_redirects": "0",
		"net.ipv4.conf.eth0.send_redirects":    "0",
	} {
		if err := b.router.SetSysctl(k, v); err != nil {
			return nil, err
		}
	}
	if err := benchAddr(b.router, lab.IfName, benchRouterSide); err != nil {
		return nil, err
	}
	// The client is behind the router at layer 3; see BGP-LAB.md for
	// txrehash.
	if err := b.client.SetSysctl("net.core.txrehash", "0"); err != nil {
		return nil, err
	}
	if err := benchAddr(b.client, lab.IfName, benchClientSide); err != nil {
		return nil, err
	}
	if err := benchRoute(b.client, netip.PrefixFrom(BenchVIP, 24).Masked(), benchRouterSide.Addr(), benchClientSide.Addr()); err != nil {
		return nil, err
	}
	var neighbors []FRRNeighbor
	for i := 1; i <= 3; i++ {
		n := l.Node(i)
		neighbors = append(neighbors, FRRNeighbor{Address: n.IPv4, ASN: benchNodeASN(i)})
		if err := benchRoute(n, benchClientNet, b.router.IPv4, netip.Addr{}); err != nil {
			return nil, err
		}
		stop, err := n.Serve(BenchPort)
		if err != nil {
			return nil, err
		}
		b.serve[i] = stop
	}
	b.frr, err = StartFRR(b.t, b.router, FRRConfig{
		ASN: benchRouterASN, RouterID: b.router.IPv4, Neighbors: neighbors,
		HoldTime: int(BenchHoldTime / time.Second), Keepalive: int(BenchKeepalive / time.Second),
		BFDInterval: int(benchDefaultBFD / time.Millisecond), BFDMultiplier: benchBFDMult,
		MaximumPaths: 8,
	})
	if err != nil {
		return nil, err
	}
	// Timestamps in microseconds, BFD state changes and BGP session
	// changes in the router's logs: where the time goes (RouterEvents).
	if err := b.frr.Configure(context.Background(), "log timestamp precision 6", "debug bfd peer", "router bgp 65000", "bgp log-neighbor-changes"); err != nil {
		return nil, err
	}
	// The VIP of the FRR node, on lo; the agents add theirs.
	if err := benchAddr(l.Node(3), "lo", netip.PrefixFrom(BenchVIP, 32)); err != nil {
		return nil, err
	}
	b.dir = b.t.TempDir()
	for i := 1; i <= 2; i++ {
		if err := b.startAgent(i); err != nil {
			return nil, err
		}
	}
	if err := b.startRef(); err != nil {
		return nil, err
	}
	return b, b.WaitReady()
}

// Close stops every process and removes the lab; it is idempotent.
func (b *Bench) Close() error {
	b.t.run()
	return b.l.Close()
}

func benchNodeASN(i int) uint32 { return 65000 + uint32(i) }

// node returns the index of sp's node.
func (sp Speaker) node() int {
	if sp == SpeakerFRR {
		return 3
	}
	return 2
}

// Node returns the lab host of sp's node.
func (b *Bench) Node(sp Speaker) *lab.Host { return b.l.Node(sp.node()) }

// agentConfig is node i's agent config; n1 stays at the default BFD.
func (b *Bench) agentConfig(i int) NodeConfig {
	n := b.l.Node(i)
	cfg := NodeConfig{
		Name: n.Name, ASN: benchNodeASN(i), RouterID: n.IPv4,
		Peers:    []NodePeer{{Address: b.router.IPv4, ASN: benchRouterASN, Source: n.IPv4}},
		HoldTime: BenchHoldTime, Keepalive: BenchKeepalive, GracefulWait: 2 * time.Second,
		VIPs:   []netip.Addr{BenchVIP},
		Socket: filepath.Join(b.dir, n.Name+".sock"), FailFile: filepath.Join(b.dir, n.Name+".fail"),
		BFD: benchDefaultBFD,
	}
	if i == 2 {
		cfg.BFD = b.bfd
	}
	return cfg
}

func (b *Bench) startAgent(i int) error {
	p, err := StartAgent(b.l.Node(i), b.opts.Agent, b.dir, b.agentConfig(i))
	if err != nil {
		return err
	}
	b.agents[i] = p
	return nil
}

// refConfs are the FRR node's daemon configurations.
var refConfs = map[string]string{
	"zebra": `hostname {{.Name}}
log stdout informational
!
`,
	"bfdd": `hostname {{.Name}}
log stdout informational
!
bfd
 profile node
  receive-interval {{.BFD}}
  transmit-interval {{.BFD}}
  detect-multiplier {{.Mult}}
 exit
exit
!
`,
	"bgpd": `frr defaults traditional
hostname {{.Name}}
log stdout informational
!
router bgp {{.ASN}}
 bgp router-id {{.RouterID}}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {{.Router}} remote-as {{.RouterASN}}
 neighbor {{.Router}} timers {{.Keepalive}} {{.Hold}}
 neighbor {{.Router}} timers connect 2
{{- if .BFD}}
 neighbor {{.Router}} bfd
 neighbor {{.Router}} bfd profile node
{{- end}}
 !
 address-family ipv4 unicast
  network {{.VIP}}/32
 exit-address-family
exit
!
`,
}

// startRef starts FRR on n3 with the current BFD setting, as StartFRR
// starts the router (its own directory, user frr, per-namespace paths).
func (b *Bench) startRef() error {
	h := b.l.Node(3)
	dir, err := os.MkdirTemp("", "bgpbench-frr-node-")
	if err != nil {
		return err
	}
	b.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &FRR{Host: h, Name: h.Namespace, vtyBase: filepath.Join(dir, "vty")}
	b.ref = f
	if _, err := os.Stat(frrTmpDir); errors.Is(err, os.ErrNotExist) {
		f.createdTmp = true
	}
	vtyDir := filepath.Join(f.vtyBase, f.Name)
	if err := os.MkdirAll(vtyDir, 0o755); err != nil {
		return err
	}
	uid, gid, err := frrUser()
	if err != nil {
		return err
	}
	data := map[string]any{
		"Name": f.Name, "BFD": int(b.bfd / time.Millisecond), "Mult": benchBFDMult,
		"ASN": benchNodeASN(3), "RouterID": h.IPv4, "Router": b.router.IPv4, "RouterASN": benchRouterASN,
		"Keepalive": int(BenchKeepalive / time.Second), "Hold": int(BenchHoldTime / time.Second), "VIP": BenchVIP,
	}
	for daemon, text := range refConfs {
		var conf bytes.Buffer
		if err := template.Must(template.New(daemon).Parse(text)).Execute(&conf, data); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, daemon+".conf"), conf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := chownTree(dir, uid, gid); err != nil {
		return err
	}
	b.t.Cleanup(func() {
		if err := f.Stop(); err != nil {
			b.t.Logf("stopping FRR in %s: %v", h.Name, err)
		}
	})
	zserv := filepath.Join(dir, "zserv.api")
	for _, daemon := range []string{"zebra", "bfdd", "bgpd"} {
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
		if daemon == "bfdd" {
			argv = append(argv, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		p, err := h.Start("frr-"+daemon, argv, nil, "")
		if err != nil {
			return err
		}
		f.procs = append(f.procs, p)
		sock := filepath.Join(vtyDir, daemon+".vty")
		if err := lab.WaitFor(20*time.Second, h.Name+" "+daemon+" vty socket", func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("%s exited: %s", daemon, p.LogTail(20))
			}
			_, err := os.Stat(sock)
			return err == nil, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// SetBFD restarts n2's agent and n3's FRR with BFD at interval x 3 towards
// the router (0: no BFD, the hold time alone), sets the router's profile
// to the same interval (300 ms when 0: the router keeps BFD configured,
// and a session that never comes up does not hold BGP down), and waits
// until the router forwards to every node again.
func (b *Bench) SetBFD(interval time.Duration) error {
	b.bfd = interval
	ms := int((interval / time.Millisecond))
	if interval == 0 {
		ms = int(benchDefaultBFD / time.Millisecond)
	}
	if err := b.frr.Configure(context.Background(), "bfd", "profile lab", fmt.Sprintf("receive-interval %d", ms), fmt.Sprintf("transmit-interval %d", ms)); err != nil {
		return err
	}
	if p := b.agents[2]; p != nil {
		if err := p.Kill(); err != nil {
			return err
		}
	}
	if err := b.ref.Stop(); err != nil {
		return err
	}
	if err := b.startAgent(2); err != nil {
		return err
	}
	if err := b.startRef(); err != nil {
		return err
	}
	return b.WaitReady()
}

// WaitReady waits until the router's kernel has forwarded the VIP to all
// three nodes for 2 s and, with BFD on, until the router's BFD sessions
// with n2 and n3 are up.
func (b *Bench) WaitReady() error {
	all := []netip.Addr{b.l.Node(1).IPv4, b.l.Node(2).IPv4, b.l.Node(3).IPv4}
	var since time.Time
	var last []netip.Addr
	err := lab.WaitFor(90*time.Second, "the router forwarding the VIP to every node for 2s", func() (bool, error) {
		var err error
		if last, err = b.Nexthops(); err != nil {
			return false, err
		}
		if !slices.Equal(last, all) {
			since = time.Time{}
			return false, nil
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= 2*time.Second, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last seen: %v)", err, last)
	}
	if b.bfd == 0 {
		return nil
	}
	var peers []benchBFDPeer
	err = lab.WaitFor(30*time.Second, "the router's BFD sessions with n2 and n3 up", func() (bool, error) {
		var err error
		if peers, err = b.bfdPeers(); err != nil {
			return false, err
		}
		up := 0
		for _, p := range peers {
			if (p.Peer == b.l.Node(2).IPv4.String() || p.Peer == b.l.Node(3).IPv4.String()) && p.Status == "up" {
				up++
			}
		}
		return up == 2, nil
	})
	if err != nil {
		return fmt.Errorf("%w: %+v", err, peers)
	}
	return nil
}

// benchBFDPeer is one line of the router's `show bfd peers json`.
type benchBFDPeer struct {
	Peer     string `json:"peer"`
	Status   string `json:"status"`
	RxActual int    `json:"receive-interval"`
	TxActual int    `json:"transmit-interval"`
	Mult     int    `json:"remote-detect-multiplier"`
}

func (b *Bench) bfdPeers() ([]benchBFDPeer, error) {
	out, err := b.frr.Vtysh(context.Background(), "show bfd peers json")
	if err != nil {
		return nil, err
	}
	var peers []benchBFDPeer
	if err := json.Unmarshal(out, &peers); err != nil {
		return nil, fmt.Errorf("show bfd peers json: %w: %s", err, out)
	}
	return peers, nil
}

// BFDPeer describes the router's BFD session with sp's node, as `show bfd
// peers` reports it (for the record of what was measured).
func (b *Bench) BFDPeer(sp Speaker) string {
	peers, err := b.bfdPeers()
	if err != nil {
		return err.Error()
	}
	for _, p := range peers {
		if p.Peer == b.Node(sp).IPv4.String() {
			return fmt.Sprintf("%s rx %d ms tx %d ms remote multiplier %d", p.Status, p.RxActual, p.TxActual, p.Mult)
		}
	}
	return "no BFD session"
}

// Nexthops returns the next hops of the VIP's host route in the router's
// kernel, sorted.
func (b *Bench) Nexthops() ([]netip.Addr, error) {
	routes, err := b.router.Netlink().RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{
		Dst: &net.IPNet{IP: BenchVIP.AsSlice(), Mask: net.CIDRMask(32, 32)},
	}, netlink.RT_FILTER_DST)
	if err != nil {
		return nil, err
	}
	var nhs []netip.Addr
	for _, r := range routes {
		if len(r.MultiPath) == 0 && r.Gw != nil {
			a, _ := netip.AddrFromSlice(r.Gw)
			nhs = append(nhs, a.Unmap())
		}
		for _, nh := range r.MultiPath {
			a, _ := netip.AddrFromSlice(nh.Gw)
			nhs = append(nhs, a.Unmap())
		}
	}
	slices.SortFunc(nhs, netip.Addr.Compare)
	return nhs, nil
}

// waitGone waits until the router's kernel no longer forwards to node and
// returns when that was first seen (polled every 5 ms).
func (b *Bench) waitGone(node netip.Addr, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := lab.WaitFor(timeout, "the router dropping "+node.String(), func() (bool, error) {
		nhs, err := b.Nexthops()
		if err != nil {
			return false, err
		}
		if len(nhs) > 0 && !slices.Contains(nhs, node) {
			at = time.Now()
			return true, nil
		}
		return false, nil
	})
	return at, err
}

// RouterEvents are the router's view of a node going away, after the
// fault: when its BFD session went down (bfdd) and when its BGP session
// went down (bgpd), from the daemons' logs (microsecond timestamps); zero
// when not seen.
type RouterEvents struct {
	BFDDown, BGPDown time.Time
}

// routerEvents reads the router's logs for peer's events after t0.
func (b *Bench) routerEvents(peer netip.Addr, t0 time.Time) RouterEvents {
	var ev RouterEvents
	for _, p := range b.frr.procs {
		var match func(string) bool
		var into *time.Time
		switch p.Name {
		case "frr-bfdd":
			// state-change: [mhop:no peer:192.0.2.12 local:... ] up -> down reason:control-expired
			match = func(s string) bool {
				return strings.Contains(s, "state-change:") && strings.Contains(s, "peer:"+peer.String()+" ") && strings.Contains(s, "up -> down")
			}
			into = &ev.BFDDown
		case "frr-bgpd":
			// %ADJCHANGE: neighbor 192.0.2.12(Unknown) in vrf default Down BFD down received
			match = func(s string) bool {
				return strings.Contains(s, "ADJCHANGE: neighbor "+peer.String()+"(") && strings.Contains(s, " Down ")
			}
			into = &ev.BGPDown
		default:
			continue
		}
		*into = firstLogAfter(p.LogPath, t0, match)
	}
	return ev
}

// firstLogAfter returns the time of the first line of an FRR log at or
// after t0 that match accepts; FRR writes "2006/01/02 15:04:05.000000 ..."
// in local time.
func firstLogAfter(path string, t0 time.Time, match func(string) bool) time.Time {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	const layout = "2006/01/02 15:04:05.000000"
	for sc.Scan() {
		line := sc.Text()
		if len(line) < len(layout) || !match(line) {
			continue
		}
		at, err := time.ParseInLocation(layout, line[:len(layout)], time.Local)
		if err != nil || at.Before(t0.Truncate(time.Microsecond)) {
			continue
		}
		return at
	}
	return time.Time{}
}

// SilentDeath is what one silent death of a node cost; every time is
// measured from the fault (the drop rule in place).
type SilentDeath struct {
	// Dropped is when the router's kernel stopped forwarding to the node.
	Dropped time.Duration
	// BFDDown and BGPDown are when the router's bfdd and bgpd logged the
	// session down (negative: not seen).
	BFDDown, BGPDown time.Duration
	// Client is what the client saw.
	Client ClientFigures
}

// SilentDeath drops every IP packet in and out of sp's node (nftables, as
// TestBGPLab does), measures until the router's kernel no longer forwards
// to it, then heals it. The client opens a new connection every
// BenchProbeEvery throughout, each waiting up to BenchConnTimeout.
func (b *Bench) SilentDeath(sp Speaker) (SilentDeath, error) {
	var r SilentDeath
	if err := b.WaitReady(); err != nil {
		return r, err
	}
	n := b.Node(sp)
	c := startBenchClient(b.client, netip.AddrPortFrom(BenchVIP, uint16(BenchPort)))
	defer c.Stop()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	undo, err := b.l.Loss(n, 100)
	if err != nil {
		return r, err
	}
	defer undo()
	at, err := b.waitGone(n.IPv4, BenchHoldTime+10*time.Second)
	if err != nil {
		return r, err
	}
	r.Dropped = at.Sub(t0)
	time.Sleep(500 * time.Millisecond)
	r.Client = benchClientFigures(c.Stop(), t0)
	ev := b.routerEvents(n.IPv4, t0)
	r.BFDDown, r.BGPDown = -1, -1
	if !ev.BFDDown.IsZero() {
		r.BFDDown = ev.BFDDown.Sub(t0)
	}
	if !ev.BGPDown.IsZero() {
		r.BGPDown = ev.BGPDown.Sub(t0)
	}
	return r, undo()
}

// GracefulStop is what one graceful stop of a node cost, from the signal.
type GracefulStop struct {
	// Dropped is when the router's kernel stopped forwarding to the node.
	Dropped time.Duration
	// Exited is when the speaker's process had exited.
	Exited time.Duration
	// Client is what the client saw.
	Client ClientFigures
}

// GracefulStop sends SIGTERM to sp's speaker (vipvs-agent: RFC 8326
// GRACEFUL_SHUTDOWN, wait, withdraw; FRR: bgpd, which sends a Cease
// NOTIFICATION), stops the node's service once it has exited, as a node
// going away does, and then starts both again.
func (b *Bench) GracefulStop(sp Speaker) (GracefulStop, error) {
	var r GracefulStop
	if err := b.WaitReady(); err != nil {
		return r, err
	}
	i := sp.node()
	n := b.l.Node(i)
	var proc *lab.Proc
	if sp == SpeakerVIPVS {
		proc = b.agents[i]
	} else {
		for _, p := range b.ref.procs {
			if p.Name == "frr-bgpd" {
				proc = p
			}
		}
	}
	if proc == nil {
		return r, fmt.Errorf("no speaker process on %s", n.Name)
	}
	c := startBenchClient(b.client, netip.AddrPortFrom(BenchVIP, uint16(BenchPort)))
	defer c.Stop()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		return r, err
	}
	at, err := b.waitGone(n.IPv4, 10*time.Second)
	if err != nil {
		return r, err
	}
	r.Dropped = at.Sub(t0)
	if _, err := proc.Wait(30 * time.Second); err != nil {
		return r, err
	}
	r.Exited = time.Since(t0)
	b.serve[i]()
	time.Sleep(500 * time.Millisecond)
	r.Client = benchClientFigures(c.Stop(), t0)
	// Back: the service, then the speaker.
	stop, err := n.Serve(BenchPort)
	if err != nil {
		return r, err
	}
	b.serve[i] = stop
	if sp == SpeakerVIPVS {
		err = b.startAgent(i)
	} else {
		if err = b.ref.Stop(); err == nil {
			err = b.startRef()
		}
	}
	return r, err
}

// FRRVersion returns the version of the FRR that runs the router and the
// reference node.
func (b *Bench) FRRVersion() string {
	out, err := b.frr.Vtysh(context.Background(), "show version")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "FRRouting ") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				return f[1]
			}
		}
	}
	return "?"
}

func benchAddr(h *lab.Host, ifname string, p netip.Prefix) error {
	nl := h.Netlink()
	link, err := nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", h.Name, ifname, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := nl.AddrAdd(link, a); err != nil {
		return fmt.Errorf("%s: adding %s to %s: %w", h.Name, p, ifname, err)
	}
	return nil
}

func benchRoute(h *lab.Host, dst netip.Prefix, gw, src netip.Addr) error {
	nl := h.Netlink()
	link, err := nl.LinkByName(lab.IfName)
	if err != nil {
		return err
	}
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Gw:        gw.AsSlice(),
	}
	if src.IsValid() {
		r.Src = src.AsSlice()
	}
	if err := nl.RouteAdd(r); err != nil {
		return fmt.Errorf("%s: route %s via %s: %w", h.Name, dst, gw, err)
	}
	return nil
}

// Package faultlab puts a virtual router of three nodes under faults and
// attacks and measures what a client saw. A lab (test/lab) of three nodes,
// a client that opens a new TCP connection to the VIP every 5 ms, and an
// attacker on the same bridge that sends crafted VRRP adverts. The router
// is vipvs (three agents) or keepalived, so that both are measured in the
// same lab: the tests assert on vipvs, the bench (test/bench) prints both.
//
// Every function needs root; the tests skip without it.
package faultlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/agent/vrrp/packet"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// Impl is the VRRP implementation the nodes run.
type Impl string

// The implementations.
const (
	VIPVS      Impl = "vipvs"
	Keepalived Impl = "keepalived"
)

// ServicePort is the port every node serves on; the client probes the VIP
// on it.
const ServicePort = 8080

// The client's probes: a new connection every 5 ms, failing after 200 ms.
const (
	ProbeEvery   = 5 * time.Millisecond
	ProbeTimeout = 200 * time.Millisecond
)

// VRID is the virtual router's VRID.
const VRID = 51

// Priorities of n1, n2, n3: n1 is the preferred master.
var Priorities = []int{150, 100, 50}

// Options shape the router.
type Options struct {
	Impl Impl
	// Bin is the vipvs binary (agentlab.BinaryForTests).
	Bin string
	// Dir receives configs and pid files.
	Dir string
	// Interval is the advertisement interval (default 100 ms).
	Interval time.Duration
	// Unicast makes the nodes send adverts to each other by unicast.
	Unicast bool
	// MulticastPeers sets vipvs's multicast allowlist to the other nodes
	// (keepalived has none).
	MulticastPeers bool
}

// Env is a running router with its client and attacker. Create it with New.
type Env struct {
	Lab      *lab.Lab
	Opts     Options
	Router   agentlab.Router
	VIP      netip.Addr
	Client   *lab.Host
	Attacker *lab.Host
	// Cluster runs the vipvs agents (Impl VIPVS).
	Cluster *agentlab.Cluster
	// Keepaliveds run keepalived (Impl Keepalived), one per node.
	Keepaliveds []*agentlab.Keepalived

	prober  *lab.Prober
	holders *holderWatch
	raw     int // the attacker's raw socket, -1 when not open
}

// NewLab builds the lab an Env needs: three nodes, the client c1 and the
// attacker c2, every node serving on ServicePort.
func NewLab(l *lab.Lab) error {
	if len(l.Nodes()) != 3 || len(l.Clients()) != 2 {
		return fmt.Errorf("faultlab: the lab needs 3 nodes and 2 clients, it has %d and %d", len(l.Nodes()), len(l.Clients()))
	}
	for _, n := range l.Nodes() {
		stop, err := n.Serve(ServicePort)
		if err != nil {
			return fmt.Errorf("serving on %s: %w", n.Name, err)
		}
		_ = stop // the lab's Close stops it
	}
	return nil
}

// New starts the router on the lab's nodes (see NewLab), waits until n1 is
// the only holder of the VIP, and starts the client's probes and the
// sampling of the VIP's holders.
func New(l *lab.Lab, opts Options) (*Env, error) {
	if opts.Interval == 0 {
		opts.Interval = 100 * time.Millisecond
	}
	vip := netip.PrefixFrom(l.VIPv4(0), 24)
	e := &Env{
		Lab: l, Opts: opts, VIP: vip.Addr(), Client: l.Client(1), Attacker: l.Client(2), raw: -1,
		Router: agentlab.Router{
			Name: "api", VRID: VRID, Priorities: Priorities, Interval: opts.Interval,
			Unicast: opts.Unicast, MulticastPeers: opts.MulticastPeers, VIPs: []netip.Prefix{vip},
		},
	}
	c, err := agentlab.New(l, opts.Bin, opts.Dir, e.Router)
	if err != nil {
		return nil, err
	}
	e.Cluster = c
	switch opts.Impl {
	case VIPVS:
		if err := c.Start(); err != nil {
			return nil, err
		}
	case Keepalived:
		for i, n := range l.Nodes() {
			dir := filepath.Join(opts.Dir, "keepalived-"+n.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			k, err := agentlab.NewKeepalived(n, dir, agentlab.KeepalivedConfig{
				RouterID:  n.Name,
				Instances: []agentlab.KeepalivedInstance{c.KeepalivedInstanceFor(i+1, e.Router)},
			})
			if err != nil {
				return nil, err
			}
			if err := k.Start(); err != nil {
				return nil, err
			}
			e.Keepaliveds = append(e.Keepaliveds, k)
		}
	default:
		return nil, fmt.Errorf("faultlab: unknown implementation %q", opts.Impl)
	}
	if err := e.WaitHolder(l.Node(1), 15*time.Second); err != nil {
		return nil, err
	}
	e.holders = watchHolders(l, e.VIP)
	p, err := e.Client.Probe(netip.AddrPortFrom(e.VIP, ServicePort), ProbeEvery, ProbeTimeout)
	if err != nil {
		e.holders.stop()
		return nil, err
	}
	e.prober = p
	// Let the client learn the VIP's MAC and settle.
	time.Sleep(300 * time.Millisecond)
	return e, nil
}

// Close stops the probes and the sampling; the lab's Close stops the rest.
func (e *Env) Close() {
	if e.prober != nil {
		e.prober.Stop()
	}
	if e.holders != nil {
		e.holders.stop()
	}
	if e.raw >= 0 {
		_ = unix.Close(e.raw)
		e.raw = -1
	}
}

// WaitHolder waits until h is the only node holding the VIP, for 3
// advertisement intervals in a row.
func (e *Env) WaitHolder(h *lab.Host, timeout time.Duration) error {
	var since time.Time
	return lab.WaitFor(timeout, fmt.Sprintf("%s to be the only holder of %s", h.Name, e.VIP), func() (bool, error) {
		hs, err := e.Lab.Holders(e.VIP)
		if err != nil {
			return false, err
		}
		if len(hs) != 1 || hs[0] != h {
			since = time.Time{}
			return false, nil
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= 3*e.Opts.Interval, nil
	})
}

// pid is the process that runs node i's VRRP (1-based): the agent, or
// keepalived's VRRP child.
func (e *Env) pid(i int) (int, error) {
	if e.Opts.Impl == Keepalived {
		return e.Keepaliveds[i-1].VRRPPid()
	}
	a := e.Cluster.Agents[i-1]
	if a.Proc == nil {
		return 0, fmt.Errorf("agent on %s is not running", a.Node.Name)
	}
	return a.Proc.Pid(), nil
}

// Signal sends sig to node i's VRRP process.
func (e *Env) Signal(i int, sig syscall.Signal) error {
	pid, err := e.pid(i)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to %d on n%d: %w", sig, pid, i, err)
	}
	return nil
}

// Mark returns the current time, to measure an Outcome from.
func (e *Env) Mark() time.Time { return time.Now() }

// Outcome is what the client and the nodes showed over a period.
type Outcome struct {
	// Longest is the client's longest outage: from the start of a failed
	// connection to the end of the next successful one (a slow but
	// successful connection, the machine being busy, is no outage); Total
	// sums the outages.
	Longest, Total time.Duration
	// Probes and Failed count the client's connections.
	Probes, Failed int
	// Takeovers counts the times a node took the VIP.
	Takeovers int
	// TwoHolders and NoHolder are the times the VIP was on more than one
	// node, and on none.
	TwoHolders, NoHolder time.Duration
}

// Outcome returns what happened since t.
func (e *Env) Outcome(since time.Time) Outcome {
	r := e.prober.Snapshot().Since(since)
	o := Outcome{Probes: len(r.Attempts), Failed: r.Failed()}
	var start time.Time // start of the current outage, zero when none
	end := func(t time.Time) {
		if start.IsZero() {
			return
		}
		d := t.Sub(start)
		o.Total += d
		o.Longest = max(o.Longest, d)
		start = time.Time{}
	}
	for _, a := range r.Attempts {
		switch {
		case !a.OK && start.IsZero():
			start = a.Start
		case a.OK:
			end(a.End)
		}
	}
	if n := len(r.Attempts); n > 0 {
		end(r.Attempts[n-1].End)
	}
	o.Takeovers, o.TwoHolders, o.NoHolder = e.holders.since(since)
	return o
}

// String formats an outcome on one line.
func (o Outcome) String() string {
	return fmt.Sprintf("outage longest %v total %v, %d/%d probes failed, %d takeovers, VIP on two nodes %v, on none %v",
		o.Longest.Round(time.Millisecond), o.Total.Round(time.Millisecond), o.Failed, o.Probes, o.Takeovers,
		o.TwoHolders.Round(time.Millisecond), o.NoHolder.Round(time.Millisecond))
}

// holderWatch samples the VIP's holders every few milliseconds.
type holderWatch struct {
	done chan struct{}
	quit chan struct{}
	once sync.Once

	mu      sync.Mutex
	samples []holderSample
}

type holderSample struct {
	at      time.Time
	holders uint8 // bit i: node i+1 holds the VIP
}

const holderEvery = 5 * time.Millisecond

func watchHolders(l *lab.Lab, vip netip.Addr) *holderWatch {
	w := &holderWatch{done: make(chan struct{}), quit: make(chan struct{})}
	nodes := l.Nodes()
	go func() {
		defer close(w.done)
		t := time.NewTicker(holderEvery)
		defer t.Stop()
		for {
			var set uint8
			for i, n := range nodes {
				if ok, err := n.HasAddr(vip); err == nil && ok {
					set |= 1 << i
				}
			}
			w.mu.Lock()
			w.samples = append(w.samples, holderSample{at: time.Now(), holders: set})
			w.mu.Unlock()
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *holderWatch) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

// since returns the takeovers and the times on two nodes and on none since t.
func (w *holderWatch) since(t time.Time) (takeovers int, two, none time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var prev *holderSample
	for i := range w.samples {
		s := &w.samples[i]
		if s.at.Before(t) {
			prev = s
			continue
		}
		if prev != nil {
			dt := s.at.Sub(prev.at)
			switch n := popcount(prev.holders); {
			case n == 0:
				none += dt
			case n > 1:
				two += dt
			}
			takeovers += popcount(s.holders &^ prev.holders)
		}
		prev = s
	}
	return takeovers, two, none
}

func popcount(b uint8) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// Send sends adv from the attacker with IP source src (forged or not) to
// dst, with TTL 255, from the attacker's MAC.
func (e *Env) Send(adv packet.Advert, src, dst netip.Addr) error {
	if e.raw < 0 {
		err := e.Attacker.Do(func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			if err != nil {
				return err
			}
			if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, e.Attacker.IfName); err != nil {
				_ = unix.Close(fd)
				return err
			}
			e.raw = fd
			return nil
		})
		if err != nil {
			return fmt.Errorf("faultlab: the attacker's raw socket: %w", err)
		}
	}
	payload, err := adv.Marshal(src, dst, packet.ChecksumPseudoHeader)
	if err != nil {
		return err
	}
	b := make([]byte, 20+len(payload))
	b[0], b[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 255, 112
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint16(b[10:], ipChecksum(b[:20]))
	copy(b[20:], payload)
	sa := &unix.SockaddrInet4{Addr: d4}
	if err := unix.Sendto(e.raw, b, 0, sa); err != nil {
		return fmt.Errorf("faultlab: sending the forged advert: %w", err)
	}
	return nil
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Flood sends adv (see Send) every interval for d.
func (e *Env) Flood(adv packet.Advert, src, dst netip.Addr, every, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := e.Send(adv, src, dst); err != nil {
			return err
		}
		time.Sleep(every)
	}
	return nil
}

// Advert returns an advert for the router's VRID with our VIP.
func (e *Env) Advert(priority uint8) packet.Advert {
	return packet.Advert{Version: 3, VRID: VRID, Priority: priority, Interval: e.Opts.Interval, Addrs: []netip.Addr{e.VIP}}
}

// nft tables and chains of the faults.
const tableName = "faultlab"

var (
	chainMu  sync.Mutex
	chainSeq int
)

func nextChain(kind string) string {
	chainMu.Lock()
	defer chainMu.Unlock()
	chainSeq++
	return fmt.Sprintf("%s%d", kind, chainSeq)
}

// addChain adds a base chain with one rule to table faultlab of family in
// h's namespace; undo deletes it (idempotent).
func addChain(h *lab.Host, family nftables.TableFamily, ch *nftables.Chain, rule []expr.Any) (undo func() error, err error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(h.NS())))
	if err != nil {
		return nil, err
	}
	t := c.AddTable(&nftables.Table{Name: tableName, Family: family})
	prio := nftables.ChainPriorityFilter
	ch.Table, ch.Type, ch.Priority = t, nftables.ChainTypeFilter, prio
	policy := nftables.ChainPolicyAccept
	ch.Policy = &policy
	c.AddChain(ch)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rule})
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("adding nft chain %s on %s: %w", ch.Name, h.Name, err)
	}
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			c.DelChain(ch)
			uerr = c.Flush()
		})
		return uerr
	}, nil
}

// Block drops every frame from `from` arriving at `to` (one direction of a
// partition): an ingress chain on to's interface matching from's MAC.
func Block(from, to *lab.Host) (undo func() error, err error) {
	ch := &nftables.Chain{Name: nextChain("block"), Hooknum: nftables.ChainHookIngress, Device: to.IfName}
	return addChain(to, nftables.TableFamilyNetdev, ch, []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(from.MAC)},
		&expr.Verdict{Kind: expr.VerdictDrop},
	})
}

// VRRPLoss drops each VRRP packet h sends with probability percent/100
// (`meta l4proto 112 numgen random mod 100 < percent drop` on output).
// Nothing else is lost: the client's connections and the ARP
// announcements go through.
func VRRPLoss(h *lab.Host, percent int) (undo func() error, err error) {
	ch := &nftables.Chain{Name: nextChain("loss"), Hooknum: nftables.ChainHookOutput}
	return addChain(h, nftables.TableFamilyINet, ch, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{112}},
		&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(percent))},
		&expr.Verdict{Kind: expr.VerdictDrop},
	})
}

// Undo runs undos, joining their errors.
func Undo(undos ...func() error) error {
	var errs []error
	for _, u := range undos {
		if u != nil {
			errs = append(errs, u())
		}
	}
	return errors.Join(errs...)
}

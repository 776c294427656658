package lb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/agent/snat"
	"github.com/vipvs/vipvs/test/lab"
)

// A packet capture for the connection-sync tests: it records the TCP
// packets of a few chosen connections (those whose client port is in
// [lo, hi]) as they arrive at one host (frames the bridge floods included), so that a failed or slow
// takeover can be explained packet by packet (which side retransmitted,
// when, and where the packets went). The lab's namespaces have no
// tcpdump; an AF_PACKET socket with a classic BPF filter does the job.

// capturedPacket is one TCP packet seen by a capture.
type capturedPacket struct {
	at       time.Time
	src, dst netip.AddrPort
	flags    byte
	seq, ack uint32
	payload  int
}

func (p capturedPacket) String() string {
	var f []string
	for _, x := range []struct {
		bit  byte
		name string
	}{{0x02, "S"}, {0x01, "F"}, {0x04, "R"}, {0x08, "P"}, {0x10, "."}} {
		if p.flags&x.bit != 0 {
			f = append(f, x.name)
		}
	}
	return fmt.Sprintf("%s > %s [%s] seq %d ack %d len %d", p.src, p.dst, strings.Join(f, ""), p.seq, p.ack, p.payload)
}

// capture records packets on every interface of one host.
type capture struct {
	host string
	fd   int
	mu   sync.Mutex
	pkts []capturedPacket
	done chan struct{}
}

// startCapture opens the capture in h's namespace for TCP packets with a
// port in [lo, hi]; stop it with stop.
func startCapture(h *lab.Host, lo, hi uint16) (*capture, error) {
	prog, err := bpf.Assemble([]bpf.Instruction{
		// SOCK_DGRAM: the data starts at the network header. ETH_P_ALL
		// (outgoing packets reach only such sockets): IPv4 only.
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IP, SkipTrue: 11},
		bpf.LoadAbsolute{Off: 9, Size: 1},                       // protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 9}, // not TCP: drop
		bpf.LoadMemShift{Off: 0},                                // X = header length
		bpf.LoadIndirect{Off: 0, Size: 2},                       // source port
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(lo), SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(hi), SkipTrue: 1},
		bpf.RetConstant{Val: 128},
		bpf.LoadIndirect{Off: 2, Size: 2}, // destination port
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: uint32(lo), SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(hi), SkipTrue: 1},
		bpf.RetConstant{Val: 128},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	c := &capture{host: h.Name, fd: -1, done: make(chan struct{})}
	err = h.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("attaching the filter: %w", err)
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	})
	if err != nil {
		return nil, fmt.Errorf("capture on %s: %w", h.Name, err)
	}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) read() {
	defer close(c.done)
	buf := make([]byte, 256)
	for {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return // closed
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // a packet's arrival at each host is what the timeline shows
		}
		if p, ok := parseTCP4(buf[:n]); ok {
			p.at = now
			c.mu.Lock()
			c.pkts = append(c.pkts, p)
			c.mu.Unlock()
		}
	}
}

// parseTCP4 parses an IPv4 TCP packet (headers only).
func parseTCP4(b []byte) (capturedPacket, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return capturedPacket{}, false
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b) < ihl+20 {
		return capturedPacket{}, false
	}
	t := b[ihl:]
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	doff := int(t[12]>>4) * 4
	return capturedPacket{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(t[0:2])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(t[2:4])),
		seq:     binary.BigEndian.Uint32(t[4:8]),
		ack:     binary.BigEndian.Uint32(t[8:12]),
		flags:   t[13],
		payload: total - ihl - doff,
	}, true
}

// stop ends the capture and returns its packets.
func (c *capture) stop() []capturedPacket {
	if c.fd >= 0 {
		unix.Close(c.fd)
		<-c.done
		c.fd = -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

// writeTimeline writes the packets of the connection with client port
// port, from each capture, relative to mark, in time order.
func writeTimeline(w io.Writer, mark time.Time, port uint16, caps map[string][]capturedPacket) {
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for host, pkts := range caps {
		for _, p := range pkts {
			if p.src.Port() != port && p.dst.Port() != port {
				continue
			}
			lines = append(lines, line{p.at, fmt.Sprintf("%+8.3fs %-3s %s", p.at.Sub(mark).Seconds(), host, p)})
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, l := range lines {
		fmt.Fprintln(w, l.text)
	}
}

// traceFlows starts captures on hosts for the flows whose client port is
// in [lo, hi]; the returned function stops them and logs, for the flow of
// fs that stalled longest after mark, its timeline.
func traceFlows(t *testing.T, fs *flows, lo, hi uint16, hosts ...*lab.Host) func(mark time.Time) {
	t.Helper()
	var caps []*capture
	for _, h := range hosts {
		c, err := startCapture(h, lo, hi)
		if err != nil {
			t.Logf("no capture: %v", err)
			continue
		}
		caps = append(caps, c)
	}
	stopped := false
	stop := func(mark time.Time) {
		if stopped {
			return
		}
		stopped = true
		got := map[string][]capturedPacket{}
		for _, c := range caps {
			got[c.host] = c.stop()
		}
		// The traced flow that stalled longest after mark.
		var worst *flow
		var worstGap time.Duration
		for _, f := range fs.list {
			port := localPort(f)
			if port < lo || port > hi {
				continue
			}
			f.mu.Lock()
			for _, g := range f.gaps {
				if g.from.Add(g.len).After(mark) && g.len > worstGap {
					worst, worstGap = f, g.len
				}
			}
			f.mu.Unlock()
		}
		if worst == nil {
			t.Logf("capture: no traced flow (client ports %d-%d) stalled", lo, hi)
			return
		}
		var b strings.Builder
		writeTimeline(&b, mark, localPort(worst), got)
		// One log line per packet: the VM's console is filtered by line.
		t.Logf("capture of flow %d (client port %d, stalled %v), times from the failover:", worst.id, localPort(worst), worstGap.Round(time.Millisecond))
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			t.Logf("  %s", l)
		}
	}
	t.Cleanup(func() { stop(time.Now()) })
	return stop
}

// localPort is the client port of f.
func localPort(f *flow) uint16 {
	ap, err := netip.ParseAddrPort(f.conn.LocalAddr().String())
	if err != nil {
		return 0
	}
	return ap.Port()
}

// takeoverState describes what h holds for the connections to vip's port:
// the IPVS connections (balanced here or synced), the conntrack entries
// and the packets the input rule of "inet vipvs" dropped so far (a real
// server's packet reaching a new master before the connection's conntrack
// entry exists).
func takeoverState(h *lab.Host, vip netip.Addr, port int) string {
	local, synced, err := tableConns(h, vip)
	var ct []byte
	cerr := h.Do(func() (err error) {
		ct, err = os.ReadFile("/proc/thread-self/net/nf_conntrack")
		return err
	})
	entries := 0
	dst := "dst=" + vip.String() + " "
	if vip.Is6() {
		dst = "dst=" + vip.StringExpanded() + " " // %pI6
	}
	for _, l := range strings.Split(string(ct), "\n") {
		if strings.Contains(l, dst) && strings.Contains(l, fmt.Sprintf("dport=%d ", port)) {
			entries++
		}
	}
	return fmt.Sprintf("IPVS %d local + %d synced (%v), conntrack %d (%v), input drops %s", local, synced, err, entries, cerr, inputDrops(h))
}

// inputDrops reads the counters of the input chain of "inet vipvs".
func inputDrops(h *lab.Host) string {
	c, err := nftables.New(nftables.WithNetNSFd(int(h.NS())))
	if err != nil {
		return err.Error()
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: snat.TableName}
	rules, err := c.GetRules(tbl, &nftables.Chain{Name: snat.InputChainName, Table: tbl})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				out = append(out, fmt.Sprintf("%d packets", ctr.Packets))
			}
		}
	}
	return strings.Join(out, ", ")
}

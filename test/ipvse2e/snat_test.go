package ipvse2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/agent/ipvs"
	"github.com/vipvs/vipvs/agent/snat"
	"github.com/vipvs/vipvs/test/lab"
	"github.com/vipvs/vipvs/test/vm"
)

// snatTests are the tests of this file. They need IPVS, so they run only
// inside the test VM: TestIPVSInVM builds this package's own test binary
// and runs them in the same VM as agent/ipvs's kernel tests.
var snatTests = []string{"TestSNATHairpin"}

// snatPort is the virtual service's port and the real server's.
const snatPort = 80

// snatClient is a client of the virtual service: a host and the VIP it
// connects to.
type snatClient struct {
	name string
	host *lab.Host
	vip  netip.Addr
	// needsSNAT is true when the client cannot be served without the
	// source NAT; the director's own connections can.
	needsSNAT bool
}

// TestSNATHairpin proves what agent/snat is for, with the kernel's IPVS in
// NAT mode, for IPv4 and IPv6:
//
//	n1 director: VIPs 192.0.2.100/32 and 2001:db8::100/128 on eth0,
//	   IPVS tcp VIP:80 -> n2:80 (masq), forwarding on
//	n2 real server: listens on :80; no route through n1 (no default route)
//	c1 outside client, on the same segment
//
// A client on n2 itself (the hairpin) and c1 are served only while the
// table "inet vipvs" holds the rules and net.ipv4.vs.conntrack is 1; n1's
// own connections to its VIPs are served with the source NAT too.
func TestSNATHairpin(t *testing.T) {
	if !vm.InVM() {
		t.Skip("needs IPVS, which this kernel lacks: runs inside the test VM (go test ./test/ipvse2e -run TestIPVSInVM)")
	}
	l := lab.NewT(t, lab.Options{Nodes: 2, Clients: 1})
	dir, real, outside := l.Node(1), l.Node(2), l.Client(1)
	vip4, vip6 := l.VIPv4(0), l.VIPv6(0)

	link, err := dir.Netlink().LinkByName(lab.IfName)
	snatMust(t, err)
	for _, a := range []*netlink.Addr{
		{IPNet: &net.IPNet{IP: vip4.AsSlice(), Mask: net.CIDRMask(32, 32)}},
		{IPNet: &net.IPNet{IP: vip6.AsSlice(), Mask: net.CIDRMask(128, 128)}, Flags: unix.IFA_F_NODAD},
	} {
		if err := dir.Netlink().AddrAdd(link, a); err != nil {
			t.Fatalf("adding VIP %s on %s: %v", a.IPNet, dir, err)
		}
	}
	if _, err := real.Serve(snatPort); err != nil {
		t.Fatal(err)
	}

	p, err := ipvs.NewAt(fmt.Sprintf("/proc/self/fd/%d", int(dir.NS())))
	if err != nil {
		t.Fatalf("opening IPVS in %s: %v", dir, err)
	}
	t.Cleanup(func() { p.Close() })
	services := []ipvs.Service{
		{VIP: vip4, Port: snatPort, Protocol: ipvs.TCP, Scheduler: "rr", Forward: ipvs.NAT, Reals: []ipvs.Real{{Addr: real.IPv4, Weight: 1}}},
		{VIP: vip6, Port: snatPort, Protocol: ipvs.TCP, Scheduler: "rr", Forward: ipvs.NAT, Reals: []ipvs.Real{{Addr: real.IPv6, Weight: 1}}},
	}
	if err := p.Apply(context.Background(), ipvs.Diff(services, nil, nil)); err != nil {
		t.Fatalf("programming IPVS in %s: %v", dir, err)
	}

	// Forwarding on, IPVS conntrack off: what a director has before
	// EnableConntrack, so that each phase below changes one thing.
	for _, s := range [][2]string{
		{"net.ipv4.ip_forward", "1"}, {"net.ipv6.conf.all.forwarding", "1"}, {"net.ipv4.vs.conntrack", "0"},
	} {
		snatMust(t, dir.SetSysctl(s[0], s[1]))
	}

	// The Manager programs the namespace of the thread its methods run on
	// (a netlink socket per operation): dir.Do runs them in dir's.
	m, err := snat.New(snat.WithLogger(testr.New(t)))
	snatMust(t, err)
	targets := []snat.Target{
		{VIP: vip4, Port: snatPort, Protocol: snat.TCP},
		{VIP: vip6, Port: snatPort, Protocol: snat.TCP},
	}

	var clients []snatClient
	for _, vip := range []netip.Addr{vip4, vip6} {
		clients = append(clients,
			snatClient{name: "hairpin n2->" + vip.String(), host: real, vip: vip, needsSNAT: true},
			snatClient{name: "outside c1->" + vip.String(), host: outside, vip: vip, needsSNAT: true},
			snatClient{name: "director n1->" + vip.String(), host: dir, vip: vip},
		)
	}

	// 1. No table: the real server's answers do not come back through
	// the director.
	snatPhase(t, "no source NAT", clients, false)

	// 2. The rules, but IPVS leaves its connections untracked: nothing
	// for them to match.
	snatMust(t, dir.Do(func() error { return m.Sync(targets) }))
	snatPhase(t, "rules without net.ipv4.vs.conntrack", clients, false)

	// 3. EnableConntrack: served.
	snatMust(t, dir.Do(func() error { return snat.EnableConntrack(snat.IPv4, snat.IPv6) }))
	for _, k := range []string{"net.ipv4.vs.conntrack", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if v, err := dir.Sysctl(k); err != nil || v != "1" {
			t.Errorf("after EnableConntrack %s = %q (%v), want 1", k, v, err)
		}
	}
	snatPhase(t, "rules and conntrack", clients, true)

	// 4. Delete: not served any more.
	snatMust(t, dir.Do(m.Delete))
	snatPhase(t, "after Delete", clients, false)

	// 5. Sync again: served again.
	snatMust(t, dir.Do(func() error { return m.Sync(targets) }))
	snatPhase(t, "after a new Sync", clients, true)
}

// snatPhase connects from every client at once. With served, each must
// be answered by n2; without, each that needs the source NAT must fail
// (the others are only logged).
func snatPhase(t *testing.T, phase string, clients []snatClient, served bool) {
	t.Helper()
	results := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			target := netip.AddrPortFrom(c.vip, snatPort)
			if served {
				// Served from the first attempt in practice; a retry
				// absorbs a slow emulated CPU, not a missing rule.
				results[i] = lab.WaitFor(10*time.Second, c.name+" answered by n2", func() (bool, error) {
					line, err := snatDial(c.host, target, time.Second)
					return err == nil && line == "n2", nil
				})
				return
			}
			// Without the source NAT the connection never completes:
			// one attempt, bounded by its timeout.
			line, err := snatDial(c.host, target, time.Second)
			if err == nil {
				results[i] = fmt.Errorf("answered %q", line)
			}
		})
	}
	wg.Wait()
	for i, c := range clients {
		err := results[i]
		switch {
		case served && err != nil:
			t.Errorf("%s: %s: %v", phase, c.name, err)
		case served:
			t.Logf("%s: %s: served", phase, c.name)
		case !served && err != nil && c.needsSNAT:
			t.Errorf("%s: %s: %v, want no answer", phase, c.name, err)
		case !served && err != nil:
			t.Logf("%s: %s: %v (needs no source NAT)", phase, c.name, err)
		default:
			t.Logf("%s: %s: not served, as expected", phase, c.name)
		}
	}
}

// snatDial opens one TCP connection from h to target and returns the line
// the server sent, all within timeout.
func snatDial(h *lab.Host, target netip.AddrPort, timeout time.Duration) (string, error) {
	var line string
	err := h.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		deadline := time.Now().Add(timeout)
		c, err := d.Dial("tcp", target.String())
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(deadline); err != nil {
			return err
		}
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(line), err
}

func snatMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

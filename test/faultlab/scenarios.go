package faultlab

import (
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/vipvs/vipvs/agent/transport"
	"github.com/vipvs/vipvs/test/lab"
)

// Scenario is one situation of issue #11, played against a running Env.
type Scenario struct {
	// Name is a short label (the bench's row).
	Name string
	// Options adjusts the router's options before it starts.
	Options func(*Options)
	// Play injects the fault and returns when the router has had the time
	// to settle; the Outcome is measured over the whole of it.
	Play func(e *Env) error
	// Stranger says the network allows no outage at all: the attack must
	// change nothing.
	Stranger bool
}

// foreignVIP is an address another cluster on the same link might use.
var foreignVIP = netip.MustParseAddr("192.0.2.200")

// Scenarios returns every situation, in the bench's order.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name: "foreign address list at priority 255", Stranger: true,
			Play: func(e *Env) error {
				adv := e.Advert(255)
				adv.Addrs = []netip.Addr{foreignVIP}
				return e.Flood(adv, e.Attacker.IPv4, transport.MulticastGroup(false), e.Opts.Interval, 20*e.Opts.Interval)
			},
		},
		{
			Name: "higher priority from a non-peer", Stranger: true,
			Options: func(o *Options) { o.MulticastPeers = true },
			Play: func(e *Env) error {
				return e.Flood(e.Advert(254), e.Attacker.IPv4, transport.MulticastGroup(false), e.Opts.Interval, 20*e.Opts.Interval)
			},
		},
		{
			Name: "peer's address forged from another MAC", Stranger: true,
			Options: func(o *Options) { o.Unicast = true },
			Play: func(e *Env) error {
				// Let the master's neighbour table know n2 before the attack.
				time.Sleep(6 * time.Second)
				return e.Flood(e.Advert(254), e.Lab.Node(2).IPv4, e.Lab.Node(1).IPv4, e.Opts.Interval, 20*e.Opts.Interval)
			},
		},
		{
			Name: "priority 0 forged with the master's address", Stranger: true,
			Play: func(e *Env) error {
				// Every 1.5 intervals: a forged priority 0 must not be
				// followed by another one within the backups' Skew_Time, or
				// it would keep pushing their timer back.
				return e.Flood(e.Advert(0), e.Lab.Node(1).IPv4, transport.MulticastGroup(false), 3*e.Opts.Interval/2, 20*e.Opts.Interval)
			},
		},
		{Name: "partition healed, master heard first", Play: func(e *Env) error { return e.partition(true) }},
		{Name: "partition healed, stray heard first", Play: func(e *Env) error { return e.partition(false) }},
		{
			Name: "40% VRRP loss for 6 s",
			Play: func(e *Env) error {
				var undos []func() error
				for _, n := range e.Lab.Nodes() {
					u, err := VRRPLoss(n, 40)
					if err != nil {
						return Undo(undos...)
					}
					undos = append(undos, u)
				}
				time.Sleep(6 * time.Second)
				if err := Undo(undos...); err != nil {
					return err
				}
				time.Sleep(time.Second)
				return nil
			},
		},
		{
			Name: "kill -9 of the master",
			Play: func(e *Env) error {
				if err := e.Signal(1, syscall.SIGKILL); err != nil {
					return err
				}
				time.Sleep(3 * time.Second)
				return nil
			},
		},
		{
			Name: "SIGSTOP of the master for 1.5 s",
			Play: func(e *Env) error {
				if err := e.Signal(1, syscall.SIGSTOP); err != nil {
					return err
				}
				time.Sleep(1500 * time.Millisecond)
				if err := e.Signal(1, syscall.SIGCONT); err != nil {
					return err
				}
				time.Sleep(1500 * time.Millisecond)
				return nil
			},
		},
	}
}

// partition cuts n1 (the master) from n2 and n3 until n2 has taken over,
// then heals it one direction first: masterFirst heals n1 -> n2, n3 first,
// so that the master's advert reaches the stray before the stray's reaches
// the master; otherwise n2, n3 -> n1 first. The other direction follows
// five intervals later.
func (e *Env) partition(masterFirst bool) error {
	n1, n2 := e.Lab.Node(1), e.Lab.Node(2)
	var fromMaster, toMaster []func() error
	for _, other := range []int{2, 3} {
		h := e.Lab.Node(other)
		u, err := Block(n1, h)
		if err != nil {
			return Undo(append(fromMaster, toMaster...)...)
		}
		fromMaster = append(fromMaster, u)
		u, err = Block(h, n1)
		if err != nil {
			return Undo(append(fromMaster, toMaster...)...)
		}
		toMaster = append(toMaster, u)
	}
	if err := e.WaitHolders(5*time.Second, n1, n2); err != nil {
		_ = Undo(append(fromMaster, toMaster...)...)
		return fmt.Errorf("the stray never took over: %w", err)
	}
	// Let the client follow the stray's announcements.
	time.Sleep(500 * time.Millisecond)
	first, second := toMaster, fromMaster
	if masterFirst {
		first, second = fromMaster, toMaster
	}
	if err := Undo(first...); err != nil {
		return err
	}
	time.Sleep(5 * e.Opts.Interval)
	if err := Undo(second...); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	return nil
}

// WaitHolders waits until exactly hs hold the VIP.
func (e *Env) WaitHolders(timeout time.Duration, hs ...*lab.Host) error {
	want := map[string]bool{}
	for _, h := range hs {
		want[h.Name] = true
	}
	return waitFor(timeout, func() bool {
		got, err := e.Lab.Holders(e.VIP)
		if err != nil || len(got) != len(want) {
			return false
		}
		for _, h := range got {
			if !want[h.Name] {
				return false
			}
		}
		return true
	})
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// Command demo is `make demo`: three nodes and a client in network
// namespaces joined by a bridge, a vipvs agent on each node, and a client
// that keeps connecting to the VIP while the master's link goes down and comes
// back. It prints who holds the VIP and what the client saw, and removes
// everything it made on exit, on failure and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

const (
	servicePort = 8080
	routerName  = "api"
)

var vip = netip.MustParsePrefix("192.0.2.100/24")

func main() {
	bin := flag.String("vipvs", "bin/vipvs", "path of the vipvs binary (make demo builds it)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: demo [-vipvs bin/vipvs]\n\nRuns three vipvs agents in network namespaces, fails the master and shows\nthe client's view of the failover. Needs root (it creates network namespaces).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root: it creates network namespaces, veth pairs and a bridge, and runs the agents with CAP_NET_ADMIN/CAP_NET_RAW.\nRun it as root: sudo make demo")
		os.Exit(1)
	}
	if _, err := os.Stat(*bin); err != nil {
		fmt.Fprintf(os.Stderr, "demo: the vipvs binary %s is missing (%v); run `make build` or `make demo`\n", *bin, err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *bin); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Println("\ninterrupted; everything the demo made has been removed")
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, bin string) (err error) {
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	dir, err := os.MkdirTemp("", "vipvs-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	say("== building the lab: nodes n1, n2, n3 and a client c1 on one bridge (192.0.2.0/24)")
	l, err := lab.New(lab.Options{Nodes: 3, Clients: 1, LogDir: dir})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			l.Dump(w)
		}
		if cerr := l.Close(); cerr != nil {
			say("cleanup: %v", cerr)
		} else {
			say("== cleaned up: agents stopped, namespaces removed")
		}
	}()
	for _, n := range l.Nodes() {
		stopServe, err := n.Serve(servicePort)
		if err != nil {
			return err
		}
		defer stopServe()
		say("   %s %s serves its name on port %d", n.Name, n.IPv4, servicePort)
	}

	c, err := agentlab.New(l, bin, dir, agentlab.Router{
		Name: routerName, VRID: 51, Priorities: []int{150, 100, 50}, VIPs: []netip.Prefix{vip},
	})
	if err != nil {
		return err
	}
	say("== starting a vipvs agent on each node: VRRPv3, VRID 51, VIP %s, priorities 150/100/50, adverts every 1s", vip)
	if err := c.Start(); err != nil {
		return err
	}
	n1, n2 := c.Agents[0], c.Agents[1]
	if err := wait(ctx, func() error { return c.WaitMaster(routerName, n1, vip.Addr(), 15*time.Second) }); err != nil {
		return err
	}
	printStatus(w, c)

	client := l.Client(1)
	target := netip.AddrPortFrom(vip.Addr(), servicePort)
	say("== the client %s opens a new TCP connection to %s every 5 ms", client.IPv4, target)
	p, err := client.Probe(target, 5*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer p.Stop()
	if err := pause(ctx, 2*time.Second); err != nil {
		return err
	}
	say("   %s", p.Snapshot().Summary())

	say("== failing the master: n1's link goes down")
	down := time.Now()
	if err := n1.Node.LinkDown(); err != nil {
		return err
	}
	if err := wait(ctx, func() error {
		return lab.WaitFor(15*time.Second, "the client to be served by n2", func() (bool, error) {
			return p.Snapshot().Since(down).Servers()[n2.Node.Name] > 0, nil
		})
	}); err != nil {
		return err
	}
	r := p.Snapshot().Since(down)
	say("   the client could not connect for %v (%d probes failed); the VIP is now on n2", r.LongestGap().Round(time.Millisecond), r.Failed())
	say("   (Master_Down_Interval = 3 x 1s + skew of priority 100 = 3.609s)")
	printStatus(w, c)

	say("== restoring n1's link: n1 (priority 150) takes the VIP back")
	up := time.Now()
	if err := n1.Node.LinkUp(); err != nil {
		return err
	}
	if err := wait(ctx, func() error { return c.WaitMaster(routerName, n1, vip.Addr(), 20*time.Second) }); err != nil {
		return err
	}
	if err := wait(ctx, func() error {
		return lab.WaitFor(10*time.Second, "the client to be served by n1 again", func() (bool, error) {
			return p.Snapshot().Since(up).Servers()[n1.Node.Name] > 0, nil
		})
	}); err != nil {
		return err
	}
	r = p.Snapshot().Since(up)
	say("   preemption back to n1: longest gap %v, %d probes failed", r.LongestGap().Round(time.Millisecond), r.Failed())
	printStatus(w, c)
	say("== the client's whole run: %s", p.Stop().Summary())
	return nil
}

// wait runs a blocking wait unless ctx is already cancelled (Ctrl-C).
func wait(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		return err
	}
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func printStatus(w io.Writer, c *agentlab.Cluster) {
	fmt.Fprintf(w, "   %-4s %-7s %-8s %-12s %s\n", "NODE", "STATE", "PRIORITY", "MASTER", "HOLDS "+vip.Addr().String())
	for _, a := range c.Agents {
		r, err := a.RouterStatus(routerName)
		state, prio, master := "?", "?", "?"
		if err == nil {
			state, prio, master = r.State, fmt.Sprint(r.Priority), orDash(r.Master)
		}
		holds, _ := a.Node.HasAddr(vip.Addr())
		fmt.Fprintf(w, "   %-4s %-7s %-8s %-12s %v\n", a.Node.Name, state, prio, master, holds)
	}
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

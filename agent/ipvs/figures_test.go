package ipvs

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/moby/ipvs"
	"github.com/vishvananda/netns"
	"k8s.io/utils/clock"
)

// TestKernelFigures measures reconcile times for `make bench` (test/ipvse2e
// runs it in the VM and writes BENCHMARKS.md); it asserts nothing about
// speed. Each figure is one line on stdout:
//
//	IPVS-FIGURE impl=vipvs services=1000 reals=10 case=one-change rep=1 seconds=0.0123 requests=3
//
// Implementations: vipvs (the Reconciler over the Programmer, that is over
// github.com/moby/ipvs) and keepalived (-ipvs.keepalived). Cases:
// from-empty (Reconcile of a flushed table by a new Reconciler),
// one-change (one real server's weight, ReconcileChanged, as the agent on a
// change of configuration or health), one-change-full (the same through
// Reconcile, as the periodic resync); for keepalived start (process start
// to the table complete), first-to-complete (its first service to the
// table complete) and one-change (config edited, SIGHUP to the weight
// seen in the kernel).
var (
	figureReps  = flag.Int("ipvs.figures", 0, "repetitions of TestKernelFigures (0: skip it)")
	figureSizes = flag.String("ipvs.figures-sizes", "10,100,1000", "numbers of services (of 10 reals each) for TestKernelFigures")
	figureKA    = flag.String("ipvs.keepalived", "", "keepalived binary that TestKernelFigures measures too")
)

// figureReals is the number of real servers of each service.
const figureReals = 10

func TestKernelFigures(t *testing.T) {
	if *figureReps <= 0 {
		t.Skip("set -ipvs.figures=N (test/ipvse2e does, in the VM)")
	}
	requireIPVS(t)
	var sizes []int
	for _, f := range strings.Split(*figureSizes, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 2 || n > 62500 {
			t.Fatalf("-ipvs.figures-sizes: %q is not a number of services (2-62500)", f)
		}
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		l := newLab(t)
		measureVipvs(t, l, n)
		if *figureKA != "" {
			measureKeepalived(t, l, n, *figureKA)
		}
	}
}

func figure(impl string, n int, kase string, rep int, took time.Duration, requests uint64) {
	fmt.Printf("IPVS-FIGURE impl=%s services=%d reals=%d case=%s rep=%d seconds=%.6f requests=%d\n",
		impl, n, figureReals, kase, rep, took.Seconds(), requests)
}

// toggle changes the weight of one real server of desired between 1 and 2.
func toggle(desired []Service) {
	r := &desired[len(desired)/2].Reals[figureReals/2]
	r.Weight = 3 - r.Weight
}

// measureOne runs f and returns its duration and the requests it made
// through p.
func measureOne(t *testing.T, p *Programmer, f func() (Plan, error), wantOps int) (time.Duration, uint64) {
	t.Helper()
	before := p.requestCount()
	start := time.Now()
	plan, err := f()
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Ops) != wantOps {
		t.Fatalf("plan has %d operations, want %d", len(plan.Ops), wantOps)
	}
	return took, p.requestCount() - before
}

func measureVipvs(t *testing.T, l *lab, n int) {
	desired := benchTable(n, figureReals)
	for rep := 1; rep <= *figureReps; rep++ {
		if err := l.raw.Flush(); err != nil {
			t.Fatal(err)
		}
		// A new Reconciler, as an agent that starts.
		r := NewReconciler(l.p, clock.RealClock{}, logr.Discard())
		ctx := context.Background()
		took, reqs := measureOne(t, l.p, func() (Plan, error) { return r.Reconcile(ctx, desired) }, n*(1+figureReals))
		figure("vipvs", n, "from-empty", rep, took, reqs)
		toggle(desired)
		took, reqs = measureOne(t, l.p, func() (Plan, error) { return r.ReconcileChanged(ctx, desired) }, 1)
		figure("vipvs", n, "one-change", rep, took, reqs)
		toggle(desired)
		took, reqs = measureOne(t, l.p, func() (Plan, error) { return r.Reconcile(ctx, desired) }, 1)
		figure("vipvs", n, "one-change-full", rep, took, reqs)
	}
}

// keepalivedConf renders the services as keepalived virtual servers, with
// no health checker: keepalived adds such real servers at once.
func keepalivedConf(ss []Service) []byte {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id vm\n}\n")
	for _, s := range ss {
		fmt.Fprintf(&b, "virtual_server %s %d {\n  lb_algo %s\n  lb_kind NAT\n  protocol %s\n", s.VIP, s.Port, s.Scheduler, strings.ToUpper(s.Protocol.String()))
		for _, r := range s.Reals {
			fmt.Fprintf(&b, "  real_server %s %d {\n    weight %d\n  }\n", r.Addr, s.Port, r.Weight)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// keepalivedProc is keepalived's checker (IPVS) subsystem in a namespace.
type keepalivedProc struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait returned
	waitErr error         // set before exited is closed
}

// startIn starts cmd from an OS thread in the network namespace ns; the
// child inherits it.
func startIn(ns netns.NsHandle, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = cmd.Start()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine
		errc <- err
	}()
	return <-errc
}

func startKeepalived(t *testing.T, l *lab, bin, dir string) *keepalivedProc {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(dir, "keepalived.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "--dont-fork", "--log-console", "--no-syslog", "--check", "--dont-respawn",
		"--use-file", filepath.Join(dir, "keepalived.conf"),
		"--pid", filepath.Join(dir, "k.pid"), "--checkers_pid", filepath.Join(dir, "c.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startIn(l.ns, cmd); err != nil {
		t.Fatalf("starting keepalived: %v", err)
	}
	k := &keepalivedProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		k.waitErr = cmd.Wait()
		close(k.exited)
	}()
	t.Cleanup(func() {
		k.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "keepalived.log"))
			lines := strings.Split(string(b), "\n")
			t.Logf("keepalived's log (end):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return k
}

// stop sends SIGTERM to keepalived (its PID) and waits; SIGKILL to its
// process group after 30 s. It may be called again.
func (k *keepalivedProc) stop(t *testing.T) {
	pid := k.cmd.Process.Pid
	select {
	case <-k.exited:
		return
	default:
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(30 * time.Second):
		t.Logf("keepalived (pid %d) ignored SIGTERM; killing its process group", pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-k.exited
	}
}

// waitReals polls the reals of s (through the lab's own moby/ipvs handle,
// a few milliseconds a poll in the VM) until ok accepts them; it returns
// when.
func waitReals(t *testing.T, l *lab, k *keepalivedProc, s Service, ok func([]*ipvs.Destination) bool) time.Time {
	t.Helper()
	ks := toKernelService(s)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ds, err := l.raw.GetDestinations(ks)
		now := time.Now()
		if err == nil && ok(ds) {
			return now
		}
		select {
		case <-k.exited:
			t.Fatalf("keepalived exited (%v) before %s was programmed", k.waitErr, s.Key())
		default:
		}
		if now.After(deadline) {
			t.Fatalf("keepalived did not program %s in 10 minutes", s.Key())
		}
		time.Sleep(time.Millisecond)
	}
}

func measureKeepalived(t *testing.T, l *lab, n int, bin string) {
	dir := t.TempDir()
	desired := benchTable(n, figureReals)
	conf := filepath.Join(dir, "keepalived.conf")
	first, last, changed := desired[0], desired[n-1], &desired[n/2]
	for rep := 1; rep <= *figureReps; rep++ {
		if err := os.WriteFile(conf, keepalivedConf(desired), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := l.raw.Flush(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		k := startKeepalived(t, l, bin, dir)
		// keepalived adds the services in the order of its configuration,
		// each with its reals.
		firstAt := waitReals(t, l, k, first, func(ds []*ipvs.Destination) bool { return len(ds) > 0 })
		doneAt := waitReals(t, l, k, last, func(ds []*ipvs.Destination) bool { return len(ds) == figureReals })
		if got := l.services(t); len(got) != n || !tableIs(got, desired) {
			t.Fatalf("keepalived's table differs from the desired one (%d services)", len(got))
		}
		figure("keepalived", n, "start", rep, doneAt.Sub(start), 0)
		figure("keepalived", n, "first-to-complete", rep, doneAt.Sub(firstAt), 0)

		toggle(desired)
		want := changed.Reals[figureReals/2].Weight
		if err := os.WriteFile(conf, keepalivedConf(desired), 0o644); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if err := syscall.Kill(k.cmd.Process.Pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		realAddr := changed.Reals[figureReals/2].Addr
		doneAt = waitReals(t, l, k, *changed, func(ds []*ipvs.Destination) bool {
			for _, d := range ds {
				if a, _ := addrFromIP(d.Address); a == realAddr {
					return d.Weight == want
				}
			}
			return false
		})
		figure("keepalived", n, "one-change", rep, doneAt.Sub(start), 0)
		k.stop(t)
	}
	if err := l.raw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// tableIs reports whether the kernel's services are the desired ones.
func tableIs(got, desired []Service) bool {
	want := normalAll(desired)
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if !equalServices(want[i], got[i]) {
			return false
		}
	}
	return true
}

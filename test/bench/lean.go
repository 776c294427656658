package main

// The lean agent's figures (issue #12): idle CPU and RSS at 10 ms and 1 s
// adverts, and one agent carrying 255 virtual routers at 1 s, each beside
// keepalived in the same run. CPU here is read from the scheduler's
// per-thread run time (/proc/PID/task/TID/schedstat, nanoseconds) rather
// than from utime+stime in clock ticks, whose 10 ms resolution reads 0 for
// a process that wakes once a second.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// manyRouters is the number of virtual routers of the "255 routers"
// scenario: every VRID.
const manyRouters = 255

func init() {
	scenarios = append(scenarios,
		scenario{name: "idle 10ms, run time", interval: 10 * time.Millisecond, run: (*bench).idlePrecise, metrics: idleMetrics},
		scenario{name: "idle 1s", interval: time.Second, run: (*bench).idlePrecise, metrics: idleMetrics},
		scenario{name: "255 routers 1s", interval: time.Second, own: (*bench).manyRun, metrics: idleMetrics},
	)
}

var idleMetrics = []metricInfo{
	{"master CPU", "%", "CPU of the master's process(es) over the window, % of one core (scheduler run time of every thread)"},
	{"backup CPU", "%", "CPU of a backup's process(es)"},
	{"master RSS", "MiB", "resident memory of the master's process(es)"},
	{"backup RSS", "MiB", "resident memory of a backup's process(es)"},
	{"master switches", "/s", "context switches (voluntary and not) of every thread of the master's process(es), per second"},
	{"backup switches", "/s", "context switches of every thread of a backup's process(es), per second"},
}

// idlePrecise is idleRun with CPU from the scheduler's run time.
func (b *bench) idlePrecise(e *env) (map[string]float64, error) {
	e.prober.Stop()
	pids := func(i int) []int {
		if e.impl == "vipvs" {
			return []int{e.cluster.Agents[i].Proc.Pid()}
		}
		return processTree(e.kas[i].Proc.Pid())
	}
	return b.measureIdle(pids(0), pids(1))
}

// measureIdle measures the CPU of master and backup over the idle window,
// then their RSS.
func (b *bench) measureIdle(master, backup []int) (map[string]float64, error) {
	m0, b0 := cpuNanos(master), cpuNanos(backup)
	ms0, bs0 := ctxSwitches(master), ctxSwitches(backup)
	t0 := time.Now()
	time.Sleep(b.idle)
	m1, b1 := cpuNanos(master), cpuNanos(backup)
	ms1, bs1 := ctxSwitches(master), ctxSwitches(backup)
	wall := float64(time.Since(t0))
	return map[string]float64{
		"master switches": float64(ms1-ms0) / (wall / float64(time.Second)),
		"backup switches": float64(bs1-bs0) / (wall / float64(time.Second)),
		"master CPU":      100 * float64(m1-m0) / wall,
		"backup CPU":      100 * float64(b1-b0) / wall,
		"master RSS":      rssMiB(master),
		"backup RSS":      rssMiB(backup),
	}, nil
}

// manyRun is the "255 routers" scenario: two nodes, each with one agent
// (or one keepalived) carrying manyRouters virtual routers at 1 s adverts,
// VRRPv3 multicast, one VIP each; node 1 is the master of all of them.
func (b *bench) manyRun(impl string, sc scenario) (map[string]float64, error) {
	dir, err := os.MkdirTemp("", "vipvs-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	l, err := lab.New(lab.Options{Nodes: 2, LogDir: dir})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	routers := make([]agentlab.Router, manyRouters)
	vips := make([]netip.Addr, manyRouters)
	for i := range routers {
		// 10.255.0.1 ... 10.255.0.255 on the lab's interface.
		vips[i] = netip.AddrFrom4([4]byte{10, 255, 0, byte(i + 1)})
		routers[i] = agentlab.Router{
			Name: fmt.Sprintf("r%d", i+1), VRID: i + 1, Interval: sc.interval,
			Priorities: []int{150, 100}, VIPs: []netip.Prefix{netip.PrefixFrom(vips[i], 32)},
		}
	}
	c, err := agentlab.New(l, b.bin, dir, routers...)
	if err != nil {
		return nil, err
	}
	var kas []*agentlab.Keepalived
	switch impl {
	case "vipvs":
		if err := c.Start(); err != nil {
			return nil, err
		}
	case "keepalived":
		for i, n := range l.Nodes() {
			kdir := filepath.Join(dir, "ka-"+n.Name)
			if err := os.MkdirAll(kdir, 0o755); err != nil {
				return nil, err
			}
			cfg := agentlab.KeepalivedConfig{RouterID: n.Name}
			for _, r := range routers {
				cfg.Instances = append(cfg.Instances, c.KeepalivedInstanceFor(i+1, r))
			}
			k, err := agentlab.NewKeepalived(n, kdir, cfg)
			if err != nil {
				return nil, err
			}
			if err := k.Start(); err != nil {
				return nil, err
			}
			kas = append(kas, k)
		}
	default:
		return nil, fmt.Errorf("unknown implementation %q", impl)
	}
	if err := waitAllHeld(l, vips); err != nil {
		return nil, err
	}
	// keepalived's VRRP child exists once the VIPs are in place.
	var master, backup []int
	if impl == "vipvs" {
		master, backup = []int{c.Agents[0].Proc.Pid()}, []int{c.Agents[1].Proc.Pid()}
	} else {
		master, backup = processTree(kas[0].Proc.Pid()), processTree(kas[1].Proc.Pid())
	}
	// Let the backups settle past Master_Down_Interval.
	time.Sleep(2 * (3*sc.interval + sc.interval))
	return b.measureIdle(master, backup)
}

// waitAllHeld waits until node 1 holds every VIP and node 2 none.
func waitAllHeld(l *lab.Lab, vips []netip.Addr) error {
	return lab.WaitFor(60*time.Second, fmt.Sprintf("n1 to hold all %d VIPs and n2 none", len(vips)), func() (bool, error) {
		on1, err := addrSet(l.Node(1))
		if err != nil {
			return false, err
		}
		on2, err := addrSet(l.Node(2))
		if err != nil {
			return false, err
		}
		for _, v := range vips {
			if !on1[v] || on2[v] {
				return false, nil
			}
		}
		return true, nil
	})
}

func addrSet(h *lab.Host) (map[netip.Addr]bool, error) {
	ps, err := h.Addrs()
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Addr]bool, len(ps))
	for _, p := range ps {
		m[p.Addr()] = true
	}
	return m, nil
}

// cpuNanos sums the scheduler's run time (the first field of
// /proc/PID/task/TID/schedstat, in nanoseconds) of every thread of the
// processes. A thread that exited during the window is not counted; the
// agents' and keepalived's threads live as long as the process.
func cpuNanos(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			v, _ := strconv.ParseInt(f[0], 10, 64)
			total += v
		}
	}
	return total
}

// ctxSwitches sums the voluntary and involuntary context switches
// (/proc/PID/task/TID/status) of every thread of the processes.
func ctxSwitches(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					total += n
				} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					total += n
				}
			}
		}
	}
	return total
}

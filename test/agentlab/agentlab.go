// Package agentlab runs real vipvs agents in a test/lab topology: it builds
// the binary, renders one agent config per node from a small spec, starts and
// signals the agents by PID, and reads their status over their unix sockets.
// The end-to-end tests, the benchmarks and `make demo` use it.
package agentlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/lab"
)

// Build compiles the vipvs binary into dir, and beside it vipvs-agent (the
// lean agent the static pods run) and vipvs-bgp-speaker (the embedded BGP
// speaker, which the agent starts from beside its binary), and returns the
// path of vipvs. It finds
// the module root from this source file.
func Build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	for _, b := range []struct{ name, pkg string }{{"vipvs", "."}, {"vipvs-agent", "./agentd"}, {"vipvs-bgp-speaker", "./agentd/bgpspeaker"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %w\n%s", b.name, err, out)
		}
	}
	return filepath.Join(dir, "vipvs"), nil
}

// BinaryForTests returns the vipvs binary for a test package's TestMain: the
// one named by VIPVS_BIN, or, as root, one built into a temporary directory
// (cleanup removes it). Without root it returns "" (the tests skip).
func BinaryForTests(prefix string) (bin string, cleanup func(), err error) {
	cleanup = func() {}
	if b := os.Getenv("VIPVS_BIN"); b != "" {
		return b, cleanup, nil
	}
	if os.Geteuid() != 0 {
		return "", cleanup, nil
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin, err = Build(dir)
	if err != nil {
		cleanup()
		return "", func() {}, err
	}
	return bin, cleanup, nil
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("agentlab: cannot find the module root")
	}
	return filepath.Join(filepath.Dir(file), "..", ".."), nil
}

// Router describes one virtual router over all nodes of the lab.
type Router struct {
	Name    string
	VRID    int
	Version int  // 0 means the default (3)
	IPv6    bool // VIPs and peers of the IPv6 family
	// Priorities per node, index 0 for node 1. A missing entry means 100.
	Priorities []int
	Interval   time.Duration // 0 means the default (1s)
	Unicast    bool          // unicast to the other nodes instead of multicast
	// MulticastPeers lists the other nodes as multicast mode's peer
	// allowlist (multicastPeers).
	MulticastPeers bool
	NoPreempt      bool
	Password       string // v2 authentication
	VIPs           []netip.Prefix
	// PreemptDelay, if set, is the preempt delay of every node.
	PreemptDelay time.Duration
	// Services are the router's IPVS virtual services, the same on every
	// node.
	Services []v1alpha1.VirtualService
	// PickInterface leaves the interface out of the config: the agent
	// takes the one whose subnet holds the first VIP.
	PickInterface bool
}

// Agent is one node's agent.
type Agent struct {
	Node       *lab.Host
	Index      int // 1-based node number
	ConfigPath string
	Socket     string
	Proc       *lab.Proc
	cluster    *Cluster
}

// Cluster is a set of agents, one per lab node.
type Cluster struct {
	Lab     *lab.Lab
	Bin     string
	Dir     string
	Agents  []*Agent
	Routers []Router
	// Verbosity is the agents' -v.
	Verbosity int
}

// New prepares a cluster of agents on every node of l, with configs in dir.
// It starts nothing.
func New(l *lab.Lab, bin, dir string, routers ...Router) (*Cluster, error) {
	c := &Cluster{Lab: l, Bin: bin, Dir: dir, Routers: routers}
	for i, n := range l.Nodes() {
		a := &Agent{
			Node:       n,
			Index:      i + 1,
			ConfigPath: filepath.Join(dir, n.Name+".yaml"),
			Socket:     filepath.Join(dir, n.Name+".sock"),
			cluster:    c,
		}
		c.Agents = append(c.Agents, a)
		if err := a.WriteConfig(c.Config(i+1, routers...)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Config renders the agent config of node i (1-based) for routers.
func (c *Cluster) Config(i int, routers ...Router) *v1alpha1.AgentConfig {
	nodes := c.Lab.Nodes()
	n := nodes[i-1]
	socket := filepath.Join(c.Dir, n.Name+".sock")
	listen := "127.0.0.1:9444"
	cfg := &v1alpha1.AgentConfig{
		APIVersion: v1alpha1.GroupVersion,
		Kind:       v1alpha1.Kind,
		NodeName:   n.Name,
		Status:     &v1alpha1.Status{ListenAddress: &listen, SocketPath: &socket},
	}
	for _, r := range routers {
		prio := int32(100)
		if i-1 < len(r.Priorities) {
			prio = int32(r.Priorities[i-1])
		}
		vr := v1alpha1.VirtualRouter{
			Name:     r.Name,
			VRID:     int32(r.VRID),
			Priority: &prio,
		}
		if r.Version != 0 {
			v := int32(r.Version)
			vr.Version = &v
		}
		if r.Interval != 0 {
			vr.AdvertInterval = &v1alpha1.Duration{Duration: r.Interval}
		}
		if r.NoPreempt {
			f := false
			vr.Preempt = &f
		}
		if r.PreemptDelay != 0 {
			vr.PreemptDelay = &v1alpha1.Duration{Duration: r.PreemptDelay}
		}
		vr.AuthPassword = r.Password
		if r.Unicast {
			for j, peer := range nodes {
				if j == i-1 {
					continue
				}
				vr.UnicastPeers = append(vr.UnicastPeers, addrOf(peer, r.IPv6).String())
			}
			vr.SourceAddress = addrOf(n, r.IPv6).String()
		}
		if r.MulticastPeers && !r.Unicast {
			for j, peer := range nodes {
				if j != i-1 {
					vr.MulticastPeers = append(vr.MulticastPeers, addrOf(peer, r.IPv6).String())
				}
			}
		}
		for _, v := range r.VIPs {
			vr.VIPs = append(vr.VIPs, v.String())
		}
		vr.VirtualServices = r.Services
		if !r.PickInterface {
			vr.Interface = n.IfName
		}
		cfg.VirtualRouters = append(cfg.VirtualRouters, vr)
	}
	return cfg
}

// addrOf is the address a node advertises from: its IPv4 address, or its
// IPv6 link-local address (RFC 9568 requires a link-local source).
func addrOf(h *lab.Host, ipv6 bool) netip.Addr {
	if ipv6 {
		return h.LinkLocal
	}
	return h.IPv4
}

// WriteConfig writes the agent's config file atomically.
func (a *Agent) WriteConfig(cfg *v1alpha1.AgentConfig) error {
	b, err := v1alpha1.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("rendering the config of %s: %w", a.Node.Name, err)
	}
	return a.WriteRaw(b)
}

// WriteRaw writes bytes as the agent's config file atomically (a temporary
// file and a rename, as the node companion does).
func (a *Agent) WriteRaw(b []byte) error {
	tmp := a.ConfigPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing the config of %s: %w", a.Node.Name, err)
	}
	if err := os.Rename(tmp, a.ConfigPath); err != nil {
		return fmt.Errorf("writing the config of %s: %w", a.Node.Name, err)
	}
	return nil
}

// Start starts the agent in its node's namespace.
func (a *Agent) Start() error {
	argv := []string{a.cluster.Bin, "agent", "--config", a.ConfigPath, "-v", fmt.Sprint(a.cluster.Verbosity)}
	p, err := a.Node.Start("vipvs", argv, nil, "")
	if err != nil {
		return err
	}
	a.Proc = p
	return nil
}

// Start starts every agent.
func (c *Cluster) Start() error {
	for _, a := range c.Agents {
		if err := a.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Signal sends sig to the agent.
func (a *Agent) Signal(sig syscall.Signal) error {
	if a.Proc == nil {
		return fmt.Errorf("agent on %s is not running", a.Node.Name)
	}
	return a.Proc.Signal(sig)
}

// Status reads the agent's status over its socket.
func (a *Agent) Status() (status.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return status.Fetch(ctx, a.Socket)
}

// RouterStatus returns the status of one router of the agent.
func (a *Agent) RouterStatus(name string) (status.Router, error) {
	rep, err := a.Status()
	if err != nil {
		return status.Router{}, err
	}
	for _, r := range rep.Routers {
		if r.Name == name {
			return r, nil
		}
	}
	return status.Router{}, fmt.Errorf("agent on %s has no router %q", a.Node.Name, name)
}

// Masters returns the agents (among the running ones) whose router name is
// MASTER.
func (c *Cluster) Masters(name string) ([]*Agent, error) {
	var out []*Agent
	for _, a := range c.Agents {
		if a.Proc == nil || a.Proc.Exited() {
			continue
		}
		r, err := a.RouterStatus(name)
		if err != nil {
			return nil, err
		}
		if r.IsMaster() {
			out = append(out, a)
		}
	}
	return out, nil
}

// WaitMaster waits until want is the only master of router name, and the
// only node holding vip.
func (c *Cluster) WaitMaster(name string, want *Agent, vip netip.Addr, timeout time.Duration) error {
	return lab.WaitFor(timeout, fmt.Sprintf("%s to be the only master of %s and holder of %s", want.Node.Name, name, vip), func() (bool, error) {
		ms, err := c.Masters(name)
		if err != nil {
			return false, nil // an agent may still be starting
		}
		if len(ms) != 1 || ms[0] != want {
			return false, nil
		}
		hs, err := c.Lab.Holders(vip)
		if err != nil {
			return false, err
		}
		return len(hs) == 1 && hs[0] == want.Node, nil
	})
}

// Dump writes every agent's status and log tail, for a failed test.
func (c *Cluster) Dump(w io.Writer) {
	for _, a := range c.Agents {
		fmt.Fprintf(w, "=== agent %s\n", a.Node.Name)
		if a.Proc == nil {
			fmt.Fprintln(w, "not started")
			continue
		}
		if rep, err := a.Status(); err == nil {
			var b strings.Builder
			_ = status.WriteTable(&b, rep)
			fmt.Fprint(w, b.String())
		} else {
			fmt.Fprintf(w, "status: %v\n", err)
		}
		fmt.Fprintf(w, "process %s (its log is in the lab dump)\n", a.Proc)
	}
}

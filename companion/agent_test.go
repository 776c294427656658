package companion

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestCompanionReadsRealAgent runs the companion against a real agent: the
// companion writes the agent's config below a temporary host root, the
// agent (the vipvs binary, in a network namespace of its own) runs it, and
// the companion reads the agent's status over its unix socket and reports
// the hash of the file it wrote and the router's state, and re-exports the
// agent's metrics. Needs root.
func TestCompanionReadsRealAgent(t *testing.T) {
	lab.RequireRoot(t)
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-node-test")
	if err != nil {
		t.Fatalf("building vipvs: %v", err)
	}
	t.Cleanup(cleanup)
	if bin == "" {
		t.Skip("no vipvs binary (set VIPVS_BIN, or run as root to build one)")
	}
	l := lab.NewT(t, lab.Options{Nodes: 1})
	n := l.Node(1)

	const lbc = "api"
	root := t.TempDir()
	socket := filepath.Join(root, render.SocketPath(lbc))
	listen := "127.0.0.1:9444"
	prio := int32(100)
	interval := agentv1alpha1.Duration{Duration: 100 * time.Millisecond}
	cfg := &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion,
		Kind:       agentv1alpha1.Kind,
		NodeName:   n.Name,
		Interface:  n.IfName,
		// The agent runs outside a container here: its socket's path on the
		// host is below the test's host root.
		Status: &agentv1alpha1.Status{ListenAddress: &listen, SocketPath: &socket},
		VirtualRouters: []agentv1alpha1.VirtualRouter{{
			Name: lbc, VRID: 51, Priority: &prio, AdvertInterval: &interval,
			VIPs: []string{l.VIPv4(1).String() + "/32"},
		}},
	}
	data, err := agentv1alpha1.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	configPath := render.AgentConfigPath(lbc, n.Name)
	sec := testSecret(t, "vipvs-api-"+n.Name, lbc, n.Name, []File{
		{Path: render.StaticPodPath(lbc), Data: []byte("kind: Pod\n"), Mode: 0o644},
		{Path: configPath, Data: data, Mode: 0o644},
	})
	c, cl, w := newTestCompanion(t, nil, sec)
	w.Root = root
	c.opts.NodeName, c.opts.HostRoot, c.opts.Status = n.Name, root, AgentSocket{}
	ctx := logr.NewContext(context.Background(), testr.New(t))
	sync := func() map[string]string {
		t.Helper()
		if _, err := c.Reconcile(ctx, reconcile.Request{}); err != nil {
			t.Fatal(err)
		}
		return annotations(t, cl, sec.Name)
	}

	// The files are written before the agent runs; the companion says the
	// agent does not answer.
	if got := sync(); !strings.Contains(got[AnnotationAgentError], "the agent does not run: there is no socket /run/vipvs/api.sock") ||
		got[AnnotationRunningConfigHash] != "" || got[AnnotationAgentStatus] != "" {
		t.Errorf("before the agent runs: annotations %v, want only an agent error naming the socket", got)
	}
	p, err := n.Start("vipvs", []string{bin, "agent", "--config", filepath.Join(root, configPath)}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })

	want := statusv1.NodeReport{APIVersion: statusv1.APIVersion, Kind: statusv1.KindNodeReport,
		Routers: []statusv1.RouterSummary{{Name: lbc, State: statusv1.StateMaster, Master: n.IPv4.String(), Interface: n.IfName}}}.Encode()
	var got map[string]string
	err = lab.WaitFor(15*time.Second, "the companion to report the agent as master of the config it wrote", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("the agent exited:\n%s", p.LogTail(20))
		}
		got = sync()
		return got[AnnotationRunningConfigHash] == hash && got[AnnotationAgentStatus] == want && got[AnnotationAgentError] == "", nil
	})
	if err != nil {
		t.Fatalf("%v; last annotations %v, want running hash %s and status %s\nagent log:\n%s", err, got, hash, want, p.LogTail(20))
	}

	// The companion re-exports the agent's metrics, read over the same
	// socket, with the label load_balancer_config.
	checkRealAgentMetrics(t, c.AgentMetrics(testr.New(t)), lbc)
}

// TestAgentRemovesSocketOnQuickExit starts the real agent and stops it
// (SIGTERM) as soon as its status socket exists: the socket file must be
// gone when the process has exited, or `vipvs status` and the companion
// find a dead socket. Needs root.
func TestAgentRemovesSocketOnQuickExit(t *testing.T) {
	lab.RequireRoot(t)
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-node-test")
	if err != nil {
		t.Fatalf("building vipvs: %v", err)
	}
	t.Cleanup(cleanup)
	if bin == "" {
		t.Skip("no vipvs binary (set VIPVS_BIN, or run as root to build one)")
	}
	l := lab.NewT(t, lab.Options{Nodes: 1})
	n := l.Node(1)
	dir := t.TempDir()
	socket := filepath.Join(dir, "api.sock")
	listen := "127.0.0.1:9445"
	prio := int32(100)
	interval := agentv1alpha1.Duration{Duration: 100 * time.Millisecond}
	cfg := &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion, Kind: agentv1alpha1.Kind, NodeName: n.Name, Interface: n.IfName,
		Status: &agentv1alpha1.Status{ListenAddress: &listen, SocketPath: &socket},
		VirtualRouters: []agentv1alpha1.VirtualRouter{{Name: "api", VRID: 51, Priority: &prio, AdvertInterval: &interval,
			VIPs: []string{l.VIPv4(1).String() + "/32"}}},
	}
	data, err := agentv1alpha1.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(configPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		p, err := n.Start("vipvs", []string{bin, "agent", "--config", configPath}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		err = lab.WaitFor(10*time.Second, "the agent's socket", func() (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("the agent exited:\n%s", p.LogTail(20))
			}
			_, err := os.Lstat(socket)
			return err == nil, nil
		})
		if err != nil {
			_ = p.Kill()
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(15 * time.Second); err != nil {
			_ = p.Kill()
			t.Fatalf("round %d: the agent did not exit after SIGTERM: %v", round, err)
		}
		if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("round %d: after the agent exited, its socket %s: %v; want it removed\nagent log:\n%s", round, socket, err, p.LogTail(20))
		}
	}
}

// TestRealAgentReportsTypedProblems runs the real agent with a router whose
// VIP is in no subnet of the node and no interface named: its report
// carries the problem as a code with the router and VIP (the status
// contract), which the companion passes on in the node report. Needs root.
func TestRealAgentReportsTypedProblems(t *testing.T) {
	lab.RequireRoot(t)
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-node-test")
	if err != nil {
		t.Fatalf("building vipvs: %v", err)
	}
	t.Cleanup(cleanup)
	if bin == "" {
		t.Skip("no vipvs binary (set VIPVS_BIN, or run as root to build one)")
	}
	l := lab.NewT(t, lab.Options{Nodes: 1})
	n := l.Node(1)
	dir := t.TempDir()
	socket := filepath.Join(dir, "api.sock")
	listen := "127.0.0.1:9446"
	prio := int32(100)
	cfg := &agentv1alpha1.AgentConfig{
		APIVersion: agentv1alpha1.GroupVersion, Kind: agentv1alpha1.Kind, NodeName: n.Name,
		Status: &agentv1alpha1.Status{ListenAddress: &listen, SocketPath: &socket},
		VirtualRouters: []agentv1alpha1.VirtualRouter{
			{Name: "near", VRID: 51, Priority: &prio, Interface: n.IfName, VIPs: []string{l.VIPv4(1).String() + "/32"}},
			{Name: "far", VRID: 52, Priority: &prio, VIPs: []string{"203.0.113.10/32"}},
		},
	}
	data, err := agentv1alpha1.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(configPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := n.Start("vipvs", []string{bin, "agent", "--config", configPath}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	var rep statusv1.Report
	err = lab.WaitFor(10*time.Second, "the agent's report", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("the agent exited:\n%s", p.LogTail(20))
		}
		rep, err = AgentSocket{}.Fetch(context.Background(), "api", socket)
		return err == nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []statusv1.Problem{{Code: statusv1.CodeVIPNotInSubnet, Router: "far", VIP: "203.0.113.10"}}
	got := make([]statusv1.Problem, 0, len(rep.ConfigProblems))
	for _, pr := range rep.ConfigProblems {
		if !strings.Contains(pr.Message, "router far") {
			t.Errorf("problem %+v: the message does not name the router", pr)
		}
		pr.Message = ""
		got = append(got, pr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config problems (-want +got):\n%s\nreport: %+v", diff, rep)
	}
	if n := statusv1.Summarize(rep); len(n.ConfigProblems) != 1 || n.ConfigProblems[0].Code != statusv1.CodeVIPNotInSubnet {
		t.Errorf("node report %s, want the problem passed on", n.Encode())
	}
}

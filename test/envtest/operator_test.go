package envtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/agent/status"
	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/operator"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/envtest"
)

const (
	opNamespace = "vipvs-system"
	testImage   = "quay.io/vipvs/vipvs:test"
	// waitTimeout bounds every wait for the operator or a companion.
	waitTimeout = 30 * time.Second
	// agentStopDelay is how long a fake agent runs on after its static pod
	// was removed (kubelet noticing, the agent handing its VIPs over).
	agentStopDelay = 300 * time.Millisecond
)

// TestOperator runs the operator's reconciler and node companions (one per
// node, each with a temporary host root and a fake agent that reads the
// config the companion wrote) in this process against a real API server.
// One environment serves every subtest.
func TestOperator(t *testing.T) {
	start := time.Now()
	cfg, _ := envtest.Start(t, crdDir)
	t.Logf("envtest started in %v", time.Since(start).Round(time.Millisecond))
	h := newHarness(t, cfg)
	h.startOperator()

	t.Run("lifecycle", h.testLifecycle)
	t.Run("conflictingVRID", h.testConflictingVRID)
	t.Run("conflictingStatusPort", h.testConflictingStatusPort)
	t.Run("familyMismatch", h.testFamilyMismatch)
	t.Run("noNodeSelected", h.testNoNodeSelected)
	t.Run("emptyNodeSelector", h.testEmptyNodeSelector)
	t.Run("bgp", h.testBGP)
}

// harness holds the API server's client, the operator, and the companions.
type harness struct {
	t      *testing.T
	cfg    *rest.Config
	scheme *runtime.Scheme
	c      client.Client // direct, not cached: what the API server holds
	ctx    context.Context

	// opCache is the operator's cache.
	opCache cache.Cache

	mu         sync.Mutex
	companions map[string]*nodeCompanion
	// addrs are the InternalIP addresses the test gave each Node.
	addrs map[string][]string
}

func newHarness(t *testing.T, cfg *rest.Config) *harness {
	s, err := operator.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, cfg: cfg, scheme: s, c: c, ctx: ctx, companions: map[string]*nodeCompanion{}, addrs: map[string][]string{}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNamespace}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return h
}

// run starts a manager and stops it at the test's cleanup.
func (h *harness) run(name string, mgr ctrl.Manager) func() {
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("%s: %v", name, err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) managerOptions(cache ctrl.Options) ctrl.Options {
	cache.Scheme = h.scheme
	cache.Metrics = metricsserver.Options{BindAddress: "0"}
	cache.HealthProbeBindAddress = "0"
	// Every companion registers a controller of the same name.
	skip := true
	cache.Controller = config.Controller{SkipNameValidation: &skip}
	return cache
}

func (h *harness) startOperator() {
	mgr, err := ctrl.NewManager(h.cfg, h.managerOptions(ctrl.Options{
		Cache:  operator.CacheOptions(opNamespace),
		Logger: testr.New(h.t).WithName("operator"),
	}))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := operator.Setup(mgr, operator.Options{Namespace: opNamespace, Image: testImage}); err != nil {
		h.t.Fatal(err)
	}
	h.opCache = mgr.GetCache()
	h.run("operator", mgr)
}

// nodeCompanion is a node companion with its host root and fake agent.
type nodeCompanion struct {
	root  string
	agent *fakeAgent
	cache cache.Cache
	stop  func()
}

// companion starts the companion of a node, once, with its default status
// interval: what it reports in between comes from its watch of the agents.
func (h *harness) companion(t *testing.T, name string) *nodeCompanion {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.companions[name]; ok {
		return c
	}
	root := h.t.TempDir()
	c := &nodeCompanion{root: root, agent: newFakeAgent(h.t, root, name, "m0")}
	mgr, err := ctrl.NewManager(h.cfg, h.managerOptions(ctrl.Options{
		Cache:  companion.CacheOptions(opNamespace, name),
		Logger: testr.New(h.t).WithName("node-" + name),
	}))
	if err != nil {
		t.Fatal(err)
	}
	err = companion.Setup(mgr, companion.Options{NodeName: name, Namespace: opNamespace, Writer: &companion.Writer{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	c.cache = mgr.GetCache()
	c.stop = h.run("companion "+name, mgr)
	h.companions[name] = c
	return c
}

// setMaster makes node the master of every router of every fake agent
// ("" for none).
func (h *harness) setMaster(node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.companions {
		c.agent.mu.Lock()
		c.agent.master = node
		c.agent.mu.Unlock()
	}
}

// fakeAgent stands for the agents of a node, with a kubelet stand-in: for
// each static pod the companion writes below the host root it starts an
// agent, a real status server (agent/status) on the agent's socket there,
// and it stops that agent agentStopDelay after the static pod is removed,
// as kubelet stops a static pod whose file is gone. An agent "runs" the
// config file the companion wrote (its hash is what it reports), unless
// frozen (an agent that has not reloaded yet keeps reporting the config it
// ran before). The node named master is MASTER of every router, the others
// BACKUP; with fault set, every router is FAULT on that interface. An agent
// whose config file is gone while it runs records it, as the real agent
// logs "config rejected".
type fakeAgent struct {
	root, node string
	t          *testing.T

	mu       sync.Mutex
	master   string
	frozen   bool
	fault    string
	withdraw bool              // every router in mode bgp is WITHDRAWN
	running  map[string]string // by LoadBalancerConfig: the hash it runs
	rejected []string          // configs gone under a running agent

	// servers are the running agents by LoadBalancerConfig, the kubelet
	// goroutine's alone.
	servers map[string]*fakeServer
}

// fakeServer is one running fake agent.
type fakeServer struct {
	stop      func()
	podGoneAt time.Time // zero while the static pod is there
	rejected  bool      // its config vanished under it
}

func newFakeAgent(t *testing.T, root, node, master string) *fakeAgent {
	a := &fakeAgent{t: t, root: root, node: node, master: master, running: map[string]string{}, servers: map[string]*fakeServer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.kubelet(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return a
}

func (a *fakeAgent) freeze(frozen bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.frozen = frozen
}

func (a *fakeAgent) setFault(iface string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault = iface
}

// rejections returns what the node's agents rejected.
func (a *fakeAgent) rejections() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.rejected)
}

// kubelet starts and stops the agents of the static pods, every 20 ms,
// until ctx is done; then it stops them all.
func (a *fakeAgent) kubelet(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	defer func() {
		for _, s := range a.servers {
			s.stop()
		}
	}()
	for {
		pods, _ := filepath.Glob(filepath.Join(a.root, render.ManifestsDir, "vipvs-*.yaml"))
		present := map[string]bool{}
		for _, p := range pods {
			present[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "vipvs-"), ".yaml")] = true
		}
		for lbc := range present {
			if s, ok := a.servers[lbc]; ok {
				s.podGoneAt = time.Time{}
				continue
			}
			a.servers[lbc] = a.start(lbc)
		}
		for lbc, s := range a.servers {
			// The agent watches its config file, as the real one does.
			if _, err := os.Stat(filepath.Join(a.root, render.AgentConfigPath(lbc, a.node))); err != nil && !s.rejected {
				s.rejected = true
				a.mu.Lock()
				a.rejected = append(a.rejected, fmt.Sprintf("%s on %s: config rejected: %v", lbc, a.node, err))
				a.mu.Unlock()
			}
			if present[lbc] {
				continue
			}
			if s.podGoneAt.IsZero() {
				s.podGoneAt = time.Now()
			}
			if time.Since(s.podGoneAt) >= agentStopDelay {
				s.stop()
				delete(a.servers, lbc)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// start runs the agent of lbc: a status server on its socket.
func (a *fakeAgent) start(lbc string) *fakeServer {
	srv := status.NewServer(func() status.Report { return a.report(lbc) }, func() error { return nil }, nil, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeSocket(ctx, filepath.Join(a.root, render.SocketPath(lbc))); err != nil {
			a.t.Errorf("fake agent %s on %s: %v", lbc, a.node, err)
		}
	}()
	return &fakeServer{stop: func() { cancel(); <-done }}
}

// report is the status of the agent of lbc.
func (a *fakeAgent) report(lbc string) status.Report {
	b, err := os.ReadFile(filepath.Join(a.root, render.AgentConfigPath(lbc, a.node)))
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.rejected = append(a.rejected, fmt.Sprintf("%s on %s: config rejected: %v", lbc, a.node, err))
		return status.Report{Node: a.node, ConfigHash: a.running[lbc], ConfigError: err.Error(),
			ConfigProblems: []statusv1.Problem{{Code: statusv1.CodeConfigInvalid, Message: err.Error()}}}
	}
	if _, ok := a.running[lbc]; !ok || !a.frozen {
		sum := sha256.Sum256(b)
		a.running[lbc] = hex.EncodeToString(sum[:])
	}
	cfg, err := agentv1alpha1.Decode(b)
	if err != nil {
		return status.Report{Node: a.node, ConfigHash: a.running[lbc], ConfigError: "the companion wrote a config the agent rejects: " + err.Error()}
	}
	rep := status.Report{Node: a.node, ConfigHash: a.running[lbc]}
	var advertised []string
	for _, r := range cfg.VirtualRouters {
		if r.Mode == agentv1alpha1.ModeBGP {
			rt := status.Router{Name: r.Name, Mode: statusv1.ModeBGP, State: statusv1.StateAdvertised, Interface: "lo"}
			if a.withdraw {
				rt.State, rt.LastReason = statusv1.StateWithdrawn, "track check router is failing"
			} else {
				advertised = append(advertised, r.VIPs...)
			}
			rep.Routers = append(rep.Routers, rt)
			continue
		}
		rt := status.Router{Name: r.Name, State: statusv1.StateBackup, Interface: "eth0"}
		switch {
		case a.fault != "":
			rt.State, rt.Interface, rt.LastReason = statusv1.StateFault, a.fault, "interface "+a.fault+" is down"
		case a.node == a.master:
			rt.State = statusv1.StateMaster
		}
		rep.Routers = append(rep.Routers, rt)
	}
	if b := cfg.BGP; b != nil {
		// A session is established when its key file, if any, is there
		// (written by the companion below the host root) and private.
		rep.BGP = &statusv1.BGP{Speaker: statusv1.SpeakerEmbedded, Advertised: advertised}
		for _, p := range b.Peers {
			peer := statusv1.BGPPeer{Address: p.Address, ASN: uint32(p.ASN), State: statusv1.BGPStateEstablished}
			if p.PasswordFile != "" {
				if fi, err := os.Stat(filepath.Join(a.root, p.PasswordFile)); err != nil || fi.Mode().Perm() != 0o600 {
					peer.State = statusv1.BGPStateIdle
				}
			}
			if p.BFD {
				peer.BFD = statusv1.BFDStateUp
			}
			pa := netip.MustParseAddr(p.Address)
			for _, v := range advertised {
				if netip.MustParseAddr(v).Is4() == pa.Is4() {
					peer.Advertised = append(peer.Advertised, v)
				}
			}
			rep.BGP.Peers = append(rep.BGP.Peers, peer)
		}
	}
	return rep
}

// createNode creates a Node with labels, InternalIP addresses and a Ready
// condition, as a kubelet would register it.
func (h *harness) createNode(t *testing.T, name string, labels map[string]string, addrs ...string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := h.c.Create(h.ctx, n); err != nil {
		t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = h.c.Delete(context.Background(), n) })
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if err := h.c.Status().Update(h.ctx, n); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.addrs[name] = addrs
	h.mu.Unlock()
}

func (h *harness) relabel(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	var n corev1.Node
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	orig := n.DeepCopy()
	n.Labels = labels
	if err := h.c.Patch(h.ctx, &n, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, and fails the test with what it
// waited for and cond's last word otherwise.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", waitTimeout, what, detail)
		}
		<-tick.C
	}
}

func (h *harness) get(t *testing.T, name string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	var lbc v1alpha1.LoadBalancerConfig
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: name}, &lbc); err != nil {
		t.Fatal(err)
	}
	return &lbc
}

func cond(lbc *v1alpha1.LoadBalancerConfig, typ string) metav1.Condition {
	for _, c := range lbc.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// conditions summarises the conditions: "Ready=True/AsExpected ...".
func conditions(lbc *v1alpha1.LoadBalancerConfig) string {
	var b strings.Builder
	for _, c := range lbc.Status.Conditions {
		fmt.Fprintf(&b, "%s=%s/%s (gen %d): %s\n", c.Type, c.Status, c.Reason, c.ObservedGeneration, c.Message)
	}
	return b.String()
}

// waitCondition waits until the condition typ of the current generation
// has status and reason, and returns the object.
func (h *harness) waitCondition(t *testing.T, name, typ string, st metav1.ConditionStatus, reason string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	var lbc *v1alpha1.LoadBalancerConfig
	waitFor(t, fmt.Sprintf("%s of %s to be %s/%s", typ, name, st, reason), func() (bool, string) {
		lbc = h.get(t, name)
		c := cond(lbc, typ)
		ok := c.Status == st && c.Reason == reason && c.ObservedGeneration == lbc.Generation && lbc.Status.ObservedGeneration == lbc.Generation
		return ok, conditions(lbc)
	})
	return lbc
}

// secrets returns the published Secrets of a LoadBalancerConfig by node.
func (h *harness) secrets(t *testing.T, lbc string) map[string]*corev1.Secret {
	t.Helper()
	var list corev1.SecretList
	if err := h.c.List(h.ctx, &list, client.InNamespace(opNamespace), client.MatchingLabels{companion.LabelLoadBalancerConfig: lbc}); err != nil {
		t.Fatal(err)
	}
	out := map[string]*corev1.Secret{}
	for i := range list.Items {
		out[list.Items[i].Labels[companion.LabelNode]] = &list.Items[i]
	}
	return out
}

// render renders lbc, as the API server holds it, for nodes, with the
// addresses the test gave them.
func (h *harness) render(t *testing.T, lbc *v1alpha1.LoadBalancerConfig, nodes ...string) render.Output {
	t.Helper()
	in := render.Input{Config: lbc, Image: testImage}
	h.mu.Lock()
	for _, n := range nodes {
		in.Nodes = append(in.Nodes, render.Node{Name: n, Addresses: addrs(h.addrs[n]...)})
	}
	h.mu.Unlock()
	out, err := render.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publishedDiff compares the Secrets of lbc with what render.Render gives
// for nodes: one Secret per node, of type Opaque, holding exactly its
// files.
func (h *harness) publishedDiff(t *testing.T, lbc *v1alpha1.LoadBalancerConfig, nodes ...string) string {
	t.Helper()
	want := h.render(t, lbc, nodes...)
	published := h.secrets(t, lbc.Name)
	var diffs []string
	var got []string
	for n := range published {
		got = append(got, n)
	}
	slices.Sort(got)
	if d := cmp.Diff(nodes, got); d != "" {
		return "nodes with a Secret (-want +got):\n" + d
	}
	for _, nf := range want.Nodes {
		sec := published[nf.NodeName]
		if sec.Name != operator.NodeFilesName(lbc.Name, nf.NodeName) {
			diffs = append(diffs, fmt.Sprintf("Secret of %s is named %s", nf.NodeName, sec.Name))
		}
		if sec.Type != corev1.SecretTypeOpaque {
			diffs = append(diffs, fmt.Sprintf("Secret of %s has type %q, want Opaque", nf.NodeName, sec.Type))
		}
		if h := sec.Annotations[companion.AnnotationConfigHash]; h != nf.Hash {
			diffs = append(diffs, fmt.Sprintf("%s: config hash %s, rendered %s", nf.NodeName, h, nf.Hash))
		}
		files, err := companion.DecodeFiles(sec)
		if err != nil {
			diffs = append(diffs, err.Error())
			continue
		}
		var wantFiles []companion.File
		for _, f := range nf.Files {
			wantFiles = append(wantFiles, companion.File{Path: f.Path, Data: f.Data, Mode: f.Mode})
		}
		if d := cmp.Diff(wantFiles, files); d != "" {
			diffs = append(diffs, fmt.Sprintf("files of %s (-render.Render +Secret):\n%s", nf.NodeName, d))
		}
		if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != lbc.UID {
			diffs = append(diffs, fmt.Sprintf("Secret of %s: owner references %v", nf.NodeName, sec.OwnerReferences))
		}
	}
	return strings.Join(diffs, "\n")
}

// waitPublished waits until the Secrets of name are what render.Render
// gives for nodes, and returns the object they were rendered from.
func (h *harness) waitPublished(t *testing.T, name string, nodes ...string) *v1alpha1.LoadBalancerConfig {
	t.Helper()
	var lbc *v1alpha1.LoadBalancerConfig
	waitFor(t, fmt.Sprintf("the Secrets of %s for %v", name, nodes), func() (bool, string) {
		lbc = h.get(t, name)
		d := h.publishedDiff(t, lbc, nodes...)
		return d == "", d
	})
	return lbc
}

// peers returns the unicast peers of the first router in a node's
// published agent config.
func (h *harness) peers(t *testing.T, lbc, nodeName string) []string {
	t.Helper()
	sec := h.secrets(t, lbc)[nodeName]
	if sec == nil {
		t.Fatalf("no Secret for %s", nodeName)
	}
	files, err := companion.DecodeFiles(sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == render.AgentConfigPath(lbc, nodeName) {
			c, err := agentv1alpha1.Decode(f.Data)
			if err != nil {
				t.Fatal(err)
			}
			return c.VirtualRouters[0].UnicastPeers
		}
	}
	t.Fatalf("no agent config in the Secret of %s", nodeName)
	return nil
}

// waitEvent waits for an event about a LoadBalancerConfig with reason
// whose note contains substr.
func (h *harness) waitEvent(t *testing.T, lbc, reason, substr string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("an event %s about %s", reason, lbc), func() (bool, string) {
		var list eventsv1.EventList
		if err := h.c.List(h.ctx, &list); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind != "LoadBalancerConfig" || e.Regarding.Name != lbc {
				continue
			}
			if e.Reason == reason && strings.Contains(e.Note, substr) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, "\n")
	})
}

// operatorMetrics gathers the operator's series of LoadBalancerConfig lbc
// from controller-runtime's registry (where operator.Setup registers them,
// and which the manager serves on /metrics), as sorted lines
// `node_config_current{node=m0} 1` (the vipvs_operator_ prefix and the
// load_balancer_config label left out): those named, by default
// node_config_current and vip_master.
func operatorMetrics(t *testing.T, lbc string, names ...string) []string {
	t.Helper()
	if len(names) == 0 {
		names = []string{operator.MetricNodeConfigCurrent, operator.MetricVIPMaster}
	}
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			mine := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "load_balancer_config" {
					mine = l.GetValue() == lbc
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if mine {
				out = append(out, fmt.Sprintf("%s{%s} %g", strings.TrimPrefix(mf.GetName(), "vipvs_operator_"), strings.Join(labels, ","), m.GetGauge().GetValue()))
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitMetrics waits until the operator's series of lbc are want (in the
// form of operatorMetrics, any order).
func waitMetrics(t *testing.T, lbc string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	waitFor(t, fmt.Sprintf("the operator's metrics of %s", lbc), func() (bool, string) {
		d := cmp.Diff(want, operatorMetrics(t, lbc))
		return d == "", "(-want +got):\n" + d
	})
}

// hostFile reads a file a companion wrote below its host root.
func hostFile(c *nodeCompanion, p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(c.root, p))
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// testLifecycle follows one LoadBalancerConfig from creation to deletion
// through node changes and a spec change.
func (h *harness) testLifecycle(t *testing.T) {
	role := map[string]string{"vipvs.test/role": "lifecycle"}
	for i, n := range []string{"m0", "m1", "m2"} {
		h.createNode(t, n, role, fmt.Sprintf("192.0.2.%d", 11+i), fmt.Sprintf("2001:db8::%d", 11+i))
		h.companion(t, n)
	}
	lbc := &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "lifecycle"},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector: metav1.LabelSelector{MatchLabels: role},
			VirtualIPs: []v1alpha1.VirtualIP{
				{Name: "api", Address: "192.0.2.10", VRID: 51},
				{Name: "api-v6", Address: "2001:db8::10", VRID: 51},
			},
			Services: []v1alpha1.VirtualService{{
				Name: "kube-apiserver", Port: 6443,
				Backends:    v1alpha1.Backends{SelectedNodes: &v1alpha1.SelectedNodesBackends{}},
				HealthCheck: &v1alpha1.ServiceHealthCheck{TCP: &v1alpha1.ServiceTCPCheck{}},
			}},
		},
	}
	if err := h.c.Create(h.ctx, lbc); err != nil {
		t.Fatal(err)
	}

	t.Run("created", func(t *testing.T) {
		got := h.waitPublished(t, lbc.Name, "m0", "m1", "m2")
		if !slices.Contains(got.Finalizers, operator.Finalizer) {
			t.Errorf("finalizers = %v, want %s", got.Finalizers, operator.Finalizer)
		}
		got = h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
		if c := cond(got, v1alpha1.ConditionProgressing); c.Status != metav1.ConditionFalse {
			t.Errorf("Progressing = %s/%s, want False", c.Status, c.Reason)
		}
		if c := cond(got, v1alpha1.ConditionDegraded); c.Status != metav1.ConditionFalse {
			t.Errorf("Degraded = %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		want := h.render(t, got, "m0", "m1", "m2")
		for i, ns := range got.Status.Nodes {
			nf := want.Nodes[i]
			if ns.Name != nf.NodeName || ns.RenderedConfigHash != nf.Hash || ns.RunningConfigHash != nf.Hash || !ns.Running || ns.Message != "" {
				t.Errorf("status.nodes[%d] = %+v, want %s running %s", i, ns, nf.NodeName, nf.Hash)
			}
			if d := cmp.Diff(h.addrs[ns.Name], ns.Addresses); d != "" {
				t.Errorf("status.nodes[%d].addresses (-want +got):\n%s", i, d)
			}
			// The companion wrote the rendered files on its host.
			for _, f := range nf.Files {
				b, err := hostFile(h.companion(t, nf.NodeName), f.Path)
				if err != nil || string(b) != string(f.Data) {
					t.Errorf("%s on %s differs from the rendered file: %v", f.Path, nf.NodeName, err)
				}
			}
		}
		wantVIPs := []v1alpha1.VIPStatus{{Name: "api", Address: "192.0.2.10", MasterNode: "m0"}, {Name: "api-v6", Address: "2001:db8::10", MasterNode: "m0"}}
		if d := cmp.Diff(wantVIPs, got.Status.VIPs); d != "" {
			t.Errorf("status.vips (-want +got):\n%s", d)
		}
		if got.Status.Masters != "192.0.2.10=m0,2001:db8::10=m0" {
			t.Errorf("status.masters = %q", got.Status.Masters)
		}
		h.waitEvent(t, lbc.Name, operator.EventPublished, "3 Secrets created")
		h.waitEvent(t, lbc.Name, operator.EventReady, "")
		// One event per node (the events library folds the events of one
		// object, reason and action into one series unless they are
		// related to different objects).
		for _, n := range []string{"m0", "m1", "m2"} {
			h.waitEvent(t, lbc.Name, operator.EventNodeJoined, "node "+n+" joined")
		}
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1", "node_config_current{node=m2} 1",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
		// Nothing of it is in a ConfigMap.
		var cms corev1.ConfigMapList
		if err := h.c.List(h.ctx, &cms, client.InNamespace(opNamespace), client.HasLabels{companion.LabelLoadBalancerConfig}); err != nil || len(cms.Items) != 0 {
			t.Errorf("ConfigMaps published: %d, %v", len(cms.Items), err)
		}
	})

	t.Run("routerFault", func(t *testing.T) {
		h.companion(t, "m1").agent.setFault("eth1")
		got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonRouterFault)
		c := cond(got, v1alpha1.ConditionDegraded)
		for _, want := range []string{"node m1", "router api (spec.virtualIPs[0], 192.0.2.10) is FAULT on interface eth1", "interface eth1 is down"} {
			if !strings.Contains(c.Message, want) {
				t.Errorf("Degraded message %q does not say %q", c.Message, want)
			}
		}
		if r := cond(got, v1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != v1alpha1.ReasonRouterFault {
			t.Errorf("Ready with a FAULT router = %s/%s, want False/RouterFault", r.Status, r.Reason)
		}
		h.companion(t, "m1").agent.setFault("")
		h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
	})

	t.Run("statusLatency", func(t *testing.T) { h.testStatusLatency(t, lbc.Name) })

	t.Run("cachedSecrets", func(t *testing.T) {
		// Secrets the caches must not hold: one without the labels in the
		// operator's namespace, one with them in another namespace.
		for _, s := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Namespace: opNamespace, Name: "unrelated"}, StringData: map[string]string{"k": "v"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "vipvs-lifecycle-m0", Labels: map[string]string{
				companion.LabelLoadBalancerConfig: lbc.Name, companion.LabelNode: "m0"}}, StringData: map[string]string{"k": "v"}},
		} {
			if err := h.c.Create(h.ctx, s); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = h.c.Delete(context.Background(), s) })
		}
		cached := func(c cache.Cache) (names []string, err error) {
			var list corev1.SecretList
			if err := c.List(h.ctx, &list); err != nil {
				return nil, err
			}
			for _, s := range list.Items {
				names = append(names, s.Namespace+"/"+s.Name)
			}
			slices.Sort(names)
			return names, nil
		}
		// A change of m0's Secret after them: a cache that holds it would
		// have seen them (one watch delivers the events of a kind in order).
		barrier := h.secrets(t, lbc.Name)["m0"]
		setBarrier := func(v any) {
			t.Helper()
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.vipvs.io/barrier":%s}}}`, v)
			if err := h.c.Patch(h.ctx, barrier, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				t.Fatal(err)
			}
		}
		setBarrier(`"1"`)
		defer setBarrier("null")
		for _, c := range []cache.Cache{h.opCache, h.companion(t, "m0").cache} {
			waitFor(t, "the caches to see the change of "+barrier.Name, func() (bool, string) {
				var s corev1.Secret
				err := c.Get(h.ctx, client.ObjectKeyFromObject(barrier), &s)
				return err == nil && s.Annotations["test.vipvs.io/barrier"] == "1", fmt.Sprint(err, s.Annotations)
			})
		}
		for _, tt := range []struct {
			name  string
			cache cache.Cache
			want  []string
		}{
			{"operator", h.opCache, []string{opNamespace + "/vipvs-lifecycle-m0", opNamespace + "/vipvs-lifecycle-m1", opNamespace + "/vipvs-lifecycle-m2"}},
			{"companion of m0", h.companion(t, "m0").cache, []string{opNamespace + "/vipvs-lifecycle-m0"}},
		} {
			got, err := cached(tt.cache)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Secrets in the cache of the %s (-want +got):\n%s", tt.name, d)
			}
		}
	})

	t.Run("staticPodsPassDryRun", func(t *testing.T) {
		for n, sec := range h.secrets(t, lbc.Name) {
			files, err := companion.DecodeFiles(sec)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if f.Path != render.StaticPodPath(lbc.Name) {
					continue
				}
				var pod corev1.Pod
				if err := yaml.UnmarshalStrict(f.Data, &pod); err != nil {
					t.Fatalf("static pod of %s: %v", n, err)
				}
				if pod.Namespace != "kube-system" {
					t.Errorf("static pod namespace = %q, want kube-system", pod.Namespace)
				}
				if err := h.c.Create(h.ctx, &pod, client.DryRunAll); err != nil {
					t.Errorf("the API server refuses the static pod of %s: %v", n, err)
				}
			}
		}
	})

	t.Run("nodeAdded", func(t *testing.T) {
		h.createNode(t, "m3", role, "192.0.2.14", "2001:db8::14")
		h.companion(t, "m3")
		h.waitPublished(t, lbc.Name, "m0", "m1", "m2", "m3")
		if d := cmp.Diff([]string{"192.0.2.12", "192.0.2.13", "192.0.2.14"}, h.peers(t, lbc.Name, "m0")); d != "" {
			t.Errorf("peers of m0 (-want +got):\n%s", d)
		}
		h.waitEvent(t, lbc.Name, operator.EventNodeJoined, "m3")
		h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1", "node_config_current{node=m2} 1", "node_config_current{node=m3} 1",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
	})

	t.Run("nodeRelabelledOut", func(t *testing.T) {
		h.relabel(t, "m3", map[string]string{"vipvs.test/role": "other"})
		h.waitPublished(t, lbc.Name, "m0", "m1", "m2")
		if d := cmp.Diff([]string{"192.0.2.12", "192.0.2.13"}, h.peers(t, lbc.Name, "m0")); d != "" {
			t.Errorf("peers of m0 (-want +got):\n%s", d)
		}
		h.waitEvent(t, lbc.Name, operator.EventNodeLeft, "m3")
		// The companion of m3 removed the agent.
		waitFor(t, "the companion of m3 to remove the static pod", func() (bool, string) {
			_, err := hostFile(h.companion(t, "m3"), render.StaticPodPath(lbc.Name))
			return errors.Is(err, os.ErrNotExist), fmt.Sprint(err)
		})
		got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
		if len(got.Status.Nodes) != 3 {
			t.Errorf("status.nodes = %+v, want m0, m1, m2", got.Status.Nodes)
		}
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1", "node_config_current{node=m2} 1",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
	})

	t.Run("nodeDeletedFromAPI", func(t *testing.T) {
		before := h.secrets(t, lbc.Name)
		if err := h.c.Delete(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m2"}}); err != nil {
			t.Fatal(err)
		}
		got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonNodeMissing)
		if c := cond(got, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, v1alpha1.AnnotationForgetNodes) {
			t.Errorf("Degraded message %q does not say how to forget the node", c.Message)
		}
		var m2 *v1alpha1.NodeStatus
		for i := range got.Status.Nodes {
			if got.Status.Nodes[i].Name == "m2" {
				m2 = &got.Status.Nodes[i]
			}
		}
		if m2 == nil || !strings.Contains(m2.Message, "gone from the API") || m2.Running || len(m2.Addresses) != 2 {
			t.Errorf("status of the deleted node m2 = %+v, want it kept with its addresses and a message", m2)
		}
		// Nothing was re-rendered: m2 stays a peer.
		if d := h.publishedDiff(t, got, "m0", "m1", "m2"); d != "" {
			t.Error(d)
		}
		for n, sec := range h.secrets(t, lbc.Name) {
			if sec.Annotations[companion.AnnotationConfigHash] != before[n].Annotations[companion.AnnotationConfigHash] {
				t.Errorf("the Secret of %s was re-rendered after a Node vanished", n)
			}
		}
		if d := cmp.Diff([]string{"192.0.2.12", "192.0.2.13"}, h.peers(t, lbc.Name, "m0")); d != "" {
			t.Errorf("peers of m0 (-want +got):\n%s", d)
		}
		h.waitEvent(t, lbc.Name, operator.EventNodeMissing, "m2")
		// m2 is still expected to run its configuration, and does not.
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1", "node_config_current{node=m2} 0",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
	})

	t.Run("nodeForgotten", func(t *testing.T) {
		cur := h.get(t, lbc.Name)
		orig := cur.DeepCopy()
		cur.Annotations = map[string]string{v1alpha1.AnnotationForgetNodes: "m2"}
		if err := h.c.Patch(h.ctx, cur, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		h.waitPublished(t, lbc.Name, "m0", "m1")
		if d := cmp.Diff([]string{"192.0.2.12"}, h.peers(t, lbc.Name, "m0")); d != "" {
			t.Errorf("peers of m0 (-want +got):\n%s", d)
		}
		h.waitEvent(t, lbc.Name, operator.EventNodeForgotten, "m2")
		got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
		if c := cond(got, v1alpha1.ConditionDegraded); c.Status != metav1.ConditionFalse {
			t.Errorf("Degraded = %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
	})

	t.Run("specChanged", func(t *testing.T) {
		// The agents do not reload until told: the new configuration is
		// published but not running yet.
		for _, n := range []string{"m0", "m1"} {
			h.companion(t, n).agent.freeze(true)
		}
		cur := h.get(t, lbc.Name)
		orig := cur.DeepCopy()
		// A change the agents apply live, so it is published to every node
		// at once (a change that restarts routers, such as the advert
		// interval, is rolled out node by node: operator/rollout.go).
		cur.Spec.Priorities = &v1alpha1.Priorities{ByNode: []v1alpha1.NodePriority{{NodeName: "m0", Priority: 200}, {NodeName: "m1", Priority: 150}}}
		if err := h.c.Patch(h.ctx, cur, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		got := h.waitPublished(t, lbc.Name, "m0", "m1")
		if got.Generation == orig.Generation {
			t.Fatal("the spec change did not make a new generation")
		}
		got = h.waitCondition(t, lbc.Name, v1alpha1.ConditionProgressing, metav1.ConditionTrue, v1alpha1.ReasonRollingOut)
		if c := cond(got, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRollingOut {
			t.Errorf("Ready while rolling out = %s/%s", c.Status, c.Reason)
		}
		// The companions wrote the new files; the agents run the old ones.
		want := h.render(t, got, "m0", "m1")
		for i, ns := range got.Status.Nodes {
			if ns.RenderedConfigHash != want.Nodes[i].Hash || ns.RunningConfigHash == ns.RenderedConfigHash {
				t.Errorf("status.nodes[%d] while rolling out = %+v", i, ns)
			}
		}
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 0", "node_config_current{node=m1} 0",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
		for _, n := range []string{"m0", "m1"} {
			h.companion(t, n).agent.freeze(false)
		}
		got = h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
		if c := cond(got, v1alpha1.ConditionProgressing); c.Status != metav1.ConditionFalse {
			t.Errorf("Progressing after the rollout = %s/%s", c.Status, c.Reason)
		}
		for i, ns := range got.Status.Nodes {
			if ns.RunningConfigHash != want.Nodes[i].Hash {
				t.Errorf("status.nodes[%d] after the rollout = %+v, want running %s", i, ns, want.Nodes[i].Hash)
			}
		}
		waitMetrics(t, lbc.Name,
			"node_config_current{node=m0} 1", "node_config_current{node=m1} 1",
			"vip_master{node=m0,vip=192.0.2.10} 1", "vip_master{node=m0,vip=2001:db8::10} 1")
	})

	t.Run("deleted", func(t *testing.T) {
		if err := h.c.Delete(h.ctx, lbc); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the LoadBalancerConfig to be gone (finalizer released)", func() (bool, string) {
			err := h.c.Get(h.ctx, client.ObjectKey{Name: lbc.Name}, &v1alpha1.LoadBalancerConfig{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
		if left := h.secrets(t, lbc.Name); len(left) != 0 {
			t.Errorf("Secrets left after deletion: %v", left)
		}
		waitMetrics(t, lbc.Name)
		for _, n := range []string{"m0", "m1"} {
			c := h.companion(t, n)
			waitFor(t, "the companion of "+n+" to remove the agent's files", func() (bool, string) {
				_, err1 := hostFile(c, render.StaticPodPath(lbc.Name))
				_, err2 := hostFile(c, render.AgentConfigPath(lbc.Name, n))
				_, err3 := os.Lstat(filepath.Join(c.root, render.SocketPath(lbc.Name)))
				return errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist) && errors.Is(err3, os.ErrNotExist), fmt.Sprint(err1, err2, err3)
			})
		}
		// The static pod went first, the config once the agent had
		// stopped: no agent saw its config vanish ("config rejected").
		for _, n := range []string{"m0", "m1", "m2", "m3"} {
			if r := h.companion(t, n).agent.rejections(); len(r) > 0 {
				t.Errorf("agents of %s rejected their config while running: %v", n, r)
			}
		}
	})
}

// testStatusLatency moves the VIPs of LoadBalancerConfig name from m0 to
// m1 as VRRP does (the old master steps down, the new one takes over a
// moment later) and measures how long the companions take to report it
// (the Secrets' annotations) and the operator to write it (status.masters),
// with the companions' fixed cycle at its default of 10 s: only their
// watch of the agents is fast. The transient state in between (no master)
// must not reach status.masters; a state that lasts (no master for 2 s)
// must, after the settle time.
func (h *harness) testStatusLatency(t *testing.T, name string) {
	const (
		m0 = "192.0.2.10=m0,2001:db8::10=m0"
		m1 = "192.0.2.10=m1,2001:db8::10=m1"
		no = "192.0.2.10=-,2001:db8::10=-"
	)
	if got := h.get(t, name).Status.Masters; got != m0 {
		t.Fatalf("status.masters = %q, want %q", got, m0)
	}
	// follow samples status.masters and m1's agent-status annotation every
	// 10 ms until status.masters is want, and returns when each first
	// changed after start, and every value status.masters took.
	follow := func(start time.Time, want string, within time.Duration) (reported, written time.Duration, seen []string) {
		t.Helper()
		deadline := start.Add(within)
		var firstAnn string
		for time.Now().Before(deadline) {
			now := time.Now()
			var sec corev1.Secret
			if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: opNamespace, Name: operator.NodeFilesName(name, "m1")}, &sec); err == nil {
				ann := sec.Annotations[companion.AnnotationAgentStatus]
				if firstAnn == "" {
					firstAnn = ann
				} else if ann != firstAnn && reported == 0 {
					reported = now.Sub(start)
				}
			}
			got := h.get(t, name).Status.Masters
			if len(seen) == 0 || seen[len(seen)-1] != got {
				seen = append(seen, got)
			}
			if got == want {
				return reported, now.Sub(start), seen
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("status.masters not %q within %v; seen %q", want, within, seen)
		return 0, 0, nil
	}

	// m0 steps down; 300 ms later m1 takes over.
	h.setMaster("")
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	h.setMaster("m1")
	reported, written, seen := follow(start, m1, 10*time.Second)
	t.Logf("VIP moved m0 -> m1 (300 ms without master): the companion of m1 reported after %v, status.masters written after %v; status.masters took %q",
		reported.Round(time.Millisecond), written.Round(time.Millisecond), seen)
	if reported == 0 || reported > time.Second {
		t.Errorf("the companion reported the new master after %v, want within 1 s", reported)
	}
	if written > 2*time.Second {
		t.Errorf("status.masters showed the new master after %v, want within 2 s", written)
	}
	for _, v := range seen {
		if v != m0 && v != m1 {
			t.Errorf("status.masters showed the transient %q while the VIP moved", v)
		}
	}

	// No master for good: shown once it has lasted the settle time.
	start = time.Now()
	h.setMaster("")
	_, written, _ = follow(start, no, 10*time.Second)
	t.Logf("no master for good: status.masters said so after %v", written.Round(time.Millisecond))
	if written < 900*time.Millisecond {
		t.Errorf("no master shown after %v, before the settle time", written)
	}
	if written > 3*time.Second {
		t.Errorf("no master shown after %v, want within about 2 s", written)
	}

	h.setMaster("m0")
	follow(time.Now(), m0, 10*time.Second)
	h.waitCondition(t, name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
}

// simpleLBC is a LoadBalancerConfig of one IPv4 VIP on the nodes with
// label vipvs.test/role=role.
func simpleLBC(name, role, vip string, vrid int32) *v1alpha1.LoadBalancerConfig {
	return &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"vipvs.test/role": role}},
			VirtualIPs:   []v1alpha1.VirtualIP{{Name: "vip", Address: vip, VRID: vrid, Interface: "eth0"}},
		},
	}
}

func (h *harness) create(t *testing.T, lbc *v1alpha1.LoadBalancerConfig) {
	t.Helper()
	if err := h.c.Create(h.ctx, lbc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.deleteAndWait(t, lbc.Name) })
}

func (h *harness) deleteAndWait(t *testing.T, name string) {
	t.Helper()
	err := h.c.Delete(h.ctx, &v1alpha1.LoadBalancerConfig{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, name+" to be deleted", func() (bool, string) {
		err := h.c.Get(h.ctx, client.ObjectKey{Name: name}, &v1alpha1.LoadBalancerConfig{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// testConflictingVRID creates two LoadBalancerConfigs with one VRID on one
// interface: the later one is refused (the first one runs), and accepted
// once the first one is gone.
func (h *harness) testConflictingVRID(t *testing.T) {
	h.createNode(t, "a0", map[string]string{"vipvs.test/role": "vrid-a"}, "192.0.2.31")
	h.createNode(t, "b0", map[string]string{"vipvs.test/role": "vrid-b"}, "192.0.2.32")
	first := simpleLBC("vrid-a", "vrid-a", "192.0.2.30", 70)
	h.create(t, first)
	h.waitPublished(t, first.Name, "a0")
	h.waitCondition(t, first.Name, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	second := simpleLBC("vrid-b", "vrid-b", "192.0.2.33", 70)
	h.create(t, second)
	got := h.waitCondition(t, second.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConflict)
	msg := cond(got, v1alpha1.ConditionDegraded).Message
	for _, want := range []string{"spec.virtualIPs[0].vrid", `LoadBalancerConfig "vrid-a"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("Degraded message %q does not contain %q", msg, want)
		}
	}
	if c := cond(got, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonConflict {
		t.Errorf("Ready = %s/%s, want False/Conflict", c.Status, c.Reason)
	}
	if published := h.secrets(t, second.Name); len(published) != 0 {
		t.Errorf("the refused LoadBalancerConfig was published: %v", published)
	}
	if c := cond(h.get(t, first.Name), v1alpha1.ConditionDegraded); c.Reason == v1alpha1.ReasonConflict {
		t.Errorf("the earlier LoadBalancerConfig is Degraded too: %s", c.Message)
	}
	h.waitEvent(t, second.Name, v1alpha1.ReasonConflict, "spec.virtualIPs[0].vrid")

	h.deleteAndWait(t, first.Name)
	h.waitPublished(t, second.Name, "b0")
	got = h.get(t, second.Name)
	if c := cond(got, v1alpha1.ConditionDegraded); c.Reason == v1alpha1.ReasonConflict {
		t.Errorf("still Conflict after the earlier LoadBalancerConfig was deleted: %s", c.Message)
	}
}

// testConflictingStatusPort creates two LoadBalancerConfigs that select a
// common node with the same agentStatusPort: the later one is refused.
func (h *harness) testConflictingStatusPort(t *testing.T) {
	h.createNode(t, "p0", map[string]string{"vipvs.test/role": "port"}, "192.0.2.41")
	first := simpleLBC("port-a", "port", "192.0.2.40", 80)
	h.create(t, first)
	h.waitPublished(t, first.Name, "p0")
	h.waitCondition(t, first.Name, v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonAsExpected)
	second := simpleLBC("port-b", "port", "192.0.2.42", 81)
	h.create(t, second)
	got := h.waitCondition(t, second.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonConflict)
	msg := cond(got, v1alpha1.ConditionDegraded).Message
	for _, want := range []string{"spec.agentStatusPort", "9444", `LoadBalancerConfig "port-a"`, "p0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Degraded message %q does not contain %q", msg, want)
		}
	}
	// Another port resolves it.
	orig := got.DeepCopy()
	got.Spec.AgentStatusPort = 9445
	if err := h.c.Patch(h.ctx, got, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	h.waitPublished(t, second.Name, "p0")
}

// testFamilyMismatch asks for an IPv6 VIP on IPv4-only nodes.
func (h *harness) testFamilyMismatch(t *testing.T) {
	h.createNode(t, "f0", map[string]string{"vipvs.test/role": "family"}, "192.0.2.51")
	lbc := simpleLBC("family", "family", "2001:db8::50", 90)
	h.create(t, lbc)
	got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonRenderFailed)
	msg := cond(got, v1alpha1.ConditionDegraded).Message
	for _, want := range []string{"spec.virtualIPs[0].address", "no selected node has an IPv6 address"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Degraded message %q does not contain %q", msg, want)
		}
	}
	if published := h.secrets(t, lbc.Name); len(published) != 0 {
		t.Errorf("published although rendering failed: %v", published)
	}
	h.waitEvent(t, lbc.Name, v1alpha1.ReasonRenderFailed, "spec.virtualIPs[0].address")
}

// testNoNodeSelected selects no node.
func (h *harness) testNoNodeSelected(t *testing.T) {
	lbc := simpleLBC("nobody", "nobody", "192.0.2.60", 100)
	h.create(t, lbc)
	got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonNoNodesSelected)
	if msg := cond(got, v1alpha1.ConditionDegraded).Message; !strings.Contains(msg, "spec.nodeSelector selects no node") {
		t.Errorf("Degraded message = %q", msg)
	}
	if c := cond(got, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonNoNodesSelected {
		t.Errorf("Ready = %s/%s", c.Status, c.Reason)
	}
	// A node that comes later is taken.
	h.createNode(t, "late0", map[string]string{"vipvs.test/role": "nobody"}, "192.0.2.61")
	h.waitPublished(t, lbc.Name, "late0")
}

// testEmptyNodeSelector: the API server's CEL rule refuses an empty
// selector before the operator sees it.
func (h *harness) testEmptyNodeSelector(t *testing.T) {
	lbc := simpleLBC("everyone", "x", "192.0.2.70", 110)
	lbc.Spec.NodeSelector = metav1.LabelSelector{}
	err := h.c.Create(h.ctx, lbc)
	if err == nil {
		h.deleteAndWait(t, lbc.Name)
		t.Fatal("the API server accepted an empty nodeSelector")
	}
	for _, want := range []string{"spec.nodeSelector", "must not be empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// testBGP runs a LoadBalancerConfig whose virtual IPs are in mode bgp, with
// a peer's TCP MD5 key in a Secret: the companions write the key as a file
// of mode 0600 that the agent config names (the key is nowhere else on the
// node), and the status shows each node's sessions and, per virtual IP, the
// nodes that advertise it; when every node withdraws, Ready is False with
// reason NotAdvertised.
func (h *harness) testBGP(t *testing.T) {
	role := map[string]string{"vipvs.test/role": "bgp"}
	nodes := []string{"bgp0", "bgp1"}
	for i, n := range nodes {
		h.createNode(t, n, role, fmt.Sprintf("192.0.2.%d", 81+i), fmt.Sprintf("2001:db8::%d", 81+i))
		h.companion(t, n)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp-md5", Namespace: opNamespace}, Data: map[string][]byte{"password": []byte("s3cret-md5\n")}}
	if err := h.c.Create(h.ctx, sec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.c.Delete(context.Background(), sec) })
	lbc := &v1alpha1.LoadBalancerConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "bgp"},
		Spec: v1alpha1.LoadBalancerConfigSpec{
			NodeSelector:    metav1.LabelSelector{MatchLabels: role},
			AgentStatusPort: 9450,
			VirtualIPs: []v1alpha1.VirtualIP{
				{Name: "web", Address: "192.0.2.80", Mode: v1alpha1.AnnouncementBGP},
				{Name: "web-v6", Address: "2001:db8::80", Mode: v1alpha1.AnnouncementBGP},
			},
			BGP: &v1alpha1.BGP{
				LocalASN: ptr(int64(64513)),
				Peers: []v1alpha1.BGPPeer{
					{Address: "192.0.2.1", ASN: 64512, BFD: true, PasswordSecretRef: &v1alpha1.SecretKeyReference{Namespace: opNamespace, Name: "bgp-md5", Key: "password"}},
					{Address: "2001:db8::1", ASN: 64512},
				},
			},
		},
	}
	h.create(t, lbc)

	got := h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)
	for _, n := range nodes {
		c := h.companion(t, n)
		keyFile := render.BGPPasswordFilePath(lbc.Name, 0, []byte("s3cret-md5\n"))
		keyPath := filepath.Join(c.root, keyFile)
		fi, err := os.Stat(keyPath)
		if err != nil {
			t.Fatalf("node %s: the key file: %v", n, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("node %s: key file mode %04o, want 0600", n, fi.Mode().Perm())
		}
		if b, _ := os.ReadFile(keyPath); string(b) != "s3cret-md5\n" {
			t.Errorf("node %s: key file holds %q", n, b)
		}
		cfg, err := os.ReadFile(filepath.Join(c.root, render.AgentConfigPath(lbc.Name, n)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(cfg), "s3cret") || !strings.Contains(string(cfg), "passwordFile: "+keyFile) {
			t.Errorf("node %s: agent config:\n%s", n, cfg)
		}
	}
	wantPeers := []v1alpha1.BGPPeerStatus{
		{Address: "192.0.2.1", State: statusv1.BGPStateEstablished, BFD: statusv1.BFDStateUp, Advertised: 1},
		{Address: "2001:db8::1", State: statusv1.BGPStateEstablished, Advertised: 1},
	}
	for _, ns := range got.Status.Nodes {
		if d := cmp.Diff(wantPeers, ns.BGPPeers); d != "" {
			t.Errorf("node %s: bgpPeers (-want +got):\n%s", ns.Name, d)
		}
	}
	wantVIPs := []v1alpha1.VIPStatus{
		{Name: "web", Address: "192.0.2.80", Mode: v1alpha1.AnnouncementBGP, AdvertisedBy: nodes},
		{Name: "web-v6", Address: "2001:db8::80", Mode: v1alpha1.AnnouncementBGP, AdvertisedBy: nodes},
	}
	if d := cmp.Diff(wantVIPs, got.Status.VIPs); d != "" {
		t.Errorf("vips (-want +got):\n%s", d)
	}
	if want := "192.0.2.80=bgp:bgp0+bgp1,2001:db8::80=bgp:bgp0+bgp1"; got.Status.Masters != want {
		t.Errorf("masters = %q, want %q", got.Status.Masters, want)
	}
	waitBGPMetrics(t, lbc.Name,
		"bgp_session_up{node=bgp0,peer=192.0.2.1} 1", "bgp_session_up{node=bgp0,peer=2001:db8::1} 1",
		"bgp_session_up{node=bgp1,peer=192.0.2.1} 1", "bgp_session_up{node=bgp1,peer=2001:db8::1} 1",
		"vip_advertising_nodes{vip=192.0.2.80} 2", "vip_advertising_nodes{vip=2001:db8::80} 2")

	// Key rotation: the Secret changes, every node gets the new key under a
	// new path, its agent config names it (so the agent reloads), and the
	// old key file goes.
	orig := sec.DeepCopy()
	sec.Data["password"] = []byte("rotated-md5")
	if err := h.c.Patch(h.ctx, sec, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	oldFile := render.BGPPasswordFilePath(lbc.Name, 0, []byte("s3cret-md5\n"))
	newFile := render.BGPPasswordFilePath(lbc.Name, 0, []byte("rotated-md5"))
	for _, n := range nodes {
		c := h.companion(t, n)
		waitFor(t, "the rotated key on "+n, func() (bool, string) {
			key, err := hostFile(c, newFile)
			if err != nil {
				return false, err.Error()
			}
			cfg, _ := hostFile(c, render.AgentConfigPath(lbc.Name, n))
			if _, err := hostFile(c, oldFile); err == nil {
				return false, "the old key file is still there"
			}
			return string(key) == "rotated-md5" && strings.Contains(string(cfg), "passwordFile: "+newFile), string(cfg)
		})
	}
	h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonAsExpected)

	setWithdraw := func(w bool) {
		for _, n := range nodes {
			a := h.companion(t, n).agent
			a.mu.Lock()
			a.withdraw = w
			a.mu.Unlock()
		}
	}
	setWithdraw(true)
	t.Cleanup(func() { setWithdraw(false) })
	got = h.waitCondition(t, lbc.Name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotAdvertised)
	if c := cond(got, v1alpha1.ConditionDegraded); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonNotAdvertised ||
		!strings.Contains(c.Message, "web (192.0.2.80), web-v6 (2001:db8::80)") {
		t.Errorf("Degraded = %s/%s: %s", c.Status, c.Reason, c.Message)
	}
	for _, ns := range got.Status.Nodes {
		if !strings.Contains(ns.Message, "it withdrew web: track check router is failing") {
			t.Errorf("node %s: message %q", ns.Name, ns.Message)
		}
	}
	waitBGPMetrics(t, lbc.Name,
		"bgp_session_up{node=bgp0,peer=192.0.2.1} 1", "bgp_session_up{node=bgp0,peer=2001:db8::1} 1",
		"bgp_session_up{node=bgp1,peer=192.0.2.1} 1", "bgp_session_up{node=bgp1,peer=2001:db8::1} 1",
		"vip_advertising_nodes{vip=192.0.2.80} 0", "vip_advertising_nodes{vip=2001:db8::80} 0")
}

// waitBGPMetrics waits until the operator's BGP series of lbc are want (in
// operatorMetrics' form).
func waitBGPMetrics(t *testing.T, lbc string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	waitFor(t, fmt.Sprintf("the operator's BGP metrics of %s", lbc), func() (bool, string) {
		d := cmp.Diff(want, operatorMetrics(t, lbc, operator.MetricBGPSessionUp, operator.MetricVIPAdvertisers))
		return d == "", "(-want +got):\n" + d
	})
}

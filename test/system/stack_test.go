package system

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/manifests"
	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/envtest"
	"github.com/vipvs/vipvs/test/lab"
)

// memberLabel selects the nodes of the test's LoadBalancerConfig.
const memberLabel = "system.vipvs.io/member"

// servicePort is the port of each node's TCP server, probed on the VIPs.
const servicePort = 8080

// stack is the whole product: API server, operator, companions, kubelet
// stand-ins, agents, in a lab of three nodes and a client.
type stack struct {
	t      *testing.T
	dir    string // logs, roots, kubeconfigs
	bin    string
	lab    *lab.Lab
	env    *crenvtest.Environment
	admin  client.Client
	ctx    context.Context
	cancel context.CancelFunc

	operatorKubeconfig string
	nodeKubeconfig     string
	operator           *rootProc
	operators          int // how many were started, for the log names
	nodes              []*node
}

// node is one lab node with its companion and kubelet stand-in.
type node struct {
	name      string
	host      *lab.Host
	root      string // the node's "/"
	companion *rootProc
	kubelet   *kubelet
}

// newStack starts everything but the LoadBalancerConfig. It skips without
// root or without the envtest binaries (fails without them when $CI is set).
func newStack(t *testing.T) *stack {
	lab.RequireRoot(t)
	assets, err := envtest.AssetsDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("skipping: the kubelet stand-in needs unshare (util-linux): %v", err)
	}
	s := &stack{t: t, dir: t.TempDir()}
	crlog.SetLogger(logr.Discard()) // envtest logs nothing of use here
	s.ctx, s.cancel = context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(s.cancel)

	start := time.Now()
	if b := os.Getenv("VIPVS_BIN"); b != "" {
		s.bin = b
	} else if s.bin, err = agentlab.Build(s.dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("vipvs built in %v", time.Since(start).Round(time.Millisecond))

	s.lab = lab.NewT(t, lab.Options{Nodes: 3, Clients: 1, LogDir: s.dir})
	for _, h := range s.lab.Nodes() {
		if _, err := h.Serve(servicePort); err != nil {
			t.Fatal(err)
		}
	}

	// The API server keeps its certificates in a directory of ours, so that
	// it can be stopped and started again with the same CA: the kubeconfigs
	// of the operator and the companions stay valid.
	start = time.Now()
	certDir := filepath.Join(s.dir, "apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.env = &crenvtest.Environment{BinaryAssetsDirectory: assets, ControlPlaneStartTimeout: time.Minute}
	s.env.ControlPlane.APIServer = &crenvtest.APIServer{CertDir: certDir}
	cfg, err := s.env.Start()
	if err != nil {
		_ = s.env.Stop()
		t.Fatalf("starting etcd and kube-apiserver (%s): %v", assets, err)
	}
	t.Logf("etcd and kube-apiserver started in %v", time.Since(start).Round(time.Millisecond))

	sch, err := manifests.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	if s.admin, err = client.New(cfg, client.Options{Scheme: sch}); err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Load(manifests.Files...)
	if err != nil {
		t.Fatal(err)
	}
	if err := manifests.Apply(s.ctx, s.admin, objs, manifests.ApplyOptions{}); err != nil {
		t.Fatalf("installing manifests/: %v", err)
	}
	s.operatorKubeconfig = s.kubeconfig(t, manifests.OperatorName)
	s.nodeKubeconfig = s.kubeconfig(t, manifests.NodeName)

	// Stop the processes before the API server, whatever happens.
	t.Cleanup(s.close)

	for _, h := range s.lab.Nodes() {
		n := &node{name: h.Name, host: h, root: filepath.Join(s.dir, "root-"+h.Name)}
		if err := os.MkdirAll(n.root, 0o755); err != nil {
			t.Fatal(err)
		}
		s.createNode(t, n.name, h.IPv4, true)
		n.companion, err = startRoot(filepath.Join(s.dir, n.name+"-companion.log"), s.bin, "node",
			"--node-name="+n.name, "--kubeconfig="+s.nodeKubeconfig, "--host-root="+n.root,
			"--health-probe-bind-address=0", "--metrics-bind-address=0")
		if err != nil {
			t.Fatal(err)
		}
		n.kubelet = newKubelet(n.name, h, n.root, s.bin, s.dir)
		s.nodes = append(s.nodes, n)
	}
	s.startOperator(t)
	return s
}

// killAPIServer sends SIGKILL to the kube-apiserver that envtest started:
// the child of this process running the assets' kube-apiserver binary.
func (s *stack) killAPIServer() error {
	want, err := filepath.EvalSymlinks(s.env.ControlPlane.APIServer.Path)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == want {
			return syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return fmt.Errorf("no kube-apiserver (%s) among this process's children", want)
}

// kubeconfig writes a kubeconfig of a client certificate for service
// account sa of the install's namespace: the API server authorizes it
// exactly as that account.
func (s *stack) kubeconfig(t *testing.T, sa string) string {
	u, err := s.env.ControlPlane.AddUser(crenvtest.User{
		Name:   "system:serviceaccount:" + manifests.Namespace + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + manifests.Namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.dir, sa+".kubeconfig")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *stack) startOperator(t *testing.T) {
	s.operators++
	p, err := startRoot(filepath.Join(s.dir, fmt.Sprintf("operator-%d.log", s.operators)), s.bin, "operator",
		"--kubeconfig="+s.operatorKubeconfig, "--image=quay.io/vipvs/vipvs:system-test", "--leader-elect",
		"--health-probe-bind-address=0", "--metrics-bind-address=0")
	if err != nil {
		t.Fatal(err)
	}
	s.operator = p
}

// createNode creates a Node with InternalIP addr, selected or not.
func (s *stack) createNode(t *testing.T, name string, addr netip.Addr, member bool) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if member {
		n.Labels = map[string]string{memberLabel: "true"}
	}
	if err := s.admin.Create(s.ctx, n); err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr.String()}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
	if err := s.admin.Status().Update(s.ctx, n); err != nil {
		t.Fatal(err)
	}
}

// close stops the kubelets (and so the agents), the companions and the
// operator, then the API server; it removes the mount points it made.
func (s *stack) close() {
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.kubelet.close()
		}()
	}
	wg.Wait()
	for _, n := range s.nodes {
		n.companion.stop()
	}
	if s.operator != nil {
		s.operator.stop()
	}
	if err := s.env.Stop(); err != nil {
		s.t.Errorf("stopping the API server: %v", err)
	}
	if err := removeMountPoints(); err != nil {
		s.t.Errorf("removing mount points: %v", err)
	}
	if keep := os.Getenv("VIPVS_SYSTEM_KEEP_LOGS"); keep != "" {
		s.keepLogs(keep)
	}
	if s.t.Failed() {
		for _, f := range []string{"operator-1.log", "operator-2.log", "n1-companion.log", "n1-vipvs-system.log", "n2-vipvs-system.log", "n3-vipvs-system.log"} {
			b, err := os.ReadFile(filepath.Join(s.dir, f))
			if err == nil {
				s.t.Logf("--- %s (tail)\n%s", f, tailLines(string(b), 60))
			}
		}
	}
}

// keepLogs copies the processes' logs (operators, companions, agents) to
// directory dir, to read their timestamps when the figures are looked into:
// VIPVS_SYSTEM_KEEP_LOGS=dir keeps them even when the test passes.
func (s *stack) keepLogs(dir string) {
	logs, err := filepath.Glob(filepath.Join(s.dir, "*.log"))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	for _, f := range logs {
		if err != nil {
			break
		}
		var b []byte
		if b, err = os.ReadFile(f); err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
	}
	if err != nil {
		s.t.Errorf("keeping the logs in %s: %v", dir, err)
		return
	}
	s.t.Logf("logs kept in %s", dir)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// node returns the stack's node by name.
func (s *stack) node(name string) *node {
	for _, n := range s.nodes {
		if n.name == name {
			return n
		}
	}
	s.t.Fatalf("no node %s", name)
	return nil
}

// lbc reads the LoadBalancerConfig.
func (s *stack) lbc(name string) (*v1alpha1.LoadBalancerConfig, error) {
	var l v1alpha1.LoadBalancerConfig
	err := s.admin.Get(s.ctx, types.NamespacedName{Name: name}, &l)
	return &l, err
}

// update changes the LoadBalancerConfig with mutate, retrying on conflicts.
func (s *stack) update(name string, mutate func(*v1alpha1.LoadBalancerConfig)) error {
	for {
		l, err := s.lbc(name)
		if err != nil {
			return err
		}
		mutate(l)
		err = s.admin.Update(s.ctx, l)
		if err == nil || !strings.Contains(err.Error(), "the object has been modified") {
			return err
		}
	}
}

// agentStatus reads the status of node n's agent of LoadBalancerConfig lbc
// over its socket.
func (n *node) agentStatus(ctx context.Context, lbc string) (status.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return status.Fetch(ctx, filepath.Join(n.root, render.SocketPath(lbc)))
}

// renderedHash returns the config hash the operator published for node n.
func (s *stack) renderedHash(lbc, n string) (string, error) {
	var sec corev1.Secret
	err := s.admin.Get(s.ctx, types.NamespacedName{Namespace: manifests.Namespace, Name: "vipvs-" + lbc + "-" + n}, &sec)
	if err != nil {
		return "", err
	}
	return sec.Annotations[companion.AnnotationConfigHash], nil
}

// waitFor polls cond every 10 ms until it holds or timeout passes; it
// returns how long that took, and fails the test with what it saw last
// when the time is up.
func (s *stack) waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, seen, err := cond()
		if err != nil {
			seen = err.Error()
		}
		if ok {
			return time.Since(start)
		}
		last = seen
		if time.Since(start) > timeout {
			for _, n := range s.nodes {
				if err := n.kubelet.lastErr(); err != nil {
					t.Log(err)
				}
			}
			t.Fatalf("after %v: still waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rootProc is a process in the test's own namespaces (the operator, a
// companion).
type rootProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startRoot starts bin with args, output appended to logPath. The process
// is started from a locked OS thread that stays until it exits, so that its
// parent-death signal (SIGKILL) fires only when the test process dies.
func startRoot(logPath, bin string, args ...string) (*rootProc, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &rootProc{cmd: cmd, done: make(chan struct{})}
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(p.done)
		defer f.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", bin, args[0], err)
	}
	return p, nil
}

// stop sends SIGTERM, and SIGKILL after 15 s; it waits for the exit.
func (p *rootProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has exited.
func (p *rootProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

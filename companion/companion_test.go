package companion

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/render"
)

// fakeStatus answers for the agents of a test.
type fakeStatus struct {
	mu      sync.Mutex
	reports map[string]status.Report // by LoadBalancerConfig
	err     error
	sockets []string
}

func (f *fakeStatus) Fetch(_ context.Context, lbc, socket string) (status.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sockets = append(f.sockets, socket)
	if f.err != nil {
		return status.Report{}, f.err
	}
	r, ok := f.reports[lbc]
	if !ok {
		return status.Report{}, errors.New("dial unix " + socket + ": connect: no such file or directory")
	}
	return r, nil
}

const testNS = "vipvs-system"

// testSecret is a Secret as the operator publishes it for a node.
func testSecret(t *testing.T, name, lbc, nodeName string, files []File) *corev1.Secret {
	t.Helper()
	data, ann, err := EncodeFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: testNS,
			Labels:      map[string]string{LabelLoadBalancerConfig: lbc, LabelNode: nodeName},
			Annotations: map[string]string{AnnotationFiles: ann, AnnotationConfigHash: "rendered"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "vipvs.io/v1alpha1", Kind: "LoadBalancerConfig",
				Name: lbc, UID: "uid-" + "x", Controller: &yes}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

func newTestCompanion(t *testing.T, st StatusSource, objs ...client.Object) (*Companion, client.Client, *Writer) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cl := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	w := &Writer{Root: t.TempDir()}
	c, err := New(cl, Options{NodeName: "m0", Namespace: testNS, Writer: w, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	return c, cl, w
}

func reconcileNode(t *testing.T, c *Companion) error {
	t.Helper()
	ctx := logr.NewContext(context.Background(), testr.New(t))
	res, err := c.Reconcile(ctx, reconcile.Request{})
	if res.RequeueAfter != DefaultStatusInterval {
		t.Errorf("RequeueAfter = %v, want the status interval", res.RequeueAfter)
	}
	return err
}

func annotations(t *testing.T, cl client.Client, name string) map[string]string {
	t.Helper()
	var s corev1.Secret
	if err := cl.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range []string{AnnotationRunningConfigHash, AnnotationAgentStatus, AnnotationAgentError} {
		if v, ok := s.Annotations[k]; ok {
			out[k] = v
		}
	}
	return out
}

func TestCompanion(t *testing.T) {
	files := testFiles()
	// The operator's order does not matter: the static pod is written last
	// (and so removed first).
	files[0], files[2] = files[2], files[0]
	mine := testSecret(t, "vipvs-api-m0", "api", "m0", files)
	theirs := testSecret(t, "vipvs-api-m1", "api", "m1", []File{{Path: "/etc/vipvs/api/nodes/m1.yaml", Data: []byte("m1"), Mode: 0o644}})
	st := &fakeStatus{reports: map[string]status.Report{"api": {ConfigHash: "running", Routers: []status.Router{{Name: "api", State: "MASTER", Master: "192.0.2.11"}}}}}
	c, cl, w := newTestCompanion(t, st, mine, theirs)

	if err := reconcileNode(t, c); err != nil {
		t.Fatal(err)
	}
	for _, f := range testFiles() {
		if got := readHost(t, w, f.Path); got != string(f.Data) {
			t.Errorf("%s = %q", f.Path, got)
		}
	}
	if _, err := os.Stat(filepath.Join(w.Root, "etc/vipvs/api/nodes/m1.yaml")); err == nil {
		t.Error("the companion of m0 wrote m1's file")
	}
	want := map[string]string{
		AnnotationRunningConfigHash: "running",
		AnnotationAgentStatus:       `{"apiVersion":"status.vipvs.io/v1alpha1","kind":"NodeReport","routers":[{"name":"api","state":"MASTER","master":"192.0.2.11"}]}`,
	}
	if diff := cmp.Diff(want, annotations(t, cl, mine.Name)); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(w.Root, "/run/vipvs/api.sock")}, st.sockets); diff != "" {
		t.Errorf("sockets read (-want +got):\n%s", diff)
	}

	t.Run("agent down", func(t *testing.T) {
		st.err = errors.New("connection refused")
		defer func() { st.err = nil }()
		if err := reconcileNode(t, c); err != nil {
			t.Fatal(err)
		}
		got := annotations(t, cl, mine.Name)
		if len(got) != 1 || !strings.Contains(got[AnnotationAgentError], "the agent does not answer: connection refused") {
			t.Errorf("annotations = %v, want only the agent error", got)
		}
	})

	t.Run("recovers", func(t *testing.T) {
		if err := reconcileNode(t, c); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, annotations(t, cl, mine.Name)); diff != "" {
			t.Errorf("annotations (-want +got):\n%s", diff)
		}
	})

	t.Run("secret deleted", func(t *testing.T) {
		if err := cl.Delete(context.Background(), mine); err != nil {
			t.Fatal(err)
		}
		ctx := logr.NewContext(context.Background(), testr.New(t))
		exists := func(p string) bool {
			_, err := os.Lstat(filepath.Join(w.Root, p))
			return err == nil
		}
		// The agent still answers: the static pod goes, its config stays
		// until the agent has stopped (kubelet stops it), looked at again
		// soon.
		res, err := c.Reconcile(ctx, reconcile.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if exists(podPath) || !exists(render.AgentConfigPath("api", "m0")) || res.RequeueAfter != agentGoneRecheck {
			t.Errorf("with the agent running: static pod there %v, config there %v, requeue after %v; want the pod removed, the config kept, a requeue after %v",
				exists(podPath), exists(render.AgentConfigPath("api", "m0")), res.RequeueAfter, agentGoneRecheck)
		}
		st.mu.Lock()
		delete(st.reports, "api")
		st.mu.Unlock()
		if err := reconcileNode(t, c); err != nil {
			t.Fatal(err)
		}
		for _, f := range testFiles() {
			if exists(f.Path) {
				t.Errorf("%s still there after its secret was deleted and its agent stopped", f.Path)
			}
		}
		if sets, _ := w.Sets(); len(sets) != 0 {
			t.Errorf("sets left: %v", sets)
		}
	})
}

// TestCompanionRemovalWaitIsBounded: an agent that keeps answering after
// its static pod was removed (kubelet not running) does not keep its
// config for ever.
func TestCompanionRemovalWaitIsBounded(t *testing.T) {
	sec := testSecret(t, "vipvs-api-m0", "api", "m0", testFiles())
	st := &fakeStatus{reports: map[string]status.Report{"api": {ConfigHash: "running"}}}
	c, cl, w := newTestCompanion(t, st, sec)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	if err := reconcileNode(t, c); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	ctx := logr.NewContext(context.Background(), testr.New(t))
	for _, step := range []struct {
		after    time.Duration
		wantLeft bool
	}{{0, true}, {DefaultAgentStopTimeout - time.Second, true}, {DefaultAgentStopTimeout, false}} {
		now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(step.after)
		if _, err := c.Reconcile(ctx, reconcile.Request{}); err != nil {
			t.Fatal(err)
		}
		sets, _ := w.Sets()
		if left := len(sets) > 0; left != step.wantLeft {
			t.Errorf("%v after the static pod was removed, with the agent answering: files left %v, want %v", step.after, left, step.wantLeft)
		}
	}
}

// TestCompanionRemovesStaticPodFirst checks the order of the files: the
// static pod is written last and removed first.
func TestCompanionRemovesStaticPodFirst(t *testing.T) {
	files := testFiles()
	files[0], files[2] = files[2], files[0]
	c, _, w := newTestCompanion(t, &fakeStatus{})
	got, err := c.files(testSecret(t, "vipvs-api-m0", "api", "m0", files), "api")
	if err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1].Path != podPath {
		t.Errorf("files in the order %v, want the static pod written last", got)
	}
	if _, err := w.Apply("vipvs-api-m0", got); err != nil {
		t.Fatal(err)
	}
	removed, err := w.Remove("vipvs-api-m0")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 || removed[0] != podPath {
		t.Errorf("removed %v, want the static pod %s first", removed, podPath)
	}
}

func TestCompanionRefusesForeignPaths(t *testing.T) {
	for _, tt := range []struct {
		name string
		path string
	}{
		{"another LoadBalancerConfig's directory", "/etc/vipvs/ingress/nodes/m0.yaml"},
		{"another static pod", "/etc/kubernetes/manifests/kube-apiserver.yaml"},
		{"outside /etc/vipvs", "/etc/shadow"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sec := testSecret(t, "vipvs-api-m0", "api", "m0", []File{
				{Path: podPath, Data: []byte("pod"), Mode: 0o644},
				{Path: tt.path, Data: []byte("evil"), Mode: 0o644},
			})
			c, cl, w := newTestCompanion(t, &fakeStatus{}, sec)
			if err := reconcileNode(t, c); err != nil {
				t.Fatal(err) // a refused Secret is reported, not retried
			}
			if entries, _ := os.ReadDir(filepath.Join(w.Root, "etc")); len(entries) > 0 {
				t.Errorf("files written for a refused secret: %v", entries)
			}
			got := annotations(t, cl, sec.Name)[AnnotationAgentError]
			if !strings.Contains(got, tt.path) || !strings.Contains(got, "refused") {
				t.Errorf("agent error = %q, want it to name %s as refused", got, tt.path)
			}
		})
	}
}

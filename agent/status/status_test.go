package status

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	v1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

func sampleReport() Report {
	return Report{
		Node: "master-0", Version: "v0.1.0", ConfigHash: "0123456789abcdef0123",
		Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Routers: []Router{{
			Name: "api", VRID: 51, Interface: "eth0", Family: "IPv4", State: "MASTER", ProtocolState: "Active",
			Priority: 140, ConfiguredPriority: 150, Master: "192.0.2.11", VIPs: []string{"192.0.2.100/24"},
			Drops: map[string]uint64{"peer": 3},
		}, {
			Name: "ingress", VRID: 52, Interface: "eth0", Family: "IPv4", State: "BACKUP", ProtocolState: "Backup",
			Priority: 100, ConfiguredPriority: 100, VIPs: []string{"192.0.2.101/24", "192.0.2.102/24"},
		}},
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	want := `node master-0, config 0123456789ab, version v0.1.0
ROUTER           VRID INTERFACE  STATE   PRIORITY  MASTER                       VIPS
api              51   eth0       MASTER  140/150   192.0.2.11                   192.0.2.100/24
ingress          52   eth0       BACKUP  100       -                            192.0.2.101/24,192.0.2.102/24
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestServerEndpoints(t *testing.T) {
	notReady := errors.New("router api is not running")
	ready := notReady
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vipvs_test_total", Help: "test"})
	reg.MustRegister(c)
	s := NewServer(sampleReport, func() error { return ready }, reg, testr.New(t))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	tests := []struct {
		name, path string
		ready      error
		wantCode   int
		wantBody   string
	}{
		{name: "healthz", path: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "readyz not ready", path: "/readyz", ready: notReady, wantCode: 503, wantBody: "router api is not running"},
		{name: "readyz ready", path: "/readyz", wantCode: 200, wantBody: "ok"},
		{name: "status", path: "/status", wantCode: 200, wantBody: `"configHash": "0123456789abcdef0123"`},
		{name: "metrics", path: "/metrics", wantCode: 200, wantBody: "vipvs_test_total 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready = tt.ready
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := new(strings.Builder)
			_, _ = io.Copy(buf, resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(buf.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, resp.StatusCode, buf.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestSocketRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "agent.sock")
	s := NewServer(sampleReport, func() error { return nil }, nil, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSocket(ctx, sock) }()
	var got Report
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		got, err = Fetch(context.Background(), sock)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fetching over %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := sampleReport()
	want.APIVersion, want.Kind = v1alpha1.APIVersion, v1alpha1.KindAgentReport
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report over the socket (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeSocket: %v", err)
	}
	if _, err := Fetch(context.Background(), sock); err == nil {
		t.Error("Fetch succeeded after the server stopped")
	}
}

func TestCommandWithoutAgent(t *testing.T) {
	var out, errOut strings.Builder
	code := Command([]string{"--socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "is the agent running?") {
		t.Errorf("exit %d, stderr %q; want 1 and a hint", code, errOut.String())
	}
}

// serveSocket serves p on a unix socket at path until the test ends, and
// waits until it answers.
func serveSocket(t *testing.T, path string, p Provider) (stop func()) {
	t.Helper()
	s := NewServer(p, func() error { return nil }, nil, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSocket(ctx, path) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeSocket %s: %v", path, err)
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := Fetch(context.Background(), path); err == nil {
			return stop
		} else if time.Now().After(deadline) {
			t.Fatalf("fetching over %s: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCommandFindsAgents runs `vipvs status` without flags: it reads every
// agent socket of the run directory, where the operator's agents listen on
// <LoadBalancerConfig>.sock (not agent.sock).
func TestCommandFindsAgents(t *testing.T) {
	if dir, _ := filepath.Split(render.SocketPath("api")); filepath.Clean(dir) != DefaultRunDir {
		t.Fatalf("the operator renders the socket %s, outside %s where vipvs status looks", render.SocketPath("api"), DefaultRunDir)
	}
	dir := t.TempDir()
	withNode := func(node string) Provider {
		return func() Report { r := sampleReport(); r.Node = node; return r }
	}

	var out, errOut strings.Builder
	if code := command(nil, &out, &errOut, dir); code != 1 || !strings.Contains(errOut.String(), "no agent status socket in "+dir) {
		t.Errorf("no agent: exit %d, stderr %q; want 1 and no agent status socket", code, errOut.String())
	}

	serveSocket(t, filepath.Join(dir, "api.sock"), withNode("api-node"))
	out.Reset()
	errOut.Reset()
	if code := command(nil, &out, &errOut, dir); code != 0 || !strings.HasPrefix(out.String(), "node api-node,") {
		t.Errorf("one agent: exit %d, stdout %q, stderr %q; want its table", code, out.String(), errOut.String())
	}

	serveSocket(t, filepath.Join(dir, "ingress.sock"), withNode("ingress-node"))
	out.Reset()
	errOut.Reset()
	code := command(nil, &out, &errOut, dir)
	api, ingress := strings.Index(out.String(), "== "+filepath.Join(dir, "api.sock")+"\nnode api-node,"),
		strings.Index(out.String(), "== "+filepath.Join(dir, "ingress.sock")+"\nnode ingress-node,")
	if code != 0 || api < 0 || ingress < api {
		t.Errorf("two agents: exit %d, stdout %q, stderr %q; want both tables, each under its socket", code, out.String(), errOut.String())
	}

	out.Reset()
	if code := command([]string{"--json"}, &out, &errOut, dir); code != 0 || strings.Count(out.String(), `"apiVersion": "status.vipvs.io/v1alpha1"`) != 2 || !strings.HasPrefix(out.String(), "[") {
		t.Errorf("two agents, --json: exit %d, stdout %q; want a list of two reports", code, out.String())
	}
}

// TestWatch follows the watch protocol: a GET /status with the current ETag
// and wait returns as soon as the report changes, 304 when it does not, and
// at once when the server stops (whose socket file is then gone).
func TestWatch(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	var mu sync.Mutex
	state := "BACKUP"
	setState := func(s string) { mu.Lock(); state = s; mu.Unlock() }
	stop := serveSocket(t, sock, func() Report {
		mu.Lock()
		defer mu.Unlock()
		r := sampleReport()
		r.Routers[1].State = state
		r.Routers[0].AdvertsSent = uint64(time.Now().UnixNano()) // counters are not a change
		return r
	})
	ctx := context.Background()
	first, etag, changed, err := Watch(ctx, sock, "", 0)
	if err != nil || !changed || etag == "" || first.Routers[1].State != "BACKUP" {
		t.Fatalf("first Watch = %v, %q, %v, %v; want the report and its ETag", first.Routers, etag, changed, err)
	}

	start := time.Now()
	_, etag2, changed, err := Watch(ctx, sock, etag, 300*time.Millisecond)
	if err != nil || changed || etag2 != etag || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("Watch without a change = %q, %v, %v after %v; want not modified after the wait", etag2, changed, err, time.Since(start))
	}

	time.AfterFunc(200*time.Millisecond, func() { setState("MASTER") })
	start = time.Now()
	rep, etag3, changed, err := Watch(ctx, sock, etag, 10*time.Second)
	took := time.Since(start)
	if err != nil || !changed || etag3 == etag || rep.Routers[1].State != "MASTER" {
		t.Fatalf("Watch across a change = %v, %q, %v, %v", rep.Routers, etag3, changed, err)
	}
	if took > 200*time.Millisecond+2*DefaultWatchPoll+200*time.Millisecond {
		t.Errorf("the change reached the watcher after %v, want within about %v of it", took-200*time.Millisecond, DefaultWatchPoll)
	}
	t.Logf("change seen by the watcher %v after it happened", (took - 200*time.Millisecond).Round(time.Millisecond))

	// A watch in flight does not hold the server up when it stops.
	errc := make(chan error, 1)
	go func() { _, _, _, err := Watch(ctx, sock, etag3, 30*time.Second); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("stopping the server with a watch in flight took %v", took)
	}
	<-errc
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after the server stopped: %v, want it removed", err)
	}
}

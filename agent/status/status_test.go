package status

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
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
	if diff := cmp.Diff(sampleReport(), got); diff != "" {
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

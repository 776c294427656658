package status

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"

	v1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

func TestWriteTableBGP(t *testing.T) {
	rep := sampleReport()
	rep.Routers = append(rep.Routers[:1],
		Router{Name: "web", Mode: v1alpha1.ModeBGP, Interface: "lo", Family: "IPv4", State: v1alpha1.StateAdvertised, VIPs: []string{"203.0.113.10/32"}},
		Router{Name: "web6", Mode: v1alpha1.ModeBGP, Interface: "lo", Family: "IPv6", State: v1alpha1.StateWithdrawn, LastReason: "track check api failed", VIPs: []string{"2001:db8::10/128"}})
	rep.BGP = &v1alpha1.BGP{Speaker: v1alpha1.SpeakerEmbedded, Advertised: []string{"203.0.113.10/32"}, Peers: []v1alpha1.BGPPeer{
		{Address: "192.0.2.1", ASN: 65000, State: v1alpha1.BGPStateEstablished, BFD: v1alpha1.BFDStateUp, Advertised: []string{"203.0.113.10/32"}},
		{Address: "2001:db8::1", ASN: 65000, State: v1alpha1.BGPStateActive},
	}}
	var b strings.Builder
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	want := `node master-0, config 0123456789ab, version v0.1.0
ROUTER           VRID INTERFACE  STATE      PRIORITY  MASTER                       VIPS
api              51   eth0       MASTER     140/150   192.0.2.11                   192.0.2.100/24
web              bgp  lo         ADVERTISED -         -                            203.0.113.10/32
web6             bgp  lo         WITHDRAWN  -         -                            2001:db8::10/128
  withdrawn: track check api failed

BGP embedded speaker, 1 routes advertised: 203.0.113.10/32
PEER                         ASN        SESSION      BFD        ADVERTISED
192.0.2.1                    65000      established  up         203.0.113.10/32
2001:db8::1                  65000      active       -          -
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

// POST /drain and /undrain are served on the socket only, and `vipvs
// status --drain` calls them.
func TestDrainOverTheSocket(t *testing.T) {
	var mu sync.Mutex
	var calls []bool
	fail := false
	s := NewServer(sampleReport, func() error { return nil }, nil, testr.New(t))
	s.EnableDrain(func(on bool) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("the agent is stopping")
		}
		calls = append(calls, on)
		return nil
	})
	// Not on the TCP handler.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/drain", nil))
	if rec.Code == http.StatusOK {
		t.Error("POST /drain is served on the TCP address")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeSocket(ctx, sock) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := Fetch(context.Background(), sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket does not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	if code := command([]string{"--socket", sock, "--drain"}, &out, &errOut, dir); code != 0 {
		t.Fatalf("--drain: exit %d: %s", code, errOut.String())
	}
	if code := command([]string{"--socket", sock, "--undrain"}, &out, &errOut, dir); code != 0 {
		t.Fatalf("--undrain: exit %d: %s", code, errOut.String())
	}
	mu.Lock()
	got := calls
	fail = true
	mu.Unlock()
	if !cmp.Equal(got, []bool{true, false}) {
		t.Errorf("drain calls %v, want [true false]", got)
	}
	errOut.Reset()
	if code := command([]string{"--socket", sock, "--drain"}, &out, &errOut, dir); code != 1 || !strings.Contains(errOut.String(), "the agent is stopping") {
		t.Errorf("a refused drain: exit %d, %q", code, errOut.String())
	}
	if code := command([]string{"--socket", sock, "--drain", "--undrain"}, &out, &errOut, dir); code != 2 {
		t.Errorf("--drain --undrain: exit %d, want 2", code)
	}
}

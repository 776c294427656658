package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/vipvs/vipvs/agent/bgp/wire"
	"github.com/vipvs/vipvs/agent/config"
)

// fakeSpeakerEnv makes the test binary a fake speaker process (TestMain):
// childSpeaker's process handling is tested with it, the real speaker
// (agentd/bgpspeaker, GoBGP) in test/bgplab.
const fakeSpeakerEnv = "VIPVS_TEST_FAKE_BGP_SPEAKER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeSpeakerEnv) != "" {
		err := wire.Serve(context.Background(), os.Stdin, os.Stdout, func(c wire.Config) (wire.Speaker, error) {
			if c.ASN == 0 {
				return nil, errors.New("bgp config: asn: 0 is not a usable AS number")
			}
			return &procFakeSpeaker{cfg: c, routes: map[netip.Addr]bool{}}, nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procFakeSpeaker is the fake speaker process's speaker: every peer is
// established and gets every route.
type procFakeSpeaker struct {
	mu     sync.Mutex
	cfg    wire.Config
	routes map[netip.Addr]bool
	gshut  bool
}

func (f *procFakeSpeaker) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *procFakeSpeaker) Advertise(a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[a] = true
	return nil
}
func (f *procFakeSpeaker) Withdraw(a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, a)
	return nil
}
func (f *procFakeSpeaker) GracefulShutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gshut, f.routes = true, map[netip.Addr]bool{}
	return nil
}
func (f *procFakeSpeaker) Reconfigure(_ context.Context, c wire.Config) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ASN != f.cfg.ASN {
		return true, nil
	}
	f.cfg = c
	return false, nil
}
func (f *procFakeSpeaker) Status(context.Context) (wire.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := wire.Status{Running: true, GracefulShutdown: f.gshut}
	for _, p := range f.cfg.Peers {
		ps := wire.PeerStatus{Address: p.Address, ASN: p.ASN, State: "established"}
		for a := range f.routes {
			ps.Advertised = append(ps.Advertised, netip.PrefixFrom(a, a.BitLen()))
		}
		slices.SortFunc(ps.Advertised, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
		// The key reached the speaker: only its length is shown.
		if p.Password != "" {
			ps.BFD = fmt.Sprintf("key-%d", len(p.Password))
		}
		st.Peers = append(st.Peers, ps)
	}
	return st, nil
}

func testSpeakerConfig(t *testing.T, asn uint32, peers ...string) *config.BGP {
	c := &config.BGP{LocalASN: asn, RouterID: netip.MustParseAddr("192.0.2.11"), GracefulShutdownWait: time.Second}
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		c.Peers = append(c.Peers, config.BGPPeer{Address: netip.MustParseAddr(p), ASN: 65000, PasswordFile: key})
	}
	return c
}

// TestChildSpeaker runs childSpeaker with a fake speaker process: config
// errors, routes, a crash (SIGKILL) reported and recovered with the
// routes, reconfiguration, graceful shutdown and the stop.
func TestChildSpeaker(t *testing.T) {
	t.Setenv(SpeakerEnv, os.Args[0])
	t.Setenv(fakeSpeakerEnv, "1")
	log := testr.New(t)
	if _, err := newChildSpeaker(testSpeakerConfig(t, 0, "192.0.2.1"), log); err == nil || !strings.Contains(err.Error(), "asn: 0") {
		t.Fatalf("newChildSpeaker with ASN 0 = %v, want the speaker's error", err)
	}
	s, err := newChildSpeaker(testSpeakerConfig(t, 65001, "192.0.2.1"), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	vip := netip.MustParsePrefix("203.0.113.10/32")
	if err := s.Advertise(vip); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx)
	if err != nil || len(st.Peers) != 1 || !slices.Equal(st.Peers[0].Advertised, []string{"203.0.113.10/32"}) || st.Peers[0].BFD != "key-6" {
		t.Fatalf("status = %+v, %v; want peer 192.0.2.1 with 203.0.113.10/32 and the 6-byte key", st, err)
	}

	// A crash: reported, then a new process with the config and the routes.
	s.mu.Lock()
	first := s.cur
	s.mu.Unlock()
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	sawDown := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err = s.Status(ctx)
		if err != nil && strings.Contains(err.Error(), "exited unexpectedly") {
			sawDown = true
		}
		if err == nil && len(st.Peers) == 1 && len(st.Peers[0].Advertised) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no speaker again after the crash: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawDown {
		t.Error("the dead speaker was never reported in Status's error")
	}
	if !strings.Contains(st.LastError, "exited unexpectedly (signal: killed)") || !strings.Contains(st.LastError, "1 restarts") {
		t.Errorf("lastError after the restart = %q, want the crash and 1 restart", st.LastError)
	}

	// Reconfiguration: a new peer is applied, a new ASN is not.
	if applied, err := s.Reconfigure(ctx, testSpeakerConfig(t, 65002, "192.0.2.1")); applied || err != nil {
		t.Fatalf("Reconfigure of the ASN = %v, %v; want false, nil", applied, err)
	}
	if applied, err := s.Reconfigure(ctx, testSpeakerConfig(t, 65001, "192.0.2.1", "192.0.2.2")); !applied || err != nil {
		t.Fatalf("Reconfigure of the peers = %v, %v; want true, nil", applied, err)
	}
	if st, err := s.Status(ctx); err != nil || len(st.Peers) != 2 || !slices.Equal(st.Peers[1].Advertised, []string{"203.0.113.10/32"}) {
		t.Fatalf("status after Reconfigure = %+v, %v; want two peers with the route", st, err)
	}
	if err := s.Withdraw(vip); err != nil {
		t.Fatal(err)
	}
	if err := s.GracefulShutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx); err != nil || !st.GracefulShutdown {
		t.Fatalf("status after GracefulShutdown = %+v, %v", st, err)
	}

	// Stop: the process is waited for.
	s.mu.Lock()
	last := s.cur
	s.mu.Unlock()
	cancel()
	<-done
	if runErr != nil {
		t.Fatalf("Run = %v", runErr)
	}
	select {
	case <-last.exited:
	default:
		t.Fatal("Run returned before the speaker process was waited for")
	}
	if err := last.cmd.ProcessState.ExitCode(); err != 0 {
		t.Errorf("the speaker exited with %d, want 0 (stdin closed)", err)
	}
}

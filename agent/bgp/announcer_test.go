package bgp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/go-logr/logr/testr"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"golang.org/x/sys/unix"
)

// update is what the fake router learned from one UPDATE message.
type update struct {
	announced   []netip.Prefix
	withdrawn   []netip.Prefix
	communities []uint32
	nextHop     netip.Addr
}

// fakeRouter is a minimal BGP speaker on a loopback address: it accepts
// sessions, answers OPEN and KEEPALIVE, and reports every UPDATE. It is the
// other end of the unit tests; test/bgplab runs real routers (FRR, BIRD).
type fakeRouter struct {
	t       *testing.T
	ln      *net.TCPListener
	asn     uint32
	updates chan update
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newFakeRouter(t *testing.T, addr string, asn uint32, md5 func(fd uintptr) error) *fakeRouter {
	t.Helper()
	lc := net.ListenConfig{}
	if md5 != nil {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = md5(fd) }); err != nil {
				return err
			}
			return serr
		}
	}
	l, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Skipf("no loopback listener on %s: %v", addr, err)
	}
	r := &fakeRouter{t: t, ln: l.(*net.TCPListener), asn: asn, updates: make(chan update, 64)}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *fakeRouter) port() uint16 { return uint16(r.ln.Addr().(*net.TCPAddr).Port) }

func (r *fakeRouter) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *fakeRouter) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			if err := r.session(c); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				r.t.Logf("fake router: session: %v", err)
			}
		}()
	}
}

func readMsg(c net.Conn) (*bgppkt.BGPMessage, error) {
	hdr := make([]byte, bgppkt.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[16:18]))
	buf := make([]byte, n)
	copy(buf, hdr)
	if _, err := io.ReadFull(c, buf[len(hdr):]); err != nil {
		return nil, err
	}
	return bgppkt.ParseBGPMessage(buf)
}

func writeMsg(c net.Conn, m *bgppkt.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

func (r *fakeRouter) session(c net.Conn) error {
	if _, err := readMsg(c); err != nil { // the node's OPEN
		return err
	}
	as2 := uint16(r.asn)
	if r.asn > 65535 {
		as2 = 23456 // AS_TRANS
	}
	open, err := bgppkt.NewBGPOpenMessage(as2, 9, netip.MustParseAddr("10.255.255.1"), []bgppkt.OptionParameterInterface{
		bgppkt.NewOptionParameterCapability([]bgppkt.ParameterCapabilityInterface{
			bgppkt.NewCapMultiProtocol(bgppkt.RF_IPv4_UC),
			bgppkt.NewCapMultiProtocol(bgppkt.RF_IPv6_UC),
			bgppkt.NewCapFourOctetASNumber(r.asn),
		}),
	})
	if err != nil {
		return err
	}
	if err := writeMsg(c, open); err != nil {
		return err
	}
	if err := writeMsg(c, bgppkt.NewBGPKeepAliveMessage()); err != nil {
		return err
	}
	for {
		m, err := readMsg(c)
		if err != nil {
			return err
		}
		switch body := m.Body.(type) {
		case *bgppkt.BGPKeepAlive:
			if err := writeMsg(c, bgppkt.NewBGPKeepAliveMessage()); err != nil {
				return err
			}
		case *bgppkt.BGPNotification:
			return nil
		case *bgppkt.BGPUpdate:
			if eor, _ := body.IsEndOfRib(); eor {
				continue
			}
			r.updates <- parseUpdate(body)
		}
	}
}

func prefixOf(n bgppkt.NLRI) netip.Prefix {
	p, _ := netip.ParsePrefix(n.String())
	return p
}

func parseUpdate(u *bgppkt.BGPUpdate) update {
	var out update
	for _, n := range u.NLRI {
		out.announced = append(out.announced, prefixOf(n.NLRI))
	}
	for _, n := range u.WithdrawnRoutes {
		out.withdrawn = append(out.withdrawn, prefixOf(n.NLRI))
	}
	for _, a := range u.PathAttributes {
		switch a := a.(type) {
		case *bgppkt.PathAttributeCommunities:
			out.communities = a.Value
		case *bgppkt.PathAttributeNextHop:
			out.nextHop = a.Value
		case *bgppkt.PathAttributeMpReachNLRI:
			out.nextHop = a.Nexthop
			for _, n := range a.Value {
				out.announced = append(out.announced, prefixOf(n.NLRI))
			}
		case *bgppkt.PathAttributeMpUnreachNLRI:
			for _, n := range a.Value {
				out.withdrawn = append(out.withdrawn, prefixOf(n.NLRI))
			}
		}
	}
	return out
}

// next returns the next UPDATE, failing the test after 15 s.
func (r *fakeRouter) next(t *testing.T) update {
	t.Helper()
	select {
	case u := <-r.updates:
		return u
	case <-time.After(15 * time.Second):
		t.Fatal("no UPDATE from the announcer within 15s")
		return update{}
	}
}

// none checks that no UPDATE comes within d.
func (r *fakeRouter) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case u := <-r.updates:
		t.Fatalf("unexpected UPDATE %+v", u)
	case <-time.After(d):
	}
}

// start runs a on a goroutine the test waits for.
func start(t *testing.T, a *Announcer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of its context ending")
		}
	})
}

func waitEstablished(t *testing.T, a *Announcer) Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := a.Status(context.Background())
		if err == nil && len(st.Peers) > 0 && st.Peers[0].Established() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not established within 20s: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newAnnouncer(t *testing.T, peerAddr string, port uint16, change func(*Config)) *Announcer {
	t.Helper()
	cfg := Config{
		ASN:          65001,
		RouterID:     netip.MustParseAddr("10.0.0.1"),
		GracefulWait: 300 * time.Millisecond,
		Peers: []Peer{{
			Address:      netip.MustParseAddr(peerAddr),
			ASN:          65000,
			Port:         port,
			HoldTime:     9 * time.Second,
			ConnectRetry: 2 * time.Second,
		}},
	}
	if change != nil {
		change(&cfg)
	}
	a, err := New(cfg, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var (
	vip1 = netip.MustParseAddr("192.0.2.10")
	vip2 = netip.MustParseAddr("192.0.2.11")
)

func TestAdvertiseWithdraw(t *testing.T) {
	r := newFakeRouter(t, "127.0.0.1", 65000, nil)
	a := newAnnouncer(t, "127.0.0.1", r.port(), nil)
	// A route wanted before Run is advertised once the session is up.
	if err := a.Advertise(vip1); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Status(context.Background()); st.Running || !slices.Equal(st.Wanted, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Errorf("Status before Run = %+v, want not running, wanting 192.0.2.10/32", st)
	}
	start(t, a)
	u := r.next(t)
	if !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) || u.nextHop != netip.MustParseAddr("127.0.0.1") || len(u.communities) != 0 {
		t.Fatalf("first UPDATE = %+v, want 192.0.2.10/32 via 127.0.0.1 without communities", u)
	}
	st := waitEstablished(t, a)
	if !st.Running || st.Peers[0].BFD != "" {
		t.Errorf("Status = %+v, want running, no BFD", st)
	}

	if err := a.Advertise(vip2); err != nil {
		t.Fatal(err)
	}
	if u := r.next(t); !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.11/32")}) {
		t.Fatalf("UPDATE = %+v, want 192.0.2.11/32", u)
	}
	// Advertising again sends nothing.
	if err := a.Advertise(vip2); err != nil {
		t.Fatal(err)
	}
	r.none(t, 500*time.Millisecond)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantBoth := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32")}
	if !slices.Equal(st.Peers[0].Advertised, wantBoth) {
		t.Errorf("advertised to the peer = %v, want %v", st.Peers[0].Advertised, wantBoth)
	}

	if err := a.Withdraw(vip1); err != nil {
		t.Fatal(err)
	}
	if u := r.next(t); !slices.Equal(u.withdrawn, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Fatalf("UPDATE = %+v, want 192.0.2.10/32 withdrawn", u)
	}
	if err := a.Withdraw(vip1); err != nil { // not advertised: nothing
		t.Fatal(err)
	}
	r.none(t, 500*time.Millisecond)
	if st, _ := a.Status(context.Background()); !slices.Equal(st.Peers[0].Advertised, wantBoth[1:]) {
		t.Errorf("advertised after the withdrawal = %v, want %v", st.Peers[0].Advertised, wantBoth[1:])
	}
	if err := a.Advertise(netip.MustParseAddr("0.0.0.0")); err == nil {
		t.Error("Advertise(0.0.0.0) = nil, want an error")
	}
}

func TestGracefulShutdown(t *testing.T) {
	r := newFakeRouter(t, "127.0.0.1", 65000, nil)
	a := newAnnouncer(t, "127.0.0.1", r.port(), nil)
	start(t, a)
	waitEstablished(t, a)
	if err := a.Advertise(vip1); err != nil {
		t.Fatal(err)
	}
	if u := r.next(t); len(u.announced) != 1 || len(u.communities) != 0 {
		t.Fatalf("UPDATE = %+v, want 192.0.2.10/32 without communities", u)
	}

	began := time.Now()
	if err := a.GracefulShutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	u := r.next(t)
	if !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) || !slices.Equal(u.communities, []uint32{GracefulShutdownCommunity}) {
		t.Fatalf("first UPDATE of the shutdown = %+v, want 192.0.2.10/32 with 65535:0", u)
	}
	if u := r.next(t); !slices.Equal(u.withdrawn, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Fatalf("second UPDATE of the shutdown = %+v, want the withdrawal", u)
	}
	if took < 600*time.Millisecond {
		t.Errorf("GracefulShutdown took %s, want at least 2 x GracefulWait (600ms)", took)
	}
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.GracefulShutdown || !st.Drained || len(st.Peers[0].Advertised) != 0 || !st.Peers[0].Established() {
		t.Errorf("Status after the shutdown = %+v, want drained, nothing advertised, session still up", st)
	}
	// Drained: a route advertised now is not announced.
	if err := a.Advertise(vip2); err != nil {
		t.Fatal(err)
	}
	r.none(t, 500*time.Millisecond)
}

func TestGracefulShutdownContext(t *testing.T) {
	r := newFakeRouter(t, "127.0.0.1", 65000, nil)
	a := newAnnouncer(t, "127.0.0.1", r.port(), func(c *Config) { c.GracefulWait = time.Hour })
	start(t, a)
	waitEstablished(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.GracefulShutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GracefulShutdown with a 200ms context = %v, want DeadlineExceeded", err)
	}
}

func TestIPv6(t *testing.T) {
	r := newFakeRouter(t, "::1", 65000, nil)
	a := newAnnouncer(t, "::1", r.port(), nil)
	start(t, a)
	if err := a.Advertise(netip.MustParseAddr("2001:db8::10")); err != nil {
		t.Fatal(err)
	}
	if err := a.Advertise(vip1); err != nil { // IPv4: not sent to an IPv6 peer
		t.Fatal(err)
	}
	u := r.next(t)
	if !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("2001:db8::10/128")}) || u.nextHop != netip.MustParseAddr("::1") {
		t.Fatalf("UPDATE = %+v, want 2001:db8::10/128 via ::1", u)
	}
	r.none(t, 500*time.Millisecond)
	if err := a.Withdraw(netip.MustParseAddr("2001:db8::10")); err != nil {
		t.Fatal(err)
	}
	if u := r.next(t); !slices.Equal(u.withdrawn, []netip.Prefix{netip.MustParsePrefix("2001:db8::10/128")}) {
		t.Fatalf("UPDATE = %+v, want 2001:db8::10/128 withdrawn", u)
	}
}

// setMD5 installs key for peer on a listening socket (TCP_MD5SIG).
func setMD5(peer netip.Addr, key string) func(fd uintptr) error {
	return func(fd uintptr) error {
		sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
		copy(sig.Key[:], key)
		// struct sockaddr_in in the sockaddr_storage: family, port, address.
		raw := (*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&sig.Addr))
		binary.NativeEndian.PutUint16(raw[0:2], unix.AF_INET)
		a4 := peer.As4()
		copy(raw[4:8], a4[:])
		return unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
	}
}

func TestPassword(t *testing.T) {
	for _, tt := range []struct {
		name        string
		routerKey   string
		wantSession bool
	}{
		{name: "same key", routerKey: "s3cret", wantSession: true},
		{name: "other key", routerKey: "wrong", wantSession: false},
		{name: "router without key", routerKey: "", wantSession: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var md5 func(uintptr) error
			if tt.routerKey != "" {
				md5 = setMD5(netip.MustParseAddr("127.0.0.1"), tt.routerKey)
			}
			r := newFakeRouter(t, "127.0.0.1", 65000, md5)
			a := newAnnouncer(t, "127.0.0.1", r.port(), func(c *Config) { c.Peers[0].Password = "s3cret" })
			if err := a.Advertise(vip1); err != nil {
				t.Fatal(err)
			}
			start(t, a)
			if tt.wantSession {
				if u := r.next(t); len(u.announced) != 1 {
					t.Fatalf("UPDATE = %+v, want 192.0.2.10/32", u)
				}
				return
			}
			// GoBGP's first attempt comes after 1.5-2 s, the next 2 s later.
			r.none(t, 5*time.Second)
			if st, _ := a.Status(context.Background()); st.Peers[0].Established() {
				t.Errorf("session established with a mismatched key: %+v", st.Peers[0])
			}
		})
	}
}

func TestRunTwiceAndRestart(t *testing.T) {
	r := newFakeRouter(t, "127.0.0.1", 65000, nil)
	a := newAnnouncer(t, "127.0.0.1", r.port(), nil)
	if err := a.Advertise(vip1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	r.next(t)
	if err := a.Run(context.Background()); err == nil {
		t.Error("a second concurrent Run = nil, want an error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if st, _ := a.Status(context.Background()); st.Running || st.Peers[0].State != "" {
		t.Errorf("Status after Run = %+v, want not running", st)
	}
	// A stopped announcer runs again and re-advertises what is wanted.
	start(t, a)
	if u := r.next(t); !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Fatalf("UPDATE after the restart = %+v, want 192.0.2.10/32", u)
	}
}

func TestNewRejectsInvalid(t *testing.T) {
	_, err := New(Config{}, testr.New(t))
	if err == nil {
		t.Fatal("New(Config{}) = nil error")
	}
	for _, w := range []string{"asn", "routerID", "peers"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New(Config{}) = %v, want it to name %s", err, w)
		}
	}
}

// Run leaves no goroutine behind once it has returned: GoBGP's server,
// sessions and BFD are stopped and waited for.
func TestRunLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		r := newFakeRouter(t, "127.0.0.1", 65000, nil)
		defer r.close()
		a := newAnnouncer(t, "127.0.0.1", r.port(), func(c *Config) { c.Peers[0].BFD = true })
		if err := a.Advertise(vip1); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		r.next(t)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Run returned:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connections counts the sessions the fake router accepted.
func (r *fakeRouter) connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Reconfigure adds and removes peers without touching the session of a
// peer that did not change; a global change needs a new Announcer.
func TestReconfigurePeers(t *testing.T) {
	r1 := newFakeRouter(t, "127.0.0.1", 65000, nil)
	r2 := newFakeRouter(t, "127.0.0.2", 65010, nil)
	a := newAnnouncer(t, "127.0.0.1", r1.port(), nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Advertise(vip1))
	start(t, a)
	if u := r1.next(t); !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Fatalf("r1's first UPDATE = %+v", u)
	}
	waitEstablished(t, a)
	cfg := a.cfg
	p2 := cfg.Peers[0]
	p2.Address, p2.ASN, p2.Port = netip.MustParseAddr("127.0.0.2"), 65010, r2.port()

	// Add r2: it gets the route; r1's session stays.
	both := cfg
	both.Peers = []Peer{cfg.Peers[0], p2}
	must(a.Reconfigure(context.Background(), both))
	if u := r2.next(t); !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}) {
		t.Fatalf("r2's first UPDATE = %+v", u)
	}
	r1.none(t, 300*time.Millisecond)
	if n := r1.connections(); n != 1 {
		t.Errorf("r1 saw %d connections, want its one session kept", n)
	}
	st, err := a.Status(context.Background())
	must(err)
	if len(st.Peers) != 2 || st.Peers[1].Address != p2.Address {
		t.Errorf("Status peers = %+v, want r1 and r2", st.Peers)
	}

	// The same config again changes nothing.
	must(a.Reconfigure(context.Background(), both))
	r1.none(t, 300*time.Millisecond)
	r2.none(t, 10*time.Millisecond)

	// Remove r1: its session ends; r2's stays and the routes follow it.
	only2 := cfg
	only2.Peers = []Peer{p2}
	must(a.Reconfigure(context.Background(), only2))
	must(a.Advertise(vip2))
	if u := r2.next(t); !slices.Equal(u.announced, []netip.Prefix{netip.MustParsePrefix("192.0.2.11/32")}) {
		t.Fatalf("r2's UPDATE = %+v", u)
	}
	if n := r2.connections(); n != 1 {
		t.Errorf("r2 saw %d connections, want its one session kept", n)
	}
	r1.none(t, 10*time.Millisecond)

	// A changed ASN cannot be applied live.
	other := only2
	other.ASN = 65002
	if err := a.Reconfigure(context.Background(), other); !errors.Is(err, ErrRestartNeeded) {
		t.Errorf("Reconfigure(new ASN) = %v, want ErrRestartNeeded", err)
	}
	bad := only2
	bad.Peers = nil
	if err := a.Reconfigure(context.Background(), bad); err == nil {
		t.Error("Reconfigure(no peers) = nil, want an error")
	}
}

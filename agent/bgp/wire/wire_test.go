package wire

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRequestValidate(t *testing.T) {
	addr := netip.MustParseAddr("203.0.113.10")
	cfg := &Config{ASN: 65001}
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"config", Request{V: 1, ID: 1, Op: OpConfig, Config: cfg}, ""},
		{"advertise", Request{V: 1, ID: 2, Op: OpAdvertise, Addr: &addr}, ""},
		{"status", Request{V: 1, ID: 3, Op: OpStatus}, ""},
		{"old version", Request{V: 0, ID: 1, Op: OpStatus}, "v: protocol version 0"},
		{"newer version", Request{V: 2, ID: 1, Op: OpStatus}, "v: protocol version 2"},
		{"no id", Request{V: 1, Op: OpStatus}, "id: missing"},
		{"no op", Request{V: 1, ID: 1}, "op: missing"},
		{"unknown op", Request{V: 1, ID: 1, Op: "reboot"}, `op: unknown operation "reboot"`},
		{"config without config", Request{V: 1, ID: 1, Op: OpConfig}, "config: missing"},
		{"reconfigure without config", Request{V: 1, ID: 1, Op: OpReconfigure}, "config: missing"},
		{"status with config", Request{V: 1, ID: 1, Op: OpStatus, Config: cfg}, "config: not an argument of status"},
		{"advertise without addr", Request{V: 1, ID: 1, Op: OpAdvertise}, "addr: missing"},
		{"withdraw with invalid addr", Request{V: 1, ID: 1, Op: OpWithdraw, Addr: &netip.Addr{}}, "addr: missing"},
		{"gshut with addr", Request{V: 1, ID: 1, Op: OpGracefulShutdown, Addr: &addr}, "addr: not an argument of gshut"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadRequestMalformed(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
		wantID              uint64
	}{
		{"not json", `hello`, "invalid character", 0},
		{"unknown field", `{"v":1,"id":4,"op":"status","force":true}`, `unknown field "force"`, 4},
		{"bad address", `{"v":1,"id":5,"op":"advertise","addr":"203.0.113.300"}`, "203.0.113.300", 5},
		{"wrong type", `{"v":1,"id":"six","op":"status"}`, "id", 0},
		{"two objects", `{"v":1,"id":7,"op":"status"} {}`, "data after the message", 7},
		{"bad version", `{"v":9,"id":8,"op":"status"}`, "v: protocol version 9", 8},
		{"bad duration", `{"v":1,"id":9,"op":"config","config":{"gracefulWait":"2s"}}`, "gracefulWait", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A valid request follows: the stream goes on after a bad line.
			r := NewReader(strings.NewReader(tt.line + "\n\n" + `{"v":1,"id":10,"op":"status"}` + "\n"))
			_, err := r.ReadRequest()
			var mal *MalformedError
			if !errors.As(err, &mal) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ReadRequest() = %v, want a MalformedError containing %q", err, tt.wantErr)
			}
			if mal.ID != tt.wantID {
				t.Errorf("MalformedError.ID = %d, want %d", mal.ID, tt.wantID)
			}
			req, err := r.ReadRequest()
			if err != nil || req.ID != 10 {
				t.Fatalf("the next ReadRequest() = %+v, %v; want request 10", req, err)
			}
			if _, err := r.ReadRequest(); err != io.EOF {
				t.Fatalf("ReadRequest() at the end = %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderLimits(t *testing.T) {
	r := NewReader(strings.NewReader(`{"v":1,"id":1,"op":"status","x":"` + strings.Repeat("a", MaxLine) + "\"}\n"))
	if _, err := r.ReadRequest(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("an over-long line: %v, want an error", err)
	}
	r = NewReader(strings.NewReader(`{"v":1,"id":1,"op":"status"}`))
	if _, err := r.ReadRequest(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a line cut short: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadResponse(t *testing.T) {
	for _, tt := range []struct{ line, wantErr string }{
		{`{"v":1,"id":3}`, ""},
		{`{"v":1,"id":0,"error":"malformed message: x"}`, ""},
		{`{"v":1,"id":0}`, "id: missing"},
		{`{"v":2,"id":3}`, "v: protocol version 2"},
		{`{"v":1,"id":3,"status":{"peers":[{"address":"x"}]}}`, "ParseAddr"},
	} {
		_, err := NewReader(strings.NewReader(tt.line + "\n")).ReadResponse()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ReadResponse(%s) = %v, want %q", tt.line, err, tt.wantErr)
		}
	}
}

// fakeSpeaker records what Serve asks of it.
type fakeSpeaker struct {
	mu       sync.Mutex
	cfg      Config
	routes   map[netip.Addr]bool
	runErr   error
	running  chan struct{} // closed when Run starts
	stopped  chan struct{} // closed when Run returns
	gshutIn  chan struct{} // GracefulShutdown blocks until closed
	gshutted bool
}

func (f *fakeSpeaker) Run(ctx context.Context) error {
	close(f.running)
	defer close(f.stopped)
	if f.runErr != nil {
		return f.runErr
	}
	<-ctx.Done()
	return nil
}

func (f *fakeSpeaker) Advertise(a netip.Addr) error {
	if !a.Is4() {
		return errors.New("only IPv4 here")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[a] = true
	return nil
}

func (f *fakeSpeaker) Withdraw(a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, a)
	return nil
}

func (f *fakeSpeaker) GracefulShutdown(ctx context.Context) error {
	select {
	case <-f.gshutIn:
	case <-ctx.Done():
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gshutted = true
	return nil
}

func (f *fakeSpeaker) Reconfigure(_ context.Context, c Config) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.ASN != f.cfg.ASN {
		return true, nil
	}
	f.cfg = c
	return false, nil
}

func (f *fakeSpeaker) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{Running: true, GracefulShutdown: f.gshutted}
	for _, p := range f.cfg.Peers {
		ps := PeerStatus{Address: p.Address, ASN: p.ASN, State: "established"}
		for a := range f.routes {
			ps.Advertised = append(ps.Advertised, netip.PrefixFrom(a, 32))
		}
		st.Peers = append(st.Peers, ps)
	}
	return st, nil
}

// served runs Serve over pipes with a fake speaker and returns a client.
type served struct {
	client *Client
	inW    *io.PipeWriter // the speaker's stdin
	done   chan error     // Serve's result
	fake   *fakeSpeaker
}

func serve(t *testing.T, runErr error) *served {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &served{inW: inW, done: make(chan error, 1), fake: &fakeSpeaker{
		routes: map[netip.Addr]bool{}, runErr: runErr, running: make(chan struct{}), stopped: make(chan struct{}), gshutIn: make(chan struct{}),
	}}
	go func() {
		err := Serve(context.Background(), inR, outW, func(c Config) (Speaker, error) {
			if c.ASN == 0 {
				return nil, errors.New("asn: 0 is not a usable AS number")
			}
			s.fake.cfg = c
			return s.fake, nil
		})
		outW.Close()
		s.done <- err
	}()
	s.client = NewClient(inW, outR)
	t.Cleanup(func() {
		inW.Close()
		<-s.client.Done()
	})
	return s
}

func (s *served) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServe(t *testing.T) {
	ctx := context.Background()
	s := serve(t, nil)
	c := s.client
	vip := netip.MustParseAddr("203.0.113.10")
	vip6 := netip.MustParseAddr("2001:db8::10")
	peer := Peer{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65000, Password: "secret"}

	if _, err := c.Call(ctx, Request{Op: OpStatus}); err == nil || !strings.Contains(err.Error(), "status before config") {
		t.Fatalf("status before config: %v, want an error", err)
	}
	if _, err := c.Call(ctx, Request{Op: OpConfig, Config: &Config{}}); err == nil || !strings.Contains(err.Error(), "asn") {
		t.Fatalf("an invalid config: %v, want the speaker's error", err)
	}
	if _, err := c.Call(ctx, Request{Op: OpConfig, Config: &Config{ASN: 65001, Peers: []Peer{peer}}}); err != nil {
		t.Fatalf("config: %v", err)
	}
	<-s.fake.running
	if s.fake.cfg.Peers[0].Password != "secret" {
		t.Errorf("the speaker got password %q", s.fake.cfg.Peers[0].Password)
	}
	if _, err := c.Call(ctx, Request{Op: OpConfig, Config: &Config{ASN: 65001}}); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second config: %v, want an error", err)
	}
	if _, err := c.Call(ctx, Request{Op: OpAdvertise, Addr: &vip}); err != nil {
		t.Fatalf("advertise: %v", err)
	}
	var remote *RemoteError
	if _, err := c.Call(ctx, Request{Op: OpAdvertise, Addr: &vip6}); !errors.As(err, &remote) || !strings.Contains(err.Error(), "only IPv4") {
		t.Fatalf("advertise of a route the speaker refuses: %v, want its error", err)
	}
	resp, err := c.Call(ctx, Request{Op: OpStatus})
	if err != nil || len(resp.Status.Peers) != 1 || len(resp.Status.Peers[0].Advertised) != 1 || resp.Status.Peers[0].Advertised[0] != netip.PrefixFrom(vip, 32) {
		t.Fatalf("status = %+v, %v; want one peer advertising %s", resp, err, vip)
	}
	if resp, err := c.Call(ctx, Request{Op: OpReconfigure, Config: &Config{ASN: 65002}}); err != nil || !resp.RestartNeeded {
		t.Fatalf("reconfigure of the ASN = %+v, %v; want restartNeeded", resp, err)
	}
	if resp, err := c.Call(ctx, Request{Op: OpReconfigure, Config: &Config{ASN: 65001}}); err != nil || resp.RestartNeeded {
		t.Fatalf("reconfigure = %+v, %v; want applied", resp, err)
	}
	if _, err := c.Call(ctx, Request{Op: OpWithdraw, Addr: &vip}); err != nil || len(s.fake.routes) != 0 {
		t.Fatalf("withdraw: %v, routes %v", err, s.fake.routes)
	}

	// A graceful shutdown is answered when over; status is served meanwhile.
	gshut := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, Request{Op: OpGracefulShutdown})
		gshut <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if resp, err := c.Call(ctx, Request{Op: OpStatus}); err != nil || resp.Status.GracefulShutdown {
		t.Fatalf("status during the graceful shutdown = %+v, %v", resp, err)
	}
	select {
	case err := <-gshut:
		t.Fatalf("gshut answered before it was over: %v", err)
	default:
	}
	close(s.fake.gshutIn)
	if err := <-gshut; err != nil {
		t.Fatalf("gshut: %v", err)
	}

	// Malformed lines written by hand are answered with an error and skipped.
	if _, err := io.WriteString(s.inW, "{\"v\":1,\"id\":99,\"op\":\"status\",\"bogus\":1}\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, Request{Op: OpStatus}); err != nil {
		t.Fatalf("status after a malformed line: %v", err)
	}

	// The end of the input stops Run and Serve.
	s.inW.Close()
	if err := s.wait(t); err != nil {
		t.Fatalf("Serve after the input closed = %v, want nil", err)
	}
	<-s.fake.stopped
	if _, err := c.Call(ctx, Request{Op: OpStatus}); err == nil {
		t.Fatal("a call after the speaker ended succeeded")
	}
}

func TestServeMalformedAnswered(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), inR, outW, func(Config) (Speaker, error) { return nil, errors.New("unused") })
		outW.Close()
	}()
	go func() {
		io.WriteString(inW, "{\"v\":1,\"id\":3,\"op\":\"fly\"}\nnot json\n")
		inW.Close()
	}()
	r := NewReader(outR)
	for _, want := range []struct {
		id  uint64
		err string
	}{{3, `op: unknown operation "fly"`}, {0, "invalid character"}} {
		resp, err := r.ReadResponse()
		if err != nil || resp.ID != want.id || !strings.Contains(resp.Error, want.err) {
			t.Fatalf("reply = %+v, %v; want id %d with %q", resp, err, want.id, want.err)
		}
	}
	if err := <-done; !errors.Is(err, ErrNoConfig) {
		t.Fatalf("Serve = %v, want ErrNoConfig", err)
	}
}

func TestServeRunFails(t *testing.T) {
	s := serve(t, errors.New("listen tcp :179: address already in use"))
	if _, err := s.client.Call(context.Background(), Request{Op: OpConfig, Config: &Config{ASN: 65001}}); err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := s.wait(t); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Serve = %v, want Run's error", err)
	}
}

func TestClientMalformedReply(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := NewClient(inW, outR)
	go func() {
		r := NewReader(inR)
		req, _ := r.ReadRequest()
		io.WriteString(outW, `{"v":1,"id":`+strconv.FormatUint(req.ID, 10)+`,"status":{"running":"yes"}}`+"\n")
		outW.Close()
	}()
	_, err := c.Call(context.Background(), Request{Op: OpStatus})
	var remote *RemoteError
	if !errors.As(err, &remote) || !strings.Contains(err.Error(), "malformed message") {
		t.Fatalf("Call with a malformed reply = %v, want a malformed-message error", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), io.EOF) {
		t.Errorf("Err() = %v, want io.EOF", c.Err())
	}
}

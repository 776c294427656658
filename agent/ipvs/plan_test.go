package ipvs

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	vip4 = netip.MustParseAddr("192.0.2.100")
	vip6 = netip.MustParseAddr("2001:db8::100")
)

// cmpAddr compares netip.Addr values, whose fields are unexported.
var cmpAddr = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// api returns the API service: tcp/192.0.2.100:6443 to three masters.
func api() Service {
	return Service{VIP: vip4, Port: 6443, Protocol: TCP, Scheduler: "rr", Reals: []Real{
		{Addr: a("192.0.2.11"), Weight: 1}, {Addr: a("192.0.2.12"), Weight: 1}, {Addr: a("192.0.2.13"), Weight: 1},
	}}
}

func with(s Service, f func(*Service)) Service {
	s.Reals = append([]Real(nil), s.Reals...)
	f(&s)
	return s
}

func ownAll(Service) bool { return true }

func ownKeys(keys ...string) func(Service) bool {
	return func(s Service) bool {
		for _, k := range keys {
			if s.Key() == k {
				return true
			}
		}
		return false
	}
}

// normalReal is r as Diff emits it for service s.
func normalReal(s Service, r Real) Real { return r.normal(s) }

func TestDiff(t *testing.T) {
	ingress := Service{VIP: vip4, Port: 443, Protocol: TCP, Scheduler: "wlc", Persistence: 300 * time.Second, Forward: DR,
		Reals: []Real{{Addr: a("192.0.2.21"), Weight: 2}}}
	dns6 := Service{VIP: vip6, Port: 53, Protocol: UDP, Scheduler: "mh", Flags: FlagSched1 | FlagSched2, Forward: Tunnel,
		Reals: []Real{{Addr: a("2001:db8::2"), Weight: 1}, {Addr: a("2001:db8::1"), Weight: 1}}}
	sctp := Service{VIP: vip4, Port: 3868, Protocol: SCTP, Scheduler: "sh", Reals: []Real{{Addr: a("192.0.2.31"), Port: 3869, Weight: 5}}}
	kubeProxy := Service{VIP: vip4, Port: 80, Protocol: TCP, Scheduler: "rr", Reals: []Real{{Addr: a("10.0.0.1"), Port: 8080, Weight: 1}}}

	bs := func(s Service) Service { return bare(s.normal()) }
	tests := []struct {
		name    string
		desired []Service
		actual  []Service
		owned   func(Service) bool
		want    []Op
	}{
		{name: "nothing to do", want: nil},
		{
			name:    "from empty adds services then their reals, sorted",
			desired: []Service{dns6, ingress, api(), sctp},
			want: []Op{
				{Kind: AddService, Service: bs(ingress)},
				{Kind: AddReal, Service: bs(ingress), Real: normalReal(ingress, ingress.Reals[0])},
				{Kind: AddService, Service: bs(api())},
				{Kind: AddReal, Service: bs(api()), Real: normalReal(api(), api().Reals[0])},
				{Kind: AddReal, Service: bs(api()), Real: normalReal(api(), api().Reals[1])},
				{Kind: AddReal, Service: bs(api()), Real: normalReal(api(), api().Reals[2])},
				{Kind: AddService, Service: bs(dns6)},
				{Kind: AddReal, Service: bs(dns6), Real: normalReal(dns6, dns6.Reals[1])},
				{Kind: AddReal, Service: bs(dns6), Real: normalReal(dns6, dns6.Reals[0])},
				{Kind: AddService, Service: bs(sctp)},
				{Kind: AddReal, Service: bs(sctp), Real: normalReal(sctp, sctp.Reals[0])},
			},
		},
		{
			name:    "in sync with defaults filled in by the kernel",
			desired: []Service{{VIP: vip4, Port: 6443, Protocol: TCP, Reals: []Real{{Addr: a("192.0.2.11"), Weight: 1}}}},
			actual:  []Service{{VIP: vip4, Port: 6443, Protocol: TCP, Scheduler: "wlc", Reals: []Real{{Addr: a("192.0.2.11"), Port: 6443, Weight: 1, Forward: NAT}}}},
			owned:   ownAll,
		},
		{
			name:    "scheduler changed",
			desired: []Service{with(api(), func(s *Service) { s.Scheduler = "wrr" })},
			actual:  []Service{api()},
			want:    []Op{{Kind: UpdateService, Service: bs(with(api(), func(s *Service) { s.Scheduler = "wrr" }))}},
		},
		{
			name:    "persistence added",
			desired: []Service{with(api(), func(s *Service) { s.Persistence = time.Hour })},
			actual:  []Service{api()},
			want:    []Op{{Kind: UpdateService, Service: bs(with(api(), func(s *Service) { s.Persistence = time.Hour }))}},
		},
		{
			name:    "flags changed",
			desired: []Service{with(api(), func(s *Service) { s.Flags = FlagOnePacket })},
			actual:  []Service{api()},
			want:    []Op{{Kind: UpdateService, Service: bs(with(api(), func(s *Service) { s.Flags = FlagOnePacket }))}},
		},
		{
			name:    "weight changed and real drained",
			desired: []Service{with(api(), func(s *Service) { s.Reals[0].Weight = 0; s.Reals[2].Weight = 3 })},
			actual:  []Service{api()},
			want: []Op{
				{Kind: UpdateReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.11"), Port: 6443, Weight: 0, Forward: NAT}},
				{Kind: UpdateReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.13"), Port: 6443, Weight: 3, Forward: NAT}},
			},
		},
		{
			name:    "forwarding method changed on the service",
			desired: []Service{with(api(), func(s *Service) { s.Forward = DR; s.Reals = s.Reals[:1] })},
			actual:  []Service{with(api(), func(s *Service) { s.Reals = s.Reals[:1] })},
			want: []Op{
				{Kind: UpdateReal, Service: bs(with(api(), func(s *Service) { s.Forward = DR })), Real: Real{Addr: a("192.0.2.11"), Port: 6443, Weight: 1, Forward: DR}},
			},
		},
		{
			name:    "forwarding method of one real in the kernel differs",
			desired: []Service{with(api(), func(s *Service) { s.Reals = s.Reals[:2] })},
			actual:  []Service{with(api(), func(s *Service) { s.Reals = s.Reals[:2]; s.Reals[1].Forward = Tunnel })},
			want: []Op{
				{Kind: UpdateReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.12"), Port: 6443, Weight: 1, Forward: NAT}},
			},
		},
		{
			name:    "real added and real removed",
			desired: []Service{with(api(), func(s *Service) { s.Reals = append(s.Reals[1:], Real{Addr: a("192.0.2.14"), Weight: 1}) })},
			actual:  []Service{api()},
			want: []Op{
				{Kind: DelReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.11"), Port: 6443, Weight: 1, Forward: NAT}},
				{Kind: AddReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.14"), Port: 6443, Weight: 1, Forward: NAT}},
			},
		},
		{
			name:    "real on another port is another real",
			desired: []Service{with(api(), func(s *Service) { s.Reals = []Real{{Addr: a("192.0.2.11"), Port: 6444, Weight: 1}} })},
			actual:  []Service{with(api(), func(s *Service) { s.Reals = s.Reals[:1] })},
			want: []Op{
				{Kind: DelReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.11"), Port: 6443, Weight: 1, Forward: NAT}},
				{Kind: AddReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.11"), Port: 6444, Weight: 1, Forward: NAT}},
			},
		},
		{
			name:   "owned service no longer desired is deleted",
			actual: []Service{api(), ingress},
			owned:  ownKeys("tcp/192.0.2.100:443"),
			want:   []Op{{Kind: DelService, Service: bs(ingress)}},
		},
		{
			name:    "foreign services are never touched, even on our VIP",
			desired: []Service{api()},
			actual:  []Service{api(), kubeProxy, with(kubeProxy, func(s *Service) { s.VIP = a("10.96.0.1") })},
			owned:   ownKeys("tcp/192.0.2.100:6443"),
		},
		{
			name:   "nil owned owns nothing",
			actual: []Service{api()},
		},
		{
			name:    "a desired service is ours entirely: other reals go",
			desired: []Service{with(kubeProxy, func(s *Service) { s.Reals = nil })},
			actual:  []Service{kubeProxy},
			want:    []Op{{Kind: DelReal, Service: bs(kubeProxy), Real: normalReal(kubeProxy, kubeProxy.Reals[0])}},
		},
		{
			name:    "the first of a duplicate key wins",
			desired: []Service{api(), with(api(), func(s *Service) { s.Scheduler = "lc" })},
			actual:  []Service{api()},
		},
		{
			name: "a duplicate real is added once",
			desired: []Service{with(api(), func(s *Service) {
				s.Reals = []Real{{Addr: a("192.0.2.11"), Weight: 1}, {Addr: a("192.0.2.11"), Port: 6443, Weight: 9}}
			})},
			want: []Op{
				{Kind: AddService, Service: bs(api())},
				{Kind: AddReal, Service: bs(api()), Real: Real{Addr: a("192.0.2.11"), Port: 6443, Weight: 1, Forward: NAT}},
			},
		},
		{
			name:    "service updated and reals changed together",
			desired: []Service{with(api(), func(s *Service) { s.Scheduler = "lc"; s.Reals[1].Weight = 7 })},
			actual:  []Service{api()},
			want: []Op{
				{Kind: UpdateService, Service: bs(with(api(), func(s *Service) { s.Scheduler = "lc" }))},
				{Kind: UpdateReal, Service: bs(with(api(), func(s *Service) { s.Scheduler = "lc" })), Real: Real{Addr: a("192.0.2.12"), Port: 6443, Weight: 7, Forward: NAT}},
			},
		},
	}
	var golden strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.desired, tt.actual, tt.owned)
			if diff := cmp.Diff(tt.want, got.Ops, cmpAddr); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			fmt.Fprintf(&golden, "# %s\n%s\n", tt.name, got)

			// Applying the plan converges: a second Diff is empty.
			m := newMemTable(tt.actual...)
			if err := m.Apply(context.Background(), got); err != nil {
				t.Fatalf("applying the plan: %v", err)
			}
			after, _ := m.Services(context.Background())
			if again := Diff(tt.desired, after, tt.owned); !again.Empty() {
				t.Errorf("second Diff not empty:\n%s", again)
			}
		})
	}
	checkGolden(t, golden.String())
}

// checkGolden compares got with testdata/<TestName>.golden, rewriting it
// with -update.
func checkGolden(t *testing.T, got string) {
	t.Helper()
	p := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", p, diff)
	}
}

func TestDiffDoesNotModifyInputs(t *testing.T) {
	desired := []Service{{VIP: vip4, Port: 80, Protocol: TCP, Reals: []Real{{Addr: a("192.0.2.2")}, {Addr: a("192.0.2.1")}}}}
	before := fmt.Sprint(desired)
	Diff(desired, nil, nil)
	if after := fmt.Sprint(desired); after != before {
		t.Errorf("desired changed: %s -> %s", before, after)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		s    Service
		want string
	}{
		{"ipv4 tcp", Service{VIP: vip4, Port: 6443, Protocol: TCP}, "tcp/192.0.2.100:6443"},
		{"ipv6 udp", Service{VIP: vip6, Port: 53, Protocol: UDP}, "udp/[2001:db8::100]:53"},
		{"sctp", Service{VIP: vip4, Port: 3868, Protocol: SCTP}, "sctp/192.0.2.100:3868"},
		{"unknown protocol", Service{VIP: vip4, Port: 1, Protocol: 99}, "proto-99/192.0.2.100:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Key(); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       Service
		wantErr []string // substrings; none means valid
	}{
		{name: "valid", s: api()},
		{name: "valid ipv6 with everything", s: Service{VIP: vip6, Port: 53, Protocol: SCTP, Scheduler: "mh", Persistence: time.Minute, Flags: FlagSched1, Forward: Tunnel,
			Reals: []Real{{Addr: a("2001:db8::1"), Weight: MaxWeight, Forward: DR}}}},
		{name: "no vip", s: Service{Port: 1, Protocol: TCP}, wantErr: []string{"ipvs: service tcp/invalid AddrPort: vip invalid IP: must be a plain"}},
		{name: "mapped vip", s: Service{VIP: a("::ffff:192.0.2.1"), Port: 1, Protocol: TCP}, wantErr: []string{"vip ::ffff:192.0.2.1"}},
		{name: "port 0 and protocol", s: Service{VIP: vip4, Protocol: 1}, wantErr: []string{"protocol proto-1", "port 0"}},
		{name: "scheduler", s: Service{VIP: vip4, Port: 1, Protocol: TCP, Scheduler: "fo"}, wantErr: []string{`scheduler "fo"`}},
		{name: "persistence", s: Service{VIP: vip4, Port: 1, Protocol: TCP, Persistence: 1500 * time.Millisecond}, wantErr: []string{"persistence 1.5s: must be whole seconds"}},
		{name: "flags", s: Service{VIP: vip4, Port: 1, Protocol: TCP, Flags: flagPersistent}, wantErr: []string{"flags 0x1"}},
		{name: "forward", s: Service{VIP: vip4, Port: 1, Protocol: TCP, Forward: Local}, wantErr: []string{"forwarding method local"}},
		{name: "reals", s: Service{VIP: vip4, Port: 1, Protocol: TCP, Reals: []Real{
			{Addr: a("2001:db8::1"), Weight: 1},
			{Addr: a("192.0.2.1"), Weight: -1},
			{Addr: a("192.0.2.2"), Weight: MaxWeight + 1},
			{Addr: a("192.0.2.1"), Port: 1, Forward: Local},
		}}, wantErr: []string{
			"reals[0] 2001:db8::1: must be a plain address of the VIP's family",
			"reals[1] weight -1: must be 0-65535",
			"reals[2] weight 65536",
			"reals[3] forwarding method local",
			"reals[3] 192.0.2.1:1: duplicate real server",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Protocol
	}{{"tcp", TCP}, {"UDP", UDP}, {"sctp", SCTP}} {
		if got, err := ParseProtocol(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseProtocol("icmp"); err == nil {
		t.Error("ParseProtocol(icmp) succeeded")
	}
}

// TestDiffHashingOrder: the reals of a hashing service (mh, sh) end up in
// the kernel in ascending order, whatever order the kernel has them in,
// with the fewest re-adds; a drained real is added with its nominal weight
// and drained; other schedulers never reorder.
func TestDiffHashingOrder(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.AddrPortFrom(a(s), 80) }
	real := func(s string, w int) Real { return Real{Addr: a(s), Port: 80, Weight: w, Nominal: 1, Forward: DR} }
	svc := func(sched string, inserted []string, reals ...Real) Service {
		s := Service{VIP: vip4, Port: 80, Protocol: TCP, Scheduler: sched, Flags: FlagSched1 | FlagSched2, Forward: DR, Reals: reals}
		for _, x := range inserted {
			s.Inserted = append(s.Inserted, ap(x))
		}
		return s
	}
	bs := bare(svc("mh", nil).normal())
	rr := bare(svc("rr", nil).normal())
	add := func(s Service, r Real) Op { return Op{Kind: AddReal, Service: s, Real: r} }
	upd := func(s Service, r Real) Op { return Op{Kind: UpdateReal, Service: s, Real: r} }
	del := func(s Service, r Real) Op { r.Nominal = 0; return Op{Kind: DelReal, Service: s, Real: r} }
	r11, r12, r13, r10 := real("192.0.2.11", 1), real("192.0.2.12", 1), real("192.0.2.13", 1), real("192.0.2.10", 1)
	drained12 := real("192.0.2.12", 0)
	drained12.Nominal = 3
	added12 := drained12
	added12.Weight = 3
	kernel := func(r Real) Real { r.Nominal = 0; return r }

	tests := []struct {
		name            string
		desired, actual Service
		want            []Op
	}{
		{
			name:    "from empty: in order, the drained real added with its nominal weight then drained",
			desired: svc("mh", nil, r13, drained12, r11),
			want: []Op{
				{Kind: AddService, Service: bs},
				add(bs, r11), {Kind: AddReal, Service: bs, Real: added12}, upd(bs, drained12), add(bs, r13),
			},
		},
		{
			name:    "in order: nothing to do",
			desired: svc("mh", nil, r11, r12, r13),
			actual:  svc("mh", []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"}, kernel(r11), kernel(r12), kernel(r13)),
		},
		{
			name:    "a real that sorts last is added",
			desired: svc("mh", nil, r11, r12, r13),
			actual:  svc("mh", []string{"192.0.2.11", "192.0.2.12"}, kernel(r11), kernel(r12)),
			want:    []Op{add(bs, r13)},
		},
		{
			name:    "a real that sorts first: every real after it is added again",
			desired: svc("mh", nil, r11, r12, r13),
			actual:  svc("mh", []string{"192.0.2.12", "192.0.2.13"}, kernel(r12), kernel(r13)),
			want:    []Op{add(bs, r11), del(bs, r12), add(bs, r12), del(bs, r13), add(bs, r13)},
		},
		{
			name:    "out of order: only the reals out of place are added again",
			desired: svc("mh", nil, r11, r12, r13),
			actual:  svc("mh", []string{"192.0.2.13", "192.0.2.11", "192.0.2.12"}, kernel(r11), kernel(r12), kernel(r13)),
			want:    []Op{del(bs, r13), add(bs, r13)},
		},
		{
			name:    "a real removed from the middle: the others stay",
			desired: svc("mh", nil, r11, r13),
			actual:  svc("mh", []string{"192.0.2.11", "192.0.2.10", "192.0.2.13"}, kernel(r10), kernel(r11), kernel(r13)),
			want:    []Op{del(bs, r10)},
		},
		{
			name:    "drained in place: weight 0, never removed",
			desired: svc("mh", nil, r11, drained12, r13),
			actual:  svc("mh", []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"}, kernel(r11), kernel(r12), kernel(r13)),
			want:    []Op{upd(bs, drained12)},
		},
		{
			name:    "rr never reorders",
			desired: svc("rr", nil, r11, r12, r13),
			actual:  svc("rr", []string{"192.0.2.13", "192.0.2.12"}, kernel(r12), kernel(r13)),
			want:    []Op{add(rr, r11)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var actual []Service
			if tt.actual.VIP.IsValid() {
				actual = []Service{tt.actual}
			}
			got := Diff([]Service{tt.desired}, actual, ownAll)
			if diff := cmp.Diff(tt.want, got.Ops, cmpAddr, cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })); diff != "" {
				t.Errorf("Diff() ops (-want +got):\n%s\n%s", diff, got)
			}
		})
	}
}

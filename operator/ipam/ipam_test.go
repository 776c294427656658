package ipam

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func mustRange(t *testing.T, s string) Range {
	t.Helper()
	r, err := ParseAddress(s)
	if err != nil {
		t.Fatalf("ParseAddress(%q): %v", s, err)
	}
	return r
}

func pool(t *testing.T, name string, auto bool, addrs ...string) Pool {
	t.Helper()
	p := Pool{Name: name, AutoAssign: auto}
	for _, a := range addrs {
		p.Ranges = append(p.Ranges, mustRange(t, a))
	}
	return p
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in          string
		first, last string
		size        uint64
		err         string
	}{
		{in: "192.0.2.0/24", first: "192.0.2.0", last: "192.0.2.255", size: 256},
		{in: "192.0.2.7/32", first: "192.0.2.7", last: "192.0.2.7", size: 1},
		{in: "2001:db8::/120", first: "2001:db8::", last: "2001:db8::ff", size: 256},
		{in: "2001:db8::/64", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff", size: math.MaxUint64},
		{in: "::/0", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", size: math.MaxUint64},
		{in: "192.0.2.10-192.0.2.50", first: "192.0.2.10", last: "192.0.2.50", size: 41},
		{in: "192.0.2.10-192.0.2.10", first: "192.0.2.10", last: "192.0.2.10", size: 1},
		{in: "2001:db8::10-2001:db8::1:0", first: "2001:db8::10", last: "2001:db8::1:0", size: 0x10000 - 0x10 + 1},
		{in: "192.0.2.1/24", err: "host bits set: write 192.0.2.0/24"},
		{in: "192.0.2.50-192.0.2.10", err: "start 192.0.2.50 is after end 192.0.2.10"},
		{in: "2001:db8::2-2001:db8::1", err: "is after end"},
		{in: "192.0.2.1-2001:db8::1", err: "one family"},
		{in: "192.0.2.1-x", err: "end"},
		{in: "192.0.2.1", err: "neither a CIDR"},
		{in: "::ffff:192.0.2.0/120", err: "IPv4-mapped"},
		{in: "fe80::1%eth0-fe80::2", err: "zone"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseAddress(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.First != ip(tt.first) || r.Last != ip(tt.last) {
				t.Errorf("got %s, want %s-%s", r, tt.first, tt.last)
			}
			if r.Size() != tt.size {
				t.Errorf("Size = %d, want %d", r.Size(), tt.size)
			}
		})
	}
}

func TestUsableAvoidBuggy(t *testing.T) {
	tests := []struct {
		addrs  []string
		avoid  bool
		usable uint64
	}{
		{addrs: []string{"192.0.2.0/24"}, usable: 256},
		{addrs: []string{"192.0.2.0/24"}, avoid: true, usable: 254},
		{addrs: []string{"192.0.2.0/23"}, avoid: true, usable: 508},
		{addrs: []string{"192.0.2.255-192.0.3.0"}, avoid: true, usable: 0},
		{addrs: []string{"192.0.2.254-192.0.3.1"}, avoid: true, usable: 2},
		{addrs: []string{"0.0.0.0/0"}, avoid: true, usable: 1<<32 - 2*(1<<24)},
		{addrs: []string{"2001:db8::/120"}, avoid: true, usable: 256},
		{addrs: []string{"2001:db8::/64", "2001:db9::/64"}, usable: math.MaxUint64},
	}
	for _, tt := range tests {
		p := pool(t, "p", true, tt.addrs...)
		p.AvoidBuggyIPs = tt.avoid
		if got := p.Usable(); got != tt.usable {
			t.Errorf("%v avoid=%v: Usable = %d, want %d", tt.addrs, tt.avoid, got, tt.usable)
		}
	}
}

func TestOverlap(t *testing.T) {
	a := pool(t, "a", true, "192.0.2.0/24", "2001:db8::/120")
	tests := []struct {
		b    []string
		want string
	}{
		{b: []string{"192.0.3.0/24"}},
		{b: []string{"2001:db8::100-2001:db8::1ff"}},
		{b: []string{"192.0.2.250-192.0.3.5"}, want: "192.0.2.250-192.0.2.255"},
		{b: []string{"192.0.2.128/25"}, want: "192.0.2.128-192.0.2.255"},
		{b: []string{"2001:db8::f0-2001:db8::1:0"}, want: "2001:db8::f0-2001:db8::ff"},
		// 192.0.2.0 as IPv4-in-IPv6 is another family: no overlap.
		{b: []string{"::c000:200/120"}},
	}
	for _, tt := range tests {
		b := pool(t, "b", true, tt.b...)
		r, ok := Overlap(&a, &b)
		if (tt.want != "") != ok || (ok && r.String() != tt.want) {
			t.Errorf("Overlap(a, %v) = %v, %v; want %q", tt.b, r, ok, tt.want)
		}
	}
}

// step is one operation of an allocation scenario.
type step struct {
	svc     string
	req     Request
	release bool
	want    []string // the addresses, or nil when an error is expected
	reason  Reason
	msg     string // part of the error message
}

func TestAllocate(t *testing.T) {
	v4 := []Family{IPv4}
	v6 := []Family{IPv6}
	dual := []Family{IPv4, IPv6}
	tcp := func(ports ...int32) []Port {
		var out []Port
		for _, p := range ports {
			out = append(out, Port{"TCP", p})
		}
		return out
	}
	tests := []struct {
		name  string
		pools func(t *testing.T) []Pool
		steps []step
	}{{
		name: "lowest free, in pool order, then the next pool",
		pools: func(t *testing.T) []Pool {
			return []Pool{pool(t, "a", true, "192.0.2.1-192.0.2.2"), pool(t, "b", true, "198.51.100.0/31")}
		},
		steps: []step{
			{svc: "s1", req: Request{Families: v4, Ports: tcp(80)}, want: []string{"192.0.2.1"}},
			{svc: "s2", req: Request{Families: v4, Ports: tcp(80)}, want: []string{"192.0.2.2"}},
			{svc: "s3", req: Request{Families: v4, Ports: tcp(80)}, want: []string{"198.51.100.0"}},
			{svc: "s4", req: Request{Families: v4, Ports: tcp(80)}, want: []string{"198.51.100.1"}},
			{svc: "s5", req: Request{Families: v4, Ports: tcp(80)}, reason: ReasonPoolExhausted, msg: "no free IPv4 address in IPPool a, b"},
			{svc: "s2", release: true},
			{svc: "s5", req: Request{Families: v4, Ports: tcp(80)}, want: []string{"192.0.2.2"}},
		},
	}, {
		name: "avoid buggy IPs",
		pools: func(t *testing.T) []Pool {
			p := pool(t, "a", true, "192.0.2.254-192.0.3.1")
			p.AvoidBuggyIPs = true
			return []Pool{p}
		},
		steps: []step{
			{svc: "s1", req: Request{Families: v4}, want: []string{"192.0.2.254"}},
			{svc: "s2", req: Request{Families: v4}, want: []string{"192.0.3.1"}},
			{svc: "s3", req: Request{Families: v4}, reason: ReasonPoolExhausted},
		},
	}, {
		name: "families",
		pools: func(t *testing.T) []Pool {
			return []Pool{pool(t, "v4", true, "192.0.2.0/30"), pool(t, "v6", true, "2001:db8::/126")}
		},
		steps: []step{
			{svc: "a", req: Request{Families: v6}, want: []string{"2001:db8::"}},
			{svc: "b", req: Request{Families: dual}, want: []string{"192.0.2.0", "2001:db8::1"}},
			{svc: "c", req: Request{Families: []Family{IPv6, IPv4}}, want: []string{"2001:db8::2", "192.0.2.1"}},
		},
	}, {
		name:  "dual stack: required vs preferred",
		pools: func(t *testing.T) []Pool { return []Pool{pool(t, "v4", true, "192.0.2.0/30")} },
		steps: []step{
			{svc: "req", req: Request{Families: dual}, reason: ReasonNoPool, msg: "no IPPool with IPv6 addresses"},
			{svc: "pref", req: Request{Families: dual, Optional: true}, want: []string{"192.0.2.0"}},
			// the failed RequireDualStack Service holds nothing
			{svc: "next", req: Request{Families: v4}, want: []string{"192.0.2.1"}},
		},
	}, {
		name:  "requested addresses",
		pools: func(t *testing.T) []Pool { return []Pool{pool(t, "a", true, "192.0.2.0/24", "2001:db8::/120")} },
		steps: []step{
			{svc: "s1", req: Request{Families: v4, Requested: []netip.Addr{ip("192.0.2.77")}}, want: []string{"192.0.2.77"}},
			{svc: "s2", req: Request{Families: v4, Requested: []netip.Addr{ip("192.0.2.77")}}, reason: ReasonIPTaken, msg: "192.0.2.77 is used by s1"},
			{svc: "s3", req: Request{Families: v4, Requested: []netip.Addr{ip("198.51.100.1")}}, reason: ReasonIPOutsidePools, msg: "198.51.100.1 is in no usable IPPool"},
			{svc: "s4", req: Request{Families: dual, Requested: []netip.Addr{ip("2001:db8::9")}}, want: []string{"192.0.2.0", "2001:db8::9"}},
			{svc: "s5", req: Request{Families: v4, Requested: []netip.Addr{ip("2001:db8::8")}}, reason: ReasonInvalidRequest, msg: "is IPv6 but the Service's ipFamilies are [IPv4]"},
			{svc: "s6", req: Request{Families: v4, Requested: []netip.Addr{ip("192.0.2.8"), ip("192.0.2.9")}}, reason: ReasonInvalidRequest, msg: "more than one IPv4"},
		},
	}, {
		name: "named pool, autoAssign false",
		pools: func(t *testing.T) []Pool {
			return []Pool{pool(t, "auto", true, "192.0.2.0/31"), pool(t, "manual", false, "198.51.100.0/31")}
		},
		steps: []step{
			{svc: "s1", req: Request{Families: v4, Pool: "manual"}, want: []string{"198.51.100.0"}},
			{svc: "s2", req: Request{Families: v4}, want: []string{"192.0.2.0"}},
			{svc: "s3", req: Request{Families: v4}, want: []string{"192.0.2.1"}},
			{svc: "s4", req: Request{Families: v4}, reason: ReasonPoolExhausted, msg: "IPPool auto"},
			{svc: "s5", req: Request{Families: v4, Requested: []netip.Addr{ip("198.51.100.1")}}, want: []string{"198.51.100.1"}},
			{svc: "s6", req: Request{Families: v4, Pool: "nope"}, reason: ReasonUnknownPool, msg: `IPPool "nope"`},
			{svc: "s7", req: Request{Families: v4, Pool: "auto", Requested: []netip.Addr{ip("198.51.100.1")}}, reason: ReasonIPOutsidePools, msg: `not in IPPool "auto"`},
			{svc: "s8", req: Request{Families: v6, Pool: "auto"}, reason: ReasonNoPool, msg: `IPPool "auto" has no IPv6`},
		},
	}, {
		name: "selectors",
		pools: func(t *testing.T) []Pool {
			return []Pool{pool(t, "a-team", true, "192.0.2.0/31"), pool(t, "b-all", true, "198.51.100.0/31")}
		},
		steps: []step{
			{svc: "s1", req: Request{Families: v4, Admits: func(p string) bool { return p != "a-team" }}, want: []string{"198.51.100.0"}},
			{svc: "s2", req: Request{Families: v4, Admits: func(p string) bool { return p != "a-team" }, Pool: "a-team"}, reason: ReasonPoolNotAllowed},
			{svc: "s3", req: Request{Families: v4, Admits: func(p string) bool { return p != "a-team" }, Requested: []netip.Addr{ip("192.0.2.1")}}, reason: ReasonPoolNotAllowed, msg: `in IPPool "a-team", which does not admit`},
			{svc: "s4", req: Request{Families: v4, Admits: func(string) bool { return false }}, reason: ReasonNoPool},
		},
	}, {
		name:  "sharing",
		pools: func(t *testing.T) []Pool { return []Pool{pool(t, "a", true, "192.0.2.0/30")} },
		steps: []step{
			{svc: "web", req: Request{Families: v4, SharingKey: "k", Ports: tcp(80)}, want: []string{"192.0.2.0"}},
			// same key, other port: joins the shared address
			{svc: "tls", req: Request{Families: v4, SharingKey: "k", Ports: tcp(443)}, want: []string{"192.0.2.0"}},
			// UDP 80 is another protocol: no collision
			{svc: "dns", req: Request{Families: v4, SharingKey: "k", Ports: []Port{{"UDP", 80}}}, want: []string{"192.0.2.0"}},
			// same key, colliding port: automatic allocation takes another address
			{svc: "web2", req: Request{Families: v4, SharingKey: "k", Ports: tcp(80)}, want: []string{"192.0.2.1"}},
			// requested shared address with a colliding port: refused
			{svc: "web3", req: Request{Families: v4, SharingKey: "k", Ports: tcp(443), Requested: []netip.Addr{ip("192.0.2.0")}}, reason: ReasonPortCollision, msg: "192.0.2.0 is shared with tls, which already uses port TCP/443"},
			// another key: taken
			{svc: "x", req: Request{Families: v4, SharingKey: "other", Ports: tcp(8080), Requested: []netip.Addr{ip("192.0.2.0")}}, reason: ReasonIPTaken},
			// no key: taken
			{svc: "y", req: Request{Families: v4, Ports: tcp(8080), Requested: []netip.Addr{ip("192.0.2.0")}}, reason: ReasonIPTaken},
			// the address stays in use until the last sharer goes
			{svc: "web", release: true},
			{svc: "tls", release: true},
			{svc: "z", req: Request{Families: v4}, want: []string{"192.0.2.2"}},
			{svc: "dns", release: true},
			{svc: "z2", req: Request{Families: v4}, want: []string{"192.0.2.0"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.pools(t))
			for i, s := range tt.steps {
				if s.release {
					a.Release(s.svc)
					continue
				}
				got, err := a.Allocate(s.svc, s.req)
				if s.want == nil {
					if err == nil {
						t.Fatalf("step %d (%s): got %v, want error %s", i, s.svc, got, s.reason)
					}
					if ErrorReason(err) != s.reason || !strings.Contains(err.Error(), s.msg) {
						t.Fatalf("step %d (%s): err = %s: %v; want %s containing %q", i, s.svc, ErrorReason(err), err, s.reason, s.msg)
					}
					if len(a.Addresses(s.svc)) != 0 {
						t.Fatalf("step %d (%s): failed but holds %v", i, s.svc, a.Addresses(s.svc))
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.svc, err)
				}
				var gs []string
				for _, g := range got {
					gs = append(gs, g.String())
				}
				if strings.Join(gs, ",") != strings.Join(s.want, ",") {
					t.Fatalf("step %d (%s): got %v, want %v", i, s.svc, gs, s.want)
				}
			}
		})
	}
}

func TestAssignAndInUse(t *testing.T) {
	a := New([]Pool{pool(t, "a", true, "192.0.2.0/30"), pool(t, "b", true, "2001:db8::/126")})
	if err := a.Assign("s1", []netip.Addr{ip("192.0.2.2")}, "", nil); err != nil {
		t.Fatal(err)
	}
	// a second claim of the same address without a key is refused
	if err := a.Assign("s2", []netip.Addr{ip("192.0.2.2")}, "", nil); ErrorReason(err) != ReasonIPTaken {
		t.Fatalf("second claim: %v, want IPTaken", err)
	}
	// an address outside the pools may be replayed (the pool may be gone)
	if err := a.Assign("s3", []netip.Addr{ip("203.0.113.1")}, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Assign("s4", []netip.Addr{ip("192.0.2.3"), ip("2001:db8::1")}, "k", []Port{{"TCP", 80}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Assign("s5", []netip.Addr{ip("192.0.2.3")}, "k", []Port{{"TCP", 80}}); ErrorReason(err) != ReasonPortCollision {
		t.Fatalf("colliding claim: %v, want PortCollision", err)
	}
	if got := a.InUse("a"); got != 2 {
		t.Errorf("InUse(a) = %d, want 2", got)
	}
	if got := a.InUse("b"); got != 1 {
		t.Errorf("InUse(b) = %d, want 1", got)
	}
	got, err := a.Allocate("s6", Request{Families: []Family{IPv4}})
	if err != nil || got[0] != ip("192.0.2.0") {
		t.Fatalf("Allocate after Assign = %v, %v", got, err)
	}
	if a.PoolOf(ip("2001:db8::3")) != "b" || a.PoolOf(ip("203.0.113.1")) != "" {
		t.Error("PoolOf")
	}
}

// BenchmarkRebuild is what one reconcile of the allocator does with 500
// Services holding addresses: a new Allocator, every address replayed,
// then one new Service allocated.
func BenchmarkRebuild(b *testing.B) {
	r, err := ParseAddress("10.0.0.0/22")
	if err != nil {
		b.Fatal(err)
	}
	pools := []Pool{{Name: "p", Ranges: []Range{r}, AutoAssign: true, AvoidBuggyIPs: true}}
	held := make([]netip.Addr, 500)
	a := New(pools)
	for i := range held {
		got, err := a.Allocate(fmt.Sprint("s", i), Request{Families: []Family{IPv4}})
		if err != nil {
			b.Fatal(err)
		}
		held[i] = got[0]
	}
	ports := []Port{{"TCP", 80}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := New(pools)
		for j, addr := range held {
			if err := a.Assign(fmt.Sprint("s", j), []netip.Addr{addr}, "", ports); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := a.Allocate("new", Request{Families: []Family{IPv4}, Ports: ports}); err != nil {
			b.Fatal(err)
		}
	}
}

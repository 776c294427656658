// Package ipam allocates the addresses of Services of type LoadBalancer
// from IP pools: pure logic, without the Kubernetes API, so that its rules
// are table tests. The controller (package lbservice) builds an Allocator
// from the IPPools, replays the addresses it gave before (Assign), then
// allocates for the Services that have none (Allocate).
//
// The rules:
//   - an address belongs to at most one Service, unless every Service using
//     it carries the same non-empty sharing key and no two of them use the
//     same protocol and port;
//   - automatic allocation takes, family by family, the lowest free address
//     of the first pool (in the order given, by name) that admits the
//     Service and has one; a Service with a sharing key first reuses an
//     address already shared under its key when its ports fit;
//   - with avoidBuggyIPs, IPv4 addresses ending in .0 or .255 are never
//     handed out automatically nor counted as available.
package ipam

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
)

// Range is an inclusive range of addresses of one family.
type Range struct {
	// First and Last are the range's ends, First <= Last, of one family.
	First, Last netip.Addr
}

// Contains reports whether a is in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps reports whether r and o have an address in common.
func (r Range) Overlaps(o Range) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// String is the range as an IPPool writes it.
func (r Range) String() string {
	return r.First.String() + "-" + r.Last.String()
}

// Size is the number of addresses in r, at most math.MaxUint64.
func (r Range) Size() uint64 {
	return diff(r.First, r.Last) + 1 // saturates in diff
}

// diff returns b - a for a <= b, at most math.MaxUint64 - 1 (so that
// adding one does not wrap).
func diff(a, b netip.Addr) uint64 {
	x, y := a.As16(), b.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(y[i])
		lo = lo<<8 | uint64(y[8+i])
	}
	var xhi, xlo uint64
	for i := 0; i < 8; i++ {
		xhi = xhi<<8 | uint64(x[i])
		xlo = xlo<<8 | uint64(x[8+i])
	}
	borrow := uint64(0)
	if lo < xlo {
		borrow = 1
	}
	dlo := lo - xlo
	dhi := hi - xhi - borrow
	if dhi != 0 || dlo == math.MaxUint64 {
		return math.MaxUint64 - 1
	}
	return dlo
}

// buggy counts the IPv4 addresses of r that end in .0 or .255.
func (r Range) buggy() uint64 {
	if !r.First.Is4() {
		return 0
	}
	f, l := v4(r.First), v4(r.Last)
	// count of x in [0, n] with x%256 == 0, resp. == 255.
	zeros := func(n uint64) uint64 { return n/256 + 1 }
	bcast := func(n uint64) uint64 { return (n + 1) / 256 }
	n := zeros(l) + bcast(l)
	if f > 0 {
		n -= zeros(f-1) + bcast(f-1)
	}
	return n
}

func v4(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// Buggy reports whether a is an IPv4 address ending in .0 or .255.
func Buggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	last := a.As4()[3]
	return last == 0 || last == 255
}

// ParseAddress parses one entry of an IPPool's addresses: a CIDR without
// host bits, or a range "first-last" of one family with first <= last.
// IPv4-mapped IPv6 addresses and zones are refused.
func ParseAddress(s string) (Range, error) {
	if first, last, ok := strings.Cut(s, "-"); ok {
		f, err := parseAddr(strings.TrimSpace(first))
		if err != nil {
			return Range{}, fmt.Errorf("range %q: start: %w", s, err)
		}
		l, err := parseAddr(strings.TrimSpace(last))
		if err != nil {
			return Range{}, fmt.Errorf("range %q: end: %w", s, err)
		}
		if f.BitLen() != l.BitLen() {
			return Range{}, fmt.Errorf("range %q: start and end must be of one family (both IPv4 or both IPv6)", s)
		}
		if f.Compare(l) > 0 {
			return Range{}, fmt.Errorf("range %q: start %s is after end %s", s, f, l)
		}
		return Range{First: f, Last: l}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Range{}, fmt.Errorf("%q is neither a CIDR (192.0.2.0/24) nor a range (192.0.2.10-192.0.2.50): %w", s, err)
	}
	if p.Addr().Is4In6() {
		return Range{}, fmt.Errorf("CIDR %q: IPv4-mapped IPv6 addresses are not allowed: write the IPv4 CIDR", s)
	}
	if p.Masked() != p {
		return Range{}, fmt.Errorf("CIDR %q has host bits set: write %s", s, p.Masked())
	}
	return Range{First: p.Addr(), Last: lastOf(p)}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s: an address with a zone is not allowed", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%s: IPv4-mapped IPv6 addresses are not allowed: write the IPv4 address", s)
	}
	return a, nil
}

// lastOf returns the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Family is an address family.
type Family int

// The families, named as a Service's spec.ipFamilies names them.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String is "IPv4" or "IPv6".
func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// Pool is an IP pool as the allocator sees it.
type Pool struct {
	// Name is the pool's name.
	Name string
	// Ranges are its addresses.
	Ranges []Range
	// AutoAssign lets Allocate take addresses for Services that neither
	// name the pool nor request an address.
	AutoAssign bool
	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255.
	AvoidBuggyIPs bool
}

// Contains reports whether a is one of the pool's addresses.
func (p *Pool) Contains(a netip.Addr) bool {
	for _, r := range p.Ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// has reports whether the pool has addresses of family f.
func (p *Pool) has(f Family) bool {
	for _, r := range p.Ranges {
		if FamilyOf(r.First) == f {
			return true
		}
	}
	return false
}

// Usable is the number of addresses the pool can hand out (without the
// buggy ones when it avoids them), at most math.MaxUint64.
func (p *Pool) Usable() uint64 {
	var n uint64
	for _, r := range p.Ranges {
		s := r.Size()
		if p.AvoidBuggyIPs {
			s -= r.buggy()
		}
		if n+s < n {
			return math.MaxUint64
		}
		n += s
	}
	return n
}

// Overlap returns an address range that two pools have in common, if any.
func Overlap(a, b *Pool) (Range, bool) {
	for _, x := range a.Ranges {
		for _, y := range b.Ranges {
			if x.Overlaps(y) {
				f, l := x.First, x.Last
				if y.First.Compare(f) > 0 {
					f = y.First
				}
				if y.Last.Compare(l) < 0 {
					l = y.Last
				}
				return Range{First: f, Last: l}, true
			}
		}
	}
	return Range{}, false
}

// Port is a protocol and port of a Service: two Services sharing an
// address must not have one in common.
type Port struct {
	Protocol string
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Reason is why an allocation failed, as a Kubernetes condition reason.
type Reason string

// The reasons of Error.
const (
	// ReasonPoolExhausted: no pool that admits the Service has a free
	// address of the family.
	ReasonPoolExhausted Reason = "PoolExhausted"
	// ReasonNoPool: no pool admits the Service with an address of the
	// family (none has the family, none selects the Service, or none
	// assigns automatically).
	ReasonNoPool Reason = "NoMatchingPool"
	// ReasonUnknownPool: the pool named by the Service does not exist or
	// hands out no address (it overlaps an older pool).
	ReasonUnknownPool Reason = "UnknownPool"
	// ReasonPoolNotAllowed: the pool named by the Service (or that holds
	// the requested address) does not admit it.
	ReasonPoolNotAllowed Reason = "PoolNotAllowed"
	// ReasonIPOutsidePools: a requested address is in no usable pool.
	ReasonIPOutsidePools Reason = "IPOutsidePools"
	// ReasonIPTaken: a requested address is used by another Service that
	// does not share it (no common sharing key).
	ReasonIPTaken Reason = "IPTaken"
	// ReasonPortCollision: the address would be shared with a Service of
	// the same sharing key that uses one of the same protocol and ports.
	ReasonPortCollision Reason = "PortCollision"
	// ReasonInvalidRequest: the Service's annotations or families cannot
	// be satisfied as written (a bad address, two of one family, a family
	// the Service does not have).
	ReasonInvalidRequest Reason = "InvalidRequest"
)

// Error is a failed allocation: a reason for conditions and metrics, and a
// message for people.
type Error struct {
	Reason  Reason
	Message string
}

func (e *Error) Error() string { return e.Message }

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Message: fmt.Sprintf(format, args...)}
}

// Request is what a Service asks for.
type Request struct {
	// Families are the families to allocate, the primary first (the
	// Service's spec.ipFamilies, cut to one for SingleStack).
	Families []Family
	// Optional marks the families after the first as best effort
	// (PreferDualStack): one that no pool offers is left out.
	Optional bool
	// Requested are the addresses asked for, at most one per family; the
	// families without one are allocated.
	Requested []netip.Addr
	// Pool is the name of the pool to take addresses from ("" for any
	// that admits the Service and assigns automatically).
	Pool string
	// SharingKey lets the Service share an address with Services of the
	// same key ("" for none).
	SharingKey string
	// Ports are the Service's protocols and ports.
	Ports []Port
	// Admits reports whether the named pool admits the Service (its
	// namespace and Service selectors). Nil admits every pool.
	Admits func(pool string) bool
}

// use is the users of one address.
type use struct {
	key      string
	services map[string][]Port
}

// Allocator holds the pools and who uses which address.
type Allocator struct {
	pools  []*Pool
	byName map[string]*Pool
	used   map[netip.Addr]*use
	bySvc  map[string][]netip.Addr
}

// New returns an allocator for pools, tried in the given order.
func New(pools []Pool) *Allocator {
	a := &Allocator{byName: map[string]*Pool{}, used: map[netip.Addr]*use{}, bySvc: map[string][]netip.Addr{}}
	for i := range pools {
		p := pools[i]
		a.pools = append(a.pools, &p)
		a.byName[p.Name] = &p
	}
	return a
}

// PoolOf returns the name of the first pool containing addr, or "".
func (a *Allocator) PoolOf(addr netip.Addr) string {
	for _, p := range a.pools {
		if p.Contains(addr) {
			return p.Name
		}
	}
	return ""
}

// InUse returns the number of distinct addresses of the named pool that
// are in use.
func (a *Allocator) InUse(pool string) uint64 {
	p := a.byName[pool]
	if p == nil {
		return 0
	}
	var n uint64
	for addr := range a.used {
		if p.Contains(addr) {
			n++
		}
	}
	return n
}

// Addresses returns the addresses given to svc.
func (a *Allocator) Addresses(svc string) []netip.Addr {
	return a.bySvc[svc]
}

// Release frees the addresses of svc (an address stays in use while
// another Service shares it).
func (a *Allocator) Release(svc string) {
	for _, addr := range a.bySvc[svc] {
		u := a.used[addr]
		if u == nil {
			continue
		}
		delete(u.services, svc)
		if len(u.services) == 0 {
			delete(a.used, addr)
		}
	}
	delete(a.bySvc, svc)
}

// check reports why svc may not use addr with key and ports, or nil.
func (a *Allocator) check(svc string, addr netip.Addr, key string, ports []Port) *Error {
	u := a.used[addr]
	if u == nil {
		return nil
	}
	others := make([]string, 0, len(u.services))
	for s := range u.services {
		if s != svc {
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return nil
	}
	sort.Strings(others)
	if key == "" || u.key != key {
		return fail(ReasonIPTaken, "%s is used by %s, which does not share it under the key of annotation vipvs.io/allow-shared-ip (%q)", addr, strings.Join(others, ", "), key)
	}
	for _, o := range others {
		for _, p := range u.services[o] {
			for _, q := range ports {
				if p == q {
					return fail(ReasonPortCollision, "%s is shared with %s, which already uses port %s", addr, o, p)
				}
			}
		}
	}
	return nil
}

// Assign gives svc the addresses addrs, as when they were given before,
// checking only that no other Service holds one without sharing it: they
// need not be in a pool (the pools may have changed; the caller decides).
func (a *Allocator) Assign(svc string, addrs []netip.Addr, key string, ports []Port) error {
	for _, addr := range addrs {
		if err := a.check(svc, addr, key, ports); err != nil {
			return err
		}
	}
	a.take(svc, addrs, key, ports)
	return nil
}

func (a *Allocator) take(svc string, addrs []netip.Addr, key string, ports []Port) {
	a.Release(svc)
	for _, addr := range addrs {
		u := a.used[addr]
		if u == nil {
			u = &use{key: key, services: map[string][]Port{}}
			a.used[addr] = u
		}
		u.services[svc] = ports
	}
	a.bySvc[svc] = append([]netip.Addr(nil), addrs...)
}

// Allocate gives svc addresses for req, one per family, and returns them
// in the order of req.Families; on error svc holds nothing. Addresses svc
// held before are released first.
func (a *Allocator) Allocate(svc string, req Request) ([]netip.Addr, error) {
	a.Release(svc)
	if len(req.Families) == 0 {
		return nil, fail(ReasonInvalidRequest, "the Service has no IP family")
	}
	admits := req.Admits
	if admits == nil {
		admits = func(string) bool { return true }
	}
	requested := map[Family]netip.Addr{}
	for _, r := range req.Requested {
		f := FamilyOf(r)
		if _, dup := requested[f]; dup {
			return nil, fail(ReasonInvalidRequest, "more than one %s address requested (%s and %s): request at most one per family", f, requested[f], r)
		}
		if !hasFamily(req.Families, f) {
			return nil, fail(ReasonInvalidRequest, "requested address %s is %s but the Service's ipFamilies are %v", r, f, req.Families)
		}
		requested[f] = r
	}
	var named *Pool
	if req.Pool != "" {
		named = a.byName[req.Pool]
		if named == nil {
			return nil, fail(ReasonUnknownPool, "IPPool %q (annotation vipvs.io/ip-pool) does not exist or hands out no address", req.Pool)
		}
		if !admits(named.Name) {
			return nil, fail(ReasonPoolNotAllowed, "IPPool %q does not admit the Service (its serviceAllocation selectors)", named.Name)
		}
	}
	var out []netip.Addr
	for i, f := range req.Families {
		var addr netip.Addr
		var err *Error
		if r, ok := requested[f]; ok {
			addr, err = a.requested(svc, r, named, req, admits)
		} else {
			addr, err = a.pick(svc, f, named, req, admits)
		}
		if err != nil {
			if _, asked := requested[f]; i > 0 && req.Optional && !asked && err.Reason == ReasonNoPool {
				continue // PreferDualStack: no pool offers the family
			}
			return nil, err
		}
		out = append(out, addr)
	}
	a.take(svc, out, req.SharingKey, req.Ports)
	return out, nil
}

func hasFamily(fs []Family, f Family) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// requested checks a requested address.
func (a *Allocator) requested(svc string, addr netip.Addr, named *Pool, req Request, admits func(string) bool) (netip.Addr, *Error) {
	var p *Pool
	if named != nil {
		if !named.Contains(addr) {
			return netip.Addr{}, fail(ReasonIPOutsidePools, "requested address %s is not in IPPool %q (annotation vipvs.io/ip-pool)", addr, named.Name)
		}
		p = named
	} else {
		for _, q := range a.pools {
			if q.Contains(addr) {
				p = q
				break
			}
		}
		if p == nil {
			return netip.Addr{}, fail(ReasonIPOutsidePools, "requested address %s is in no usable IPPool", addr)
		}
		if !admits(p.Name) {
			return netip.Addr{}, fail(ReasonPoolNotAllowed, "requested address %s is in IPPool %q, which does not admit the Service (its serviceAllocation selectors)", addr, p.Name)
		}
	}
	if err := a.check(svc, addr, req.SharingKey, req.Ports); err != nil {
		return netip.Addr{}, err
	}
	return addr, nil
}

// pick chooses an address of family f.
func (a *Allocator) pick(svc string, f Family, named *Pool, req Request, admits func(string) bool) (netip.Addr, *Error) {
	var cands []*Pool
	if named != nil {
		cands = []*Pool{named}
	} else {
		for _, p := range a.pools {
			if p.AutoAssign && admits(p.Name) {
				cands = append(cands, p)
			}
		}
	}
	var names []string
	for _, p := range cands {
		if p.has(f) {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		if named != nil {
			return netip.Addr{}, fail(ReasonNoPool, "IPPool %q has no %s addresses", named.Name, f)
		}
		return netip.Addr{}, fail(ReasonNoPool, "no IPPool with %s addresses assigns automatically to the Service", f)
	}
	// A Service with a sharing key joins an address of its key first.
	if req.SharingKey != "" {
		var shared []netip.Addr
		for addr, u := range a.used {
			if u.key == req.SharingKey && FamilyOf(addr) == f {
				shared = append(shared, addr)
			}
		}
		sort.Slice(shared, func(i, j int) bool { return shared[i].Less(shared[j]) })
		for _, p := range cands {
			for _, addr := range shared {
				if p.Contains(addr) && a.check(svc, addr, req.SharingKey, req.Ports) == nil {
					return addr, nil
				}
			}
		}
	}
	for _, p := range cands {
		for _, rg := range p.Ranges {
			if FamilyOf(rg.First) != f {
				continue
			}
			if addr, ok := a.free(p, rg); ok {
				return addr, nil
			}
		}
	}
	return netip.Addr{}, fail(ReasonPoolExhausted, "no free %s address in IPPool %s", f, strings.Join(names, ", "))
}

// free returns the lowest address of rg that nobody uses (and that is not
// buggy when p avoids those). It looks at no more addresses than are in use
// plus the buggy ones it skips.
func (a *Allocator) free(p *Pool, rg Range) (netip.Addr, bool) {
	for addr := rg.First; addr.IsValid() && addr.Compare(rg.Last) <= 0; addr = addr.Next() {
		if p.AvoidBuggyIPs && Buggy(addr) {
			continue
		}
		if _, taken := a.used[addr]; !taken {
			return addr, true
		}
	}
	return netip.Addr{}, false
}

// ErrorReason returns the reason of err when it is an *Error, else "".
func ErrorReason(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

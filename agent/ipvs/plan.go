package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// OpKind is the kind of an IPVS operation.
type OpKind uint8

// Operation kinds, in the order Diff emits them for one service.
const (
	AddService OpKind = iota + 1
	UpdateService
	DelService
	AddReal
	UpdateReal
	DelReal
)

// String returns "add-service", "update-real", ...
func (k OpKind) String() string {
	switch k {
	case AddService:
		return "add-service"
	case UpdateService:
		return "update-service"
	case DelService:
		return "del-service"
	case AddReal:
		return "add-real"
	case UpdateReal:
		return "update-real"
	case DelReal:
		return "del-real"
	}
	return fmt.Sprintf("op-%d", uint8(k))
}

// Op is one IPVS operation.
type Op struct {
	Kind OpKind
	// Service is the service to add, update (its new attributes) or
	// delete, or the service of a real server operation; its Reals are
	// always nil.
	Service Service
	// Real is the real server of AddReal, UpdateReal (its new weight and
	// method) and DelReal, with Port and Forward filled in.
	Real Real
}

// String formats the operation for logs and golden files.
func (o Op) String() string {
	s := o.Service
	switch o.Kind {
	case AddService, UpdateService:
		return fmt.Sprintf("%s %s scheduler=%s persistence=%s flags=%#x", o.Kind, s.Key(), s.Scheduler, s.Persistence, uint32(s.Flags))
	case DelService:
		return fmt.Sprintf("%s %s", o.Kind, s.Key())
	case AddReal, UpdateReal:
		return fmt.Sprintf("%s %s %s weight=%d forward=%s", o.Kind, s.Key(), o.Real.key(), o.Real.Weight, o.Real.Forward)
	case DelReal:
		return fmt.Sprintf("%s %s %s", o.Kind, s.Key(), o.Real.key())
	}
	return fmt.Sprintf("%s %s", o.Kind, s.Key())
}

// OpError is the error of one operation that the kernel refused. Apply
// returns one per failed operation, joined; the Reconciler reads them to
// tell which services failed.
type OpError struct {
	Op  Op
	Err error
}

// Error names the operation, the real server and the service:
// "ipvs: adding real server 192.0.2.11:6443 of service tcp/192.0.2.100:6443: ...".
func (e *OpError) Error() string {
	switch e.Op.Kind {
	case AddReal, UpdateReal, DelReal:
		return fmt.Sprintf("ipvs: %s %s of service %s: %v", verb(e.Op.Kind), e.Op.Real.key(), e.Op.Service.Key(), e.Err)
	}
	return fmt.Sprintf("ipvs: %s service %s: %v", verb(e.Op.Kind), e.Op.Service.Key(), e.Err)
}

// Unwrap returns the kernel's error (a syscall.Errno from a Programmer).
func (e *OpError) Unwrap() error { return e.Err }

func verb(k OpKind) string {
	switch k {
	case AddService:
		return "adding"
	case UpdateService:
		return "updating"
	case DelService:
		return "deleting"
	case AddReal:
		return "adding real server"
	case UpdateReal:
		return "updating real server"
	case DelReal:
		return "deleting real server"
	}
	return k.String()
}

// Plan is an ordered list of operations that turns the kernel's table into
// the desired one.
type Plan struct {
	Ops []Op
}

// Empty reports whether the plan does nothing.
func (p Plan) Empty() bool { return len(p.Ops) == 0 }

// Counts returns how many operations of each kind the plan holds.
func (p Plan) Counts() map[OpKind]int {
	c := map[OpKind]int{}
	for _, o := range p.Ops {
		c[o.Kind]++
	}
	return c
}

// String formats the plan one operation a line.
func (p Plan) String() string {
	var b strings.Builder
	for _, o := range p.Ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Diff returns the minimal operations that turn actual (the kernel's table)
// into desired. It is pure and deterministic: services in order of
// protocol, VIP and port, each with its real servers in order of address
// and port.
//
//   - A desired service missing from actual is added with all its reals.
//   - A service in both is updated when its scheduler, persistence or flags
//     differ; its reals are added, updated (weight or forwarding method) and
//     deleted to match: the agent owns a desired service entirely.
//   - A service only in actual is deleted only if owned reports true for
//     it (nil owns nothing): services of others are never touched.
//
// A hashing service (sh, mh: see Hashing) also needs its reals in one
// canonical order in the kernel, because the kernel builds its lookup
// table from the order in which they were added: the canonical order is
// ascending address and port, as a service added from nothing gets it.
// Diff keeps the longest run of the kernel's reals that is already in that
// order (a prefix of the desired reals, added in order), deletes the others
// and adds them again after it in order: a real server inserted in the
// middle by a configuration change, or a table someone else changed,
// costs a re-add of the reals after it (their connections stall for the
// microseconds between the two operations), and every director ends with
// the same table. A drained real (Weight 0) of a hashing service is added
// with its Real.Nominal weight and drained at once (see Real.Nominal).
//
// Services and reals are compared with defaults filled in (scheduler wlc,
// NAT, the real's port the service's). When desired holds a key twice, the
// first wins; Service.Validate reports such mistakes.
func Diff(desired, actual []Service, owned func(Service) bool) Plan {
	want, have := index(desired), index(actual)
	ids := make([]serviceID, 0, len(want)+len(have))
	adds := 0 // operations that add services and their reals
	for k, s := range want {
		ids = append(ids, k)
		if _, ok := have[k]; !ok {
			adds += 1 + len(s.Reals)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			ids = append(ids, k)
		}
	}
	slices.SortFunc(ids, compareIDs)

	var p Plan
	if adds > 0 {
		p.Ops = make([]Op, 0, adds)
	}
	for _, k := range ids {
		w, inWant := want[k]
		h, inHave := have[k]
		switch {
		case inWant && !inHave:
			p.Ops = append(p.Ops, Op{Kind: AddService, Service: bare(w)})
			hashing := Hashing(w.Scheduler)
			for _, r := range w.Reals {
				p.Ops = addReal(p.Ops, bare(w), r, hashing)
			}
		case !inWant && inHave:
			if owned != nil && owned(h) {
				p.Ops = append(p.Ops, Op{Kind: DelService, Service: bare(h)})
			}
		default:
			if !attrsEqual(w, h) {
				p.Ops = append(p.Ops, Op{Kind: UpdateService, Service: bare(w)})
			}
			if Hashing(w.Scheduler) {
				p.Ops = diffHashingReals(p.Ops, bare(w), w.Reals, h.Reals, h.Inserted)
			} else {
				p.Ops = diffReals(p.Ops, bare(w), w.Reals, h.Reals)
			}
		}
	}
	return p
}

// diffReals appends the operations that turn the sorted reals have into the
// sorted reals want, merging the two lists in order.
func diffReals(ops []Op, s Service, want, have []Real) []Op {
	i, j := 0, 0
	for i < len(want) || j < len(have) {
		var c int
		switch {
		case i == len(want):
			c = 1
		case j == len(have):
			c = -1
		default:
			c = want[i].key().Compare(have[j].key())
		}
		switch {
		case c < 0:
			ops = append(ops, Op{Kind: AddReal, Service: s, Real: want[i]})
			i++
		case c > 0:
			ops = append(ops, Op{Kind: DelReal, Service: s, Real: have[j]})
			j++
		default:
			if want[i].Weight != have[j].Weight || want[i].Forward != have[j].Forward {
				ops = append(ops, Op{Kind: UpdateReal, Service: s, Real: want[i]})
			}
			i++
			j++
		}
	}
	return ops
}

// addReal appends the operations that add r to s: for a hashing service a
// drained r with a nominal weight is added with that weight and then
// drained (see Real.Nominal).
func addReal(ops []Op, s Service, r Real, hashing bool) []Op {
	if !hashing || r.Weight != 0 || r.Nominal == 0 {
		return append(ops, Op{Kind: AddReal, Service: s, Real: r})
	}
	add := r
	add.Weight = r.Nominal
	return append(ops, Op{Kind: AddReal, Service: s, Real: add}, Op{Kind: UpdateReal, Service: s, Real: r})
}

// diffHashingReals is diffReals for a hashing service: it also restores
// the canonical order of the reals in the kernel (see Diff). want and
// have are sorted; inserted is the kernel's insertion order of have (nil:
// assumed sorted).
func diffHashingReals(ops []Op, s Service, want, have []Real, inserted []netip.AddrPort) []Op {
	if inserted == nil {
		inserted = make([]netip.AddrPort, len(have))
		for i, r := range have {
			inserted[i] = r.key()
		}
	}
	wanted := make(map[netip.AddrPort]bool, len(want))
	for _, r := range want {
		wanted[r.key()] = true
	}
	had := make(map[netip.AddrPort]Real, len(have))
	for _, r := range have {
		had[r.key()] = r
		if !wanted[r.key()] {
			ops = append(ops, Op{Kind: DelReal, Service: s, Real: r})
		}
	}
	// keep is the length of the longest prefix of want that the kernel
	// has in that order: those stay where they are.
	keep := 0
	for _, k := range inserted {
		if keep < len(want) && want[keep].key() == k {
			keep++
		}
	}
	for i, w := range want {
		h, ok := had[w.key()]
		switch {
		case i < keep:
			if w.Weight != h.Weight || w.Forward != h.Forward {
				ops = append(ops, Op{Kind: UpdateReal, Service: s, Real: w})
			}
			continue
		case ok:
			ops = append(ops, Op{Kind: DelReal, Service: s, Real: h})
		}
		ops = addReal(ops, s, w, true)
	}
	return ops
}

// index normalises services and maps them by identity; the first of a key
// wins.
func index(ss []Service) map[serviceID]Service {
	m := make(map[serviceID]Service, len(ss))
	for _, s := range ss {
		k := s.id()
		if _, dup := m[k]; !dup {
			m[k] = s.normal()
		}
	}
	return m
}

// bare returns s without its reals.
func bare(s Service) Service {
	s.Reals, s.Inserted = nil, nil
	return s
}

func sortReals(rs []Real) {
	slices.SortFunc(rs, func(a, b Real) int { return a.key().Compare(b.key()) })
}

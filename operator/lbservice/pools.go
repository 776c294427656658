package lbservice

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/ipam"
)

// poolState is an IPPool as one reconcile sees it.
type poolState struct {
	obj  *v1alpha1.IPPool
	pool ipam.Pool
	sel  selectors
	// reason and message say why the pool hands out nothing ("" when it
	// is in use).
	reason, message string
}

// usable reports whether the pool hands out addresses.
func (p *poolState) usable() bool { return p.reason == "" }

// parsePools parses the pools and decides which are usable: a pool with a
// bad address or selector is not, nor one with an address of an older
// usable pool (older: created first, then by name), so that every address
// is in at most one usable pool. The result is ordered by name.
func parsePools(items []v1alpha1.IPPool) []*poolState {
	out := make([]*poolState, 0, len(items))
	for i := range items {
		o := &items[i]
		ps := &poolState{obj: o, pool: ipam.Pool{Name: o.Name, AutoAssign: o.Spec.AutoAssign == nil || *o.Spec.AutoAssign, AvoidBuggyIPs: o.Spec.AvoidBuggyIPs}}
		var bad []string
		for j, a := range o.Spec.Addresses {
			r, err := ipam.ParseAddress(string(a))
			if err != nil {
				bad = append(bad, fmt.Sprintf("spec.addresses[%d]: %v", j, err))
				continue
			}
			ps.pool.Ranges = append(ps.pool.Ranges, r)
		}
		if len(bad) > 0 {
			ps.reason, ps.message = v1alpha1.ReasonPoolInvalidAddresses, strings.Join(bad, "; ")
		} else if sel, err := parseSelectors(o.Spec.ServiceAllocation); err != nil {
			ps.reason, ps.message = v1alpha1.ReasonPoolInvalidSelector, err.Error()
		} else {
			ps.sel = sel
		}
		out = append(out, ps)
	}
	byAge := append([]*poolState(nil), out...)
	sort.SliceStable(byAge, func(i, j int) bool {
		a, b := byAge[i].obj, byAge[j].obj
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	for i, p := range byAge {
		if !p.usable() {
			continue
		}
		for _, older := range byAge[:i] {
			if !older.usable() {
				continue
			}
			if r, ok := ipam.Overlap(&p.pool, &older.pool); ok {
				p.reason = v1alpha1.ReasonPoolOverlap
				p.message = fmt.Sprintf("addresses %s are also in IPPool %s, which is older: this pool hands out no address until the overlap is removed", r, older.obj.Name)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].obj.Name < out[j].obj.Name })
	return out
}

// usage counts the addresses of a pool in use and available.
type usage struct {
	assigned, available uint64
	usableTotal         uint64
}

// poolUsage counts, for p, the addresses of used it contains and the
// usable ones left (none when the pool hands out nothing).
func poolUsage(p *poolState, used map[netip.Addr]bool) usage {
	var u usage
	u.usableTotal = p.pool.Usable()
	var countedUsable uint64
	for a := range used {
		if p.pool.Contains(a) {
			u.assigned++
			if !p.pool.AvoidBuggyIPs || !ipam.Buggy(a) {
				countedUsable++
			}
		}
	}
	if p.usable() && u.usableTotal > countedUsable {
		u.available = u.usableTotal - countedUsable
	}
	return u
}

// clamp converts n to int64, saturating.
func clamp(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

package agent

import (
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Conflict kinds: another router on the link that shares our VRID but does
// not agree with us. They are detected, logged once per change, counted and
// shown in status; never fought over.
const (
	conflictAddresses   = "address-mismatch"  // another VIP list: another cluster on this L2?
	conflictVersion     = "version-mismatch"  // VRRPv2 vs v3
	conflictInterval    = "interval-mismatch" // another advertisement interval
	conflictAuth        = "auth-mismatch"     // another v2 password or auth type
	conflictSecondActor = "second-master"     // another router stays master while we are
	// The state machine reports more, under the names of its drop reasons
	// (vrrp.DropUnknownPeer, DropMACMismatch, DropForgedPriority0,
	// DropImpostor) and alarms (vrrp.AlarmImpostor, AlarmDuplicateOwner,
	// AlarmStall): see routerReporter.
)

// conflict is one detected disagreement.
type conflict struct {
	Kind   string
	Peer   string
	Detail string
	First  time.Time
	Last   time.Time
	Count  uint64
}

// conflicts tracks the disagreements of one router. An entry expires when
// it has not been seen for ttl.
type conflicts struct {
	log    logr.Logger
	ttl    time.Duration
	onSeen func(kind string) // counts every observation

	mu     sync.Mutex
	active map[string]*conflict // by kind+peer
	// masters are the other routers seen advertising while we were master,
	// by peer, until their claim is old enough to be a conflict.
	masters map[string]*masterClaim
}

// masterClaim is a run of adverts from another router while we are master.
type masterClaim struct{ first, last time.Time }

func newConflicts(log logr.Logger, ttl time.Duration, onSeen func(kind string)) *conflicts {
	return &conflicts{log: log, ttl: ttl, onSeen: onSeen, active: map[string]*conflict{}, masters: map[string]*masterClaim{}}
}

// masterSeen records an advert (priority above 0) from peer while this
// router is master. That alone is no conflict: an ordinary preemption is
// one such advert (we step down at once), and a stray master steps down at
// our answer. Two masters conflict only when both persist: the peer's
// adverts keep coming, with no gap longer than persist, for at least
// persist while we stay master.
func (c *conflicts) masterSeen(now time.Time, peer, detail string, persist time.Duration) {
	c.mu.Lock()
	m := c.masters[peer]
	if m == nil || now.Sub(m.last) > persist {
		m = &masterClaim{first: now}
		c.masters[peer] = m
	}
	m.last = now
	for p, o := range c.masters {
		if now.Sub(o.last) > persist {
			delete(c.masters, p)
		}
	}
	persists := now.Sub(m.first) >= persist
	c.mu.Unlock()
	if persists {
		c.seen(now, conflictSecondActor, peer, detail)
	}
}

// seen records one observation; it logs when the conflict is new.
func (c *conflicts) seen(now time.Time, kind, peer, detail string) {
	c.onSeen(kind)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	key := kind + "/" + peer
	if e, ok := c.active[key]; ok {
		e.Last, e.Count, e.Detail = now, e.Count+1, detail
		return
	}
	if len(c.active) >= maxConflicts {
		// A flood from made-up sources: the metric counts it, the status
		// keeps the first ones.
		return
	}
	c.active[key] = &conflict{Kind: kind, Peer: peer, Detail: detail, First: now, Last: now, Count: 1}
	c.log.Info("conflict detected: another router with our VRID disagrees; not following it", "kind", kind, "peer", peer, "reason", detail)
}

func (c *conflicts) expireLocked(now time.Time) {
	for key, e := range c.active {
		if now.Sub(e.Last) > c.ttl {
			delete(c.active, key)
			c.log.Info("conflict cleared", "kind", e.Kind, "peer", e.Peer, "seen", e.Count)
		}
	}
}

// current returns the live conflicts, oldest first.
func (c *conflicts) current(now time.Time) []conflict {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	out := make([]conflict, 0, len(c.active))
	for _, e := range c.active {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].First.Equal(out[j].First) {
			return out[i].First.Before(out[j].First)
		}
		return out[i].Kind+out[i].Peer < out[j].Kind+out[j].Peer
	})
	return out
}

// secondMasterPersist is how long another master must persist beside us to
// be a conflict: the Master_Down_Interval of the lowest priority (4
// intervals), at least 1 s, so that a stray takeover that ends at our next
// advert, even with an advert or two lost, is not one.
func secondMasterPersist(interval time.Duration) time.Duration {
	return max(4*interval, time.Second)
}

// conflictTTL is how long a conflict stays reported after it was last
// seen: three Master_Down_Intervals at the lowest priority, and at least a
// minute, so that a one-off (a stall, an impostor) is still in the status
// when someone looks.
func conflictTTL(interval time.Duration) time.Duration {
	return max(3*(4*interval), time.Minute)
}

// maxConflicts bounds the conflicts a router reports at once.
const maxConflicts = 64

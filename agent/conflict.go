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
	conflictSecondActor = "second-master"     // another router is master while we are
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
}

func newConflicts(log logr.Logger, ttl time.Duration, onSeen func(kind string)) *conflicts {
	return &conflicts{log: log, ttl: ttl, onSeen: onSeen, active: map[string]*conflict{}}
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

package announce

import (
	"context"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Sender sends one announcement for each VIP, now. *Announcer implements it.
type Sender interface {
	Announce(vips []netip.Addr) error
}

// Schedule says when to announce after becoming master, as keepalived's
// vrrp_garp_master_repeat, vrrp_garp_master_delay and
// vrrp_garp_master_refresh do: a burst of Count announcements at once,
// another burst RepeatDelay later, and a burst every Refresh after the start.
// The zero value sends one announcement at once and nothing more.
type Schedule struct {
	// Count is the number of announcements per VIP in each burst, sent back
	// to back; values below 1 mean 1.
	Count int
	// RepeatDelay is the delay from the start to the repeat burst, for
	// neighbours that missed the first one; 0 means no repeat.
	RepeatDelay time.Duration
	// Refresh is the period of refresh bursts, counted from the start (the
	// first comes at Refresh); 0 means no refresh.
	Refresh time.Duration
}

// Run announces vips through s on the schedule, reading time only from clk,
// until ctx is done (the agent cancels it when it leaves master) or, with
// neither repeat nor refresh, after the first burst. A failed announcement
// is logged (logger from ctx, logr.FromContextOrDiscard) and the schedule
// goes on: announcing is best effort.
func (sc Schedule) Run(ctx context.Context, clk clock.WithTicker, s Sender, vips []netip.Addr) {
	if ctx.Err() != nil {
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	count := max(sc.Count, 1)

	// Timers start before the first burst so that their times count from
	// the start, not from the end of a slow burst.
	var repeat, refresh <-chan time.Time
	if sc.RepeatDelay > 0 {
		t := clk.NewTimer(sc.RepeatDelay)
		defer t.Stop()
		repeat = t.C()
	}
	if sc.Refresh > 0 {
		t := clk.NewTicker(sc.Refresh)
		defer t.Stop()
		refresh = t.C()
	}

	burst := func(kind string) {
		for range count {
			if ctx.Err() != nil {
				return
			}
			if err := s.Announce(vips); err != nil {
				// One line per burst, not per announcement.
				log.Error(err, "announcement failed", "burst", kind)
				return
			}
		}
		log.V(1).Info("announcement burst sent", "burst", kind, "count", count)
	}

	burst("initial")
	for repeat != nil || refresh != nil {
		select {
		case <-ctx.Done():
			return
		case <-repeat:
			repeat = nil
			burst("repeat")
		case <-refresh:
			burst("refresh")
		}
	}
}

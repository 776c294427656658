package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/vrrp"
	"github.com/vipvs/vipvs/agent/vrrp/packet"
)

type nopSender struct{}

func (nopSender) SendAdvert(uint8, time.Duration) error { return nil }

type nopHolder struct{}

func (nopHolder) Acquire() error        { return nil }
func (nopHolder) Release() error        { return nil }
func (nopHolder) Reannounce() error     { return nil }
func (nopHolder) StopAnnouncing() error { return nil }

// TestSecondMasterIsNotAPreemption (issue #13): an ordinary preemption (one
// advert of a better router while we are master, after which we step down)
// is not a "second-master" conflict; another master whose adverts keep
// coming for a Master_Down_Interval while we stay master is.
func TestSecondMasterIsNotAPreemption(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.13")
	tests := []struct {
		name     string
		adverts  int           // adverts from peer while we are master
		every    time.Duration // between them
		conflict bool
	}{
		{name: "preemption: one advert of a better router", adverts: 1, every: time.Second, conflict: false},
		{name: "stray master that yields after two adverts", adverts: 2, every: time.Second, conflict: false},
		{name: "two masters that both persist", adverts: 6, every: time.Second, conflict: true},
		{name: "adverts far apart are separate preemptions", adverts: 4, every: 10 * time.Second, conflict: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			rc := config.Router{Name: "api", VRID: 1, Version: 3, Priority: 255, AdvertInterval: time.Second}
			runner := vrrp.NewRunner(vrrp.Config{Version: 3, Priority: 255, AdvertInterval: time.Second}, nopSender{}, nopHolder{}, clk, logr.Discard())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			hard := make(chan struct{})
			go func() { defer close(done); _ = runner.Run(ctx, hard) }()
			// The graceful hand-over would wait on the fake clock: cut it short.
			defer func() { cancel(); close(hard); <-done }()
			deadline := time.Now().Add(5 * time.Second)
			for runner.State() != vrrp.Active {
				if time.Now().After(deadline) {
					t.Fatal("runner never became active")
				}
				time.Sleep(time.Millisecond)
			}
			r := &router{cfg: rc, runner: runner, clk: clk, conflicts: newConflicts(logr.Discard(), time.Minute, func(string) {})}
			for i := 0; i < tt.adverts; i++ {
				if i > 0 {
					clk.Step(tt.every)
				}
				r.observe(peer, packet.Advert{Version: 3, VRID: 1, Priority: 200, Interval: time.Second})
			}
			var kinds []string
			for _, c := range r.conflicts.current(clk.Now()) {
				kinds = append(kinds, c.Kind)
			}
			got := len(kinds) == 1 && kinds[0] == conflictSecondActor
			if got != tt.conflict || (!tt.conflict && len(kinds) > 0) {
				t.Errorf("conflicts %v, want second-master: %v", kinds, tt.conflict)
			}
		})
	}
}

package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vipvs/vipvs/agent/config"
)

func TestEffectivePriority(t *testing.T) {
	tracks := []config.TrackCheck{{Check: "api", Weight: 0}, {Check: "tcp", Weight: -60}, {Check: "script", Weight: 10}}
	tests := []struct {
		name       string
		base       uint8
		tracks     []config.TrackCheck
		healthy    map[string]bool
		wantPrio   uint8
		wantFaults []string
	}{
		{name: "no checks", base: 100, wantPrio: 100},
		{name: "all healthy: positive weight added", base: 100, tracks: tracks, healthy: map[string]bool{"api": true, "tcp": true, "script": true}, wantPrio: 110},
		{name: "negative weight while failing", base: 100, tracks: tracks, healthy: map[string]bool{"api": true, "script": true}, wantPrio: 50},
		{name: "weight 0 failing: fault", base: 100, tracks: tracks, healthy: map[string]bool{"tcp": true}, wantPrio: 100, wantFaults: []string{"api"}},
		{name: "clamped at 1", base: 20, tracks: tracks, healthy: map[string]bool{"api": true}, wantPrio: 1},
		{name: "clamped at 254", base: 250, tracks: tracks, healthy: map[string]bool{"api": true, "tcp": true, "script": true}, wantPrio: 254},
		{name: "owner keeps 255", base: 255, tracks: tracks, healthy: map[string]bool{"api": true}, wantPrio: 255},
		{name: "owner still faults on weight 0", base: 255, tracks: tracks, healthy: map[string]bool{}, wantPrio: 255, wantFaults: []string{"api"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prio, faults := effective(tt.base, tt.tracks, func(n string) bool { return tt.healthy[n] })
			if prio != tt.wantPrio {
				t.Errorf("priority = %d, want %d", prio, tt.wantPrio)
			}
			if diff := cmp.Diff(tt.wantFaults, faults, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("faults (-want +got):\n%s", diff)
			}
		})
	}
}

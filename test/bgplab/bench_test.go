package bgplab

import (
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

func TestBenchClientFigures(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	at := func(start, took time.Duration, ok bool, err string) lab.Attempt {
		return lab.Attempt{Start: t0.Add(start), End: t0.Add(start + took), OK: ok, Err: err}
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		attempts []lab.Attempt
		want     ClientFigures
	}{
		{"none hit", []lab.Attempt{at(-5*ms, 2*ms, true, ""), at(0, 2*ms, true, "")}, ClientFigures{}},
		{"before the fault ignored", []lab.Attempt{at(-10*ms, time.Second, true, "")}, ClientFigures{}},
		{
			"retransmitted and failed",
			[]lab.Attempt{
				at(10*ms, 1030*ms, true, ""),
				at(15*ms, 2*ms, true, ""),
				at(20*ms, 3*time.Second, false, "i/o timeout"),
				at(25*ms, 1*ms, false, "connection reset by peer"),
				at(30*ms, 2*ms, true, ""),
			},
			ClientFigures{
				Hit: 3, Failed: 2, Reset: 1, LastHitStart: 25 * ms, LastHitEnd: 3020 * ms, Slowest: 3 * time.Second,
				Errors: map[string]int{"i/o timeout": 1, "connection reset by peer": 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := benchClientFigures(tc.attempts, t0)
			if got.Hit != tc.want.Hit || got.Failed != tc.want.Failed || got.Reset != tc.want.Reset ||
				got.LastHitStart != tc.want.LastHitStart || got.LastHitEnd != tc.want.LastHitEnd || got.Slowest != tc.want.Slowest ||
				len(got.Errors) != len(tc.want.Errors) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for k, v := range tc.want.Errors {
				if got.Errors[k] != v {
					t.Errorf("Errors[%q] = %d, want %d", k, got.Errors[k], v)
				}
			}
		})
	}
}

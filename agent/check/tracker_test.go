package check

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTracker feeds result sequences and checks the state after each step:
// "up"/"down", with "!" when that step changed it.
func TestTracker(t *testing.T) {
	tests := []struct {
		name         string
		rise, fall   int
		initially    bool
		firstDecides bool // Spec.FirstProbeDecides
		results      string
		want         string
	}{
		{name: "healthy stays healthy", rise: 2, fall: 3, initially: true,
			results: "ok ok ok", want: "up up up"},
		{name: "falls at the fall-th failure", rise: 2, fall: 3, initially: true,
			results: "ok ok fail fail fail fail", want: "up up up up down! down"},
		{name: "a success resets the failure count", rise: 2, fall: 3, initially: true,
			results: "fail fail ok fail fail fail", want: "up up up up up down!"},
		{name: "rises at the rise-th success", rise: 2, fall: 3, initially: true,
			results: "fail fail fail ok ok ok", want: "up up down! down up! up"},
		{name: "a failure resets the success count", rise: 3, fall: 1, initially: false,
			results: "ok ok fail ok ok ok", want: "down down down down down up!"},
		{name: "starts failed and needs rise successes", rise: 3, fall: 2, initially: false,
			results: "ok ok ok fail fail", want: "down down up! up down!"},
		{name: "starts failed and stays failed", rise: 1, fall: 1, initially: false,
			results: "fail fail", want: "down down"},
		{name: "rise and fall of 1 flip at once", rise: 1, fall: 1, initially: true,
			results: "fail ok fail ok ok", want: "down! up! down! up! up"},
		{name: "rise and fall below 1 count as 1", rise: 0, fall: -1, initially: true,
			results: "fail ok", want: "down! up!"},
		{name: "alpha: one success brings a check that starts failed up", rise: 3, fall: 2, firstDecides: true,
			results: "ok fail ok fail fail", want: "up! up up up down!"},
		{name: "alpha: a first failure keeps it down, then rise counts", rise: 2, fall: 2, firstDecides: true,
			results: "fail ok ok ok", want: "down down up! up"},
		{name: "first result decides: one failure drains a check that starts healthy", rise: 2, fall: 3, initially: true, firstDecides: true,
			results: "fail ok ok", want: "down! down up!"},
		{name: "first result decides: a first success keeps it up, then fall counts", rise: 2, fall: 2, initially: true, firstDecides: true,
			results: "ok fail fail", want: "up up down!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.rise, tt.fall, tt.initially, tt.firstDecides)
			if got := tr.Healthy(); got != tt.initially {
				t.Fatalf("Healthy() before any result = %v, want %v", got, tt.initially)
			}
			var got []string
			for _, r := range strings.Fields(tt.results) {
				healthy, changed := tr.Observe(r == "ok")
				if healthy != tr.Healthy() {
					t.Fatalf("Observe returned %v but Healthy() = %v", healthy, tr.Healthy())
				}
				got = append(got, stateWord(healthy, changed))
			}
			if diff := cmp.Diff(strings.Fields(tt.want), got); diff != "" {
				t.Errorf("states after %q (-want +got):\n%s", tt.results, diff)
			}
		})
	}
}

func stateWord(healthy, changed bool) string {
	s := "down"
	if healthy {
		s = "up"
	}
	if changed {
		s += "!"
	}
	return s
}

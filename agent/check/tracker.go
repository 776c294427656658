package check

// Tracker turns a stream of probe results into a healthy or failed state
// with keepalived's rise/fall semantics: a healthy target becomes failed
// after fall consecutive failures, a failed one becomes healthy after rise
// consecutive successes. A result that agrees with the current state resets
// the count.
//
// A Tracker is pure (no clock, no I/O) and not safe for concurrent use.
type Tracker struct {
	rise, fall int
	healthy    bool
	// undecided is set until the first result when that result decides
	// the state by itself.
	undecided bool
	// count is the number of consecutive results that disagree with
	// healthy.
	count int
}

// NewTracker returns a Tracker in the given initial state. A rise or fall
// below 1 counts as 1.
func NewTracker(rise, fall int, initiallyHealthy bool) *Tracker {
	return newTracker(rise, fall, initiallyHealthy, false)
}

// newTracker is NewTracker whose first result, with firstDecides, sets the
// state by itself (Spec.FirstProbeDecides).
func newTracker(rise, fall int, initiallyHealthy, firstDecides bool) *Tracker {
	return &Tracker{rise: max(rise, 1), fall: max(fall, 1), healthy: initiallyHealthy, undecided: firstDecides}
}

// Observe records one result and returns the state after it, and whether
// this result changed it.
func (t *Tracker) Observe(ok bool) (healthy bool, changed bool) {
	if t.undecided {
		t.undecided = false
		changed = ok != t.healthy
		t.healthy, t.count = ok, 0
		return t.healthy, changed
	}
	if ok == t.healthy {
		t.count = 0
		return t.healthy, false
	}
	t.count++
	need := t.fall
	if !t.healthy {
		need = t.rise
	}
	if t.count < need {
		return t.healthy, false
	}
	t.healthy, t.count = ok, 0
	return t.healthy, true
}

// Healthy returns the current state.
func (t *Tracker) Healthy() bool { return t.healthy }

package check

import (
	"context"
	"sync"
)

// Set runs several Runners and aggregates their state, e.g. every check of
// one real server. Its methods are safe for concurrent use.
type Set struct {
	runners []*Runner
}

// NewSet returns a Set of runners.
func NewSet(runners ...*Runner) *Set {
	return &Set{runners: append([]*Runner(nil), runners...)}
}

// Run runs every Runner on its own goroutine and returns when ctx is done
// and all of them have returned. Call it once.
func (s *Set) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range s.runners {
		wg.Go(func() { r.Run(ctx) })
	}
	wg.Wait()
}

// Healthy reports whether every Runner is healthy (true for an empty Set).
func (s *Set) Healthy() bool {
	for _, r := range s.runners {
		if !r.Healthy() {
			return false
		}
	}
	return true
}

// Failing returns the names of the Runners that are not healthy, in the
// order they were given.
func (s *Set) Failing() []string {
	var names []string
	for _, r := range s.runners {
		if !r.Healthy() {
			names = append(names, r.Name())
		}
	}
	return names
}

// Results returns the latest Result of every Runner, in the order they were
// given.
func (s *Set) Results() []Result {
	res := make([]Result, len(s.runners))
	for i, r := range s.runners {
		res[i] = r.Last()
	}
	return res
}

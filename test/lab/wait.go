package lab

import (
	"fmt"
	"time"
)

// pollInterval is how often WaitFor re-checks its condition.
const pollInterval = 5 * time.Millisecond

// WaitFor checks cond every few milliseconds until it returns true or the
// timeout has passed. It returns nil once cond is true, cond's error as soon
// as it returns one, or an error naming what was being waited for. Use it
// instead of sleeping: `lab.WaitFor(5*time.Second, "n1 holds the VIP", ...)`.
func WaitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		<-t.C
	}
}

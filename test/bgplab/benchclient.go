package bgplab

import (
	"bufio"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// BenchConnTimeout is how long the bench's client waits for one
// connection's answer: long enough for the kernel's SYN retransmissions
// (the first after its 1 s initial RTO, the next 2 s later) to count.
const BenchConnTimeout = 3 * time.Second

// benchClient opens a new TCP connection to a target every
// BenchProbeEvery from a host's namespace, without waiting for the earlier
// ones (lab.Prober waits), and records each as a lab.Attempt: the server's
// line read within BenchConnTimeout, or why not. A connection whose SYN
// went to a dead node is retransmitted by the kernel as any client's is.
type benchClient struct {
	h      *lab.Host
	target netip.AddrPort
	stop   chan struct{}
	loop   sync.WaitGroup // the ticking goroutine
	conns  sync.WaitGroup // one per connection

	mu       sync.Mutex
	attempts []lab.Attempt
}

// startBenchClient starts a client in h's namespace; Stop stops it.
func startBenchClient(h *lab.Host, target netip.AddrPort) *benchClient {
	c := &benchClient{h: h, target: target, stop: make(chan struct{})}
	c.loop.Add(1)
	go func() {
		defer c.loop.Done()
		t := time.NewTicker(BenchProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			c.conns.Add(1)
			go func() {
				defer c.conns.Done()
				a := c.attempt()
				c.mu.Lock()
				c.attempts = append(c.attempts, a)
				c.mu.Unlock()
			}()
		}
	}()
	return c
}

// attempt opens one connection and reads the server's line.
func (c *benchClient) attempt() lab.Attempt {
	a := lab.Attempt{Start: time.Now()}
	err := c.h.Do(func() error {
		d := net.Dialer{Deadline: a.Start.Add(BenchConnTimeout)}
		conn, err := d.Dial("tcp", c.target.String())
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(a.Start.Add(BenchConnTimeout))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		a.OK, a.Server = true, strings.TrimSuffix(line, "\n")
		return nil
	})
	a.End = time.Now()
	if err != nil {
		a.Err = err.Error()
	}
	return a
}

// Stop stops opening connections, waits for the open ones to end, and
// returns every attempt in the order they started.
func (c *benchClient) Stop() []lab.Attempt {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.loop.Wait()
	c.conns.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.attempts)
	slices.SortFunc(out, func(x, y lab.Attempt) int { return x.Start.Compare(y.Start) })
	return out
}

// BenchSlow is how long an answer may take before the bench counts the
// connection as hit by the fault: far above a healthy connection's
// milliseconds, far below the kernel's 1 s SYN retransmission.
const BenchSlow = 500 * time.Millisecond

// ClientFigures are what the client saw from the fault on.
type ClientFigures struct {
	// Hit counts the connections that failed or were answered after more
	// than BenchSlow (their first SYN was lost); Failed those not answered
	// at all within BenchConnTimeout or refused/reset.
	Hit, Failed int
	// Reset counts the failed connections that were reset.
	Reset int
	// LastHitStart is when the last hit connection started (its SYN was
	// the last one the router sent to the dead node); LastHitEnd when it
	// ended: its answer after the kernel's retransmission, or its failure.
	// Both are from the fault, 0 when no connection was hit.
	LastHitStart, LastHitEnd time.Duration
	// Slowest is the longest a hit connection took (0 when none).
	Slowest time.Duration
	// Errors counts the failed connections by error.
	Errors map[string]int
}

// benchClientFigures sums up the attempts started at or after t0.
func benchClientFigures(attempts []lab.Attempt, t0 time.Time) ClientFigures {
	var f ClientFigures
	for _, a := range attempts {
		if a.Start.Before(t0) {
			continue
		}
		took := a.End.Sub(a.Start)
		if a.OK && took <= BenchSlow {
			continue
		}
		f.Hit++
		if !a.OK {
			f.Failed++
			if f.Errors == nil {
				f.Errors = map[string]int{}
			}
			f.Errors[a.Err]++
			if strings.Contains(a.Err, "reset") || strings.Contains(a.Err, "refused") {
				f.Reset++
			}
		}
		f.LastHitStart = a.Start.Sub(t0)
		if end := a.End.Sub(t0); end > f.LastHitEnd {
			f.LastHitEnd = end
		}
		f.Slowest = max(f.Slowest, took)
	}
	return f
}

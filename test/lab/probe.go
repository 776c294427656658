package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Serve listens on TCP [::]:port (IPv4 and IPv6) inside h's namespace. Each
// connection gets h.Name+"\n" and is closed; probers record that name as the
// server that answered. It is the service behind a VIP. stop closes the
// listener and waits for the accept loop; Lab.Close calls it too.
func (h *Host) Serve(port int) (stop func(), err error) {
	var ln net.Listener
	err = h.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("serving on port %d in %s: %w", port, h.Name, err)
	}
	reply := []byte(h.Name + "\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. a connection reset before accept
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(reply)
			_ = c.Close()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			<-done
		})
	}
	if err := h.lab.register(nil, stop); err != nil {
		stop()
		return nil, fmt.Errorf("serving on port %d in %s: %w", port, h.Name, err)
	}
	return stop, nil
}

// Attempt is one connection a Prober made.
type Attempt struct {
	Start, End time.Time
	// OK is true when the server's line was read.
	OK bool
	// Err says why the attempt failed ("" when OK).
	Err string
	// Server is the line the server sent (its host name for Serve).
	Server string
}

// Prober opens a new TCP connection from a host to a target at a fixed
// rate and records every attempt. Create it with Host.Probe.
type Prober struct {
	// Host is where the connections come from, Target where they go.
	Host   *Host
	Target netip.AddrPort

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	attempts []Attempt
}

// Probe starts a prober in h's namespace: every `every` (say 5ms) it opens a
// new TCP connection to target, reads one line, and records the attempt;
// an attempt not answered within timeout fails. Attempts run one at a time,
// so a slow one delays the next. The prober runs until Stop or Lab.Close.
func (h *Host) Probe(target netip.AddrPort, every, timeout time.Duration) (*Prober, error) {
	if every <= 0 || timeout <= 0 {
		return nil, fmt.Errorf("probing %s from %s: interval %v and timeout %v must be positive", target, h.Name, every, timeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{Host: h, Target: target, cancel: cancel, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		defer close(p.done)
		// The whole loop runs on one thread inside h's namespace, so every
		// socket it dials is created there.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			started <- fmt.Errorf("getting current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h.ns); err != nil {
			runtime.UnlockOSThread()
			started <- fmt.Errorf("entering namespace %s: %w", h.Namespace, err)
			return
		}
		started <- nil
		p.loop(ctx, every, timeout)
		if netns.Set(orig) != nil {
			return // still locked: the runtime destroys this thread
		}
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		cancel()
		return nil, fmt.Errorf("probing %s from %s: %w", target, h.Name, err)
	}
	if err := h.lab.register(nil, func() { p.Stop() }); err != nil {
		p.Stop()
		return nil, fmt.Errorf("probing %s from %s: %w", target, h.Name, err)
	}
	return p, nil
}

func (p *Prober) loop(ctx context.Context, every, timeout time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a := p.attempt(ctx, timeout)
		if ctx.Err() != nil && !a.OK {
			return // interrupted by Stop, not a failure of the target
		}
		p.mu.Lock()
		p.attempts = append(p.attempts, a)
		p.mu.Unlock()
		next = next.Add(every)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		t.Reset(time.Until(next))
	}
}

func (p *Prober) attempt(ctx context.Context, timeout time.Duration) Attempt {
	a := Attempt{Start: time.Now()}
	ctx, cancel := context.WithDeadline(ctx, a.Start.Add(timeout))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Target.String())
	if err == nil {
		defer c.Close()
		_ = c.SetDeadline(a.Start.Add(timeout))
		var line string
		line, err = bufio.NewReader(c).ReadString('\n')
		if err == nil {
			a.OK, a.Server = true, strings.TrimSuffix(line, "\n")
		}
	}
	a.End = time.Now()
	if err != nil {
		a.Err = err.Error()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			a.Err = "timeout"
		}
	}
	return a
}

// Stop stops the prober, waits for it, and returns every attempt. An attempt
// cut short by Stop is not recorded. Stop may be called more than once.
func (p *Prober) Stop() Result {
	p.cancel()
	<-p.done
	return p.Snapshot()
}

// Snapshot returns the attempts recorded so far; the prober keeps running.
func (p *Prober) Snapshot() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Result{Attempts: append([]Attempt(nil), p.attempts...)}
}

// Result is what a prober saw, attempts in the order they were made.
type Result struct {
	Attempts []Attempt
}

// OK returns the number of successful attempts.
func (r Result) OK() int {
	n := 0
	for _, a := range r.Attempts {
		if a.OK {
			n++
		}
	}
	return n
}

// Failed returns the number of failed attempts.
func (r Result) Failed() int { return len(r.Attempts) - r.OK() }

// HandoverLosses splits the failed attempts of VIP hand-overs into losses
// and straddles. A straddle is a connection reset by the new holder because
// its handshake straddled the client's ARP/ND update (the SYN-ACK came from
// the old holder, the ACK went to the new one): its window is one round
// trip at the moment the client processes the announcement, and no
// hand-over without connection-state sync closes it, so a test allows one
// per hand-over. Every other failure (a timeout above all: packets sent to
// a holder that already let go) is a loss a hand-over must avoid.
func (r Result) HandoverLosses() (losses, straddles int) {
	for _, a := range r.Attempts {
		switch {
		case a.OK:
		case strings.Contains(a.Err, "connection reset by peer"):
			straddles++
		default:
			losses++
		}
	}
	return losses, straddles
}

// Since returns the attempts started at or after t, e.g. from just before a
// fault was injected.
func (r Result) Since(t time.Time) Result {
	i := sort.Search(len(r.Attempts), func(i int) bool { return !r.Attempts[i].Start.Before(t) })
	return Result{Attempts: r.Attempts[i:]}
}

// LongestGap returns the longest time the client went without an answer:
// the longest interval between the ends of two consecutive successful
// attempts. Failures before the first success count from the first attempt's
// start, failures after the last success up to the last attempt's end. With
// no failures it is about the probe interval (or longer if an answer was
// slow); with no attempts it is 0.
func (r Result) LongestGap() time.Duration {
	if len(r.Attempts) == 0 {
		return 0
	}
	var longest time.Duration
	since := r.Attempts[0].Start
	for _, a := range r.Attempts {
		if a.OK {
			longest = max(longest, a.End.Sub(since))
			since = a.End
		}
	}
	if last := r.Attempts[len(r.Attempts)-1]; !last.OK {
		longest = max(longest, last.End.Sub(since))
	}
	return longest
}

// Servers counts the successful attempts per answering server.
func (r Result) Servers() map[string]int {
	m := make(map[string]int)
	for _, a := range r.Attempts {
		if a.OK {
			m[a.Server]++
		}
	}
	return m
}

// Summary describes the result on one line: counts, longest gap, servers
// and the most frequent errors.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d attempts, %d ok, %d failed, longest gap %v", len(r.Attempts), r.OK(), r.Failed(), r.LongestGap().Round(time.Microsecond))
	if len(r.Attempts) > 0 {
		fmt.Fprintf(&b, " over %v", r.Attempts[len(r.Attempts)-1].End.Sub(r.Attempts[0].Start).Round(time.Millisecond))
	}
	b.WriteString(", servers:")
	servers := r.Servers()
	names := make([]string, 0, len(servers))
	for s := range servers {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		fmt.Fprintf(&b, " %s=%d", s, servers[s])
	}
	errs := map[string]int{}
	for _, a := range r.Attempts {
		if !a.OK {
			errs[a.Err]++
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for e := range errs {
			msgs = append(msgs, e)
		}
		sort.Slice(msgs, func(i, j int) bool { return errs[msgs[i]] > errs[msgs[j]] })
		if len(msgs) > 3 {
			msgs = msgs[:3]
		}
		b.WriteString(", errors:")
		for _, e := range msgs {
			fmt.Fprintf(&b, " %dx %q", errs[e], e)
		}
	}
	return b.String()
}

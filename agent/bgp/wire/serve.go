package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
)

// Speaker is what [Serve] drives: agent/bgp's Announcer behind an adapter.
type Speaker interface {
	// Run serves until ctx is done; an error means it could not start.
	Run(ctx context.Context) error
	// Advertise adds the host route of addr.
	Advertise(addr netip.Addr) error
	// Withdraw removes the host route of addr.
	Withdraw(addr netip.Addr) error
	// GracefulShutdown drains (RFC 8326) until ctx is done.
	GracefulShutdown(ctx context.Context) error
	// Reconfigure applies c; restartNeeded when it cannot (nothing changed).
	Reconfigure(ctx context.Context, c Config) (restartNeeded bool, err error)
	// Status is the speaker's state.
	Status(ctx context.Context) (Status, error)
}

// ErrNoConfig is returned by Serve when its input closes before a config.
var ErrNoConfig = errors.New("the input closed before a config request")

// Serve answers the requests read from in on out: the first builds the
// speaker with open (OpConfig) and starts its Run. It returns when in
// closes (nil: the agent is gone or stopping), when Run fails (its error),
// or when in or out fails; before returning it stops Run and every
// graceful shutdown it started and waits for them (not for the read of in
// pending when Run fails). Malformed requests are answered with an error
// and skipped.
func Serve(ctx context.Context, in io.Reader, out io.Writer, open func(Config) (Speaker, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		outMu  sync.Mutex
		runErr = make(chan error, 1)
		sp     Speaker
	)
	defer wg.Wait()
	reply := func(resp *Response) error {
		resp.V = Version
		outMu.Lock()
		defer outMu.Unlock()
		return Write(out, resp)
	}
	// Requests are read in their own goroutine so that a failing Run ends
	// Serve while it waits for input.
	type read struct {
		req *Request
		err error
	}
	reqs := make(chan read)
	// The reader is not waited for: it ends when in does, which a Run that
	// failed cannot hasten (a blocked read of a pipe cannot be cancelled);
	// the speaker process exits then anyway.
	go func() {
		r := NewReader(in)
		for {
			req, err := r.ReadRequest()
			select {
			case reqs <- read{req, err}:
			case <-ctx.Done():
				return
			}
			var mal *MalformedError
			if err != nil && !errors.As(err, &mal) {
				return
			}
		}
	}()
	for {
		var rd read
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			return err
		case rd = <-reqs:
		}
		if rd.err != nil {
			var mal *MalformedError
			if !errors.As(rd.err, &mal) {
				cancel() // stop Run and any graceful shutdown, then wait
				if errors.Is(rd.err, io.EOF) {
					if sp == nil {
						return ErrNoConfig
					}
					return nil
				}
				return fmt.Errorf("reading requests: %w", rd.err)
			}
			if err := reply(&Response{ID: mal.ID, Error: mal.Error()}); err != nil {
				return fmt.Errorf("writing a reply: %w", err)
			}
			continue
		}
		req := rd.req
		resp := &Response{ID: req.ID}
		switch {
		case req.Op == OpConfig && sp != nil:
			resp.Error = "op: config was already given: use reconfigure"
		case req.Op != OpConfig && sp == nil:
			resp.Error = fmt.Sprintf("op: %s before config: send config first", req.Op)
		case req.Op == OpConfig:
			s, err := open(*req.Config)
			if err != nil {
				resp.Error = err.Error()
				break
			}
			sp = s
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Run(ctx); err != nil {
					runErr <- err
				}
			}()
		case req.Op == OpAdvertise:
			resp.Error = errString(sp.Advertise(*req.Addr))
		case req.Op == OpWithdraw:
			resp.Error = errString(sp.Withdraw(*req.Addr))
		case req.Op == OpReconfigure:
			restart, err := sp.Reconfigure(ctx, *req.Config)
			resp.RestartNeeded, resp.Error = restart, errString(err)
		case req.Op == OpStatus:
			st, err := sp.Status(ctx)
			resp.Status, resp.Error = &st, errString(err)
		case req.Op == OpGracefulShutdown:
			// Answered when over; the other requests are served meanwhile.
			wg.Add(1)
			go func(s Speaker) {
				defer wg.Done()
				r := &Response{ID: req.ID, Error: errString(s.GracefulShutdown(ctx))}
				if ctx.Err() == nil {
					_ = reply(r) // a broken output ends Serve through the next reply
				}
			}(sp)
			continue
		}
		if err := reply(resp); err != nil {
			return fmt.Errorf("writing a reply: %w", err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

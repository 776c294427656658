package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Client sends requests to a speaker and matches its replies to them. It
// is safe for concurrent use.
type Client struct {
	mu      sync.Mutex
	w       io.Writer
	next    uint64
	waiting map[uint64]chan *Response
	// err is why the replies ended (set before done closes).
	err  error
	done chan struct{}
}

// NewClient writes requests to w and reads the replies from r, in a
// goroutine that ends when r ends (see Done).
func NewClient(w io.Writer, r io.Reader) *Client {
	c := &Client{w: w, waiting: make(map[uint64]chan *Response), done: make(chan struct{})}
	go c.read(r)
	return c
}

// Done is closed once the replies have ended (the speaker's output
// closed); Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the replies ended (nil before Done is closed; io.EOF when the
// output closed cleanly).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) read(r io.Reader) {
	rd := NewReader(r)
	for {
		resp, err := rd.ReadResponse()
		var mal *MalformedError
		switch {
		case errors.As(err, &mal):
			resp = &Response{ID: mal.ID, Error: "bgp speaker: " + mal.Error()}
		case err != nil:
			c.mu.Lock()
			c.err = err
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			close(c.done)
			return
		}
		c.mu.Lock()
		// A reply to no request waiting (one given up on, or a malformed
		// one without its ID) is dropped.
		if ch, ok := c.waiting[resp.ID]; ok {
			ch <- resp
			delete(c.waiting, resp.ID)
		}
		c.mu.Unlock()
	}
}

// RemoteError is an error the speaker replied with.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// Call sends req (its V and ID are set) and waits for the reply. A reply
// with an error returns it with a *RemoteError. Call returns ctx's error
// when ctx ends first (the reply, if any, is dropped), and an error when
// the speaker's output has ended.
func (c *Client) Call(ctx context.Context, req Request) (*Response, error) {
	ch := make(chan *Response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("bgp speaker: no more replies: %w", err)
	}
	c.next++
	req.V, req.ID = Version, c.next
	if err := req.Validate(); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("bgp speaker request: %w", err)
	}
	c.waiting[req.ID] = ch
	err := Write(c.w, &req)
	c.mu.Unlock()
	if err != nil {
		c.forget(req.ID)
		return nil, fmt.Errorf("bgp speaker: sending %s: %w", req.Op, err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("bgp speaker: exited before answering %s", req.Op)
		}
		if resp.Error != "" {
			return resp, &RemoteError{resp.Error}
		}
		return resp, nil
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, ctx.Err()
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.waiting, id)
	c.mu.Unlock()
}

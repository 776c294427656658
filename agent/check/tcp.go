package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// TCP is healthy when a TCP connection to Address is accepted. The
// connection is closed at once; nothing is sent.
type TCP struct {
	// Address is the target, e.g. 192.0.2.11:6443 or [2001:db8::11]:6443.
	Address netip.AddrPort
	// Dialer, if not nil, makes the connection (to set a source address, a
	// mark or a namespace-bound Control function). Its Timeout and Deadline
	// apply on top of the probe's context.
	Dialer *net.Dialer
}

var _ Checker = TCP{}

// Check connects to Address and closes the connection.
func (c TCP) Check(ctx context.Context) error {
	if !c.Address.IsValid() {
		return errors.New("check: tcp: no address")
	}
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", c.Address.String())
	if err != nil {
		return fmt.Errorf("check: connecting to %s: %w", c.Address, reason(ctx, err))
	}
	_ = conn.Close() // the connection was accepted: that is the answer
	return nil
}

// String returns "tcp <address>".
func (c TCP) String() string { return "tcp " + c.Address.String() }

package check

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/vipvs/vipvs/agent/link"
)

// Interface is healthy when a network interface is administratively up and
// its operational state is up (or unknown, which some drivers report), as
// keepalived's track_interface. It reads the link with netlink in the
// network namespace of the calling thread.
type Interface struct {
	// Name is the interface name, e.g. "eth0".
	Name string
}

var _ Checker = Interface{}

// Check reads the link's flags and operational state.
func (c Interface) Check(ctx context.Context) error {
	if c.Name == "" {
		return errors.New("check: interface: no name")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check: interface %s: %w", c.Name, context.Cause(ctx))
	}
	l, err := netlink.LinkByName(c.Name)
	if err != nil {
		return fmt.Errorf("check: reading interface %s: %w", c.Name, err)
	}
	if link.Up(l) {
		return nil
	}
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return fmt.Errorf("check: interface %s is administratively down", c.Name)
	}
	return fmt.Errorf("check: interface %s is not running: operational state %s", c.Name, a.OperState)
}

// String returns "interface <name>".
func (c Interface) String() string { return "interface " + c.Name }

// Package link watches the state of network interfaces through netlink, so
// that a virtual router on an interface that is down goes to FAULT (holding
// no VIP, sending nothing) and comes back as a Backup when the link returns,
// as keepalived does.
package link

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
)

// Up reports whether a link can carry traffic: administratively up and with
// an operational state of up (or unknown, which some drivers report).
func Up(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// State returns whether the interface named ifname is up.
func State(ifname string) (bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("link: reading the state of %s: %w", ifname, err)
	}
	return Up(l), nil
}

// Watch calls changed(ifname, up) whenever the up state of one of the named
// interfaces changes, and once for each at the start with its current state.
// An interface that does not exist counts as down. It returns when ctx is
// done. Netlink notifications can be lost (a full socket buffer), so the
// state is also re-read every resync.
func Watch(ctx context.Context, ifnames []string, resync time.Duration, log logr.Logger, changed func(ifname string, up bool)) error {
	want := map[string]bool{}
	for _, n := range ifnames {
		want[n] = true
	}
	last := map[string]bool{}
	report := func(name string, up bool) {
		if prev, ok := last[name]; ok && prev == up {
			return
		}
		last[name] = up
		changed(name, up)
	}
	rescan := func() {
		for name := range want {
			up, err := State(name)
			if err != nil {
				log.V(1).Info("reading the link state", "interface", name, "err", err.Error())
			}
			report(name, up)
		}
	}
	for {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		errs := make(chan error, 1)
		err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) {
				select {
				case errs <- err:
				default:
				}
			},
		})
		if err != nil {
			return fmt.Errorf("link: subscribing to link updates: %w", err)
		}
		rescan()
		tick := time.NewTicker(resync)
		restart := false
		for !restart {
			select {
			case <-ctx.Done():
				tick.Stop()
				close(done)
				return nil
			case u, ok := <-updates:
				if !ok {
					restart = true
					break
				}
				name := u.Attrs().Name
				if want[name] {
					report(name, Up(u.Link))
				}
			case err := <-errs:
				log.V(1).Info("link subscription failed, subscribing again", "err", err.Error())
				restart = true
			case <-tick.C:
				rescan()
			}
		}
		tick.Stop()
		close(done)
	}
}

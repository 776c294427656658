// Package link watches the state of network interfaces through netlink, so
// that a virtual router on an interface that is down or gone goes to FAULT
// (holding no VIP, sending nothing), comes back as a Backup when the link
// returns, as keepalived does, and is restarted on the new interface when
// it was re-created (same name, new index).
package link

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
)

// State is what the watcher reports of one interface.
type State struct {
	// Up: administratively up and with an operational state of up (or
	// unknown, which some drivers report).
	Up bool
	// Index is the interface's index; 0 when no interface has the name.
	Index int
}

// Up reports whether a link can carry traffic: administratively up and with
// an operational state of up (or unknown, which some drivers report).
func Up(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// Read returns the state of the interface named ifname; an interface that
// does not exist is down with index 0 (and the error says so).
func Read(ifname string) (State, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return State{}, fmt.Errorf("link: reading the state of %s: %w", ifname, err)
	}
	return State{Up: Up(l), Index: l.Attrs().Index}, nil
}

// Watcher reports the state changes of a set of interfaces that may
// change while it runs (Follow). The zero value is not usable: call
// NewWatcher.
type Watcher struct {
	resync time.Duration
	log    logr.Logger

	mu     sync.Mutex
	follow []string
	kick   chan struct{}
}

// NewWatcher returns a Watcher. Netlink notifications can be lost (a full
// socket buffer), so the state is also re-read every resync.
func NewWatcher(resync time.Duration, log logr.Logger) *Watcher {
	return &Watcher{resync: resync, log: log, kick: make(chan struct{}, 1)}
}

// Follow replaces the set of interfaces followed. The state of a newly
// followed interface is reported at once by Run; one no longer followed is
// forgotten.
func (w *Watcher) Follow(ifnames []string) {
	names := slices.Clone(ifnames)
	slices.Sort(names)
	names = slices.Compact(names)
	w.mu.Lock()
	w.follow = names
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) followed() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]bool, len(w.follow))
	for _, n := range w.follow {
		m[n] = true
	}
	return m
}

// Run calls changed(ifname, state) whenever the state (up, index) of a
// followed interface changes, and once for each interface when it starts
// being followed. An interface that does not exist is down with index 0.
// It returns when ctx is done.
func (w *Watcher) Run(ctx context.Context, changed func(ifname string, st State)) error {
	last := map[string]State{}
	report := func(name string, st State) {
		if prev, ok := last[name]; ok && prev == st {
			return
		}
		last[name] = st
		changed(name, st)
	}
	rescan := func() {
		want := w.followed()
		for name := range last {
			if !want[name] {
				delete(last, name)
			}
		}
		for name := range want {
			st, err := Read(name)
			if err != nil {
				w.log.V(1).Info("reading the link state", "interface", name, "err", err.Error())
			}
			report(name, st)
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
		tick := time.NewTicker(w.resync)
		restart := false
		for !restart {
			select {
			case <-ctx.Done():
				tick.Stop()
				close(done)
				return nil
			case <-w.kick:
				rescan()
			case u, ok := <-updates:
				if !ok {
					restart = true
					break
				}
				// Any change of a followed name (a new link, a deleted
				// one, a rename away or back) is read again by name: the
				// update may be about the old index.
				name := u.Attrs().Name
				if w.followed()[name] || w.lastIndex(last, u.Attrs().Index) != "" {
					rescan()
				}
			case err := <-errs:
				w.log.V(1).Info("link subscription failed, subscribing again", "err", err.Error())
				restart = true
			case <-tick.C:
				rescan()
			}
		}
		tick.Stop()
		close(done)
	}
}

// lastIndex returns the followed interface last seen with index, or "".
func (w *Watcher) lastIndex(last map[string]State, index int) string {
	for name, st := range last {
		if st.Index == index && index != 0 {
			return name
		}
	}
	return ""
}

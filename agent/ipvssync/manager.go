package ipvssync

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/go-logr/logr"
)

// Config is the pair of daemons a director runs: a master and a backup
// with the same settings.
type Config struct {
	// Interface the daemons send and listen on.
	Interface string
	// SyncID of the messages sent and accepted.
	SyncID uint8
	// MaxLen is the largest UDP payload; 0 means the kernel's choice.
	MaxLen uint16
	// Group is the multicast group; the zero Addr means 224.0.0.81.
	Group netip.Addr
	// Port is the UDP port; 0 means 8848.
	Port uint16
	// TTL is the multicast TTL; 0 means 1.
	TTL uint8
}

// daemon returns the daemon of state s of the pair.
func (c Config) daemon(s State) Daemon {
	return Daemon{State: s, Interface: c.Interface, SyncID: c.SyncID, MaxLen: c.MaxLen, Group: c.Group, Port: c.Port, TTL: c.TTL}
}

// Kernel is what a Manager needs of the kernel; *Conn implements it.
type Kernel interface {
	Daemons() ([]Daemon, error)
	Start(Daemon) error
	Stop(State) error
}

var _ Kernel = (*Conn)(nil)

// Manager keeps the kernel's sync daemons matching a Config. Its methods
// are safe for concurrent use.
type Manager struct {
	log logr.Logger

	mu sync.Mutex
	k  Kernel
	// readConns reads the IPVS table's connections (nil:
	// ReadConnections); openCT opens ctnetlink on first use (nil:
	// OpenConntrack), ct is what it opened.
	readConns func() ([]Connection, error)
	openCT    func() (natCreator, error)
	ct        natCreator
}

// NewManager returns a Manager over k.
func NewManager(k Kernel, log logr.Logger) *Manager {
	return &Manager{k: k, log: log}
}

// Sync makes the kernel run exactly the master and backup daemons of c, or
// none when c is nil. A running daemon with the wanted settings is left
// alone (its state and the backup's group membership stay); one with other
// settings is stopped and started again, because the kernel cannot change
// a running daemon. It returns the daemons running afterwards, master
// first.
func (m *Manager) Sync(c *Config) ([]Daemon, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	running, err := m.k.Daemons()
	if err != nil {
		return nil, err
	}
	have := map[State]Daemon{}
	for _, d := range running {
		have[d.State] = d
	}
	var errs []error
	for _, s := range []State{Master, Backup} {
		cur, ok := have[s]
		if c == nil {
			if ok {
				if err := m.k.Stop(s); err != nil {
					errs = append(errs, err)
					continue
				}
				m.log.Info("IPVS sync daemon stopped", "daemon", cur.String())
				delete(have, s)
			}
			continue
		}
		want := c.daemon(s)
		if ok && same(cur, want) {
			continue
		}
		if ok {
			if err := m.k.Stop(s); err != nil {
				errs = append(errs, err)
				continue
			}
			m.log.Info("IPVS sync daemon settings differ, restarting it", "running", cur.String(), "want", want.String())
			delete(have, s)
		}
		if err := m.k.Start(want); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("IPVS sync daemon started", "daemon", want.String())
		have[s] = want.normal()
	}
	var out []Daemon
	for _, s := range []State{Master, Backup} {
		if d, ok := have[s]; ok {
			out = append(out, d)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("ipvssync: %w", err)
	}
	return out, nil
}

// Stop stops both daemons.
func (m *Manager) Stop() error {
	_, err := m.Sync(nil)
	return err
}

// same reports whether the running daemon cur has the settings of want (the
// kernel reports its defaults and, without a wanted MaxLen, its own).
func same(cur, want Daemon) bool {
	want = want.normal()
	if want.MaxLen == 0 {
		want.MaxLen = cur.MaxLen
	}
	return cur == want
}

// OpenManager opens a Conn in the caller's network namespace and returns a
// Manager over it; the Manager keeps the Conn for its life.
func OpenManager(log logr.Logger) (*Manager, error) {
	c, err := Open()
	if err != nil {
		return nil, err
	}
	return NewManager(c, log), nil
}

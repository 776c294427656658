package snat

import (
	"fmt"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	"github.com/google/nftables"
)

// Manager keeps the table "inet vipvs" of one network namespace in the
// state the last Sync asked for. Its methods are safe for concurrent use.
type Manager struct {
	netns int // fd of the network namespace; 0 means the caller's
	log   logr.Logger

	mu      sync.Mutex
	applied []Target // normalised targets of the last successful write
	written bool     // applied is what the kernel holds (as far as we know)
}

// Option configures a Manager.
type Option func(*Manager)

// withNetNS makes the Manager program the network namespace that fd refers
// to (an open /run/netns/<name>, or int(netns.NsHandle)) rather than the
// caller's, for the tests. The caller keeps fd open for the Manager's life.
// Elsewhere, a Manager whose methods run on a thread in a namespace
// programs that namespace: each operation opens its own netlink socket.
func withNetNS(fd int) Option {
	return func(m *Manager) { m.netns = fd }
}

// WithLogger sets the logger (default: none). Changes and repairs of the
// table are logged at V(0), a Sync that changes nothing at V(1).
func WithLogger(log logr.Logger) Option {
	return func(m *Manager) { m.log = log }
}

// New returns a Manager. It does not touch the kernel: the first Sync
// writes the table, replacing whatever an earlier process left in it.
func New(opts ...Option) (*Manager, error) {
	m := &Manager{log: logr.Discard()}
	for _, o := range opts {
		o(m)
	}
	if m.netns < 0 {
		return nil, fmt.Errorf("snat: invalid network namespace fd %d", m.netns)
	}
	return m, nil
}

// conn returns a new nftables connection in the Manager's namespace. It
// opens a netlink socket per operation: Sync runs seldom, and nothing needs
// closing.
func (m *Manager) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if m.netns > 0 {
		opts = append(opts, nftables.WithNetNSFd(m.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("snat: opening nftables: %w", err)
	}
	return c, nil
}

// Sync makes the table hold exactly one masquerade rule per target, in a
// fixed order (IPv4 before IPv6, then by address, protocol and port;
// duplicates once). An invalid target fails the whole Sync, with every
// problem listed, and changes nothing.
//
// The table, its chain and all rules are replaced in one netlink batch,
// which the kernel applies atomically. When the targets are those of the
// last successful Sync, Sync only checks that the table and its chain
// still exist (two netlink requests, no write) and rewrites them if not.
// After a failed write the next Sync writes again.
func (m *Manager) Sync(targets []Target) error {
	want, err := normalize(targets)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	log := m.log.WithValues("table", "inet "+TableName)
	if m.written && slices.Equal(m.applied, want) {
		problem := m.check()
		if problem == "" {
			log.V(1).Info("SNAT rules unchanged", "targets", len(want))
			return nil
		}
		log.Info("SNAT table restored", "reason", problem, "targets", len(want))
	}
	if err := m.write(want); err != nil {
		m.written = false
		return err
	}
	if !m.written || !slices.Equal(m.applied, want) {
		log.Info("SNAT rules applied", "targets", targetStrings(want))
	}
	m.applied, m.written = want, true
	return nil
}

// Delete removes the table; a table that does not exist is no error. The
// next Sync creates it again.
func (m *Manager) Delete() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.conn()
	if err != nil {
		return err
	}
	t := table()
	// Adding first makes the delete succeed when the table is absent; the
	// kernel applies both or neither.
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("snat: deleting table inet %s: %w", TableName, err)
	}
	m.applied, m.written = nil, false
	m.log.Info("SNAT table deleted", "table", "inet "+TableName)
	return nil
}

// write replaces the table with one holding the rules for want.
func (m *Manager) write(want []Target) error {
	c, err := m.conn()
	if err != nil {
		return err
	}
	t := table()
	// add (a no-op if it exists), delete, add: the batch replaces the table
	// whether or not it existed, and removes whatever else it held.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(chain(t))
	for _, r := range rules(t, ch, want) {
		c.AddRule(r)
	}
	in := c.AddChain(inputChain(t))
	for _, r := range inputRules(t, in, want) {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("snat: replacing table inet %s (%d rules): %w", TableName, len(want), err)
	}
	return nil
}

// check returns why the table does not look as written: "" when the table
// and its chain exist with the chain's type, hook, priority and policy.
func (m *Manager) check() string {
	c, err := m.conn()
	if err != nil {
		return err.Error()
	}
	t, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	if err != nil {
		return fmt.Sprintf("table inet %s not found: %v", TableName, err)
	}
	ch, err := c.ListChain(t, ChainName)
	if err != nil {
		return fmt.Sprintf("chain %s not found: %v", ChainName, err)
	}
	want := chain(t)
	if ch.Type != want.Type || ch.Hooknum == nil || *ch.Hooknum != *want.Hooknum ||
		ch.Priority == nil || *ch.Priority != *want.Priority || ch.Policy == nil || *ch.Policy != *want.Policy {
		return fmt.Sprintf("chain %s changed", ChainName)
	}
	if _, err := c.ListChain(t, InputChainName); err != nil {
		return fmt.Sprintf("chain %s not found: %v", InputChainName, err)
	}
	return ""
}

func targetStrings(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

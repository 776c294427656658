// Package noarp keeps a node from answering ARP requests for addresses it
// holds on a local interface (the VIPs of routers in mode bgp, on lo): one
// nftables table of family arp whose input chain drops the ARP requests
// that ask for one of them. Linux answers ARP on any interface for any of
// its addresses (arp_ignore=0); a node that answered for a VIP on the
// uplink would draw traffic for it that the routers' ECMP is meant to
// spread. Only those addresses are affected, unlike arp_ignore=1 for the
// whole node (see docs/bgp.md).
package noarp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// nfARPIn is the arp family's input hook (NF_ARP_IN in
// linux/netfilter_arp.h; the inet hooks' numbers differ).
const nfARPIn nftables.ChainHook = 0

// ARP header offsets (RFC 826) for Ethernet and IPv4: the operation, and
// the target protocol address after the sender's 6+4 and the target's 6
// bytes of hardware address.
const (
	offOperation = 6
	offTargetIP  = 24
)

// Guard owns one table "arp <name>". Create it with New; Set and Close are
// safe for concurrent use.
type Guard struct {
	name string
	// netns, when above 0, is the namespace (a file descriptor) the table
	// is written in; 0 is the process's own.
	netns int

	mu   sync.Mutex
	last []netip.Addr
	set  bool
}

// New returns a guard that owns the table "arp <name>" of the current
// network namespace. It writes nothing until Set.
func New(name string) *Guard { return &Guard{name: name} }

// NewInNamespace is New for the network namespace behind the file
// descriptor netns (tests).
func NewInNamespace(name string, netns int) *Guard { return &Guard{name: name, netns: netns} }

func (g *Guard) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if g.netns > 0 {
		opts = append(opts, nftables.WithNetNSFd(g.netns))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("noarp: opening nftables: %w", err)
	}
	return c, nil
}

// Set makes the node ignore the ARP requests for exactly addrs (IPv4; other
// addresses are an error). The table is replaced in one batch, which the
// kernel applies atomically; an empty addrs removes the table.
func (g *Guard) Set(addrs []netip.Addr) error {
	want := slices.Clone(addrs)
	for _, a := range want {
		if !a.Is4() {
			return fmt.Errorf("noarp: %s is not an IPv4 address (NDP does not answer for addresses on another interface)", a)
		}
	}
	slices.SortFunc(want, netip.Addr.Compare)
	want = slices.Compact(want)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.set && slices.Equal(g.last, want) {
		return nil
	}
	c, err := g.conn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyARP, Name: g.name}
	// Add (a no-op when it exists) then delete: the batch starts from no
	// table whether or not one was there.
	c.AddTable(t)
	c.DelTable(t)
	if len(want) > 0 {
		c.AddTable(t)
		hook, prio := nfARPIn, nftables.ChainPriorityFilter
		policy := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter, Hooknum: &hook, Priority: prio, Policy: &policy})
		set := &nftables.Set{Table: t, Name: "vips", KeyType: nftables.TypeIPAddr}
		elems := make([]nftables.SetElement, len(want))
		for i, a := range want {
			elems[i] = nftables.SetElement{Key: a.AsSlice()}
		}
		if err := c.AddSet(set, elems); err != nil {
			return fmt.Errorf("noarp: table arp %s: %w", g.name, err)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			// arp operation request
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offOperation, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 1}},
			// arp daddr ip @vips
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offTargetIP, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := c.Flush(); err != nil {
		g.set = false
		return fmt.Errorf("noarp: writing table arp %s (%d addresses): %w", g.name, len(want), err)
	}
	g.last, g.set = want, true
	return nil
}

// Close removes the table.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, err := g.conn()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyARP, Name: g.name}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return errors.Join(fmt.Errorf("noarp: removing table arp %s", g.name), err)
	}
	g.last, g.set = nil, false
	return nil
}

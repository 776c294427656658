package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NftTable is the name of the nftables tables the lab's faults live in:
// "netdev lab" for Partition, "inet lab" for Loss. Nothing else in a lab
// namespace should use these tables.
const NftTable = "lab"

func (h *Host) nft() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(h.ns)))
	if err != nil {
		return nil, fmt.Errorf("opening nftables in %s: %w", h.Name, err)
	}
	return c, nil
}

// nextChain returns a chain name unique in the lab.
func (l *Lab) nextChain(kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nftSeq++
	return fmt.Sprintf("%s%d", kind, l.nftSeq)
}

// addChains adds, in one transaction in h's namespace, table "<family> lab"
// and the given base chains, each with one rule made of exprs. It returns a
// function deleting those chains again.
func (h *Host) addChains(family nftables.TableFamily, chains []*nftables.Chain, exprs [][]expr.Any) (undo func() error, err error) {
	c, err := h.nft()
	if err != nil {
		return nil, err
	}
	t := c.AddTable(&nftables.Table{Family: family, Name: NftTable})
	for i, ch := range chains {
		ch.Table = t
		ch.Type = nftables.ChainTypeFilter
		ch.Priority = nftables.ChainPriorityFilter
		policy := nftables.ChainPolicyAccept
		ch.Policy = &policy
		c.AddChain(ch)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs[i]})
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("adding nftables chains in %s: %w", h.Name, err)
	}
	var once sync.Once
	var undoErr error
	return func() error {
		once.Do(func() {
			c, err := h.nft()
			if err != nil {
				undoErr = err
				return
			}
			for _, ch := range chains {
				c.FlushChain(ch)
				c.DelChain(ch)
			}
			if err := c.Flush(); err != nil {
				undoErr = fmt.Errorf("deleting nftables chains in %s: %w", h.Name, err)
			}
		})
		return undoErr
	}, nil
}

// Partition drops all traffic between a and b, in both directions, and
// nothing else: in each of the two namespaces a chain on the netdev ingress
// hook of eth0 (table "netdev lab") drops every frame whose Ethernet source
// is the other host's MAC. That covers IPv4, IPv6, ARP, ND and multicast
// VRRP adverts, and packets sourced from a VIP the other host holds. undo
// deletes the two chains (it is idempotent); partitions and losses stack.
func (l *Lab) Partition(a, b *Host) (undo func() error, err error) {
	if a == b {
		return nil, fmt.Errorf("partitioning %s from itself", a.Name)
	}
	name := l.nextChain("part")
	dropFrom := func(h, other *Host) (func() error, error) {
		ch := &nftables.Chain{Name: name, Hooknum: nftables.ChainHookIngress, Device: h.IfName}
		return h.addChains(nftables.TableFamilyNetdev, []*nftables.Chain{ch}, [][]expr.Any{{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(other.MAC)},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	undoA, err := dropFrom(a, b)
	if err != nil {
		return nil, fmt.Errorf("partitioning %s from %s: %w", a.Name, b.Name, err)
	}
	undoB, err := dropFrom(b, a)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("partitioning %s from %s: %w", a.Name, b.Name, err), undoA())
	}
	return func() error {
		if err := errors.Join(undoA(), undoB()); err != nil {
			return fmt.Errorf("healing partition %s-%s: %w", a.Name, b.Name, err)
		}
		return nil
	}, nil
}

// Loss drops each IP packet h sends or receives with probability
// percent/100 (0-100): chains on the input and output hooks of table "inet
// lab" with `numgen random mod 100 < percent drop`. It applies to IPv4 and
// IPv6 (ND included) on every interface, not to ARP. undo deletes the
// chains (idempotent); losses stack, multiplying.
func (l *Lab) Loss(h *Host, percent int) (undo func() error, err error) {
	if percent < 0 || percent > 100 {
		return nil, fmt.Errorf("invalid loss %d%% for %s: must be 0-100", percent, h.Name)
	}
	if percent == 0 {
		return func() error { return nil }, nil
	}
	name := l.nextChain("loss")
	rule := func() []expr.Any {
		return []expr.Any{
			&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
			// numgen yields a host-order integer and cmp compares bytes, so
			// convert it to network order as nft does.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: binary.BigEndian.AppendUint32(nil, uint32(percent))},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}
	}
	del, err := h.addChains(nftables.TableFamilyINet, []*nftables.Chain{
		{Name: name + "in", Hooknum: nftables.ChainHookInput},
		{Name: name + "out", Hooknum: nftables.ChainHookOutput},
	}, [][]expr.Any{rule(), rule()})
	if err != nil {
		return nil, fmt.Errorf("adding %d%% loss on %s: %w", percent, h.Name, err)
	}
	return func() error {
		if err := del(); err != nil {
			return fmt.Errorf("removing loss on %s: %w", h.Name, err)
		}
		return nil
	}, nil
}

package snat

import (
	"encoding/binary"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Names of the nftables objects the package owns.
const (
	// TableName is the name of the table, of family inet.
	TableName = "vipvs"
	// ChainName is the name of its one chain, a nat chain on the
	// postrouting hook at priority srcnat (100).
	ChainName = "postrouting"
)

// ctDirOriginal is IP_CT_DIR_ORIGINAL, the direction of the conntrack tuple
// the client's first packet created.
const ctDirOriginal = 0

// Offsets of the destination address in the IPv4 and IPv6 headers.
const (
	ipv4DaddrOffset = 16
	ipv6DaddrOffset = 24
)

// table returns the owned table.
func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// chain returns the owned chain in t: type nat hook postrouting priority
// srcnat, policy accept.
func chain(t *nftables.Table) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     ChainName,
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookRef(unix.NF_INET_POST_ROUTING),
		Priority: nftables.ChainPriorityRef(100), // srcnat
		Policy:   &policy,
	}
}

// rules returns the two rules of t (a valid target), in this order:
//
//	meta nfproto ipv4 ct original daddr VIP ct original protocol PROTO
//	ct original proto-dst PORT ip daddr != VIP fib saddr type local
//	counter masquerade comment "tcp/VIP:PORT local"
//
//	meta nfproto ipv4 ct original daddr VIP ct original protocol PROTO
//	ct original proto-dst PORT ip daddr != VIP counter snat to VIP
//	comment "tcp/VIP:PORT"
//
// A connection from outside (the client is not this node) is source-NATed
// to the VIP (with Target.Masquerade: masqueraded, "counter masquerade"),
// which moves with the master: the real server sees the same
// source (VIP, client port) whichever director forwards the connection, so
// that after a failover the new master (with the connection from the IPVS
// sync and the conntrack entry from TCP loose pickup) continues it. A
// connection of this node itself is masqueraded to its own address: IPVS
// balances it locally, the VIP may be on another node, and the real server
// must answer here. A nat chain sees only the first packet of a
// connection, and stops at the first rule that translates it.
//
// The cheapest and most selective matches come first.
func targetRules(tbl *nftables.Table, ch *nftables.Chain, t Target) []*nftables.Rule {
	nfproto, offset := byte(unix.NFPROTO_IPV4), uint32(ipv4DaddrOffset)
	if t.Family() == IPv6 {
		nfproto, offset = unix.NFPROTO_IPV6, ipv6DaddrOffset
	}
	vip := t.VIP.AsSlice()
	match := func() []expr.Any {
		return []expr.Any{
			// meta nfproto ipv4|ipv6: guards the family of the payload
			// match below, which an inet chain does not imply.
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			// ct original daddr VIP: 4 of the 16 bytes an inet table
			// loads for IPv4. Untracked packets stop here.
			&expr.Ct{Key: expr.CtKeyDST, Direction: ctDirOriginal, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: vip},
			// ct original protocol (the same in both directions).
			&expr.Ct{Key: expr.CtKeyPROTOCOL, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t.Protocol}},
			// ct original proto-dst PORT.
			&expr.Ct{Key: expr.CtKeyPROTODST, Direction: ctDirOriginal, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, t.Port)},
			// ip daddr != VIP: IPVS rewrote the destination.
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(vip))},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: vip},
		}
	}
	local := append(match(),
		// fib saddr type local: the client is this node.
		&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
		&expr.Counter{},
		&expr.Masq{},
	)
	toVIP := append(match(),
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: vip},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(nfproto), RegAddrMin: 1, RegAddrMax: 1},
	)
	if t.Masquerade {
		// A VIP every node holds: to this node's address (Target.Masquerade).
		toVIP = append(match(), &expr.Counter{}, &expr.Masq{})
	}
	return []*nftables.Rule{
		{Table: tbl, Chain: ch, Exprs: local, UserData: userdata.AppendString(nil, userdata.TypeComment, t.String()+" local")},
		{Table: tbl, Chain: ch, Exprs: toVIP, UserData: userdata.AppendString(nil, userdata.TypeComment, t.String())},
	}
}

// rules returns the rules for targets, in their order.
func rules(tbl *nftables.Table, ch *nftables.Chain, targets []Target) []*nftables.Rule {
	rs := make([]*nftables.Rule, 0, 2*len(targets))
	for _, t := range targets {
		rs = append(rs, targetRules(tbl, ch, t)...)
	}
	return rs
}

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

// rule returns the rule masquerading the connections IPVS forwarded from
// t (a valid target), with t.String() as its comment:
//
//	meta nfproto ipv4 ct original daddr VIP ct original protocol PROTO
//	ct original proto-dst PORT ip daddr != VIP counter masquerade
//
// The cheapest and most selective matches come first; a nat chain sees only
// the first packet of each connection.
func rule(tbl *nftables.Table, ch *nftables.Chain, t Target) *nftables.Rule {
	nfproto, offset := byte(unix.NFPROTO_IPV4), uint32(ipv4DaddrOffset)
	if t.Family() == IPv6 {
		nfproto, offset = unix.NFPROTO_IPV6, ipv6DaddrOffset
	}
	vip := t.VIP.AsSlice()
	return &nftables.Rule{
		Table: tbl,
		Chain: ch,
		Exprs: []expr.Any{
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
			&expr.Counter{},
			&expr.Masq{},
		},
		UserData: userdata.AppendString(nil, userdata.TypeComment, t.String()),
	}
}

// rules returns the rules for targets, in their order.
func rules(tbl *nftables.Table, ch *nftables.Chain, targets []Target) []*nftables.Rule {
	rs := make([]*nftables.Rule, 0, len(targets))
	for _, t := range targets {
		rs = append(rs, rule(tbl, ch, t))
	}
	return rs
}

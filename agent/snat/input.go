package snat

import (
	"encoding/binary"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// InputChainName is the name of the table's filter chain on the input
// hook, at priority inputPriority: after IPVS (which takes the packets it
// forwards at priorities 98 and 99), so that it sees only what the local
// stack would receive.
const InputChainName = "input"

const inputPriority = 200

// TCP header offsets and flags the input rules match.
const (
	tcpFlagsOffset = 13
	tcpDportOffset = 2
	tcpSYN         = 0x02
	tcpRST         = 0x04
)

// inputChain returns the input chain in t: type filter hook input
// priority 200, policy accept.
func inputChain(t *nftables.Table) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     InputChainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookRef(unix.NF_INET_LOCAL_IN),
		Priority: nftables.ChainPriorityRef(inputPriority),
		Policy:   &policy,
	}
}

// inputRules returns, for each VIP with TCP targets, the rule that drops a
// real server's answer reaching a new master before the client's next
// packet (targets are normalised):
//
//	meta nfproto ipv4 ip daddr VIP meta l4proto tcp ct state new
//	tcp flags & (syn|rst) == 0 tcp dport != PORT1 ... tcp dport != PORTn
//	counter drop comment "tcp/VIP"
//
// After a failover, a connection's packets may reach the new master from
// either end first. When the real server's (retransmitted) answer to the
// VIP comes first, conntrack picks it up as a new connection in the wrong
// direction, nothing undoes the source NAT, and the local stack, which has
// no such socket, answers with a reset that kills the real server's end.
// Dropping it instead lets the real server retransmit once the client's
// packet has set the connection up (IPVS entry from the sync, conntrack
// entry from loose pickup, source NAT to the VIP). The drop is dropped
// before conntrack confirms its entry, so it leaves no state. Packets to
// the virtual services' own ports are left alone: an unknown client
// connection still gets its reset at once.
func inputRules(tbl *nftables.Table, ch *nftables.Chain, targets []Target) []*nftables.Rule {
	var rs []*nftables.Rule
	for i := 0; i < len(targets); {
		vip := targets[i].VIP
		var ports []uint16
		for ; i < len(targets) && targets[i].VIP == vip; i++ {
			if targets[i].Protocol == TCP {
				ports = append(ports, targets[i].Port)
			}
		}
		if len(ports) == 0 {
			continue
		}
		slices.Sort(ports)
		nfproto, offset := byte(unix.NFPROTO_IPV4), uint32(ipv4DaddrOffset)
		if vip.Is6() {
			nfproto, offset = unix.NFPROTO_IPV6, ipv6DaddrOffset
		}
		addr := vip.AsSlice()
		exprs := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(addr))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			// ct state new: the packet started a conntrack entry.
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitNEW), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			// tcp flags & (syn|rst) == 0: picked up in the middle.
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: tcpFlagsOffset, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpSYN | tcpRST}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}},
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: tcpDportOffset, Len: 2},
		}
		for _, p := range ports {
			exprs = append(exprs, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p)})
		}
		exprs = append(exprs, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})
		rs = append(rs, &nftables.Rule{
			Table: tbl, Chain: ch, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, "tcp/"+vip.String()),
		})
	}
	return rs
}

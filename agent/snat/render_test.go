package snat

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/<TestName>.golden, rewriting it
// with -update.
func checkGolden(t *testing.T, got string) {
	t.Helper()
	p := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got), rerun with -update if intended:\n%s", p, diff)
	}
}

// rendered is a rule as text: its comment and its expressions in the
// style of `nft --debug=netlink`, one per line.
type rendered struct {
	Comment string
	Exprs   []string
}

func (r rendered) String() string {
	return fmt.Sprintf("rule %q\n  %s\n", r.Comment, strings.Join(r.Exprs, "\n  "))
}

func renderRule(r *nftables.Rule) rendered {
	comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	out := rendered{Comment: comment}
	for _, e := range r.Exprs {
		out.Exprs = append(out.Exprs, renderExpr(e))
	}
	return out
}

func renderRules(rs []*nftables.Rule) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(renderRule(r).String())
	}
	return b.String()
}

// renderExpr renders the expressions the package uses; any other as %T
// %+v, so that nothing read back goes unnoticed. Counters render without
// their values.
func renderExpr(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Meta:
		names := map[expr.MetaKey]string{expr.MetaKeyNFPROTO: "nfproto", expr.MetaKeyL4PROTO: "l4proto"}
		name, ok := names[e.Key]
		if !ok {
			name = fmt.Sprintf("key-%d", e.Key)
		}
		if e.SourceRegister {
			return fmt.Sprintf("[ meta set %s with reg %d ]", name, e.Register)
		}
		return fmt.Sprintf("[ meta load %s => reg %d ]", name, e.Register)
	case *expr.Cmp:
		ops := map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq", expr.CmpOpLt: "lt", expr.CmpOpLte: "lte", expr.CmpOpGt: "gt", expr.CmpOpGte: "gte"}
		return fmt.Sprintf("[ cmp %s reg %d 0x%x ]", ops[e.Op], e.Register, e.Data)
	case *expr.Ct:
		names := map[expr.CtKey]string{expr.CtKeyDST: "dst", expr.CtKeySRC: "src", expr.CtKeyPROTOCOL: "protocol", expr.CtKeyPROTODST: "proto_dst", expr.CtKeyPROTOSRC: "proto_src", expr.CtKeySTATE: "state"}
		name, ok := names[e.Key]
		if !ok {
			name = fmt.Sprintf("key-%d", e.Key)
		}
		s := fmt.Sprintf("[ ct load %s => reg %d", name, e.Register)
		if e.SourceRegister {
			s = fmt.Sprintf("[ ct set %s with reg %d", name, e.Register)
		}
		switch e.Key {
		case expr.CtKeyDST, expr.CtKeySRC, expr.CtKeyPROTODST, expr.CtKeyPROTOSRC:
			s += [...]string{", dir original", ", dir reply"}[e.Direction&1]
		}
		return s + " ]"
	case *expr.Payload:
		bases := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "link", expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}
		if e.OperationType != expr.PayloadLoad || e.CsumType != 0 {
			return fmt.Sprintf("[ payload %+v ]", *e)
		}
		return fmt.Sprintf("[ payload load %db @ %s header + %d => reg %d ]", e.Len, bases[e.Base], e.Offset, e.DestRegister)
	case *expr.Counter:
		return "[ counter ]"
	case *expr.Fib:
		if *e == (expr.Fib{Register: e.Register, FlagSADDR: true, ResultADDRTYPE: true}) {
			return fmt.Sprintf("[ fib saddr type => reg %d ]", e.Register)
		}
		return fmt.Sprintf("[ fib %+v ]", *e)
	case *expr.Bitwise:
		return fmt.Sprintf("[ bitwise reg %d = (reg %d & 0x%x) ^ 0x%x ]", e.DestRegister, e.SourceRegister, e.Mask, e.Xor)
	case *expr.Verdict:
		return fmt.Sprintf("[ immediate reg 0 verdict %d ]", e.Kind)
	case *expr.Immediate:
		return fmt.Sprintf("[ immediate reg %d 0x%x ]", e.Register, e.Data)
	case *expr.NAT:
		if e.Type == expr.NATTypeSourceNAT && *e == (expr.NAT{Type: e.Type, Family: e.Family, RegAddrMin: e.RegAddrMin, RegAddrMax: e.RegAddrMax}) {
			return fmt.Sprintf("[ nat snat %s addr_min reg %d addr_max reg %d ]", map[uint32]string{unix.NFPROTO_IPV4: "ip", unix.NFPROTO_IPV6: "ip6"}[e.Family], e.RegAddrMin, e.RegAddrMax)
		}
		return fmt.Sprintf("[ nat %+v ]", *e)
	case *expr.Masq:
		if *e != (expr.Masq{}) {
			return fmt.Sprintf("[ masq %+v ]", *e)
		}
		return "[ masq ]"
	}
	return fmt.Sprintf("[ %T %+v ]", e, e)
}

// The rules are read back without nftables.Conn.GetRules: google/nftables
// v0.3.0 decodes NFTA_CT_DIRECTION as a u32 while the kernel sends a u8,
// so GetRules fails on every rule with "ct original ...". dumpRules dumps
// the rules over netlink itself, widens that one attribute, and decodes
// each expression with the library's expr.Unmarshal.

// nftRequest runs one nftables netlink request in the namespace ns (0: the
// caller's) and returns the answer's messages.
func nftRequest(ns int, msgType int, flags netlink.HeaderFlags, family nftables.TableFamily, attrs []netlink.Attribute) ([]netlink.Message, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns})
	if err != nil {
		return nil, fmt.Errorf("dialing netlink: %w", err)
	}
	defer c.Close()
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType), Flags: netlink.Request | flags},
		Data:   append([]byte{byte(family), unix.NFNETLINK_V0, 0, 0}, data...),
	})
	if err != nil {
		return nil, fmt.Errorf("nftables request %d: %w", msgType, err)
	}
	return msgs, nil
}

// dumpRules returns the rules of one chain, decoded.
func dumpRules(ns int, family nftables.TableFamily, table, chain string) ([]*nftables.Rule, error) {
	msgs, err := nftRequest(ns, unix.NFT_MSG_GETRULE, netlink.Dump, family, []netlink.Attribute{
		{Type: unix.NFTA_RULE_TABLE, Data: []byte(table + "\x00")},
		{Type: unix.NFTA_RULE_CHAIN, Data: []byte(chain + "\x00")},
	})
	if err != nil {
		return nil, fmt.Errorf("dumping rules of %s: %w", chain, err)
	}
	var rules []*nftables.Rule
	for _, m := range msgs {
		r := &nftables.Rule{}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_HANDLE:
				r.Handle = ad.Uint64()
			case unix.NFTA_RULE_USERDATA:
				r.UserData = ad.Bytes()
			case unix.NFTA_RULE_EXPRESSIONS:
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						nad.Nested(func(ead *netlink.AttributeDecoder) error {
							e, err := decodeExpr(byte(family), ead)
							if err != nil {
								return err
							}
							r.Exprs = append(r.Exprs, e)
							return nil
						})
					}
					return nil
				})
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("decoding a rule of %s: %w", chain, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// decodeExpr decodes one NFTA_LIST_ELEM of a rule's expressions.
func decodeExpr(family byte, ad *netlink.AttributeDecoder) (expr.Any, error) {
	var name string
	var data []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_EXPR_NAME:
			name = ad.String()
		case unix.NFTA_EXPR_DATA:
			data = ad.Bytes()
		}
	}
	var e expr.Any
	switch name {
	case "meta":
		e = &expr.Meta{}
	case "cmp":
		e = &expr.Cmp{}
	case "ct":
		e = &expr.Ct{}
		attrs, err := netlink.UnmarshalAttributes(data)
		if err != nil {
			return nil, err
		}
		for i, a := range attrs {
			attrs[i].Length = 0 // recomputed by MarshalAttributes
			if a.Type == unix.NFTA_CT_DIRECTION && len(a.Data) == 1 {
				attrs[i].Data = []byte{0, 0, 0, a.Data[0]}
			}
		}
		if data, err = netlink.MarshalAttributes(attrs); err != nil {
			return nil, err
		}
	case "payload":
		e = &expr.Payload{}
	case "counter":
		e = &expr.Counter{}
	case "masq":
		e = &expr.Masq{}
	case "immediate":
		e = &expr.Immediate{}
	case "lookup":
		e = &expr.Lookup{}
	case "fib":
		e = &expr.Fib{}
	case "bitwise":
		e = &expr.Bitwise{}
	case "nat":
		e = &expr.NAT{}
	default:
		return nil, fmt.Errorf("expression %q: not decoded by this test", name)
	}
	if err := expr.Unmarshal(family, data, e); err != nil {
		return nil, fmt.Errorf("decoding expression %q: %w", name, err)
	}
	if im, ok := e.(*expr.Immediate); ok && im.Register == 0 {
		// An immediate into the verdict register is a verdict.
		v := &expr.Verdict{}
		if err := expr.Unmarshal(family, data, v); err != nil {
			return nil, fmt.Errorf("decoding verdict: %w", err)
		}
		return v, nil
	}
	return e, nil
}

// generation returns the nftables ruleset generation of namespace ns: it
// grows with every committed batch, so an unchanged generation proves that
// nothing was written.
func generation(ns int) (uint32, error) {
	msgs, err := nftRequest(ns, unix.NFT_MSG_GETGEN, 0, nftables.TableFamilyUnspecified, nil)
	if err != nil {
		return 0, err
	}
	if len(msgs) != 1 {
		return 0, fmt.Errorf("generation: %d messages, want 1", len(msgs))
	}
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[4:])
	if err != nil {
		return 0, err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID {
			return ad.Uint32(), nil
		}
	}
	if err := ad.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("generation: no NFTA_GEN_ID")
}

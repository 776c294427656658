package snat

import (
	"testing"

	"github.com/google/nftables/expr"
)

// TestRules pins the rule of each kind of target (golden file): the
// expressions, their order and the comment.
func TestRules(t *testing.T) {
	targets, err := normalize([]Target{
		{VIP: vip6, Port: 6443, Protocol: TCP},
		{VIP: vip4, Port: 53, Protocol: UDP},
		{VIP: vip4, Port: 6443, Protocol: TCP},
		{VIP: vip6, Port: 3868, Protocol: SCTP},
	})
	if err != nil {
		t.Fatal(err)
	}
	tbl := table()
	checkGolden(t, renderRules(rules(tbl, chain(tbl), targets)))
}

// TestInputRules pins the input rules: one per VIP with TCP services.
func TestInputRules(t *testing.T) {
	targets, err := normalize([]Target{
		{VIP: vip6, Port: 6443, Protocol: TCP},
		{VIP: vip4, Port: 53, Protocol: UDP},
		{VIP: vip4, Port: 6443, Protocol: TCP},
		{VIP: vip4, Port: 22623, Protocol: TCP},
		{VIP: vip4b, Port: 53, Protocol: UDP},
	})
	if err != nil {
		t.Fatal(err)
	}
	tbl := table()
	checkGolden(t, renderRules(inputRules(tbl, inputChain(tbl), targets)))
}

// TestRulesMasquerade: a target whose VIP every node holds is masqueraded
// to the node's address by both rules; never source-NATed to the VIP.
func TestRulesMasquerade(t *testing.T) {
	tbl := table()
	for _, tg := range []Target{{VIP: vip4, Port: 80, Protocol: TCP, Masquerade: true}, {VIP: vip6, Port: 80, Protocol: TCP, Masquerade: true}} {
		rs := targetRules(tbl, chain(tbl), tg)
		if len(rs) != 2 {
			t.Fatalf("%v: %d rules, want 2", tg, len(rs))
		}
		for i, r := range rs {
			var masq, snat bool
			for _, e := range r.Exprs {
				switch e.(type) {
				case *expr.Masq:
					masq = true
				case *expr.NAT:
					snat = true
				}
			}
			if !masq || snat {
				t.Errorf("%v rule %d: masquerade %v, snat %v; want masquerade only", tg, i, masq, snat)
			}
		}
	}
}

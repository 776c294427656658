package snat

import (
	"testing"
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

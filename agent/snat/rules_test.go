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

package v1alpha1

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProblemsOf(t *testing.T) {
	notInSubnet := &Problem{Code: CodeVIPNotInSubnet, Router: "api", VIP: "192.0.2.100", Message: "no interface has an address in the subnet of VIP 192.0.2.100"}
	tests := []struct {
		name string
		err  error
		want []Problem
	}{
		{name: "nil"},
		{name: "plain error", err: errors.New("boom"), want: []Problem{{Code: CodeApplyFailed, Message: "boom"}}},
		{name: "wrapped problem keeps the context", err: fmt.Errorf("router api: %w", notInSubnet), want: []Problem{{
			Code: CodeVIPNotInSubnet, Router: "api", VIP: "192.0.2.100", Message: "router api: no interface has an address in the subnet of VIP 192.0.2.100"}}},
		{name: "joined", err: errors.Join(notInSubnet, errors.New("check x: bad")), want: []Problem{*notInSubnet, {Code: CodeApplyFailed, Message: "check x: bad"}}},
		{name: "wrapped join", err: fmt.Errorf("applying: %w", errors.Join(fmt.Errorf("router api: %w", notInSubnet), errors.New("other"))), want: []Problem{
			{Code: CodeVIPNotInSubnet, Router: "api", VIP: "192.0.2.100", Message: "router api: no interface has an address in the subnet of VIP 192.0.2.100"},
			{Code: CodeApplyFailed, Message: "other"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ProblemsOf(tt.err, CodeApplyFailed)); diff != "" {
				t.Errorf("ProblemsOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeReportRoundTrip(t *testing.T) {
	r := Report{ConfigHash: "abc", ConfigProblems: []Problem{{Code: CodeVIPNotInSubnet, Router: "b", VIP: "192.0.2.1", Message: "m"}}, Routers: []Router{
		{Name: "b", State: StateFault, Interface: "eth1", LastReason: "interface eth1 down", AdvertsSent: 5},
		{Name: "a", State: StateMaster, Master: "192.0.2.10", Interface: "eth0", LastReason: "preempted"},
	}}
	n := Summarize(r)
	want := NodeReport{APIVersion: APIVersion, Kind: KindNodeReport, ConfigProblems: r.ConfigProblems, Routers: []RouterSummary{
		{Name: "a", State: StateMaster, Master: "192.0.2.10", Interface: "eth0"},
		{Name: "b", State: StateFault, Interface: "eth1", Reason: "interface eth1 down"},
	}}
	if diff := cmp.Diff(want, n); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	got, err := ParseNodeReport(n.Encode())
	if err != nil || !cmp.Equal(n, got) {
		t.Errorf("ParseNodeReport(Encode()) = %+v, %v; want %+v", got, err, n)
	}
	if _, err := ParseNodeReport(`{"routers":[]}`); err != nil {
		t.Errorf("a report without apiVersion (older companion): %v, want it read as v1alpha1", err)
	}
	if _, err := ParseNodeReport(`{"apiVersion":"status.vipvs.io/v2","routers":[]}`); err == nil {
		t.Error("a report of another apiVersion was accepted")
	}
	r2 := r
	r2.Routers = append([]Router(nil), r.Routers...)
	r2.Routers[0].AdvertsSent = 99
	if Digest(r) != Digest(r2) {
		t.Error("a counter changed the digest")
	}
	r2.Routers[1].State = StateBackup
	if Digest(r) == Digest(r2) {
		t.Error("a state change left the digest as it was")
	}
}

// BenchmarkDigest is the cost of one look at the report by a waiting
// GET /status (the agent's status server computes it every 100 ms while
// the node companion watches): a report of four routers.
func BenchmarkDigest(b *testing.B) {
	r := Report{ConfigHash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for i := range 4 {
		r.Routers = append(r.Routers, Router{Name: fmt.Sprintf("router-%d", i), State: StateBackup, Master: "192.0.2.11",
			Interface: "eth0", VIPs: []string{"192.0.2.100/24"}, Drops: map[string]uint64{"peer": 3}})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Digest(r)
	}
}

package ipvs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clocktesting "k8s.io/utils/clock/testing"
)

func kinds(p Plan) []string {
	var out []string
	for _, o := range p.Ops {
		out = append(out, o.String())
	}
	return out
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	ingress := Service{VIP: vip4, Port: 443, Protocol: TCP, Reals: []Real{{Addr: a("192.0.2.21"), Weight: 1}}}
	foreign := Service{VIP: vip4, Port: 80, Protocol: TCP, Scheduler: "rr", Reals: []Real{{Addr: a("10.0.0.1"), Port: 8080, Weight: 1, Forward: NAT}}}
	m := newMemTable(foreign)
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t))

	steps := []struct {
		name    string
		desired []Service
		before  func()
		want    []string
		wantErr string
	}{
		{name: "from empty", desired: []Service{api(), ingress}, want: []string{
			"add-service tcp/192.0.2.100:443 scheduler=wlc persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:443 192.0.2.21:443 weight=1 forward=masq",
			"add-service tcp/192.0.2.100:6443 scheduler=rr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:6443 192.0.2.11:6443 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:6443 192.0.2.12:6443 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:6443 192.0.2.13:6443 weight=1 forward=masq",
		}},
		{name: "nothing to do", desired: []Service{api(), ingress}},
		{name: "foreign delete comes back", desired: []Service{api(), ingress},
			before: func() { delete(m.services, ingress.Key()) },
			want: []string{
				"add-service tcp/192.0.2.100:443 scheduler=wlc persistence=0s flags=0x0",
				"add-real tcp/192.0.2.100:443 192.0.2.21:443 weight=1 forward=masq",
			}},
		{name: "removed from the config", desired: []Service{api()}, want: []string{"del-service tcp/192.0.2.100:443"}},
		{name: "invalid service is reported and left alone", desired: []Service{with(api(), func(s *Service) { s.Scheduler = "bogus" })},
			wantErr: `ipvs: service tcp/192.0.2.100:6443: scheduler "bogus"`},
		{name: "duplicate is reported", desired: []Service{api(), with(api(), func(s *Service) { s.Scheduler = "lc" })},
			wantErr: "ipvs: service tcp/192.0.2.100:6443: duplicate service"},
		{name: "failed delete is retried", desired: nil,
			before: func() { m.failOn = api().Key() },
			want:   []string{"del-service tcp/192.0.2.100:6443"}, wantErr: "injected failure"},
		{name: "retried", desired: nil,
			before: func() { m.failOn = "" },
			want:   []string{"del-service tcp/192.0.2.100:6443"}},
		{name: "read error", desired: []Service{api()},
			before:  func() { m.readErr = errors.New("read failed") },
			wantErr: "read failed"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			plan, err := r.Reconcile(ctx, st.desired)
			if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
				t.Errorf("Reconcile error = %v, want %q", err, st.wantErr)
			}
			got := kinds(plan)
			if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(st.want, "\n"))
			}
			if _, ok := m.services[foreign.Key()]; !ok {
				t.Errorf("the foreign service was deleted")
			}
		})
	}
}

func TestReconcileWithOwned(t *testing.T) {
	// After a restart, the previous configuration's services are claimed.
	m := newMemTable(api())
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t), WithOwned(ownKeys(api().Key())))
	plan, err := r.Reconcile(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(plan); len(got) != 1 || got[0] != "del-service tcp/192.0.2.100:6443" {
		t.Errorf("plan = %q, want the old service deleted", got)
	}
}

type result struct {
	plan Plan
	took time.Duration
	err  error
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	m := newMemTable()
	m.readHook = func() { clk.Step(time.Millisecond) } // a reconcile "takes" 1 ms
	r := NewReconciler(m, clk, testr.New(t))
	results := make(chan result, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, 10*time.Second, func() []Service { return []Service{api()} }, func(p Plan, took time.Duration, err error) {
			results <- result{p, took, err}
		})
	}()
	next := func(what string) result {
		t.Helper()
		select {
		case res := <-results:
			return res
		case <-time.After(10 * time.Second):
			t.Fatalf("no reconcile: %s", what)
		}
		return result{}
	}
	waitTimer := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatal("Run did not arm its timer")
			}
			time.Sleep(time.Millisecond)
		}
	}

	if res := next("at start"); len(res.plan.Ops) != 4 || res.err != nil || res.took != time.Millisecond {
		t.Errorf("first reconcile: %d ops, took %s, err %v; want 4 ops, 1ms, nil", len(res.plan.Ops), res.took, res.err)
	}
	waitTimer()
	m.mu.Lock()
	delete(m.services, api().Key()) // kube-proxy deletes it
	m.mu.Unlock()
	clk.Step(9 * time.Second)
	select {
	case res := <-results:
		t.Fatalf("reconciled before the period: %v", res.plan)
	default:
	}
	clk.Step(time.Second)
	if res := next("after the period"); len(res.plan.Ops) != 4 {
		t.Errorf("periodic reconcile: %v, want the service back", kinds(res.plan))
	}
	waitTimer()
	r.Trigger()
	if res := next("after Trigger"); !res.plan.Empty() || res.err != nil {
		t.Errorf("triggered reconcile: %v, %v; want nothing to do", kinds(res.plan), res.err)
	}
	waitTimer()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

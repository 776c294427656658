package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
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

// svcN is the i-th of a family of services, tcp/192.0.2.100:(8000+i), wrr,
// three reals of weight 1.
func svcN(i int) Service {
	return Service{VIP: vip4, Port: uint16(8000 + i), Protocol: TCP, Scheduler: "wrr", Reals: []Real{
		{Addr: a("192.0.2.11"), Weight: 1}, {Addr: a("192.0.2.12"), Weight: 1}, {Addr: a("192.0.2.13"), Weight: 1},
	}}
}

func svcsN(n int) []Service {
	out := make([]Service, n)
	for i := range out {
		out[i] = svcN(i)
	}
	return out
}

func keysOf(ss ...Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Key())
	}
	return out
}

func TestReconcileChanged(t *testing.T) {
	ctx := context.Background()
	foreign := Service{VIP: vip4, Port: 80, Protocol: TCP, Scheduler: "rr", Reals: []Real{{Addr: a("10.0.0.1"), Port: 8080, Weight: 1, Forward: NAT}}}
	m := newMemTable(foreign)
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t))
	desired := svcsN(5)
	weight := func(i, j, w int) func() {
		return func() { desired[i].Reals[j].Weight = w }
	}
	kernel := func(f func(map[string]Service)) func() {
		return func() { f(m.services) }
	}

	steps := []struct {
		name    string
		before  func()
		full    bool
		desired func() []Service // desired if nil
		// wantRead lists the services whose reals are read, in order.
		wantRead []string
		want     []string
		wantErr  string
	}{
		{name: "full from empty", full: true, want: []string{
			"add-service tcp/192.0.2.100:8000 scheduler=wrr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:8000 192.0.2.11:8000 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8000 192.0.2.12:8000 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8000 192.0.2.13:8000 weight=1 forward=masq",
			"add-service tcp/192.0.2.100:8001 scheduler=wrr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:8001 192.0.2.11:8001 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8001 192.0.2.12:8001 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8001 192.0.2.13:8001 weight=1 forward=masq",
			"add-service tcp/192.0.2.100:8002 scheduler=wrr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:8002 192.0.2.11:8002 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8002 192.0.2.12:8002 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8002 192.0.2.13:8002 weight=1 forward=masq",
			"add-service tcp/192.0.2.100:8003 scheduler=wrr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:8003 192.0.2.11:8003 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8003 192.0.2.12:8003 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8003 192.0.2.13:8003 weight=1 forward=masq",
			"add-service tcp/192.0.2.100:8004 scheduler=wrr persistence=0s flags=0x0",
			"add-real tcp/192.0.2.100:8004 192.0.2.11:8004 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8004 192.0.2.12:8004 weight=1 forward=masq",
			"add-real tcp/192.0.2.100:8004 192.0.2.13:8004 weight=1 forward=masq",
		}},
		{name: "nothing changed reads no reals"},
		{name: "one weight: only that service's reals are read", before: weight(2, 1, 5),
			wantRead: keysOf(svcN(2)),
			want:     []string{"update-real tcp/192.0.2.100:8002 192.0.2.12:8002 weight=5 forward=masq"}},
		{name: "a real added to one service", desired: func() []Service {
			d := slices.Clone(desired)
			d[4].Reals = append(slices.Clone(d[4].Reals), Real{Addr: a("192.0.2.14"), Weight: 1})
			return d
		}, wantRead: keysOf(svcN(4)),
			want: []string{"add-real tcp/192.0.2.100:8004 192.0.2.14:8004 weight=1 forward=masq"}},
		{name: "and removed again", wantRead: keysOf(svcN(4)),
			want: []string{"del-real tcp/192.0.2.100:8004 192.0.2.14:8004"}},
		{name: "a service deleted by someone else comes back with its reals",
			before: kernel(func(k map[string]Service) { delete(k, svcN(3).Key()) }),
			want: []string{
				"add-service tcp/192.0.2.100:8003 scheduler=wrr persistence=0s flags=0x0",
				"add-real tcp/192.0.2.100:8003 192.0.2.11:8003 weight=1 forward=masq",
				"add-real tcp/192.0.2.100:8003 192.0.2.12:8003 weight=1 forward=masq",
				"add-real tcp/192.0.2.100:8003 192.0.2.13:8003 weight=1 forward=masq",
			}},
		{name: "an owned service no longer desired is deleted",
			desired: func() []Service { return desired[:4] },
			want:    []string{"del-service tcp/192.0.2.100:8004"}},
		{name: "a scheduler changed by someone else is repaired from the service list",
			desired: func() []Service { return desired[:4] },
			before: kernel(func(k map[string]Service) {
				s := k[svcN(1).Key()]
				s.Scheduler = "rr"
				k[s.Key()] = s
			}),
			want: []string{"update-service tcp/192.0.2.100:8001 scheduler=wrr persistence=0s flags=0x0"}},
		{name: "a real's weight changed by someone else is not seen",
			desired: func() []Service { return desired[:4] },
			before: kernel(func(k map[string]Service) {
				s := k[svcN(0).Key()]
				s.Reals = slices.Clone(s.Reals)
				s.Reals[0].Weight = 100
				k[s.Key()] = s
			})},
		{name: "the full reconcile repairs it", full: true,
			desired:  func() []Service { return desired[:4] },
			wantRead: keysOf(desired[:4]...),
			want:     []string{"update-real tcp/192.0.2.100:8000 192.0.2.11:8000 weight=1 forward=masq"}},
		{name: "a failed operation", before: func() { weight(1, 0, 7)(); weight(2, 0, 7)(); m.failOn = svcN(2).Key() },
			wantRead: keysOf(svcN(1), svcN(2)),
			want: []string{
				"update-real tcp/192.0.2.100:8001 192.0.2.11:8001 weight=7 forward=masq",
				"update-real tcp/192.0.2.100:8002 192.0.2.11:8002 weight=7 forward=masq",
				"add-service tcp/192.0.2.100:8004 scheduler=wrr persistence=0s flags=0x0",
				"add-real tcp/192.0.2.100:8004 192.0.2.11:8004 weight=1 forward=masq",
				"add-real tcp/192.0.2.100:8004 192.0.2.12:8004 weight=1 forward=masq",
				"add-real tcp/192.0.2.100:8004 192.0.2.13:8004 weight=1 forward=masq",
			}, wantErr: "ipvs: updating real server 192.0.2.11:8002 of service tcp/192.0.2.100:8002: injected failure"},
		{name: "is retried: its service's reals are read again", before: func() { m.failOn = "" },
			wantRead: keysOf(svcN(2)),
			want:     []string{"update-real tcp/192.0.2.100:8002 192.0.2.11:8002 weight=7 forward=masq"}},
		{name: "an error that names no operation", before: func() {
			weight(0, 2, 3)()
			weight(3, 2, 3)()
			m.failOn, m.plainErrors = svcN(3).Key(), true
		}, wantRead: keysOf(svcN(0), svcN(3)),
			want: []string{
				"update-real tcp/192.0.2.100:8000 192.0.2.13:8000 weight=3 forward=masq",
				"update-real tcp/192.0.2.100:8003 192.0.2.13:8003 weight=3 forward=masq",
			}, wantErr: "injected failure"},
		{name: "makes every service of the plan read again", before: func() { m.failOn, m.plainErrors = "", false },
			wantRead: keysOf(svcN(0), svcN(3)),
			want:     []string{"update-real tcp/192.0.2.100:8003 192.0.2.13:8003 weight=3 forward=masq"}},
		{name: "an invalid service is left alone", desired: func() []Service {
			d := slices.Clone(desired)
			d[1] = with(d[1], func(s *Service) { s.Reals[0].Weight = -1 })
			return d
		}, wantErr: "ipvs: service tcp/192.0.2.100:8001: reals[0] weight -1"},
		{name: "and read once valid again", wantRead: keysOf(svcN(1))},
		{name: "read error changes nothing", before: func() { m.readErr = errors.New("read failed"); weight(2, 2, 9)() },
			wantErr: "read failed"},
		{name: "the change is applied after it", before: func() { m.readErr = nil },
			wantRead: keysOf(svcN(2)),
			want:     []string{"update-real tcp/192.0.2.100:8002 192.0.2.13:8002 weight=9 forward=masq"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			m.resetCounts()
			d := desired
			if st.desired != nil {
				d = st.desired()
			}
			reconcile := r.ReconcileChanged
			if st.full {
				reconcile = r.Reconcile
			}
			plan, err := reconcile(ctx, d)
			if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
				t.Errorf("error = %v, want %q", err, st.wantErr)
			}
			if diff := cmp.Diff(st.want, kinds(plan)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if m.reads != 1 {
				t.Errorf("%d reads of the table, want 1", m.reads)
			}
			if diff := cmp.Diff(st.wantRead, m.realsRead); diff != "" {
				t.Errorf("reals read (-want +got):\n%s", diff)
			}
			if _, ok := m.services[foreign.Key()]; !ok {
				t.Errorf("the foreign service was deleted")
			}
		})
	}
	// The kernel holds what was desired last (the invalid service aside).
	got, _ := m.Services(ctx)
	if diff := cmp.Diff(normalAll(append(slices.Clone(desired), foreign)), got, cmpAddr); diff != "" {
		t.Errorf("final table (-want +got):\n%s", diff)
	}
}

func TestReconcileChangedRemembersCopies(t *testing.T) {
	// The caller may change its desired slices in place after a
	// reconcile: the Reconciler must have kept its own copy, or it would
	// take the change for the state it applied.
	m := newMemTable()
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t))
	desired := []Service{api()}
	if _, err := r.Reconcile(context.Background(), desired); err != nil {
		t.Fatal(err)
	}
	desired[0].Reals[1].Weight = 4
	plan, err := r.ReconcileChanged(context.Background(), desired)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update-real tcp/192.0.2.100:6443 192.0.2.12:6443 weight=4 forward=masq"}, kinds(plan)); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

// BenchmarkReconcileCPU measures the Reconciler's own work (validation,
// normalisation, Diff) against an in-memory table of 1000 services of 10
// reals, for one weight change: the cost of a reconcile besides the kernel's.
func BenchmarkReconcileCPU(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "changed"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			desired := benchTable(1000, 10)
			m := &sortedTable{services: normalAll(desired)}
			r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), logr.Discard())
			if _, err := r.Reconcile(context.Background(), desired); err != nil {
				b.Fatal(err)
			}
			reconcile := r.ReconcileChanged
			if full {
				reconcile = r.Reconcile
			}
			b.ReportAllocs()
			for b.Loop() {
				desired[500].Reals[3].Weight = 3 - desired[500].Reals[3].Weight
				if plan, err := reconcile(context.Background(), desired); err != nil || len(plan.Ops) != 1 {
					b.Fatal(len(plan.Ops), err)
				}
			}
		})
	}
}

// sortedTable is a Table for benchmarks: its services sorted, cheap to
// read; it applies real-server updates only.
type sortedTable struct{ services []Service }

func (m *sortedTable) Services(ctx context.Context) ([]Service, error) {
	return m.ServicesWithReals(ctx, nil)
}

func (m *sortedTable) ServicesWithReals(_ context.Context, withReals func(Service) bool) ([]Service, error) {
	out := slices.Clone(m.services)
	for i, s := range out {
		if withReals != nil && !withReals(bare(s)) {
			out[i].Reals = nil
		} else {
			out[i].Reals = slices.Clone(s.Reals)
		}
	}
	return out, nil
}

func (m *sortedTable) Apply(_ context.Context, p Plan) error {
	for _, op := range p.Ops {
		i, ok := slices.BinarySearchFunc(m.services, op.Service, compareServices)
		if !ok || op.Kind != UpdateReal {
			return fmt.Errorf("sortedTable: cannot %s", op)
		}
		j := slices.IndexFunc(m.services[i].Reals, func(r Real) bool { return r.key() == op.Real.key() })
		if j < 0 {
			return fmt.Errorf("sortedTable: no real for %s", op)
		}
		m.services[i].Reals[j] = op.Real
	}
	return nil
}

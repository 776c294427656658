package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

// memRecord is a Record in memory; each Save notes the table's services at
// the time, to tell a save before Apply from one after.
type memRecord struct {
	table   *memTable
	keys    []string
	loadErr error
	saveErr error
	// saves lists each save: the keys saved and the table's at the time.
	saves []recordSave
}

type recordSave struct {
	keys, table []string
}

func (r *memRecord) Load() ([]Service, error) {
	if r.loadErr != nil {
		return nil, r.loadErr
	}
	var out []Service
	for _, k := range r.keys {
		out = append(out, parseKey(k))
	}
	return out, nil
}

func (r *memRecord) Save(owned []Service) error {
	if r.saveErr != nil {
		return r.saveErr
	}
	r.keys = keysOf(owned...)
	slices.Sort(r.keys)
	r.table.mu.Lock()
	var table []string
	for k := range r.table.services {
		table = append(table, k)
	}
	r.table.mu.Unlock()
	slices.Sort(table)
	r.saves = append(r.saves, recordSave{r.keys, table})
	return nil
}

// parseKey parses "tcp/192.0.2.100:6443".
func parseKey(k string) Service {
	proto, addr, _ := strings.Cut(k, "/")
	p, err := ParseProtocol(proto)
	if err != nil {
		panic(err)
	}
	ap := netip.MustParseAddrPort(addr)
	return Service{Protocol: p, VIP: ap.Addr(), Port: ap.Port()}
}

func TestReconcileWithRecord(t *testing.T) {
	// The previous run owned api and 8000; the configuration now has api
	// only. A foreign service stays.
	ctx := context.Background()
	foreign := Service{VIP: vip4, Port: 80, Protocol: TCP, Scheduler: "rr", Reals: []Real{{Addr: a("10.0.0.1"), Port: 8080, Weight: 1, Forward: NAT}}}
	m := newMemTable(api(), svcN(0), foreign)
	rec := &memRecord{table: m, keys: []string{api().Key(), svcN(0).Key()}}
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t), WithRecord(rec))

	plan, err := r.Reconcile(ctx, []Service{api()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"del-service tcp/192.0.2.100:8000"}, kinds(plan)); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if _, ok := m.services[foreign.Key()]; !ok {
		t.Error("the foreign service was deleted")
	}
	// The deletion is recorded after it was applied.
	after := keysOf(api(), foreign) // sorted
	if diff := cmp.Diff([]recordSave{{[]string{api().Key()}, after}}, rec.saves, cmp.AllowUnexported(recordSave{})); diff != "" {
		t.Errorf("saves (-want +got):\n%s", diff)
	}

	// A new service is recorded before it is added, and only once.
	rec.saves = nil
	m.resetCounts()
	if _, err := r.ReconcileChanged(ctx, []Service{api(), svcN(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, []Service{api(), svcN(1)}); err != nil {
		t.Fatal(err)
	}
	want := []string{svcN(1).Key(), api().Key()}
	slices.Sort(want)
	if diff := cmp.Diff([]recordSave{{want, after}}, rec.saves, cmp.AllowUnexported(recordSave{})); diff != "" {
		t.Errorf("saves (-want +got):\n%s", diff)
	}

	// A delete that fails stays owned and recorded; it is retried.
	rec.saves = nil
	m.failOn = svcN(1).Key()
	if _, err := r.Reconcile(ctx, []Service{api()}); err == nil {
		t.Fatal("no error for the failed delete")
	}
	if len(rec.saves) != 0 {
		t.Errorf("saves %v, want none: the failed delete is still owned", rec.saves)
	}
	m.failOn = ""
	plan, err = r.Reconcile(ctx, []Service{api()})
	if err != nil || len(plan.Ops) != 1 {
		t.Fatalf("retry: %v, %v; want the delete", kinds(plan), err)
	}
	if diff := cmp.Diff([]string{api().Key()}, rec.keys); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestReconcileRecordErrors(t *testing.T) {
	ctx := context.Background()
	m := newMemTable(api())
	rec := &memRecord{table: m, loadErr: errors.New("bad record")}
	r := NewReconciler(m, clocktesting.NewFakeClock(time.Unix(0, 0)), testr.New(t), WithRecord(rec))
	// The record cannot be loaded: reported, and the desired state is
	// reconciled anyway; the unrecorded service is not claimed.
	plan, err := r.Reconcile(ctx, []Service{svcN(0)})
	if err == nil || !strings.Contains(err.Error(), "bad record") {
		t.Errorf("error %v, want the load error", err)
	}
	if len(plan.Ops) != 4 {
		t.Errorf("plan %v, want svcN(0) added", kinds(plan))
	}
	if _, ok := m.services[api().Key()]; !ok {
		t.Error("a service not in the record was deleted")
	}
	// A save that fails is reported on each reconcile until it succeeds.
	rec.saveErr = errors.New("read-only")
	for i := range 2 {
		if _, err := r.Reconcile(ctx, []Service{svcN(0), svcN(1)}); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("reconcile %d: error %v, want the save error", i, err)
		}
	}
	rec.saveErr = nil
	if _, err := r.Reconcile(ctx, []Service{svcN(0), svcN(1)}); err != nil {
		t.Errorf("after the save succeeds: %v", err)
	}
	if diff := cmp.Diff(keysOf(svcN(0), svcN(1)), rec.keys); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
}

func TestOwnedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "agent.ipvs.json")
	f := OwnedFile(path)
	if got, err := f.Load(); err != nil || got != nil {
		t.Fatalf("Load of a missing file = %v, %v; want nothing", got, err)
	}
	v6 := Service{Protocol: UDP, VIP: a("2001:db8::1"), Port: 53}
	if err := f.Save([]Service{api(), v6, svcN(1)}); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keysOf(api(), svcN(1), v6), keysOf(got...)); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	if got[0].Reals != nil || got[0].Scheduler != "" {
		t.Errorf("loaded %+v, want protocol, VIP and port only", got[0])
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"vip": "2001:db8::1"`) {
		t.Errorf("file:\n%s", b)
	}
	if err := f.Save(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after saving nothing the file exists: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	for _, bad := range []string{`{`, `{"version":2,"services":[]}`, `{"version":1,"services":[{"protocol":"icmp","vip":"192.0.2.1","port":1}]}`, `{"version":1,"services":[{"protocol":"tcp","port":1}]}`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load of %s: %v, want an error naming the file", bad, err)
		}
	}
}

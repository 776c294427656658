package snat

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/test/lab"
)

// The tests named TestKernel* program nftables in a fresh network namespace
// and read it back; they need root and skip without it. The traffic proof
// (IPVS forwarding, hairpin) needs IPVS, which only the test VM's kernel
// has: test/ipvse2e/snat_test.go.

// kernelLab is one namespace with a Manager in it.
type kernelLab struct {
	ns netns.NsHandle
	m  *Manager
}

func newKernelLab(t *testing.T) *kernelLab {
	t.Helper()
	lab.RequireRoot(t)
	ns := lab.NewNetNS(t)
	m, err := New(withNetNS(int(ns)), WithLogger(testr.NewWithOptions(t, testr.Options{Verbosity: 1})))
	if err != nil {
		t.Fatal(err)
	}
	return &kernelLab{ns: ns, m: m}
}

func (l *kernelLab) conn(t *testing.T) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(l.ns)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (l *kernelLab) sync(t *testing.T, targets []Target) {
	t.Helper()
	if err := l.m.Sync(targets); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func (l *kernelLab) gen(t *testing.T) uint32 {
	t.Helper()
	g, err := generation(int(l.ns))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// tables returns "family name" of every table in the namespace, sorted.
func (l *kernelLab) tables(t *testing.T) []string {
	t.Helper()
	ts, err := l.conn(t).ListTablesOfFamily(nftables.TableFamilyUnspecified)
	if err != nil {
		t.Fatalf("listing tables: %v", err)
	}
	names := map[nftables.TableFamily]string{nftables.TableFamilyINet: "inet", nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6"}
	var out []string
	for _, tb := range ts {
		out = append(out, names[tb.Family]+" "+tb.Name)
	}
	slices.Sort(out)
	return out
}

// requireTable checks, through the library, that "inet vipvs" holds exactly
// the chain "postrouting" (type nat, hook postrouting, priority 100, policy
// accept) and, through dumpRules, exactly the rules for want, expression by
// expression, in order.
func (l *kernelLab) requireTable(t *testing.T, want []Target) {
	t.Helper()
	c := l.conn(t)
	tbl, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	if err != nil {
		t.Fatalf("table inet %s: %v", TableName, err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var ours []*nftables.Chain
	for _, ch := range chains {
		if ch.Table.Name == TableName {
			ours = append(ours, ch)
		}
	}
	if len(ours) != 2 {
		t.Fatalf("table inet %s has %d chains, want 2", TableName, len(ours))
	}
	slices.SortFunc(ours, func(a, b *nftables.Chain) int { return strings.Compare(b.Name, a.Name) })
	ch, in := ours[0], ours[1]
	if in.Name != InputChainName || in.Type != nftables.ChainTypeFilter || in.Hooknum == nil || *in.Hooknum != unix.NF_INET_LOCAL_IN ||
		in.Priority == nil || *in.Priority != inputPriority || in.Policy == nil || *in.Policy != nftables.ChainPolicyAccept {
		t.Errorf("chain %s: type %s, hook %v, priority %v, policy %v; want input, filter, input, %d, accept",
			in.Name, in.Type, deref(in.Hooknum), deref(in.Priority), deref(in.Policy), inputPriority)
	}
	if ch.Name != ChainName || ch.Type != nftables.ChainTypeNAT || ch.Hooknum == nil || *ch.Hooknum != unix.NF_INET_POST_ROUTING ||
		ch.Priority == nil || *ch.Priority != 100 || ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept {
		t.Errorf("chain %s: type %s, hook %v, priority %v, policy %v; want postrouting, nat, %d, 100, accept",
			ch.Name, ch.Type, deref(ch.Hooknum), deref(ch.Priority), deref(ch.Policy), unix.NF_INET_POST_ROUTING)
	}
	sets, err := c.GetSets(tbl)
	if err != nil || len(sets) != 0 {
		t.Errorf("table inet %s has sets %v (err %v), want none", TableName, sets, err)
	}
	got, err := dumpRules(int(l.ns), nftables.TableFamilyINet, TableName, ChainName)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize(want)
	if err != nil {
		t.Fatal(err)
	}
	wantRules := rules(tbl, ch, norm)
	if len(got) != len(wantRules) {
		t.Errorf("%d rules read back, want %d:\n%s", len(got), len(wantRules), renderRules(got))
	}
	for i := range min(len(got), len(wantRules)) {
		for _, e := range got[i].Exprs {
			if c, ok := e.(*expr.Counter); ok {
				*c = expr.Counter{}
			}
		}
		if diff := cmp.Diff(wantRules[i].Exprs, got[i].Exprs); diff != "" {
			t.Errorf("rule %d (%s) expressions (-want +got):\n%s", i, norm[i/2], diff)
		}
		if diff := cmp.Diff(wantRules[i].UserData, got[i].UserData); diff != "" {
			t.Errorf("rule %d (%s) comment (-want +got):\n%s", i, norm[i/2], diff)
		}
	}
	if t.Failed() {
		t.Logf("read back:\n%s", renderRules(got))
	}
	gotIn, err := dumpRules(int(l.ns), nftables.TableFamilyINet, TableName, InputChainName)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range gotIn {
		for _, e := range r.Exprs {
			if c, ok := e.(*expr.Counter); ok {
				*c = expr.Counter{}
			}
		}
	}
	if diff := cmp.Diff(renderRules(inputRules(tbl, in, norm)), renderRules(gotIn)); diff != "" {
		t.Errorf("input rules (-want +got):\n%s", diff)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// addForeign adds the tables of others: "inet foreign" (a filter chain with
// a rule) and "ip vipvs" (a nat chain of another family with the package's
// table name).
func (l *kernelLab) addForeign(t *testing.T) {
	t.Helper()
	c := l.conn(t)
	for _, tb := range []*nftables.Table{
		{Family: nftables.TableFamilyINet, Name: "foreign"},
		{Family: nftables.TableFamilyIPv4, Name: TableName},
	} {
		c.AddTable(tb)
		ch := c.AddChain(&nftables.Chain{Name: ChainName, Table: tb, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookRef(unix.NF_INET_POST_ROUTING), Priority: nftables.ChainPriorityRef(100)})
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
			&expr.Counter{},
			&expr.Masq{},
		}})
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("adding foreign tables: %v", err)
	}
}

// foreign renders the foreign tables' rules.
func (l *kernelLab) foreign(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, tb := range []struct {
		family nftables.TableFamily
		name   string
	}{{nftables.TableFamilyINet, "foreign"}, {nftables.TableFamilyIPv4, TableName}} {
		rs, err := dumpRules(int(l.ns), tb.family, tb.name, ChainName)
		if err != nil {
			t.Fatalf("reading foreign table %s: %v", tb.name, err)
		}
		b.WriteString(tb.name + ":\n" + renderRules(rs))
	}
	return b.String()
}

var (
	first = []Target{
		{VIP: vip6, Port: 6443, Protocol: TCP},
		{VIP: vip4, Port: 6443, Protocol: TCP},
		{VIP: vip4, Port: 22623, Protocol: TCP},
		{VIP: vip4, Port: 6443, Protocol: TCP}, // duplicate
	}
	second = []Target{
		{VIP: vip4, Port: 6443, Protocol: TCP},
		{VIP: vip4b, Port: 443, Protocol: TCP},
		{VIP: vip4b, Port: 53, Protocol: UDP},
		{VIP: vip6, Port: 3868, Protocol: SCTP},
	}
)

func TestKernelSync(t *testing.T) {
	l := newKernelLab(t)
	l.addForeign(t)
	foreign := l.foreign(t)

	l.sync(t, first)
	l.requireTable(t, first)
	if diff := cmp.Diff([]string{"inet foreign", "inet vipvs", "ip vipvs"}, l.tables(t)); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}

	// The same targets in another order: no write at all.
	gen := l.gen(t)
	l.sync(t, []Target{first[2], first[0], first[1]})
	if g := l.gen(t); g != gen {
		t.Errorf("an unchanged Sync wrote: ruleset generation %d -> %d", gen, g)
	}
	l.requireTable(t, first)

	// A changed list replaces the rules in one batch.
	l.sync(t, second)
	if g := l.gen(t); g != gen+1 {
		t.Errorf("a changed Sync took %d batches, want 1", g-gen)
	}
	l.requireTable(t, second)

	// Nothing: the table stays, with its chain and no rules.
	l.sync(t, nil)
	l.requireTable(t, nil)
	l.sync(t, first)
	l.requireTable(t, first)

	// Delete removes only our table, and twice is no error.
	for i := range 2 {
		if err := l.m.Delete(); err != nil {
			t.Fatalf("Delete %d: %v", i+1, err)
		}
		if diff := cmp.Diff([]string{"inet foreign", "ip vipvs"}, l.tables(t)); diff != "" {
			t.Errorf("tables after Delete %d (-want +got):\n%s", i+1, diff)
		}
	}
	// After a Delete, Sync writes again even with the same targets.
	l.sync(t, first)
	l.requireTable(t, first)

	if diff := cmp.Diff(foreign, l.foreign(t)); diff != "" {
		t.Errorf("a foreign table changed (-before +after):\n%s", diff)
	}
}

// TestKernelRepair: when someone else deletes the table or its chain, the
// next Sync with the same targets puts it back.
func TestKernelRepair(t *testing.T) {
	tests := []struct {
		name   string
		damage func(c *nftables.Conn)
	}{
		{"table deleted", func(c *nftables.Conn) { c.DelTable(table()) }},
		{"chain deleted", func(c *nftables.Conn) {
			ch := chain(table())
			c.FlushChain(ch)
			c.DelChain(ch)
		}},
		{"whole ruleset flushed", func(c *nftables.Conn) { c.FlushRuleset() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newKernelLab(t)
			l.sync(t, second)
			c := l.conn(t)
			tt.damage(c)
			if err := c.Flush(); err != nil {
				t.Fatalf("damaging: %v", err)
			}
			gen := l.gen(t)
			l.sync(t, second)
			if g := l.gen(t); g != gen+1 {
				t.Errorf("repairing took %d batches, want 1", g-gen)
			}
			l.requireTable(t, second)
		})
	}
}

// TestKernelInvalidTargets: a list with an invalid target changes nothing.
func TestKernelInvalidTargets(t *testing.T) {
	l := newKernelLab(t)
	l.sync(t, first)
	gen := l.gen(t)
	bad := append([]Target{{VIP: vip4, Port: 0, Protocol: TCP}}, second...)
	err := l.m.Sync(bad)
	if err == nil || !strings.Contains(err.Error(), "snat: target tcp/192.0.2.100:0: port 0") {
		t.Errorf("Sync with an invalid target = %v, want the port error", err)
	}
	if g := l.gen(t); g != gen {
		t.Errorf("a rejected Sync wrote: generation %d -> %d", gen, g)
	}
	l.requireTable(t, first)
	// The last good state is still the applied one: no write.
	l.sync(t, first)
	if g := l.gen(t); g != gen {
		t.Errorf("Sync after a rejected one wrote: generation %d -> %d", gen, g)
	}
}

// TestKernelFirstSyncReplaces: a new Manager (an agent restart) replaces
// whatever the table holds, including objects it never creates.
func TestKernelFirstSyncReplaces(t *testing.T) {
	l := newKernelLab(t)
	c := l.conn(t)
	tb := c.AddTable(table())
	c.AddChain(&nftables.Chain{Name: "stray", Table: tb})
	c.AddChain(chain(tb))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	l.sync(t, second)
	l.requireTable(t, second)
}

// TestKernelConcurrentSync: Syncs from several goroutines (run with -race)
// leave the table in the state of one of them.
func TestKernelConcurrentSync(t *testing.T) {
	l := newKernelLab(t)
	lists := [][]Target{first, second, nil}
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(lists))
	for range 3 {
		for _, ts := range lists {
			wg.Go(func() { errs <- l.m.Sync(ts) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Sync: %v", err)
		}
	}
	l.sync(t, first)
	l.requireTable(t, first)
}

// TestKernelEnableConntrackNoIPVS runs EnableConntrack in a fresh namespace
// of a kernel without IPVS: ErrNoIPVS, and ip_forward untouched.
func TestKernelEnableConntrackNoIPVS(t *testing.T) {
	lab.RequireRoot(t)
	if _, err := os.Stat("/proc/sys/net/ipv4/vs"); err == nil {
		t.Skip("the kernel has IPVS; test/ipvse2e covers EnableConntrack there")
	}
	ns := lab.NewNetNS(t)
	var before, after []byte
	var err error
	inNS(t, ns, func() {
		before, _ = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		err = EnableConntrack(IPv4, IPv6)
		after, _ = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	})
	if !errors.Is(err, ErrNoIPVS) {
		t.Fatalf("EnableConntrack = %v, want ErrNoIPVS", err)
	}
	t.Logf("EnableConntrack without IPVS: %v", err)
	if string(before) != string(after) {
		t.Errorf("ip_forward changed from %q to %q", before, after)
	}
}

// inNS runs fn on a locked OS thread in ns and waits for it.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			done <- err // still locked: the runtime destroys the thread
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("switching namespaces: %v", err)
	}
}

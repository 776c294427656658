package ipvssync

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipvs/vipvs/test/lab"
)

var ap = netip.MustParseAddrPort

func TestNATEntries(t *testing.T) {
	conns := []Connection{
		{Protocol: "TCP", Client: ap("198.51.100.7:40001"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443"), State: "ESTABLISHED", Synced: true, Expires: 899 * time.Second},
		{Protocol: "TCP", Client: ap("198.51.100.7:40002"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.6:8443"), State: "FIN_WAIT", Synced: true, Expires: 60 * time.Second},
		{Protocol: "TCP", Client: ap("198.51.100.7:40003"), VIP: ap("192.0.2.10:80"), Real: ap("10.0.0.6:80"), State: "ESTABLISHED", Synced: true},
		{Protocol: "UDP", Client: ap("198.51.100.7:40004"), VIP: ap("192.0.2.10:53"), Real: ap("10.0.0.6:53"), State: "UDP", Expires: 300 * time.Second},
		{Protocol: "TCP", Client: ap("198.51.100.7:40005"), VIP: ap("192.0.2.10:53"), Real: ap("10.0.0.6:53"), State: "ESTABLISHED"},
		{Protocol: "SCTP", Client: ap("198.51.100.7:40006"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.6:443"), State: "ESTABLISHED"},
		{Protocol: "TCP", Client: ap("[2001:db8::7]:40007"), VIP: ap("[2001:db8::10]:443"), Real: ap("[2001:db8::5]:8443"), State: "ESTABLISHED", Expires: time.Second},
	}
	services := []NATService{
		{Protocol: unix.IPPROTO_TCP, VIP: ap("192.0.2.10:443")},
		{Protocol: unix.IPPROTO_UDP, VIP: ap("192.0.2.10:53")},
		{Protocol: unix.IPPROTO_TCP, VIP: ap("[2001:db8::10]:443")},
	}
	want := []NATEntry{
		{Protocol: unix.IPPROTO_TCP, Client: ap("198.51.100.7:40001"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443"), Timeout: 899 * time.Second},
		{Protocol: unix.IPPROTO_UDP, Client: ap("198.51.100.7:40004"), VIP: ap("192.0.2.10:53"), Real: ap("10.0.0.6:53"), Timeout: 300 * time.Second},
		{Protocol: unix.IPPROTO_TCP, Client: ap("[2001:db8::7]:40007"), VIP: ap("[2001:db8::10]:443"), Real: ap("[2001:db8::5]:8443"), Timeout: time.Second},
	}
	got := natEntries(conns, services)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// attrTree decodes netlink attributes into "type" -> value, nested ones
// as "outer.inner" (types without the nested flag).
func attrTree(t *testing.T, b []byte, prefix string, out map[string][]byte) {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		key := prefix + string(rune('0'+ad.Type()))
		if ad.TypeFlags()&unix.NLA_F_NESTED != 0 {
			attrTree(t, ad.Bytes(), key+".", out)
			continue
		}
		out[key] = ad.Bytes()
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestNATEntryAttrs(t *testing.T) {
	b, err := natEntryAttrs(NATEntry{Protocol: unix.IPPROTO_TCP, Client: ap("198.51.100.7:40001"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	attrTree(t, b, "", got)
	want := map[string][]byte{
		// CTA_TUPLE_ORIG: client -> VIP
		"1.1.1": {198, 51, 100, 7}, "1.1.2": {192, 0, 2, 10},
		"1.2.1": {6}, "1.2.2": {0x9c, 0x41}, "1.2.3": {0x01, 0xbb},
		// CTA_TUPLE_REPLY before NAT: real -> client
		"2.1.1": {10, 0, 0, 5}, "2.1.2": {198, 51, 100, 7},
		"2.2.1": {6}, "2.2.2": {0x20, 0xfb}, "2.2.3": {0x9c, 0x41},
		// CTA_TIMEOUT: at least minEntryTimeout
		"7": {0, 0, 0, 10},
		// CTA_PROTOINFO_TCP: ESTABLISHED, liberal both ways
		"4.1.1": {3}, "4.1.4": {8, 8}, "4.1.5": {8, 8},
		// CTA_NAT_SRC: the VIP, the client's port
		"6.1": {192, 0, 2, 10}, "6.2": {192, 0, 2, 10}, "6.3.1": {0x9c, 0x41}, "6.3.2": {0x9c, 0x41},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if _, err := natEntryAttrs(NATEntry{Protocol: unix.IPPROTO_TCP, Client: ap("[2001:db8::1]:1"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443")}); err == nil {
		t.Error("mixed families: no error")
	}
}

// fakeCT records the entries it is asked to create; those from a port in
// exists exist already, those from a port in fail fail.
type fakeCT struct {
	created      []NATEntry
	exists, fail map[uint16]bool
}

func (f *fakeCT) CreateNAT(es []NATEntry) (created, existing int, err error) {
	for _, e := range es {
		switch {
		case f.exists[e.Client.Port()]:
			existing++
		case f.fail[e.Client.Port()]:
			err = errors.New("boom")
		default:
			f.created = append(f.created, e)
			created++
		}
	}
	return created, existing, err
}

func TestAdoptNAT(t *testing.T) {
	conns := []Connection{
		{Protocol: "TCP", Client: ap("198.51.100.7:1"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:443"), State: "ESTABLISHED"},
		{Protocol: "TCP", Client: ap("198.51.100.7:2"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:443"), State: "ESTABLISHED"},
		{Protocol: "TCP", Client: ap("198.51.100.7:3"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:443"), State: "ESTABLISHED"},
		{Protocol: "TCP", Client: ap("198.51.100.7:4"), VIP: ap("192.0.2.11:443"), Real: ap("10.0.0.5:443"), State: "ESTABLISHED"},
	}
	ct := &fakeCT{exists: map[uint16]bool{2: true}, fail: map[uint16]bool{3: true}}
	opened := 0
	m := NewManager(&fakeKernel{}, logr.Discard())
	m.readConns = func() ([]Connection, error) { return conns, nil }
	m.openCT = func() (natCreator, error) { opened++; return ct, nil }

	if a, err := m.AdoptNAT(nil); err != nil || a != (Adoption{}) || opened != 0 {
		t.Errorf("no services: %+v, %v, opened %d; want nothing done", a, err, opened)
	}
	a, err := m.AdoptNAT([]NATService{{Protocol: unix.IPPROTO_TCP, VIP: ap("192.0.2.10:443")}})
	if want := (Adoption{Created: 1, Existing: 1, Failed: 1}); a != want {
		t.Errorf("adoption %+v, want %+v", a, want)
	}
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err %v, want the failure", err)
	}
	if len(ct.created) != 1 || ct.created[0].Client.Port() != 1 {
		t.Errorf("created %v, want the connection from port 1", ct.created)
	}
	if _, err := m.AdoptNAT([]NATService{{Protocol: unix.IPPROTO_TCP, VIP: ap("192.0.2.11:443")}}); err != nil || opened != 1 {
		t.Errorf("second adoption: %v, opened %d times; want no error, one socket", err, opened)
	}
}

// TestKernelCreateNAT creates an entry in a fresh network namespace and
// reads it back from /proc/net/nf_conntrack: the reply tuple carries the
// source NAT to the VIP with the client's port. It needs root and a kernel
// with nf_conntrack_netlink and nf_nat.
func TestKernelCreateNAT(t *testing.T) {
	lab.RequireRoot(t)
	ns := lab.NewNetNS(t)
	e := NATEntry{Protocol: unix.IPPROTO_TCP, Client: ap("198.51.100.7:40001"), VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443"), Timeout: time.Minute}
	e2, e3 := e, e
	e2.Client = ap("198.51.100.7:40002")
	e3.Client = ap("198.51.100.7:40003")
	var table string
	type result struct {
		created, existing int
		err               error
	}
	var first, second result
	inThread(t, ns, func() {
		ct, err := OpenConntrack()
		if err != nil {
			first.err = err
			return
		}
		defer ct.Close()
		first.created, first.existing, first.err = ct.CreateNAT([]NATEntry{e, e2})
		// An existing entry between two new ones: each acknowledgement
		// is counted once.
		second.created, second.existing, second.err = ct.CreateNAT([]NATEntry{e3, e, e2})
		b, _ := os.ReadFile("/proc/thread-self/net/nf_conntrack")
		table = string(b)
	})
	if first != (result{created: 2}) {
		t.Fatalf("CreateNAT of two new entries: %+v, want 2 created", first)
	}
	if second != (result{created: 1, existing: 2}) {
		t.Errorf("CreateNAT of one new entry and two existing ones: %+v, want 1 created, 2 existing", second)
	}
	t.Logf("conntrack:\n%s", table)
	want := "ESTABLISHED src=198.51.100.7 dst=192.0.2.10 sport=40001 dport=443 src=10.0.0.5 dst=192.0.2.10 sport=8443 dport=40001"
	// [UNREPLIED] until the real server's first packet: the entry is
	// created without status bits.
	got := strings.Join(strings.Fields(strings.ReplaceAll(table, "[UNREPLIED]", "")), " ")
	if !strings.Contains(got, want) {
		t.Errorf("conntrack lacks %q", want)
	}
}

// inThread runs fn on a locked OS thread in ns.
func inThread(t *testing.T, ns netns.NsHandle, fn func()) {
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

// TestKernelCreateNATBatches creates more entries than one batch holds,
// twice: all created, then all existing.
func TestKernelCreateNATBatches(t *testing.T) {
	lab.RequireRoot(t)
	ns := lab.NewNetNS(t)
	var es []NATEntry
	for i := range 3*createBatch + 5 {
		es = append(es, NATEntry{Protocol: unix.IPPROTO_TCP, Client: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(20000+i)),
			VIP: ap("192.0.2.10:443"), Real: ap("10.0.0.5:8443"), Timeout: time.Minute})
	}
	var c1, e1, c2, e2 int
	var err1, err2 error
	inThread(t, ns, func() {
		ct, err := OpenConntrack()
		if err != nil {
			err1 = err
			return
		}
		defer ct.Close()
		c1, e1, err1 = ct.CreateNAT(es)
		c2, e2, err2 = ct.CreateNAT(es)
	})
	if err1 != nil || c1 != len(es) || e1 != 0 {
		t.Errorf("first: %d created, %d existing, %v; want %d created", c1, e1, err1, len(es))
	}
	if err2 != nil || c2 != 0 || e2 != len(es) {
		t.Errorf("second: %d created, %d existing, %v; want %d existing", c2, e2, err2, len(es))
	}
}

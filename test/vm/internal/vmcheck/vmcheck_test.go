package vmcheck

import (
	"os"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipvs/vipvs/test/lab"
	"github.com/vipvs/vipvs/test/vm"
)

func requireVM(t *testing.T) {
	t.Helper()
	if !vm.InVM() {
		t.Skip("runs only inside the test VM (test/vm)")
	}
}

// newNS creates a network namespace without moving the test's thread into
// it, and closes it at cleanup.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	return lab.NewNetNS(t)
}

func TestModulesLoaded(t *testing.T) {
	requireVM(t)
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh", "ip_vs_mh",
		"nf_conntrack", "nf_nat", "nf_tables", "nft_chain_nat", "nft_masq", "veth", "bridge", "ipip"} {
		if _, err := os.Stat("/sys/module/" + m); err != nil {
			t.Errorf("module %s not loaded: %v", m, err)
		}
	}
}

func TestIPVSFamily(t *testing.T) {
	requireVM(t)
	f, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		t.Fatalf("generic netlink family IPVS: %v", err)
	}
	t.Logf("IPVS genetlink family id %d version %d", f.ID, f.Version)
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Errorf("IPVS proc file: %v", err)
	}
	// IPVS is per namespace: the family must answer in a new one too.
	h, err := netlink.NewHandleAt(newNS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.GenlFamilyGet("IPVS"); err != nil {
		t.Errorf("generic netlink family IPVS in a new namespace: %v", err)
	}
}

func TestNamespaceVethBridge(t *testing.T) {
	requireVM(t)
	a, b := newNS(t), newNS(t)
	ha, err := netlink.NewHandleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := ha.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p0", MasterIndex: br.Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(b)}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth pair: %v", err)
	}
	for _, l := range []netlink.Link{br, veth} {
		if err := ha.LinkSetUp(l); err != nil {
			t.Fatalf("setting %s up: %v", l.Attrs().Name, err)
		}
	}
	p0, err := ha.LinkByName("p0")
	if err != nil {
		t.Fatal(err)
	}
	if p0.Attrs().MasterIndex != br.Index {
		t.Errorf("p0 master index %d, want bridge %d", p0.Attrs().MasterIndex, br.Index)
	}
	if _, err := hb.LinkByName("eth0"); err != nil {
		t.Errorf("veth peer in the other namespace: %v", err)
	}
	if _, err := ha.LinkByName("eth0"); err == nil {
		t.Errorf("veth peer also in the first namespace")
	}
}

func TestNftablesNAT(t *testing.T) {
	requireVM(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(newNS(t))))
	if err != nil {
		t.Fatal(err)
	}
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "vmcheck"})
	ch := c.AddChain(&nftables.Chain{
		Name: "post", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Masq{},
	}})
	if err := c.Flush(); err != nil {
		t.Fatalf("adding a NAT table: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Name != "vmcheck" {
		t.Errorf("tables after adding: %v", tables)
	}
}

// TestWantFail fails on request, so the runner's test can prove that a
// failure inside the VM comes out as a non-zero status.
func TestWantFail(t *testing.T) {
	requireVM(t)
	if os.Getenv("VMCHECK_FAIL") != "1" {
		t.Skip("fails only with VMCHECK_FAIL=1")
	}
	t.Fatal("failing on purpose (VMCHECK_FAIL=1)")
}

// TestHang blocks forever on request, so the runner's test can prove that
// its timeout kills the VM.
func TestHang(t *testing.T) {
	requireVM(t)
	if os.Getenv("VMCHECK_HANG") != "1" {
		t.Skip("hangs only with VMCHECK_HANG=1")
	}
	t.Log("hanging on purpose (VMCHECK_HANG=1)")
	time.Sleep(24 * time.Hour) // not a synchronisation: the VM is killed meanwhile
}

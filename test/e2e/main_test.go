// Package e2e runs the real vipvs binary in network-namespace labs: three
// nodes with an agent each and a client that keeps opening connections to
// the VIP while faults are injected. The tests need root; without it they
// skip and say why.
package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// vipvsBin is the binary built once by TestMain (empty when not root).
var vipvsBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, cleanup, err := agentlab.BinaryForTests("vipvs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	vipvsBin = bin
	return m.Run()
}

// servicePort is the port every node serves on; the prober connects to the
// VIP on it and learns which node answered.
const servicePort = 8080

// setup builds a lab of 3 nodes and a client, serves on every node, and
// prepares (but does not start) a cluster of agents for routers.
func setup(t *testing.T, routers ...agentlab.Router) *agentlab.Cluster {
	t.Helper()
	l := lab.NewT(t, lab.Options{Nodes: 3, Clients: 1})
	for _, n := range l.Nodes() {
		stop, err := n.Serve(servicePort)
		if err != nil {
			t.Fatalf("serving on %s: %v", n.Name, err)
		}
		t.Cleanup(stop)
	}
	c, err := agentlab.New(l, vipvsBin, t.TempDir(), routers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			c.Dump(&b)
			l.Dump(&b)
			t.Log("\n" + b.String())
		}
	})
	return c
}

// vip4 and vip6 are the test VIPs (lab.MaxVIPs keeps .100-.199 free).
var (
	vip4 = netip.MustParsePrefix("192.0.2.100/24")
	vip6 = netip.MustParsePrefix("2001:db8::100/64")
)

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

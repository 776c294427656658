package interop

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/agentlab"
	"github.com/vipvs/vipvs/test/lab"
)

// TestWrongPassword runs VRRPv2 unicast with the right password on the vipvs
// nodes ("vipvs123") and a wrong one on keepalived: each side drops the
// other's adverts (vipvs counts every one keepalived put on the wire as
// Drops["auth"]; keepalived logs "invalid passwd"), so the router does
// not join and both n1 (vipvs, 150) and n2 (keepalived, 100) become master
// and hold the VIP: the expected, visible failure. n3 (vipvs, right
// password) still follows n1.
func TestWrongPassword(t *testing.T) {
	r := modes[1].router(51, 150, 100, 50)
	if r.Password == "" || r.Version != 2 {
		t.Fatalf("mode %s is not VRRPv2 with a password", modes[1].name)
	}
	e := newEnv(t, r, func(k *agentlab.KeepalivedInstance) { k.Password = "wrongpw1" })
	e.startAll()
	n1, n3 := e.vipvs(vipvsNode), e.vipvs(otherNode)
	var last string
	err := lab.WaitFor(15*time.Second, "n1 and keepalived both master, both holding the VIP, n3 following n1", func() (bool, error) {
		last = ""
		r1, err := n1.RouterStatus(routerName)
		if err != nil {
			return false, nil
		}
		r3, err := n3.RouterStatus(routerName)
		if err != nil {
			return false, nil
		}
		hs, err := e.lab.Holders(vip.Addr())
		if err != nil {
			return false, err
		}
		var names []string
		for _, h := range hs {
			names = append(names, h.Name)
		}
		last = fmt.Sprintf("n1 %s, keepalived %s, n3 %s following %q, holders %v", r1.State, e.k.State(routerName), r3.State, r3.Master, names)
		return r1.IsMaster() && e.k.State(routerName) == "MASTER" &&
			r3.State == "BACKUP" && r3.Master == e.lab.Node(vipvsNode).IPv4.String() &&
			slices.Equal(names, []string{e.lab.Node(vipvsNode).Name, e.lab.Node(keepalivedNode).Name}), nil
	})
	if err != nil {
		t.Fatalf("%v (last: %s)", err, last)
	}
	// keepalived (master now) sends adverts to n1 and n3, and both vipvs
	// nodes must drop and count every one of them as "auth". keepalived
	// 2.2.7 does not send one every second here: as master it receives
	// n1's adverts (invalid for it) and sends its own irregularly, so the
	// adverts are counted on the wire (the capture on n1's eth0).
	if e.pcap == "" {
		t.Skip("needs tcpdump to count keepalived's adverts on the wire")
	}
	from := e.lab.Node(keepalivedNode).IPv4.String() + " > " + e.lab.Node(vipvsNode).IPv4.String() + ": VRRPv2"
	var sent int
	var d1, d3 uint64
	must(t, lab.WaitFor(20*time.Second, "keepalived to send 3 adverts to n1, and n1 and n3 to count each as dropped for auth", func() (bool, error) {
		s1, err := n1.RouterStatus(routerName)
		if err != nil {
			return false, err
		}
		s3, err := n3.RouterStatus(routerName)
		if err != nil {
			return false, err
		}
		d1, d3 = s1.Drops["auth"], s3.Drops["auth"]
		if sent, err = e.countCaptured(from); err != nil {
			return false, err
		}
		return sent >= 3 && d1 == uint64(sent) && d3 == uint64(sent), nil
	}))
	t.Logf("keepalived sent %d adverts to n1 (and to n3); dropped for auth: n1 %d, n3 %d", sent, d1, d3)
	if st, err := n1.RouterStatus(routerName); err == nil && st.AdvertsRecv != 0 {
		t.Errorf("vipvs on n1 accepted %d adverts, want 0: only keepalived's (wrong password) reach a master", st.AdvertsRecv)
	}
	// And keepalived says why it ignores n1's adverts (keepalived 2.2.7:
	// "(api) received an invalid passwd!").
	re := regexp.MustCompile(`\(` + routerName + `\) received an invalid passwd!`)
	must(t, lab.WaitFor(5*time.Second, "keepalived to log 3 adverts with an invalid password", func() (bool, error) {
		return len(re.FindAllString(e.k.Log(), -1)) >= 3, nil
	}))
	t.Logf("keepalived: states %v, %d lines %q", e.k.States(routerName), len(re.FindAllString(e.k.Log(), -1)), re.String())
}

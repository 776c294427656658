package check

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vipvs/vipvs/test/lab"
)

// TestInterface checks a real veth in a fresh network namespace (the lab's
// node): up, administratively down, up again, without carrier (its bridge
// port down), and an interface that does not exist. Root only.
func TestInterface(t *testing.T) {
	l := lab.NewT(t, lab.Options{Nodes: 1})
	n := l.Node(1)
	check := func(c Interface) error {
		var probeErr error
		if err := n.Do(func() error {
			probeErr = c.Check(context.Background())
			return nil
		}); err != nil {
			t.Fatalf("running in %s: %v", n, err)
		}
		return probeErr
	}
	// waitState polls until the probe of eth0 gives the wanted answer: the
	// operational state follows a carrier change asynchronously.
	waitState := func(what, wantErr string) {
		t.Helper()
		var last error
		err := lab.WaitFor(10*time.Second, what, func() (bool, error) {
			last = check(Interface{Name: n.IfName})
			if wantErr == "" {
				return last == nil, nil
			}
			return last != nil && strings.Contains(last.Error(), wantErr), nil
		})
		if err != nil {
			t.Fatalf("%v (last probe: %v)", err, last)
		}
		t.Logf("%s: %v", what, last)
	}
	eth := n.IfName

	steps := []struct {
		name    string
		fault   func() error
		wantErr string // "" = healthy
	}{
		{name: "up at start"},
		{name: "admin down", fault: n.LinkDown,
			wantErr: "check: interface " + eth + " is administratively down"},
		{name: "up again", fault: n.LinkUp},
		{name: "no carrier", fault: n.Unplug,
			wantErr: "check: interface " + eth + " is not running: operational state"},
		{name: "carrier back", fault: n.Plug},
	}
	for _, s := range steps {
		if s.fault != nil {
			if err := s.fault(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
		waitState(s.name, s.wantErr)
	}

	err := check(Interface{Name: "nosuch0"})
	if err == nil || !strings.HasPrefix(err.Error(), "check: reading interface nosuch0: ") {
		t.Errorf("Check() of a missing interface = %v, want %q...", err, "check: reading interface nosuch0: ")
	}
}

func TestInterfaceNoName(t *testing.T) {
	if err := (Interface{}).Check(context.Background()); err == nil || err.Error() != "check: interface: no name" {
		t.Errorf("Check() = %v, want %q", err, "check: interface: no name")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Interface{Name: "lo"}).Check(ctx); err == nil {
		t.Error("Check() with a canceled context = nil, want an error")
	}
}

package link

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/vipvs/vipvs/test/lab"
)

type change struct {
	ifname string
	up     bool
}

// TestWatch follows a real veth in a network namespace: its state at start,
// down, up again, and an interface that does not exist.
func TestWatch(t *testing.T) {
	l := lab.NewT(t, lab.Options{Nodes: 1})
	n := l.Node(1)
	changes := make(chan change, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := NewWatcher(time.Hour, testr.New(t))
	w.Follow([]string{n.IfName, "nosuch0"})
	go func() {
		done <- n.Do(func() error {
			return w.Run(ctx, func(ifname string, st State) {
				changes <- change{ifname, st.Up}
			})
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	next := func(what string) change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
		return change{}
	}
	start := map[string]bool{}
	for i := 0; i < 2; i++ {
		c := next("the initial states")
		start[c.ifname] = c.up
	}
	if !start[n.IfName] || start["nosuch0"] {
		t.Fatalf("initial states %v, want eth0 up and nosuch0 down", start)
	}
	if err := n.LinkDown(); err != nil {
		t.Fatal(err)
	}
	if c := next("eth0 down"); c != (change{n.IfName, false}) {
		t.Fatalf("got %+v, want eth0 down", c)
	}
	if err := n.LinkUp(); err != nil {
		t.Fatal(err)
	}
	if c := next("eth0 up"); c != (change{n.IfName, true}) {
		t.Fatalf("got %+v, want eth0 up", c)
	}
	// An interface followed later (a reload added a router on it) is
	// reported at once, without waiting for the resync.
	w.Follow([]string{n.IfName, "lo"})
	if c := next("lo, newly followed"); c != (change{"lo", true}) {
		t.Fatalf("got %+v, want lo up", c)
	}
}

package check

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clocktesting "k8s.io/utils/clock/testing"
)

func poolMember(name, script string, cfg any, results chan<- Result) Member {
	return Member{
		Spec:     Spec{Name: name, Checker: scripted(script), Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1, InitiallyHealthy: true},
		Config:   cfg,
		OnResult: func(r Result) { results <- r },
	}
}

func nextResult(t *testing.T, results <-chan Result) Result {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a probe")
	}
	return Result{}
}

// TestPool: members added before Run start with it; Sync keeps unchanged
// members (and their state), restarts changed ones, stops removed ones;
// Run stops everything on return.
func TestPool(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := NewPool(clk, testr.New(t))
	results := make(chan Result, 10)
	if _, err := p.Sync([]Member{poolMember("tcp", "ok", 1, results), poolMember("http", "fail", 1, results)}); err != nil {
		t.Fatal(err)
	}
	if !p.Healthy("tcp") || !p.Healthy("http") || p.Healthy("nosuch") {
		t.Error("before Run: members must have their initial state, unknown ones none")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	got := map[string]bool{}
	for range 2 {
		r := nextResult(t, results)
		got[r.Name] = r.OK
	}
	if !got["tcp"] || got["http"] || p.Healthy("http") {
		t.Fatalf("first probes %v, http healthy %v; want tcp ok, http failed", got, p.Healthy("http"))
	}
	httpRunner, _ := p.Runner("http")
	// tcp unchanged, http changed, exec new; a bad one is reported.
	bad := Member{Spec: Spec{Name: "bad"}, Config: 1}
	stopped, err := p.Sync([]Member{poolMember("tcp", "ok", 1, results), poolMember("http", "ok", 2, results), poolMember("exec", "ok", 1, results), bad})
	if err == nil {
		t.Error("Sync accepted a member without checker")
	}
	if !slices.Equal(stopped, []string{"http"}) {
		t.Errorf("stopped %v, want [http]", stopped)
	}
	if r, _ := p.Runner("http"); r == httpRunner {
		t.Error("a changed member kept its runner")
	}
	for range 2 {
		nextResult(t, results) // the new http and exec probe at once
	}
	if !slices.Equal(p.Names(), []string{"exec", "http", "tcp"}) {
		t.Errorf("Names() = %v", p.Names())
	}
	stopped, _ = p.Sync([]Member{poolMember("tcp", "ok", 1, results)})
	if !slices.Equal(stopped, []string{"exec", "http"}) {
		t.Errorf("stopped %v, want [exec http]", stopped)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case r := <-results:
		t.Errorf("a probe after the pool stopped: %+v", r)
	default:
	}
}

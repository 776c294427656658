package lab

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// NewNetNS creates an anonymous network namespace without moving the
// caller's thread into it, and closes it at the test's cleanup (the last
// reference: the kernel then removes it). Use it for tests that need an
// empty namespace of their own rather than a whole lab.
func NewNetNS(tb testing.TB) netns.NsHandle {
	tb.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{err: err}
			return
		}
		if err := netns.Set(orig); err != nil {
			c <- result{ns, err}
			return // still locked: the runtime destroys the thread
		}
		runtime.UnlockOSThread()
		c <- result{ns: ns}
	}()
	r := <-c
	if r.err != nil {
		tb.Fatalf("creating network namespace: %v", r.err)
	}
	tb.Cleanup(func() { r.ns.Close() })
	return r.ns
}

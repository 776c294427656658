package check

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"time"
)

// Checker runs one probe against one target.
//
// Check returns nil when the target is healthy and an error saying why not
// otherwise; the error names the target ("check: connecting to
// 192.0.2.11:6443: connection refused"). Check must return soon after ctx is
// done (ctx carries the per-probe timeout), must be safe to call again after
// it returned and must never panic. String describes the probe for logs
// ("GET https://192.0.2.11:6443/readyz").
type Checker interface {
	Check(ctx context.Context) error
	String() string
}

// timeoutError is the cause a Runner gives a probe's context when the probe
// ran out of time. It is a context.DeadlineExceeded for errors.Is.
type timeoutError struct {
	d time.Duration
}

func (e timeoutError) Error() string { return fmt.Sprintf("timed out after %s", e.d) }
func (e timeoutError) Unwrap() error { return context.DeadlineExceeded }
func (e timeoutError) Timeout() bool { return true }

// reason returns the error to report for a failed probe: the context's cause
// when ctx is done (a timeout says "timed out after 2s" rather than "i/o
// timeout" or "operation was canceled"), otherwise err without the wrappers
// whose text only repeats what the checker's message already says (the URL,
// "dial tcp 192.0.2.11:6443", "fork/exec /path").
func reason(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		// A socket deadline taken from ctx fired a moment before ctx's own
		// timer: the cause is the same.
		<-ctx.Done()
		return context.Cause(ctx)
	}
	for {
		var next error
		switch e := err.(type) {
		case *url.Error:
			next = e.Err
		case *net.OpError:
			next = e.Err
		case *os.SyscallError:
			next = e.Err
		case *fs.PathError:
			next = e.Err
		case *exec.Error:
			next = e.Err
		}
		if next == nil {
			return err
		}
		err = next
	}
}

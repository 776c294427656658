package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// maxExecOutput is how much of a program's output (stdout and stderr
// together) a probe keeps for its error message.
const maxExecOutput = 4 << 10

// execWaitDelay bounds how long a probe waits for the program's output pipes
// to close after the program exited or was killed (a grandchild in another
// process group may hold them open).
const execWaitDelay = time.Second

// Exec is healthy when a program exits with status 0, like a keepalived
// vrrp_script or MISC_CHECK.
//
// The program runs in a process group of its own with stdin from /dev/null.
// When the probe's context is done the whole group is killed with SIGKILL,
// so a script's children go with it. Up to 4 KiB of its output (stdout and
// stderr together) is quoted in the error.
type Exec struct {
	// Argv is the program and its arguments, e.g.
	// ["/usr/local/bin/check-api", "--port", "6443"]. A program without a
	// slash is looked up in $PATH.
	Argv []string
	// Env is the program's environment as "KEY=value" strings; nil means
	// the agent's own environment.
	Env []string
}

var _ Checker = Exec{}

// Check runs the program and waits for it to exit.
func (c Exec) Check(ctx context.Context) error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("check: exec: no program")
	}
	name := c.Argv[0]
	cmd := exec.CommandContext(ctx, name, c.Argv[1:]...)
	cmd.Env = c.Env
	out := &limitedBuffer{max: maxExecOutput}
	cmd.Stdout = out // the same writer for both: one goroutine writes
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The leader has not been waited for yet, so its PID is still the
		// group's ID. Kill the group, then the leader in case setpgid lost.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = execWaitDelay

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("check: starting %s: %w", name, reason(ctx, err))
	}
	err := cmd.Wait()
	if ctx.Err() != nil && cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		return fmt.Errorf("check: %s killed: %w%s", name, context.Cause(ctx), out.suffix())
	}
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		// ErrWaitDelay with status 0: the program succeeded but left a
		// child holding its output open.
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		ws, ok := exitErr.Sys().(syscall.WaitStatus)
		if ok && ws.Signaled() {
			return fmt.Errorf("check: %s killed by signal %s%s", name, ws.Signal(), out.suffix())
		}
		return fmt.Errorf("check: %s exited with status %d%s", name, exitErr.ExitCode(), out.suffix())
	}
	return fmt.Errorf("check: running %s: %w%s", name, err, out.suffix())
}

// String returns "exec <argv>".
func (c Exec) String() string { return "exec " + strings.Join(c.Argv, " ") }

// limitedBuffer keeps the first max bytes written to it and counts the rest.
// Writes always succeed, so the program never sees a broken pipe.
type limitedBuffer struct {
	max     int
	buf     []byte
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.max-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.dropped += len(p) - n
	return len(p), nil
}

// suffix returns ": <output>" for an error message, "" when there was no
// output.
func (b *limitedBuffer) suffix() string {
	s := strings.TrimRight(string(b.buf), " \t\r\n")
	if s == "" {
		return ""
	}
	if b.dropped > 0 {
		return fmt.Sprintf(": %s... (%d more bytes)", s, b.dropped)
	}
	return ": " + s
}

package check

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExec(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 512) // 8 KiB
	tests := []struct {
		name    string
		checker Exec
		wantErr string // "" = healthy, else the whole message
		wantIs  error
	}{
		{name: "true is healthy", checker: Exec{Argv: []string{"/bin/true"}}},
		{name: "false fails with its status", checker: Exec{Argv: []string{"/bin/false"}},
			wantErr: "check: /bin/false exited with status 1"},
		{name: "output is in the message", checker: Exec{Argv: []string{"/bin/sh", "-c", "echo api not ready; echo on stderr >&2; exit 2"}},
			wantErr: "check: /bin/sh exited with status 2: api not ready\non stderr"},
		{name: "output is cut at 4 KiB", checker: Exec{Argv: []string{"/bin/sh", "-c", "printf %s " + long + "; exit 3"}},
			wantErr: "check: /bin/sh exited with status 3: " + long[:4096] + "... (4096 more bytes)"},
		{name: "environment is passed", checker: Exec{Argv: []string{"/bin/sh", "-c", `test "$VIPVS_TEST" = yes`}, Env: []string{"VIPVS_TEST=yes"}}},
		{name: "environment replaces the agent's", checker: Exec{Argv: []string{"/bin/sh", "-c", `echo "home=$HOME"; test -z "$HOME"`}, Env: []string{"A=b"}}},
		{name: "killed by a signal", checker: Exec{Argv: []string{"/bin/sh", "-c", "kill -TERM $$"}},
			wantErr: "check: /bin/sh killed by signal terminated"},
		{name: "missing program", checker: Exec{Argv: []string{"/nonexistent/check"}},
			wantErr: "check: starting /nonexistent/check: no such file or directory", wantIs: os.ErrNotExist},
		{name: "program not in PATH", checker: Exec{Argv: []string{"vipvs-no-such-check"}},
			wantErr: "check: starting vipvs-no-such-check: executable file not found in $PATH", wantIs: exec.ErrNotFound},
		{name: "not executable", checker: Exec{Argv: []string{"/etc/passwd"}},
			wantErr: "check: starting /etc/passwd: permission denied", wantIs: os.ErrPermission},
		{name: "no program", checker: Exec{},
			wantErr: "check: exec: no program"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.checker.Check(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want healthy", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Check() = %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

// TestExecTimeout runs a script that starts a child and both sleep past the
// timeout: the probe returns at the timeout, says so, and both processes are
// gone (the whole process group was killed).
func TestExecTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := `sleep 60 & echo $! > ` + pidFile + `; echo started; sleep 60`
	timeout := 300 * time.Millisecond
	ctx, cancel := context.WithTimeoutCause(context.Background(), timeout, timeoutError{timeout})
	defer cancel()

	start := time.Now()
	err := Exec{Argv: []string{"/bin/sh", "-c", script}}.Check(ctx)
	took := time.Since(start)

	if want := "check: /bin/sh killed: timed out after 300ms: started"; err == nil || err.Error() != want {
		t.Errorf("Check() = %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, context.DeadlineExceeded) = false", err)
	}
	// The child holds the output pipe: if it survived, Check would wait for
	// execWaitDelay too.
	if took >= timeout+execWaitDelay {
		t.Errorf("Check() took %s, want about the %s timeout", took, timeout)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatalf("the script did not record its child: %v", rerr)
	}
	pid, rerr := strconv.Atoi(strings.TrimSpace(string(data)))
	if rerr != nil {
		t.Fatal(rerr)
	}
	// The child was killed with SIGKILL; its new parent reaps it soon after.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out script is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// TestExecCanceledBeforeStart does not start the program at all.
func TestExecCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Exec{Argv: []string{"/bin/true"}}.Check(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Check() = %v, want context.Canceled", err)
	}
}

// TestExecSucceedsLeavingAChild: a program that exits 0 but leaves a child
// holding its output is healthy, after at most execWaitDelay.
func TestExecSucceedsLeavingAChild(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	err := Exec{Argv: []string{"/bin/sh", "-c", "sleep 30 & echo $! > " + pidFile}}.Check(context.Background())
	if data, rerr := os.ReadFile(pidFile); rerr == nil {
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); perr == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err != nil {
		t.Errorf("Check() = %v, want healthy", err)
	}
}

func TestExecString(t *testing.T) {
	if got, want := (Exec{Argv: []string{"/usr/local/bin/x", "-v"}}).String(), "exec /usr/local/bin/x -v"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killTimeout bounds how long Kill waits for a SIGKILLed process to be reaped.
const killTimeout = 10 * time.Second

// Proc is a process started in a host's namespace by Host.Start. The lab
// tracks it by PID and kills it in Lab.Close.
type Proc struct {
	// Name is the name given to Start, used in the log file name and in dumps.
	Name string
	// Host is the host whose namespace the process runs in.
	Host *Host
	// LogPath is the file receiving the process's stdout and stderr.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped

	mu      sync.Mutex
	state   *os.ProcessState
	waitErr error
}

// Start starts argv in h's network namespace: it forks from an OS thread
// switched into the namespace, and the child inherits that thread's
// namespace. env nil means the test's environment. stdout and stderr are
// appended to logPath (created; "" means <LogDir>/<host>-<name>.log), after a
// header line. The process is its own process group leader and gets SIGKILL
// if the thread that started it exits (PR_SET_PDEATHSIG, the Go runtime keeps
// that thread alive), so a crashed test binary leaves no agent behind.
func (h *Host) Start(name string, argv []string, env []string, logPath string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("starting %s in %s: empty argv", name, h.Name)
	}
	if logPath == "" {
		logPath = filepath.Join(h.lab.opts.LogDir, h.Name+"-"+name+".log")
	}
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s in %s: opening log: %w", name, h.Name, err)
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "=== lab: %s starting %q in %s (namespace %s)\n", time.Now().Format(time.RFC3339Nano), argv, h.Name, h.Namespace)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := h.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("starting %s in %s: %w", name, h.Name, err)
	}
	p := &Proc{Name: name, Host: h, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.state, p.waitErr = cmd.ProcessState, err
		p.mu.Unlock()
		close(p.done)
	}()
	if err := h.lab.register(p, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("starting %s in %s: %w", name, h.Name, err), p.Kill())
	}
	return p, nil
}

// Pid returns the process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (not its group): SIGTERM for a graceful
// stop, SIGSTOP/SIGCONT to freeze it, SIGKILL for a crash.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("sending %v to %s (pid %d): %w", sig, p.Name, p.Pid(), err)
	}
	return nil
}

// Kill sends SIGKILL to the process and its process group (children it
// forked, unless they made their own group) and waits until it has been
// reaped. Killing an exited process is not an error.
func (p *Proc) Kill() error {
	if p.Exited() {
		return nil
	}
	// The group first, while the leader is certainly not reaped, so its
	// PID (= PGID) cannot have been reused.
	_ = unix.Kill(-p.Pid(), unix.SIGKILL)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s (pid %d): %w", p.Name, p.Pid(), err)
	}
	if _, err := p.Wait(killTimeout); err != nil {
		return fmt.Errorf("killing %s: %w", p.Name, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit and returns its state
// (ExitCode, and Sys().(syscall.WaitStatus) for the signal).
func (p *Proc) Wait(timeout time.Duration) (*os.ProcessState, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.state, nil
	case <-t.C:
		return nil, fmt.Errorf("waiting for %s (pid %d) to exit: still running after %v", p.Name, p.Pid(), timeout)
	}
}

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited (and been reaped).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// String describes the process: name, host, PID and, once exited, its state.
func (p *Proc) String() string {
	s := fmt.Sprintf("%s on %s (pid %d)", p.Name, p.Host.Name, p.Pid())
	if p.Exited() {
		p.mu.Lock()
		s += ": " + p.state.String()
		p.mu.Unlock()
	}
	return s
}

// LogTail returns the last n lines of the process's log ("" if unreadable).
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.LogPath, err)
	}
	return tail(string(b), n)
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

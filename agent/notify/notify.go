// Package notify runs keepalived-compatible notify commands on the state
// transitions of virtual routers: the generic command with the arguments
// `INSTANCE <name> <STATE> <priority>` and the per-state commands
// (notify_master, notify_backup, notify_fault, notify_stop). Transitions are
// queued and their commands run one at a time, in order, each bounded by a
// timeout, so that a slow script never holds up VRRP.
package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Commands are the configured commands.
type Commands struct {
	// Command gets INSTANCE <name> <STATE> <priority> appended.
	Command []string
	// Master, Backup, Fault and Stop run without arguments on entering
	// that state.
	Master, Backup, Fault, Stop []string
	// Timeout bounds each run.
	Timeout time.Duration
}

// Event is one transition to notify.
type Event struct {
	Router   string
	State    string // MASTER, BACKUP, FAULT or STOP
	Priority uint8
}

// Result is the outcome of one command run, for tests and metrics.
type Result struct {
	Event    Event
	Argv     []string
	Err      error
	Duration time.Duration
}

// queueSize bounds the transitions waiting to be notified; a router that
// flaps faster than its scripts run loses notifications (counted), not VRRP
// time.
const queueSize = 256

// Notifier queues events and runs their commands in order.
type Notifier struct {
	cmds    Commands
	log     logr.Logger
	queue   chan Event
	results func(Result)

	mu      sync.Mutex
	dropped uint64
}

// New returns a Notifier. results, if not nil, is called after every run.
func New(cmds Commands, log logr.Logger, results func(Result)) *Notifier {
	if cmds.Timeout <= 0 {
		cmds.Timeout = 10 * time.Second
	}
	return &Notifier{cmds: cmds, log: log, queue: make(chan Event, queueSize), results: results}
}

// SetCommands replaces the commands (a reloaded config); events already
// queued run with the new ones.
func (n *Notifier) SetCommands(cmds Commands) {
	if cmds.Timeout <= 0 {
		cmds.Timeout = 10 * time.Second
	}
	n.mu.Lock()
	n.cmds = cmds
	n.mu.Unlock()
}

// Notify queues an event. It never blocks; when the queue is full the event
// is dropped, counted and logged.
func (n *Notifier) Notify(ev Event) {
	select {
	case n.queue <- ev:
	default:
		n.mu.Lock()
		n.dropped++
		d := n.dropped
		n.mu.Unlock()
		n.log.Info("notify queue full, transition not notified", "router", ev.Router, "state", ev.State, "dropped", d)
	}
}

// droppedEvents returns how many events were dropped because the queue was
// full.
func (n *Notifier) droppedEvents() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// Run runs queued commands until ctx is done; then it runs what is still
// queued (each run bounded by the timeout, so that the STOP notifications of
// a stopping agent are delivered) and returns.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case ev := <-n.queue:
			n.handle(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-n.queue:
					n.handle(ev)
				default:
					return
				}
			}
		}
	}
}

func (n *Notifier) handle(ev Event) {
	n.mu.Lock()
	cmds := n.cmds
	n.mu.Unlock()
	if len(cmds.Command) > 0 {
		argv := append(append([]string(nil), cmds.Command...), "INSTANCE", ev.Router, ev.State, strconv.Itoa(int(ev.Priority)))
		n.run(ev, argv, cmds.Timeout)
	}
	var perState []string
	switch ev.State {
	case "MASTER":
		perState = cmds.Master
	case "BACKUP":
		perState = cmds.Backup
	case "FAULT":
		perState = cmds.Fault
	case "STOP":
		perState = cmds.Stop
	}
	if len(perState) > 0 {
		n.run(ev, perState, cmds.Timeout)
	}
}

func (n *Notifier) run(ev Event, argv []string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"VIPVS_ROUTER="+ev.Router,
		"VIPVS_STATE="+ev.State,
		"VIPVS_PRIORITY="+strconv.Itoa(int(ev.Priority)),
	)
	// A script that forks a child holding stdout open must not make us wait
	// past the timeout.
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("notify: %s timed out after %v: %w", argv[0], timeout, ctx.Err())
	} else if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("notify: %s exited with status %d: %w", argv[0], exit.ExitCode(), err)
		} else {
			err = fmt.Errorf("notify: running %s: %w", argv[0], err)
		}
	}
	if err != nil {
		n.log.Error(err, "notify command failed", "router", ev.Router, "state", ev.State, "output", truncate(string(out), 512))
	} else {
		n.log.V(1).Info("notify command ran", "router", ev.Router, "state", ev.State, "command", argv[0], "duration", d.String())
	}
	if n.results != nil {
		n.results(Result{Event: ev, Argv: argv, Err: err, Duration: d})
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

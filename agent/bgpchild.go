package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/bgp/wire"
	"github.com/vipvs/vipvs/agent/config"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

const (
	// SpeakerBinary is the file name of the BGP speaker the agent starts
	// for the embedded speaker (agentd/bgpspeaker): looked for beside the
	// agent's own executable, then in PATH.
	SpeakerBinary = "vipvs-bgp-speaker"
	// SpeakerEnv, when set, is the path of the BGP speaker binary.
	SpeakerEnv = "VIPVS_BGP_SPEAKER"

	// speakerCallTimeout bounds every request but the graceful shutdown.
	speakerCallTimeout = 30 * time.Second
	// speakerStopTimeout is how long a speaker whose stdin closed has to
	// close its sessions before it is killed.
	speakerStopTimeout = 10 * time.Second
	// speakerMinBackoff and speakerMaxBackoff bound the wait before a
	// speaker that died is started again (doubling while it keeps dying).
	speakerMinBackoff = 500 * time.Millisecond
	speakerMaxBackoff = 30 * time.Second
)

// speakerPath finds the BGP speaker binary: $VIPVS_BGP_SPEAKER, else
// vipvs-bgp-speaker beside the agent's executable (as in the image), else
// in PATH.
func speakerPath() (string, error) {
	if p := os.Getenv(SpeakerEnv); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), SpeakerBinary)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(SpeakerBinary)
	if err != nil {
		return "", fmt.Errorf("the embedded BGP speaker needs %s beside the agent's binary or in PATH (or its path in $%s): %w", SpeakerBinary, SpeakerEnv, err)
	}
	return p, nil
}

// childSpeaker is the embedded BGP speaker (agent/bgp, GoBGP) run in a
// child process (vipvs-bgp-speaker), so that the agent does not link
// GoBGP, as a RouteAnnouncer and RouteReconfigurer. It talks to the child
// over its stdin and stdout (agent/bgp/wire). The child is started by
// newChildSpeaker; Run watches it: a child that dies is reported in the
// status and started again after a back-off with the config and the routes
// advertised; when Run's context ends the child's stdin is closed (it
// closes its sessions and exits) and it is waited for.
type childSpeaker struct {
	path string
	log  logr.Logger

	mu sync.Mutex
	// cfg is the configuration the child runs (sent again on a restart).
	cfg wire.Config
	// want are the VIPs advertised (sent again on a restart).
	want map[netip.Addr]struct{}
	// gshut is set by GracefulShutdown: a restarted child advertises
	// nothing, and new routes are recorded only.
	gshut bool
	// cur is the running child, nil while there is none.
	cur *speakerProc
	// down is why there is no child ("" while there is one).
	down string
	// crash describes the last unexpected exit ("" if none).
	crash    string
	restarts int
}

var (
	_ RouteAnnouncer    = (*childSpeaker)(nil)
	_ RouteReconfigurer = (*childSpeaker)(nil)
)

// newChildSpeaker reads c's password files, starts the speaker process
// and configures it: a config the speaker rejects is an error here. The
// caller must Run the result (which stops the child when it returns).
func newChildSpeaker(c *config.BGP, log logr.Logger) (*childSpeaker, error) {
	wc, err := wireConfig(c, nodeRouterID)
	if err != nil {
		return nil, err
	}
	path, err := speakerPath()
	if err != nil {
		return nil, err
	}
	s := &childSpeaker{path: path, log: log, cfg: wc, want: make(map[netip.Addr]struct{})}
	p, err := s.start(wc)
	if err != nil {
		return nil, err
	}
	s.cur = p
	return s, nil
}

// speakerProc is one speaker child process.
type speakerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	client *wire.Client
	// exited is closed once the process has been waited for; waitErr is
	// then its exit status.
	exited  chan struct{}
	waitErr error
	started time.Time
}

// start starts a child and sends it cfg.
func (s *childSpeaker) start(cfg wire.Config) (*speakerProc, error) {
	cmd := exec.Command(s.path)
	// Its own process group: a signal to the agent's group (Ctrl-C) must
	// not stop the speaker before the agent has drained through it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bgp speaker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bgp speaker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bgp speaker: starting %s: %w", s.path, err)
	}
	p := &speakerProc{cmd: cmd, stdin: stdin, client: wire.NewClient(stdin, stdout), exited: make(chan struct{}), started: time.Now()}
	go func() {
		// Wait only once the replies have all been read (os/exec).
		<-p.client.Done()
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), speakerCallTimeout)
	defer cancel()
	if _, err := p.client.Call(ctx, wire.Request{Op: wire.OpConfig, Config: &cfg}); err != nil {
		p.stop()
		return nil, fmt.Errorf("bgp speaker: %w", err)
	}
	s.log.Info("bgp speaker started", "pid", cmd.Process.Pid, "path", s.path)
	return p, nil
}

// stop closes the child's stdin (it closes its sessions and exits), kills
// it if it has not exited within speakerStopTimeout, and waits for it.
func (p *speakerProc) stop() {
	_ = p.stdin.Close()
	t := time.NewTimer(speakerStopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Run watches the child until ctx is done, then stops it and waits for it.
func (s *childSpeaker) Run(ctx context.Context) error {
	backoff := speakerMinBackoff
	for {
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		if p != nil {
			select {
			case <-ctx.Done():
				s.stop()
				return nil
			case <-p.exited:
			}
			s.mu.Lock()
			if s.cur == p {
				s.cur = nil
				s.down = fmt.Sprintf("bgp speaker process %d exited unexpectedly (%s)", p.cmd.Process.Pid, exitReason(p.waitErr))
				s.crash = s.down + " at " + time.Now().UTC().Format(time.RFC3339)
			}
			s.mu.Unlock()
			if time.Since(p.started) > speakerMaxBackoff {
				backoff = speakerMinBackoff
			}
			s.log.Error(errors.New(s.downReason()), "bgp speaker died: starting it again", "in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			s.stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, speakerMaxBackoff)
		if err := s.restart(); err != nil {
			s.log.Error(err, "bgp speaker: starting it again failed", "retryIn", backoff)
		}
	}
}

func (s *childSpeaker) downReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// exitReason describes a child's exit status.
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// restart starts a new child with the config and, unless drained, the
// routes advertised.
func (s *childSpeaker) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.start(s.cfg)
	if err != nil {
		s.down = fmt.Sprintf("%s; starting it again failed: %v", s.crash, err)
		return err
	}
	s.cur, s.down = p, ""
	s.restarts++
	var errs []error
	if !s.gshut {
		for _, a := range s.sortedWant() {
			errs = append(errs, s.callLocked(wire.Request{Op: wire.OpAdvertise, Addr: &a}))
		}
	}
	return errors.Join(errs...)
}

// stop stops the child, if any, and waits for it.
func (s *childSpeaker) stop() {
	s.mu.Lock()
	p := s.cur
	s.cur, s.down = nil, "bgp speaker stopped"
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

func (s *childSpeaker) sortedWant() []netip.Addr {
	out := make([]netip.Addr, 0, len(s.want))
	for a := range s.want {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// callLocked sends req to the running child (s.mu held).
func (s *childSpeaker) callLocked(req wire.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), speakerCallTimeout)
	defer cancel()
	_, err := s.cur.client.Call(ctx, req)
	return err
}

// Advertise advertises vip's host route; while the child is down it is
// recorded and advertised by the next child.
func (s *childSpeaker) Advertise(vip netip.Prefix) error {
	a := vip.Addr()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.want[a]; ok {
		return nil
	}
	if s.cur != nil && !s.gshut {
		if err := s.callLocked(wire.Request{Op: wire.OpAdvertise, Addr: &a}); err != nil {
			return err
		}
	}
	s.want[a] = struct{}{}
	return nil
}

// Withdraw withdraws vip's host route.
func (s *childSpeaker) Withdraw(vip netip.Prefix) error {
	a := vip.Addr()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.want[a]; !ok {
		return nil
	}
	if s.cur != nil && !s.gshut {
		if err := s.callLocked(wire.Request{Op: wire.OpWithdraw, Addr: &a}); err != nil {
			return err
		}
	}
	delete(s.want, a)
	return nil
}

// GracefulShutdown has the child drain (RFC 8326) and waits for it, or
// for ctx.
func (s *childSpeaker) GracefulShutdown(ctx context.Context) error {
	s.mu.Lock()
	s.gshut = true
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return nil // no child: nothing is advertised
	}
	_, err := p.client.Call(ctx, wire.Request{Op: wire.OpGracefulShutdown})
	return err
}

// Reconfigure applies a changed bgp section to the running speaker: only
// the sessions of peers added, removed or changed are opened or closed.
func (s *childSpeaker) Reconfigure(ctx context.Context, c *config.BGP) (bool, error) {
	if c.ExternalSpeaker != nil {
		return false, nil
	}
	wc, err := wireConfig(c, nodeRouterID)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if wc.ASN != s.cfg.ASN || wc.RouterID != s.cfg.RouterID || wc.ListenPort != s.cfg.ListenPort {
		return false, nil
	}
	if s.cur == nil {
		s.cfg = wc // the next child gets it
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, speakerCallTimeout)
	defer cancel()
	resp, err := s.cur.client.Call(ctx, wire.Request{Op: wire.OpReconfigure, Config: &wc})
	switch {
	case err != nil:
		return true, err
	case resp.RestartNeeded:
		return false, nil
	}
	s.cfg = wc
	return true, nil
}

// Status converts the child's status to the status contract; while there
// is no child it returns the configured peers and why in the error. A
// child that died and was started again is reported in LastError.
func (s *childSpeaker) Status(ctx context.Context) (*statusv1.BGP, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &statusv1.BGP{Speaker: statusv1.SpeakerEmbedded, GracefulShutdown: s.gshut}
	if s.cur == nil {
		for _, p := range s.cfg.Peers {
			out.Peers = append(out.Peers, statusv1.BGPPeer{Address: p.Address.String(), ASN: p.ASN})
		}
		return out, errors.New(s.down)
	}
	ctx, cancel := context.WithTimeout(ctx, speakerCallTimeout)
	defer cancel()
	resp, err := s.cur.client.Call(ctx, wire.Request{Op: wire.OpStatus})
	if err != nil {
		return out, err
	}
	if st := resp.Status; st != nil {
		out.GracefulShutdown = out.GracefulShutdown || st.GracefulShutdown
		for _, p := range st.Peers {
			out.Peers = append(out.Peers, statusv1.BGPPeer{
				Address: p.Address.String(), ASN: p.ASN, State: p.State, BFD: p.BFD, Advertised: prefixStrings(p.Advertised),
			})
		}
	}
	if s.crash != "" {
		out.LastError = fmt.Sprintf("%s; started again (%d restarts)", s.crash, s.restarts)
	}
	return out, nil
}

package bgplab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/vipvs/vipvs/agent/bgp"
)

// NodeEnv is the environment variable that turns a test binary into a node
// helper (see NodeMain); its value is the JSON of a NodeConfig.
const NodeEnv = "BGPLAB_NODE"

// NodeConfig is what a node helper announces.
type NodeConfig struct {
	// BGP is the announcer's configuration.
	BGP bgp.Config
	// VIPs are advertised at start (the node's checks pass).
	VIPs []netip.Addr
	// StatusFile receives the announcer's Status as JSON on SignalStatus.
	StatusFile string
}

// Signals a node helper understands.
const (
	// SignalCheckFail withdraws the VIPs, as a failing check does.
	SignalCheckFail = syscall.SIGUSR1
	// SignalCheckPass advertises them again.
	SignalCheckPass = syscall.SIGUSR2
	// SignalGracefulStop drains (RFC 8326 graceful shutdown) and exits 0.
	SignalGracefulStop = syscall.SIGTERM
	// SignalHardStop closes the sessions at once and exits 0.
	SignalHardStop = syscall.SIGINT
	// SignalStatus writes the announcer's Status to NodeConfig.StatusFile.
	SignalStatus = syscall.SIGHUP
)

// NodeMain runs a node helper: it announces the VIPs of the NodeConfig in
// $BGPLAB_NODE with agent/bgp until a stop signal, reacting to the signals
// above, and logs to stderr. It returns the exit code.
func NodeMain() int {
	var cfg NodeConfig
	if err := json.Unmarshal([]byte(os.Getenv(NodeEnv)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "node: %s: %v\n", NodeEnv, err)
		return 2
	}
	log := funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000000"), prefix, args)
	}, funcr.Options{Verbosity: 1})
	a, err := bgp.New(cfg.BGP, log)
	if err != nil {
		log.Error(err, "node: config")
		return 2
	}
	setVIPs := func(advertise bool) {
		for _, v := range cfg.VIPs {
			f := a.Withdraw
			if advertise {
				f = a.Advertise
			}
			if err := f(v); err != nil {
				log.Error(err, "node: VIP", "vip", v, "advertise", advertise)
			}
		}
	}
	setVIPs(true)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, SignalCheckFail, SignalCheckPass, SignalGracefulStop, SignalHardStop, SignalStatus)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr <- a.Run(ctx)
	}()
	code := 0
loop:
	for {
		select {
		case err := <-runErr:
			log.Error(err, "node: announcer stopped")
			code = 1
			break loop
		case sig := <-sigs:
			log.Info("node: signal", "signal", sig.String())
			switch sig {
			case SignalCheckFail:
				setVIPs(false)
			case SignalCheckPass:
				setVIPs(true)
			case SignalGracefulStop:
				gctx, gcancel := context.WithTimeout(context.Background(), time.Minute)
				err := a.GracefulShutdown(gctx)
				gcancel()
				if err != nil {
					log.Error(err, "node: graceful shutdown")
					code = 1
				}
				break loop
			case SignalHardStop:
				break loop
			case SignalStatus:
				if err := writeStatus(ctx, a, cfg.StatusFile); err != nil {
					log.Error(err, "node: status")
				}
			}
		}
	}
	cancel()
	wg.Wait()
	log.Info("node: exit", "code", code)
	return code
}

// writeStatus writes a's Status as JSON to path, atomically (a reader sees
// the old file or the new one).
func writeStatus(ctx context.Context, a *bgp.Announcer, path string) error {
	st, err := a.Status(ctx)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

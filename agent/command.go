package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vipvs/vipvs/internal/logging"
)

// DefaultConfigPath is where the agent reads its config unless told otherwise.
const DefaultConfigPath = "/etc/vipvs/agent.yaml"

const agentUsage = `Usage: vipvs agent [flags]

Runs the VRRP agent of one node: it elects a master among the nodes of each
virtual router in the config, adds the VIPs on the master and announces them
(gratuitous ARP, unsolicited neighbour advertisement), and moves them when the
master fails. It needs no Kubernetes API: the config is a local file.

Signals:
  SIGTERM, SIGINT  graceful stop: a master advertises priority 0 and keeps its
                   VIPs until another node is master, then releases them.
                   Routers in mode bgp drain first (RFC 8326: routes
                   re-advertised with GRACEFUL_SHUTDOWN, then withdrawn).
                   A second signal cuts the hand-over short.
  SIGHUP           re-read the config file (it is also watched for changes).
                   A bad file is rejected with every problem listed and the
                   running config stays. The bgp peers' password files
                   are read again.

Needs CAP_NET_ADMIN and CAP_NET_RAW (or root).

Flags:
`

// Command runs `vipvs agent` with args (without the subcommand name) and
// returns the process exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfigPath, "path of the agent config file (agent.vipvs.io/v1alpha1 AgentConfig)")
	verbosity := fs.Int("v", 0, "log verbosity: 0 transitions, VIP changes and config changes; 1 also every advert and drop")
	format := fs.String("log-format", "text", "log format: text or json")
	pprof := fs.Bool("debug-pprof", false, "serve Go's profiler under /debug/pprof/ on the status address and socket")
	check := fs.Bool("check", false, "only validate the config file, print the result and exit (0 valid, 1 invalid)")
	fs.Usage = func() {
		fmt.Fprint(stderr, agentUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipvs agent: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	log, err := logging.NewLogger(stderr, *format, *verbosity)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs agent: %v\n", err)
		return 2
	}
	if *check {
		return checkConfig(*configPath, stdout, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{}, 1)
	hard := make(chan struct{})
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		stopping := false
		for s := range sigs {
			switch {
			case s == syscall.SIGHUP:
				select {
				case reload <- struct{}{}:
				default:
				}
			case !stopping:
				stopping = true
				log.Info("signal received: stopping gracefully", "signal", s.String())
				cancel()
			default:
				log.Info("second signal received: releasing the VIPs now", "signal", s.String())
				close(hard)
				return
			}
		}
	}()
	if err := Run(ctx, Options{ConfigPath: *configPath, Log: log, Reload: reload, HardStop: hard, Pprof: *pprof}); err != nil {
		log.Error(err, "agent failed")
		return 1
	}
	return 0
}

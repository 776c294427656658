// Command vipvs-bgp-speaker is the agent's embedded BGP speaker (agent/bgp,
// GoBGP) in a process of its own, so that the agent binary (vipvs-agent)
// does not link GoBGP. The agent starts it when a router in mode bgp needs
// it and drives it over stdin and stdout (agent/bgp/wire); it is not meant
// to be run by hand. It exits when its stdin closes (the agent stopped or
// died), closing its BGP sessions; it logs to stderr.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/bgp"
	"github.com/vipvs/vipvs/agent/bgp/wire"
	"github.com/vipvs/vipvs/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, in io.Reader, out, errOut io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(out, version.Version)
			return 0
		default:
			fmt.Fprintf(errOut, "vipvs-bgp-speaker takes no arguments (got %q): the agent (vipvs-agent) starts it and talks to it over stdin and stdout\n", args[0])
			return 2
		}
	}
	// SIGTERM or SIGINT (say, to the whole process group) stops the speaker
	// like the end of stdin; the agent drains through requests before.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := logr.FromSlogHandler(slog.NewJSONHandler(errOut, nil)).WithName("bgp-speaker")
	if err := wire.Serve(ctx, in, out, bgp.OpenWire(log)); err != nil && ctx.Err() == nil {
		log.Error(err, "bgp speaker stopped")
		return 1
	}
	return 0
}

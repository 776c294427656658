package status

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// DefaultSocket is the agent's default status socket.
const DefaultSocket = "/run/vipvs/agent.sock"

// Command runs `vipvs status` and returns the exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipvs status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("socket", DefaultSocket, "the agent's status socket, or host:port of its status HTTP address")
	asJSON := fs.Bool("json", false, "print the raw JSON status document")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vipvs status [flags]\n\nPrints the state of the local agent's virtual routers: state, priority, current\nmaster and VIPs, read from its status socket.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := Fetch(ctx, *target)
	if err != nil {
		fmt.Fprintf(stderr, "vipvs status: %v\n(is the agent running? its socket is set by status.socketPath in its config)\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 1
		}
		return 0
	}
	if err := WriteTable(stdout, rep); err != nil {
		return 1
	}
	return 0
}

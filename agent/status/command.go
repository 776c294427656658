package status

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// DefaultRunDir is the directory of the agents' status sockets: the
// operator's agents use /run/vipvs/<LoadBalancerConfig>.sock, an agent run
// by hand /run/vipvs/agent.sock (its config's default).
const DefaultRunDir = "/run/vipvs"

// Command runs `vipvs status` and returns the exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	return command(args, stdout, stderr, DefaultRunDir)
}

// command is Command with the directory searched without --socket.
func command(args []string, stdout, stderr io.Writer, runDir string) int {
	fs := flag.NewFlagSet("vipvs status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("socket", "", "the agent's status socket, or host:port of its status HTTP address (default: every socket "+filepath.Join(runDir, "*.sock")+")")
	asJSON := fs.Bool("json", false, "print the raw JSON status document (a JSON list when there are several agents)")
	drain := fs.Bool("drain", false, "drain the agents' bgp routes gracefully (RFC 8326: GRACEFUL_SHUTDOWN, then withdrawn) without stopping them, e.g. before a node is cordoned; the VIPs stay served until the routers have moved the traffic")
	undrain := fs.Bool("undrain", false, "advertise the bgp routes of drained agents again")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vipvs status [flags]\n\nPrints the state of the local agents' virtual routers: state, priority, current\nmaster and VIPs, read from their status sockets. Without --socket it reads\nevery agent of the node (one per LoadBalancerConfig) from %s.\n\nFlags:\n", filepath.Join(runDir, "*.sock"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipvs status: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	targets := []string{*target}
	if *target == "" {
		var err error
		if targets, err = sockets(runDir); err != nil {
			fmt.Fprintf(stderr, "vipvs status: %v\n", err)
			return 1
		}
		if len(targets) == 0 {
			fmt.Fprintf(stderr, "vipvs status: no agent status socket in %s (is an agent running? its socket is set by status.socketPath in its config; name it with --socket)\n", runDir)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if *drain || *undrain {
		if *drain && *undrain {
			fmt.Fprintln(stderr, "vipvs status: --drain and --undrain exclude each other")
			return 2
		}
		code := 0
		for _, t := range targets {
			if err := Drain(ctx, t, *drain); err != nil {
				fmt.Fprintf(stderr, "vipvs status: %v\n", err)
				code = 1
				continue
			}
			what := "draining"
			if *undrain {
				what = "advertising again"
			}
			fmt.Fprintf(stdout, "%s: %s the bgp routes\n", t, what)
		}
		return code
	}
	code := 0
	var reports []Report
	for i, t := range targets {
		rep, err := Fetch(ctx, t)
		if err != nil {
			fmt.Fprintf(stderr, "vipvs status: %v\n(is the agent running? its socket is set by status.socketPath in its config)\n", err)
			code = 1
			continue
		}
		if *asJSON {
			reports = append(reports, rep)
			continue
		}
		if len(targets) > 1 {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "== %s\n", t)
		}
		if err := WriteTable(stdout, rep); err != nil {
			return 1
		}
	}
	if *asJSON && len(reports) > 0 {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var v any = reports
		if len(targets) == 1 {
			v = reports[0]
		}
		if err := enc.Encode(v); err != nil {
			return 1
		}
	}
	return code
}

// sockets lists the unix sockets in dir, sorted.
func sockets(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.sock"))
	if err != nil {
		return nil, fmt.Errorf("listing the agents' sockets in %s: %w", dir, err)
	}
	var out []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().Type() == os.ModeSocket {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

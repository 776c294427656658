// Command vipvs-agent is the node agent of vipvs on its own: the same agent
// as `vipvs agent` (and `vipvs status`), in a binary that links neither the
// operator, the node companion nor the tools, so that no Kubernetes client
// is loaded into the process that runs on every node. The image ships it
// beside vipvs, and the agent's static pod runs it.
//
// Usage:
//
//	vipvs-agent [agent] [flags]   run the agent (flags as `vipvs agent -h`)
//	vipvs-agent status [flags]    print the local agent's virtual routers
//	vipvs-agent version           print the version
//
// This package only picks the subcommand; agent/ does the work.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vipvs/vipvs/agent"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/version"
)

const usage = `vipvs-agent — the vipvs node agent (VRRP, VIPs, announcements, IPVS).

Usage:
  vipvs-agent [agent] [flags]   run the agent from a config file (same as 'vipvs agent')
  vipvs-agent status [flags]    print the local agent's virtual routers (same as 'vipvs status')
  vipvs-agent version           print the version

Run 'vipvs-agent -h' for the agent's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Without a subcommand (no argument, or a flag first) it is the agent,
	// so that the static pod's command is the binary and the agent's flags.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "--version" {
		return agent.Command(args, stdout, stderr)
	}
	switch args[0] {
	case "agent":
		return agent.Command(args[1:], stdout, stderr)
	case "status":
		return status.Command(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version.Version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vipvs-agent: unknown command %q\n\n%s", args[0], usage)
	return 2
}

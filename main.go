// Command vipvs is the one binary of vipvs: the node agent and its tools.
// This package only picks the subcommand; the packages named below do the work.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/vipvs/vipvs/agent"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/day0"
	"github.com/vipvs/vipvs/importer"
	"github.com/vipvs/vipvs/operator"
	"github.com/vipvs/vipvs/version"
)

const usage = `vipvs — VRRP virtual IPs and IPVS load balancing for Kubernetes nodes.

Usage: vipvs <command> [flags]

Commands:
  agent     run the node agent (VRRP, VIPs, announcements, IPVS) from a config file
  operator  run the operator: render LoadBalancerConfigs, publish them to the nodes, report status
  node      run the node companion: write this node's files on the host, report its agents' status
  status    print the local agent's virtual routers (state, master, VIPs)
  render    render the agents' configs and static pods for day 0 (before the operator runs)
  import    translate keepalived.conf files into LoadBalancerConfig YAML, reporting what has no equivalent
  version   print the version

Run 'vipvs <command> -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "agent":
		return agent.Command(args[1:], stdout, stderr)
	case "status":
		return status.Command(args[1:], stdout, stderr)
	case "operator":
		return operator.Command(args[1:], stdout, stderr)
	case "node":
		return companion.Command(args[1:], stdout, stderr)
	case "render":
		return day0.Command(args[1:], stdout, stderr)
	case "import":
		return importer.Command(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vipvs: unknown command %q\n\n%s", args[0], usage)
	return 2
}

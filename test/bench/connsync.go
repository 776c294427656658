package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/vipvs/vipvs/test/ipvse2e"
)

// The connection-survival section's flags.
var (
	connSyncOn    = flag.Bool("connsync", true, "also measure, in the test VM, how many established connections survive each failover kind with and without the IPVS connection sync")
	connSyncOnly  = flag.Bool("connsync-only", false, "measure the connection survival only and replace its section in -out")
	connSyncConns = flag.Int("connsync-conns", 100, "connections of each connection-survival test")
)

// connSyncSection measures the connection survival in the VM and returns
// its section; a failure is added to failures and the section says why.
func connSyncSection(ctx context.Context, failures *[]string) string {
	fmt.Fprintf(os.Stderr, "connections across failovers in the VM (%d connections)...\n", *connSyncConns)
	f, err := ipvse2e.RunConnSyncFigures(ctx, ipvse2e.ConnSyncOptions{Conns: *connSyncConns, Stdout: os.Stderr})
	if err != nil {
		*failures = append(*failures, fmt.Sprintf("connections across failovers in the VM: %v", firstLine(err.Error())))
		fmt.Fprintf(os.Stderr, "connections across failovers in the VM FAILED: %v\n", err)
		if f == nil {
			return fmt.Sprintf("%s\n\nNot measured: %s.\n", ipvse2e.ConnSyncTitle, firstLine(err.Error()))
		}
	}
	return f.Markdown()
}

// connSyncOnlyRun measures the connection survival and replaces its
// section in out (- for stdout); it returns the exit status.
func connSyncOnlyRun(ctx context.Context, out string) int {
	var failures []string
	sec := connSyncSection(ctx, &failures)
	return writeSection(out, sec, "connection-survival", ipvse2e.UpdateConnSyncSection, failures)
}

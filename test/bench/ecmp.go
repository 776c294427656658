package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/vipvs/vipvs/test/ipvse2e"
)

// The ECMP section's flags.
var (
	ecmpOn    = flag.Bool("ecmp", true, "also measure the connections broken by a director joining or leaving an ECMP set, in the test VM")
	ecmpOnly  = flag.Bool("ecmp-only", false, "measure the ECMP section only and replace it in -out")
	ecmpConns = flag.Int("ecmp-conns", 60, "long-lived connections of the ECMP section")
)

// ecmpSection measures the connections broken by a director joining or
// leaving the ECMP set of a bgp-mode VIP (test/ipvse2e.RunECMPFigures); a
// failure is added to failures and the section says why.
func ecmpSection(ctx context.Context, failures *[]string) string {
	sec, err := ipvse2e.RunECMPFigures(ctx, ipvse2e.ECMPFigureOptions{Conns: *ecmpConns, Stdout: os.Stderr})
	if err != nil {
		*failures = append(*failures, fmt.Sprintf("ECMP in the VM: %v", firstLine(err.Error())))
		fmt.Fprintf(os.Stderr, "ECMP in the VM FAILED: %v\n", err)
		if sec == "" {
			return fmt.Sprintf("%s\n\nNot measured: %s.\n", ipvse2e.ECMPSectionTitle, firstLine(err.Error()))
		}
	}
	return sec
}

// ecmpOnlyRun measures the ECMP section and replaces it in out (- for
// stdout); it returns the exit status.
func ecmpOnlyRun(ctx context.Context, out string) int {
	var failures []string
	sec := ecmpSection(ctx, &failures)
	return writeSection(out, sec, "ECMP", ipvse2e.UpdateECMPSection, failures)
}

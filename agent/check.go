package agent

import (
	"errors"
	"fmt"
	"io"

	"github.com/vipvs/vipvs/agent/config"
)

// checkConfig validates a config file and prints the result: every problem
// on a line of its own.
func checkConfig(path string, stdout, stderr io.Writer) int {
	c, err := config.Load(path)
	if err != nil {
		var inv *config.InvalidError
		if errors.As(err, &inv) {
			fmt.Fprintf(stderr, "%s: invalid, %d problem(s):\n", path, len(inv.Errs))
			for _, fe := range inv.Errs {
				fmt.Fprintf(stderr, "  - %s\n", fe.Error())
			}
			return 1
		}
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid, %d virtual router(s), %d check(s), sha256 %s\n", path, len(c.Routers), len(c.Checks), c.Hash)
	return 0
}

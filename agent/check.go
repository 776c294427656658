package agent

import (
	"fmt"
	"io"

	"github.com/vipvs/vipvs/agent/config"
)

// checkConfig validates a config file and prints the result.
func checkConfig(path string, stdout, stderr io.Writer) int {
	c, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid, %d virtual router(s), sha256 %s\n", path, len(c.Routers), c.Hash)
	return 0
}

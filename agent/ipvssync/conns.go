package ipvssync

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
)

// ConnCountsPath is the kernel's list of IPVS connections with their
// origin, in the reading process's network namespace.
const ConnCountsPath = "/proc/net/ip_vs_conn_sync"

// ConnCounts counts the connections of the IPVS table by origin: local
// (balanced here) and synced (created by the backup daemon from a master's
// messages).
type ConnCounts struct {
	Local, Synced int
}

// ReadConnCounts reads the counts from ConnCountsPath. It reads the whole
// table: call it seldom (once per resync), not per packet or per scrape of
// a large table.
func ReadConnCounts() (ConnCounts, error) {
	f, err := os.Open(ConnCountsPath)
	if err != nil {
		return ConnCounts{}, fmt.Errorf("ipvssync: %w", err)
	}
	defer f.Close()
	return parseConnCounts(f)
}

// parseConnCounts counts the lines of /proc/net/ip_vs_conn_sync by their
// Origin column, "Local" or "Sync" (the header line has "Origin").
func parseConnCounts(r io.Reader) (ConnCounts, error) {
	var c ConnCounts
	s := bufio.NewScanner(r)
	local, synced := []byte("Local"), []byte("Sync")
	for s.Scan() {
		for _, w := range bytes.Fields(s.Bytes()) {
			if bytes.Equal(w, local) {
				c.Local++
				break
			}
			if bytes.Equal(w, synced) {
				c.Synced++
				break
			}
		}
	}
	if err := s.Err(); err != nil {
		return c, fmt.Errorf("ipvssync: reading %s: %w", ConnCountsPath, err)
	}
	return c, nil
}

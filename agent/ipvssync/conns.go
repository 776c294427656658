package ipvssync

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
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
// Origin column: the kernel writes "LOCAL" or "SYNC" (ip_vs_origin_name;
// the header line has "Origin").
func parseConnCounts(r io.Reader) (ConnCounts, error) {
	var c ConnCounts
	s := bufio.NewScanner(r)
	local, synced := []byte("LOCAL"), []byte("SYNC")
	for s.Scan() {
		for _, w := range bytes.Fields(s.Bytes()) {
			if bytes.EqualFold(w, local) {
				c.Local++
				break
			}
			if bytes.EqualFold(w, synced) {
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

// Connection is one connection of the IPVS table.
type Connection struct {
	// Protocol is the protocol's name as the kernel writes it: "TCP",
	// "UDP", "SCTP".
	Protocol string
	// Client is the client's address and port, VIP the virtual
	// service's, Real the real server's.
	Client, VIP, Real netip.AddrPort
	// State is IPVS's state of the connection: "ESTABLISHED",
	// "FIN_WAIT", ... for TCP, "UDP" for UDP.
	State string
	// Synced is true for a connection the backup daemon created from a
	// master's message, false for one balanced here.
	Synced bool
	// Expires is the time left before IPVS forgets the connection.
	Expires time.Duration
}

// ReadConnections reads the IPVS table's connections from
// ConnCountsPath, in the calling thread's network namespace. It reads the
// whole table: call it when a node takes the VIPs over, not per packet.
func ReadConnections() ([]Connection, error) {
	f, err := os.Open(ConnCountsPath)
	if err != nil {
		return nil, fmt.Errorf("ipvssync: %w", err)
	}
	defer f.Close()
	return parseConnections(f)
}

// parseConnections parses /proc/net/ip_vs_conn_sync
// (ip_vs_conn_sync_seq_show):
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
//	TCP C0000264 A1B2 C0000264 1F90 C0000205 1F90 ESTABLISHED LOCAL      899
//
// IPv4 addresses are 8 hex digits, IPv6 ones colon-separated (%pI6), ports
// 4 hex digits, Expires seconds. Lines that do not parse are skipped.
func parseConnections(r io.Reader) ([]Connection, error) {
	var out []Connection
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 10 || f[0] == "Pro" {
			continue
		}
		c := Connection{Protocol: f[0], State: f[7], Synced: strings.EqualFold(f[8], "SYNC")}
		var ok [3]bool
		c.Client, ok[0] = parseAddrPort(f[1], f[2])
		c.VIP, ok[1] = parseAddrPort(f[3], f[4])
		c.Real, ok[2] = parseAddrPort(f[5], f[6])
		secs, err := strconv.ParseUint(f[9], 10, 32)
		if ok != [3]bool{true, true, true} || err != nil {
			continue
		}
		c.Expires = time.Duration(secs) * time.Second
		out = append(out, c)
	}
	if err := s.Err(); err != nil {
		return out, fmt.Errorf("ipvssync: reading %s: %w", ConnCountsPath, err)
	}
	return out, nil
}

// parseAddrPort parses an address (8 hex digits for IPv4, %pI6 for IPv6)
// and a port (4 hex digits).
func parseAddrPort(addr, port string) (netip.AddrPort, bool) {
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var a netip.Addr
	if strings.Contains(addr, ":") {
		if a, err = netip.ParseAddr(addr); err != nil {
			return netip.AddrPort{}, false
		}
	} else {
		v, err := strconv.ParseUint(addr, 16, 32)
		if err != nil || len(addr) != 8 {
			return netip.AddrPort{}, false
		}
		a = netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(v))))
	}
	return netip.AddrPortFrom(a, uint16(p)), true
}

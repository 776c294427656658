package lab

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpLogLines is how many log lines of each process Dump shows.
const dumpLogLines = 30

// Dump writes, for a failed test, each namespace's links, addresses,
// neighbours (the switch: its forwarding database) and nftables ruleset, and
// the state and log tail of every process started in the lab. It reports
// errors inline and never fails.
func (l *Lab) Dump(w io.Writer) {
	fmt.Fprintf(w, "lab %s (logs in %s)\n", l.opts.Name, l.opts.LogDir)
	hosts := l.hosts()
	if l.sw != nil {
		hosts = append(hosts, l.sw)
	}
	for _, h := range hosts {
		if h.nl == nil {
			continue
		}
		fmt.Fprintf(w, "== %s (ip netns exec %s)\n", h.Name, h.Namespace)
		h.dumpNet(w)
		h.dumpNft(w)
	}
	l.mu.Lock()
	procs := append([]*Proc(nil), l.procs...)
	l.mu.Unlock()
	for _, p := range procs {
		fmt.Fprintf(w, "== process %s, log %s, last %d lines:\n%s", p, p.LogPath, dumpLogLines, p.LogTail(dumpLogLines))
	}
}

func (h *Host) dumpNet(w io.Writer) {
	links, err := h.nl.LinkList()
	if err != nil {
		fmt.Fprintf(w, "  links: %v\n", err)
		return
	}
	for _, link := range links {
		a := link.Attrs()
		master := ""
		if a.MasterIndex != 0 {
			master = fmt.Sprintf(" master %d", a.MasterIndex)
		}
		fmt.Fprintf(w, "  %d: %s %s <%s> %s%s\n", a.Index, a.Name, link.Type(), a.Flags, a.OperState, master)
		if a.HardwareAddr != nil {
			fmt.Fprintf(w, "      link %s\n", a.HardwareAddr)
		}
		addrs, err := h.nl.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			fmt.Fprintf(w, "      addresses: %v\n", err)
		}
		for _, ad := range addrs {
			fmt.Fprintf(w, "      inet %s flags %#x\n", ad.IPNet, ad.Flags)
		}
		if h == h.lab.sw {
			continue
		}
		neighs, err := h.nl.NeighList(a.Index, netlink.FAMILY_ALL)
		if err != nil {
			fmt.Fprintf(w, "      neighbours: %v\n", err)
		}
		for _, n := range neighs {
			fmt.Fprintf(w, "      neigh %s lladdr %s %s\n", n.IP, n.HardwareAddr, neighState(n.State))
		}
	}
	if h == h.lab.sw {
		fdb, err := h.nl.NeighList(0, unix.AF_BRIDGE)
		if err != nil {
			fmt.Fprintf(w, "  fdb: %v\n", err)
		}
		for _, n := range fdb {
			fmt.Fprintf(w, "  fdb %s port %d %s\n", n.HardwareAddr, n.LinkIndex, neighState(n.State))
		}
	}
}

func (h *Host) dumpNft(w io.Writer) {
	c, err := h.nft()
	if err != nil {
		fmt.Fprintf(w, "  nftables: %v\n", err)
		return
	}
	chains, err := c.ListChains()
	if err != nil {
		fmt.Fprintf(w, "  nftables: listing chains: %v\n", err)
		return
	}
	for _, ch := range chains {
		hook := ""
		if ch.Hooknum != nil {
			hook = fmt.Sprintf(" hook %d", *ch.Hooknum)
			if ch.Device != "" {
				hook += " device " + ch.Device
			}
		}
		fmt.Fprintf(w, "  nft table %s %s chain %s%s\n", familyName(ch.Table.Family), ch.Table.Name, ch.Name, hook)
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			fmt.Fprintf(w, "    rules: %v\n", err)
		}
		for _, r := range rules {
			var parts []string
			for _, e := range r.Exprs {
				parts = append(parts, strings.TrimPrefix(fmt.Sprintf("%T%+v", e, e), "*expr."))
			}
			fmt.Fprintf(w, "    rule %d: %s\n", r.Handle, strings.Join(parts, " "))
		}
	}
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family%d", f)
}

func neighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, "|")
}

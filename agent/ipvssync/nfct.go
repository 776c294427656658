package ipvssync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conntrack entries for synced NAT connections (like the kernel's
// ip_vs_nfct.c, which ties IPVS to conntrack on the director that balanced
// a connection, but for the director that takes it over).
//
// The sync daemon gives a new master the IPVS connection, not the
// conntrack entry that carries the connection's source NAT to the VIP
// (package snat): the kernel syncs only IPVS's table, and conntrack picks a
// TCP connection up from its next packet only when that packet comes from
// the client (nf_conntrack_tcp_loose). After a hard failover the ends
// retransmit what the old master lost; the real server's retransmissions
// reaching the new master are dropped while no client packet has created
// the entry (package snat's input rule), and a client whose request was
// acknowledged before the failure, waiting for the answer, sends nothing
// until its TCP keepalive; the connection then waits for the real server's
// next retransmission, further away by TCP's exponential backoff. In the
// VM (docs/forwarding.md) 50 of 100 connections stalled more than 10 s,
// up to 29 s. Creating the entries when the node becomes master, with the
// source NAT already bound, lets whichever end retransmits first get
// through.
//
// Each entry is what the old master's conntrack held, built from the IPVS
// connection client:cport -> VIP:vport -> real:rport:
//
//	original  client:cport -> VIP:vport
//	reply     real:rport   -> VIP:cport   (source NAT to the VIP, the
//	                                       client's port kept, as snat does)
//	TCP state ESTABLISHED, window tracking liberal in both directions (the
//	new master has seen no window), timeout: the IPVS connection's.
//
// It is sent to the kernel as ctnetlink IPCTNL_MSG_CT_NEW with NLM_F_CREATE
// and NLM_F_EXCL (many in one write, see CreateNAT), the reply tuple before NAT and CTA_NAT_SRC, which makes
// the kernel bind the source NAT as a rule would (nf_nat_setup_info):
// vishvananda/netlink's ConntrackCreate cannot send CTA_NAT_SRC. An entry
// that exists already (conntrack picked the connection up first, or a node
// taking a connection back still has it) is left alone.
//
// The kernel needs nf_conntrack_netlink (loaded on demand by nfnetlink
// where module loading works; list it in modules-load.d otherwise) and
// nf_nat.

// ctnetlink message and attribute numbers, from the kernel's
// include/uapi/linux/netfilter/nfnetlink*.h.
const (
	nfnlSubsysCTNetlink = 1 // NFNL_SUBSYS_CTNETLINK
	ctMsgNew            = 0 // IPCTNL_MSG_CT_NEW
	ctMsgGetStats       = 5 // IPCTNL_MSG_CT_GET_STATS

	ctaTupleOrig  = 1 // CTA_TUPLE_ORIG
	ctaTupleReply = 2 // CTA_TUPLE_REPLY
	ctaProtoinfo  = 4 // CTA_PROTOINFO
	ctaNATSrc     = 6 // CTA_NAT_SRC
	ctaTimeout    = 7 // CTA_TIMEOUT

	ctaTupleIP    = 1 // CTA_TUPLE_IP
	ctaTupleProto = 2 // CTA_TUPLE_PROTO
	ctaIPv4Src    = 1 // CTA_IP_V4_SRC
	ctaIPv4Dst    = 2 // CTA_IP_V4_DST
	ctaIPv6Src    = 3 // CTA_IP_V6_SRC
	ctaIPv6Dst    = 4 // CTA_IP_V6_DST
	ctaProtoNum   = 1 // CTA_PROTO_NUM
	ctaProtoSport = 2 // CTA_PROTO_SRC_PORT
	ctaProtoDport = 3 // CTA_PROTO_DST_PORT

	ctaProtoinfoTCP          = 1 // CTA_PROTOINFO_TCP
	ctaProtoinfoTCPState     = 1 // CTA_PROTOINFO_TCP_STATE
	ctaProtoinfoTCPFlagsOrig = 4 // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL
	ctaProtoinfoTCPFlagsRepl = 5 // CTA_PROTOINFO_TCP_FLAGS_REPLY
	tcpConntrackEstablished  = 3 // TCP_CONNTRACK_ESTABLISHED
	ctTCPFlagBeLiberal       = 0x08

	ctaNATv4MinIP     = 1 // CTA_NAT_V4_MINIP
	ctaNATv4MaxIP     = 2 // CTA_NAT_V4_MAXIP
	ctaNATProto       = 3 // CTA_NAT_PROTO
	ctaNATv6MinIP     = 4 // CTA_NAT_V6_MINIP
	ctaNATv6MaxIP     = 5 // CTA_NAT_V6_MAXIP
	ctaProtoNATPortLo = 1 // CTA_PROTONAT_PORT_MIN
	ctaProtoNATPortHi = 2 // CTA_PROTONAT_PORT_MAX
)

// minEntryTimeout is the shortest timeout an entry gets: a connection
// whose IPVS entry is about to expire still gets the time for one packet.
const minEntryTimeout = 10 * time.Second

// NATEntry is the conntrack entry of one NAT connection source-NATed to
// its VIP.
type NATEntry struct {
	// Protocol is unix.IPPROTO_TCP or unix.IPPROTO_UDP.
	Protocol uint8
	// Client, VIP and Real are the connection's ends as IPVS has them.
	Client, VIP, Real netip.AddrPort
	// Timeout is the entry's lifetime without traffic.
	Timeout time.Duration
}

// String returns "tcp client -> VIP -> real".
func (e NATEntry) String() string {
	p := "tcp"
	if e.Protocol == unix.IPPROTO_UDP {
		p = "udp"
	}
	return fmt.Sprintf("%s %s -> %s -> %s", p, e.Client, e.VIP, e.Real)
}

// natEntryAttrs encodes the attributes of the IPCTNL_MSG_CT_NEW message of
// e (after the nfgenmsg header).
func natEntryAttrs(e NATEntry) ([]byte, error) {
	v4 := e.VIP.Addr().Is4()
	if e.Client.Addr().Is4() != v4 || e.Real.Addr().Is4() != v4 {
		return nil, fmt.Errorf("ipvssync: %s mixes address families", e)
	}
	secs := uint32(max(e.Timeout, minEntryTimeout) / time.Second)
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	tuple := func(src, dst netip.AddrPort) func(*netlink.AttributeEncoder) error {
		return func(ae *netlink.AttributeEncoder) error {
			ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
				if v4 {
					ae.Bytes(ctaIPv4Src, src.Addr().AsSlice())
					ae.Bytes(ctaIPv4Dst, dst.Addr().AsSlice())
				} else {
					ae.Bytes(ctaIPv6Src, src.Addr().AsSlice())
					ae.Bytes(ctaIPv6Dst, dst.Addr().AsSlice())
				}
				return nil
			})
			ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
				ae.Uint8(ctaProtoNum, e.Protocol)
				ae.Uint16(ctaProtoSport, src.Port())
				ae.Uint16(ctaProtoDport, dst.Port())
				return nil
			})
			return nil
		}
	}
	ae.Nested(ctaTupleOrig, tuple(e.Client, e.VIP))
	// The reply before the source NAT: CTA_NAT_SRC rewrites its
	// destination to the VIP.
	ae.Nested(ctaTupleReply, tuple(e.Real, e.Client))
	ae.Uint32(ctaTimeout, secs)
	if e.Protocol == unix.IPPROTO_TCP {
		ae.Nested(ctaProtoinfo, func(ae *netlink.AttributeEncoder) error {
			ae.Nested(ctaProtoinfoTCP, func(ae *netlink.AttributeEncoder) error {
				ae.Uint8(ctaProtoinfoTCPState, tcpConntrackEstablished)
				// struct nf_ct_tcp_flags { flags, mask }
				ae.Bytes(ctaProtoinfoTCPFlagsOrig, []byte{ctTCPFlagBeLiberal, ctTCPFlagBeLiberal})
				ae.Bytes(ctaProtoinfoTCPFlagsRepl, []byte{ctTCPFlagBeLiberal, ctTCPFlagBeLiberal})
				return nil
			})
			return nil
		})
	}
	ae.Nested(ctaNATSrc, func(ae *netlink.AttributeEncoder) error {
		lo, hi := uint16(ctaNATv4MinIP), uint16(ctaNATv4MaxIP)
		if !v4 {
			lo, hi = ctaNATv6MinIP, ctaNATv6MaxIP
		}
		ae.Bytes(lo, e.VIP.Addr().AsSlice())
		ae.Bytes(hi, e.VIP.Addr().AsSlice())
		ae.Nested(ctaNATProto, func(ae *netlink.AttributeEncoder) error {
			ae.Uint16(ctaProtoNATPortLo, e.Client.Port())
			ae.Uint16(ctaProtoNATPortHi, e.Client.Port())
			return nil
		})
		return nil
	})
	return ae.Encode()
}

// Conntrack creates conntrack entries over ctnetlink in the network
// namespace it was opened in. It is not safe for concurrent use.
type Conntrack struct {
	c *netlink.Conn
}

// OpenConntrack opens a ctnetlink socket in the calling thread's network
// namespace.
func OpenConntrack() (*Conntrack, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, fmt.Errorf("ipvssync: opening ctnetlink: %w", err)
	}
	return &Conntrack{c: c}, nil
}

// Close closes the socket.
func (ct *Conntrack) Close() error { return ct.c.Close() }

// createBatch is how many entries CreateNAT sends in one write: the
// kernel answers each failure with an error that echoes the request, which
// must fit the socket's receive buffer.
const createBatch = 128

// ackWait bounds the wait for the kernel's answers to a batch.
const ackWait = 5 * time.Second

// CreateNAT creates the entries of es and counts those created and those
// that existed already. It sends them in batches, without asking for an
// acknowledgement of each: the kernel answers only the failures, and a
// last request for conntrack's statistics (IPCTNL_MSG_CT_GET_STATS, with
// an acknowledgement), which it answers after the entries before it, says
// that the batch is done. A node taking over thousands of connections has
// the entries after a few writes and reads, before the real servers' next
// retransmissions. The error joins the encoding errors and the first
// failure the kernel reported.
func (ct *Conntrack) CreateNAT(es []NATEntry) (created, existing int, err error) {
	var errs []error
	var failed error
	for len(es) > 0 {
		batch := es[:min(len(es), createBatch)]
		es = es[len(batch):]
		var msgs []netlink.Message
		for _, e := range batch {
			m, err := natEntryMessage(e)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			continue
		}
		n := len(msgs)
		// struct nfgenmsg { AF_UNSPEC, NFNETLINK_V0, res_id 0 }
		msgs = append(msgs, netlink.Message{Header: netlink.Header{
			Type:  netlink.HeaderType(nfnlSubsysCTNetlink<<8 | ctMsgGetStats),
			Flags: netlink.Request | netlink.Acknowledge,
		}, Data: []byte{unix.AF_UNSPEC, 0, 0, 0}})
		sent, err := ct.c.SendMessages(msgs)
		if err != nil {
			errs = append(errs, fmt.Errorf("ipvssync: sending %d conntrack entries: %w", n, err))
			continue
		}
		if err := ct.c.SetReadDeadline(time.Now().Add(ackWait)); err != nil {
			errs = append(errs, fmt.Errorf("ipvssync: %w", err))
			continue
		}
		last := sent[len(sent)-1].Header.Sequence
		exist, fail, done := 0, 0, false
		for !done {
			got, err := ct.c.Receive()
			switch {
			case err == nil:
				// The statistics and their acknowledgement.
				for _, m := range got {
					done = done || m.Header.Sequence == last
				}
			case errors.Is(err, unix.EEXIST):
				exist++
			case errors.Is(err, os.ErrDeadlineExceeded):
				errs = append(errs, fmt.Errorf("ipvssync: the kernel did not finish %d conntrack entries within %v", n, ackWait))
				fail, done = n-exist, true
			default:
				// A failure of an entry (or of the statistics request:
				// then the deadline ends the wait, the entries counted as
				// failed).
				fail++
				if failed == nil {
					failed = fmt.Errorf("ipvssync: creating a conntrack entry: %w", err)
				}
			}
		}
		created += max(n-exist-fail, 0)
		existing += exist
	}
	return created, existing, errors.Join(append(errs, failed)...)
}

// natEntryMessage returns the IPCTNL_MSG_CT_NEW request of e.
func natEntryMessage(e NATEntry) (netlink.Message, error) {
	attrs, err := natEntryAttrs(e)
	if err != nil {
		return netlink.Message{}, err
	}
	family := byte(unix.AF_INET)
	if !e.VIP.Addr().Is4() {
		family = unix.AF_INET6
	}
	// struct nfgenmsg { family, version NFNETLINK_V0, res_id 0 }
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(nfnlSubsysCTNetlink<<8 | ctMsgNew),
			Flags: netlink.Request | netlink.Create | netlink.Excl,
		},
		Data: append([]byte{family, 0, 0, 0}, attrs...),
	}, nil
}

// NATService is a NAT virtual service whose connections are source-NATed
// to its VIP (package snat).
type NATService struct {
	// Protocol is unix.IPPROTO_TCP or unix.IPPROTO_UDP; other protocols
	// are ignored.
	Protocol uint8
	// VIP is the service's address and port.
	VIP netip.AddrPort
}

// Adoption counts what AdoptNAT did with the connections of the services.
type Adoption struct {
	// Created is the number of conntrack entries created; Existing of
	// connections that had one already; Failed of those whose entry could
	// not be created.
	Created, Existing, Failed int
}

// natCreator creates conntrack entries; *Conntrack implements it.
type natCreator interface {
	CreateNAT([]NATEntry) (created, existing int, err error)
}

// natEntries returns the entries of the connections of conns that belong
// to services: TCP connections in IPVS state ESTABLISHED, and UDP ones.
func natEntries(conns []Connection, services []NATService) []NATEntry {
	want := map[NATService]bool{}
	for _, s := range services {
		want[s] = true
	}
	var out []NATEntry
	for _, c := range conns {
		var proto uint8
		switch {
		case c.Protocol == "TCP" && c.State == "ESTABLISHED":
			proto = unix.IPPROTO_TCP
		case c.Protocol == "UDP":
			proto = unix.IPPROTO_UDP
		default:
			continue
		}
		if !want[NATService{Protocol: proto, VIP: c.VIP}] {
			continue
		}
		out = append(out, NATEntry{Protocol: proto, Client: c.Client, VIP: c.VIP, Real: c.Real, Timeout: c.Expires})
	}
	return out
}

// AdoptNAT creates, for the established connections of services in the
// IPVS table (those the backup daemon received from the old master, and
// this node's own), the conntrack entries with their source NAT to the
// VIP, so that the first packet from either end continues the connection
// (see the top of this file). Call it when the node becomes master of the
// services' VIPs. It reads the whole IPVS table and sends one netlink
// request per connection.
func (m *Manager) AdoptNAT(services []NATService) (Adoption, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var a Adoption
	if len(services) == 0 {
		return a, nil
	}
	read := m.readConns
	if read == nil {
		read = ReadConnections
	}
	conns, err := read()
	if err != nil {
		return a, err
	}
	entries := natEntries(conns, services)
	if len(entries) == 0 {
		return a, nil
	}
	if m.ct == nil {
		open := m.openCT
		if open == nil {
			open = func() (natCreator, error) { return OpenConntrack() }
		}
		if m.ct, err = open(); err != nil {
			return a, err
		}
	}
	a.Created, a.Existing, err = m.ct.CreateNAT(entries)
	a.Failed = len(entries) - a.Created - a.Existing
	if err != nil {
		return a, fmt.Errorf("%d of %d conntrack entries not created: %w", a.Failed, len(entries), err)
	}
	return a, nil
}

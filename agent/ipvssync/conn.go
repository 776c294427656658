package ipvssync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNoIPVS means the kernel has no IPVS: there is no IPVS generic netlink
// family.
var ErrNoIPVS = errors.New("ipvssync: the kernel has no IPVS (module ip_vs not loaded?)")

// The IPVS generic netlink commands and attributes of the daemons, from the
// kernel's include/uapi/linux/ip_vs.h.
const (
	// enum { IPVS_CMD_UNSPEC, _NEW_SERVICE, _SET_SERVICE, _DEL_SERVICE,
	// _GET_SERVICE, _NEW_DEST, _SET_DEST, _DEL_DEST, _GET_DEST,
	// _NEW_DAEMON, _DEL_DAEMON, _GET_DAEMON, ... }
	cmdNewDaemon uint8 = 9  // IPVS_CMD_NEW_DAEMON
	cmdDelDaemon uint8 = 10 // IPVS_CMD_DEL_DAEMON
	cmdGetDaemon uint8 = 11 // IPVS_CMD_GET_DAEMON

	cmdAttrDaemon = 3 // IPVS_CMD_ATTR_DAEMON

	daemonAttrState       = 1 // IPVS_DAEMON_ATTR_STATE, u32
	daemonAttrMcastIfn    = 2 // IPVS_DAEMON_ATTR_MCAST_IFN, string
	daemonAttrSyncID      = 3 // IPVS_DAEMON_ATTR_SYNC_ID, u32
	daemonAttrSyncMaxLen  = 4 // IPVS_DAEMON_ATTR_SYNC_MAXLEN, u16
	daemonAttrMcastGroup  = 5 // IPVS_DAEMON_ATTR_MCAST_GROUP, be32
	daemonAttrMcastGroup6 = 6 // IPVS_DAEMON_ATTR_MCAST_GROUP6, in6_addr
	daemonAttrMcastPort   = 7 // IPVS_DAEMON_ATTR_MCAST_PORT, be16
	daemonAttrMcastTTL    = 8 // IPVS_DAEMON_ATTR_MCAST_TTL, u8

	genlVersion = 1 // IPVS_GENL_VERSION
)

// State is the role of a sync daemon (IP_VS_STATE_*).
type State uint32

// The roles.
const (
	// Master sends the connections this node balances.
	Master State = 1
	// Backup receives the connections of the master.
	Backup State = 2
)

// String returns "master" or "backup".
func (s State) String() string {
	switch s {
	case Master:
		return "master"
	case Backup:
		return "backup"
	}
	return "state-" + strconv.Itoa(int(s))
}

// Kernel defaults of the optional settings (IP_VS_SYNC_GROUP, _PORT).
var (
	DefaultGroup4 = netip.MustParseAddr("224.0.0.81")
	DefaultGroup6 = netip.MustParseAddr("ff02::81")
)

// DefaultPort is the kernel's default UDP port of the sync messages.
const DefaultPort = 8848

// Daemon is one sync daemon as the kernel runs it.
type Daemon struct {
	// State is Master or Backup.
	State State
	// Interface is the network interface it sends or listens on.
	Interface string
	// SyncID is the ID of its messages (master) or of the messages it
	// accepts (backup; 0 accepts all).
	SyncID uint8
	// MaxLen is the largest UDP payload of a message; 0 means the kernel's
	// choice (from the interface's MTU).
	MaxLen uint16
	// Group is the multicast group; the zero Addr means the kernel's
	// default (224.0.0.81). An IPv6 group makes the daemon use IPv6.
	Group netip.Addr
	// Port is the UDP port; 0 means the kernel's default, 8848.
	Port uint16
	// TTL is the multicast TTL (hop limit); 0 means the kernel's default, 1.
	TTL uint8
}

// String describes the daemon as ipvsadm --list-daemon does, with the
// group.
func (d Daemon) String() string {
	g, port, ttl := d.Group, d.Port, d.TTL
	if !g.IsValid() {
		g = DefaultGroup4
	}
	if port == 0 {
		port = DefaultPort
	}
	if ttl == 0 {
		ttl = 1
	}
	return fmt.Sprintf("%s sync daemon (mcast=%s, syncid=%d, group=%s, ttl=%d, maxlen=%d)",
		d.State, d.Interface, d.SyncID, netip.AddrPortFrom(g, port), ttl, d.MaxLen)
}

// Validate reports every problem of d, joined.
func (d Daemon) Validate() error {
	var errs []error
	if d.State != Master && d.State != Backup {
		errs = append(errs, fmt.Errorf("state %d: must be master (1) or backup (2)", d.State))
	}
	if d.Interface == "" || len(d.Interface) >= unix.IFNAMSIZ {
		errs = append(errs, fmt.Errorf("interface %q: must be 1-%d characters", d.Interface, unix.IFNAMSIZ-1))
	}
	if d.Group.IsValid() && (!d.Group.IsMulticast() || d.Group.Zone() != "" || d.Group.Is4In6()) {
		errs = append(errs, fmt.Errorf("group %s: must be an IPv4 or IPv6 multicast address", d.Group))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ipvssync: daemon: %w", err)
	}
	return nil
}

// normal returns d with the kernel's defaults filled in, as GET_DAEMON
// reports it (MaxLen stays as given: the kernel picks it from the MTU).
func (d Daemon) normal() Daemon {
	if !d.Group.IsValid() {
		d.Group = DefaultGroup4
	}
	if d.Port == 0 {
		d.Port = DefaultPort
	}
	if d.TTL == 0 {
		d.TTL = 1
	}
	return d
}

// Conn is a generic netlink connection to the IPVS family of one network
// namespace. It is not safe for concurrent use.
type Conn struct {
	sock   *nl.NetlinkSocket
	family uint16
	seq    uint32
}

// socketTimeout bounds every netlink send and receive, as moby/ipvs does.
const socketTimeout = 5 * time.Second

// Open opens a Conn in the caller's network namespace (of the calling OS
// thread).
func Open() (*Conn, error) { return OpenAt("") }

// OpenAt opens a Conn in the network namespace at path (e.g. /run/netns/x);
// "" means the caller's. It returns an error wrapping ErrNoIPVS when the
// kernel has no IPVS.
func OpenAt(path string) (*Conn, error) {
	ns := netns.None()
	if path != "" {
		var err error
		if ns, err = netns.GetFromPath(path); err != nil {
			return nil, fmt.Errorf("ipvssync: opening network namespace %s: %w", path, err)
		}
		defer ns.Close()
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("ipvssync: opening netlink: %w", err)
	}
	fam, err := h.GenlFamilyGet("IPVS")
	h.Close()
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoIPVS
		}
		return nil, fmt.Errorf("ipvssync: looking up the IPVS generic netlink family: %w", err)
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("ipvssync: opening a generic netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(socketTimeout.Nanoseconds())
	if err := sock.SetSendTimeout(&tv); err != nil {
		sock.Close()
		return nil, fmt.Errorf("ipvssync: %w", err)
	}
	if err := sock.SetReceiveTimeout(&tv); err != nil {
		sock.Close()
		return nil, fmt.Errorf("ipvssync: %w", err)
	}
	return &Conn{sock: sock, family: fam.ID}, nil
}

// Close closes the connection; the daemons keep running.
func (c *Conn) Close() error {
	if c.sock != nil {
		c.sock.Close()
		c.sock = nil
	}
	return nil
}

// Start starts a daemon (IPVS_CMD_NEW_DAEMON). The kernel refuses a second
// daemon of the same state (EEXIST): Stop it first.
func (c *Conn) Start(d Daemon) error {
	if err := d.Validate(); err != nil {
		return err
	}
	req := c.request(cmdNewDaemon, 0)
	req.AddData(daemonAttrs(d))
	if _, err := c.execute(req); err != nil {
		return fmt.Errorf("ipvssync: starting the %s: %w", d, err)
	}
	return nil
}

// Stop stops the daemon of state s (IPVS_CMD_DEL_DAEMON); one that does not
// run is no error.
func (c *Conn) Stop(s State) error {
	req := c.request(cmdDelDaemon, 0)
	a := nl.NewRtAttr(cmdAttrDaemon, nil)
	a.AddRtAttr(daemonAttrState, nl.Uint32Attr(uint32(s)))
	req.AddData(a)
	if _, err := c.execute(req); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("ipvssync: stopping the %s sync daemon: %w", s, err)
	}
	return nil
}

// Daemons returns the running daemons (IPVS_CMD_GET_DAEMON), master first.
func (c *Conn) Daemons() ([]Daemon, error) {
	req := c.request(cmdGetDaemon, unix.NLM_F_DUMP)
	msgs, err := c.execute(req)
	if err != nil {
		return nil, fmt.Errorf("ipvssync: listing the sync daemons: %w", err)
	}
	var out []Daemon
	for _, m := range msgs {
		d, ok, err := parseDaemonMsg(m)
		if err != nil {
			return nil, fmt.Errorf("ipvssync: listing the sync daemons: %w", err)
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// genlHeader is struct genlmsghdr.
type genlHeader struct{ cmd, version uint8 }

func (h genlHeader) Len() int { return 4 }

func (h genlHeader) Serialize() []byte { return []byte{h.cmd, h.version, 0, 0} }

func (c *Conn) request(cmd uint8, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(int(c.family), unix.NLM_F_ACK|flags)
	c.seq++
	req.Seq = c.seq
	req.AddData(genlHeader{cmd: cmd, version: genlVersion})
	return req
}

// daemonAttrs returns the IPVS_CMD_ATTR_DAEMON nest of a NEW_DAEMON
// request for d; optional settings at zero are left out (the kernel's
// defaults).
func daemonAttrs(d Daemon) *nl.RtAttr {
	a := nl.NewRtAttr(cmdAttrDaemon, nil)
	a.AddRtAttr(daemonAttrState, nl.Uint32Attr(uint32(d.State)))
	a.AddRtAttr(daemonAttrMcastIfn, nl.ZeroTerminated(d.Interface))
	a.AddRtAttr(daemonAttrSyncID, nl.Uint32Attr(uint32(d.SyncID)))
	if d.MaxLen != 0 {
		a.AddRtAttr(daemonAttrSyncMaxLen, nl.Uint16Attr(d.MaxLen))
	}
	if d.Group.IsValid() {
		if d.Group.Is4() {
			g := d.Group.As4()
			a.AddRtAttr(daemonAttrMcastGroup, g[:])
		} else {
			g := d.Group.As16()
			a.AddRtAttr(daemonAttrMcastGroup6, g[:])
		}
	}
	if d.Port != 0 {
		a.AddRtAttr(daemonAttrMcastPort, binary.BigEndian.AppendUint16(nil, d.Port))
	}
	if d.TTL != 0 {
		a.AddRtAttr(daemonAttrMcastTTL, []byte{d.TTL})
	}
	return a
}

// parseDaemonMsg decodes one answer of GET_DAEMON: a generic netlink header
// and an IPVS_CMD_ATTR_DAEMON nest. ok is false for a message without one.
func parseDaemonMsg(b []byte) (d Daemon, ok bool, err error) {
	if len(b) < 4 {
		return d, false, fmt.Errorf("short message (%d bytes)", len(b))
	}
	attrs, err := nl.ParseRouteAttr(b[4:])
	if err != nil {
		return d, false, fmt.Errorf("parsing attributes: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK != cmdAttrDaemon {
			continue
		}
		d, err := parseDaemon(a.Value)
		return d, err == nil, err
	}
	return d, false, nil
}

func parseDaemon(b []byte) (Daemon, error) {
	var d Daemon
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return d, fmt.Errorf("parsing the daemon attributes: %w", err)
	}
	native := nl.NativeEndian()
	short := func(name string, n int, v []byte) error {
		if len(v) < n {
			return fmt.Errorf("daemon attribute %s: %d bytes, want %d", name, len(v), n)
		}
		return nil
	}
	for _, a := range attrs {
		v := a.Value
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case daemonAttrState:
			if err := short("state", 4, v); err != nil {
				return d, err
			}
			d.State = State(native.Uint32(v))
		case daemonAttrMcastIfn:
			d.Interface = string(trimNUL(v))
		case daemonAttrSyncID:
			if err := short("sync id", 4, v); err != nil {
				return d, err
			}
			d.SyncID = uint8(native.Uint32(v))
		case daemonAttrSyncMaxLen:
			if err := short("sync maxlen", 2, v); err != nil {
				return d, err
			}
			d.MaxLen = native.Uint16(v)
		case daemonAttrMcastGroup:
			if err := short("mcast group", 4, v); err != nil {
				return d, err
			}
			d.Group = netip.AddrFrom4([4]byte(v[:4]))
		case daemonAttrMcastGroup6:
			if err := short("mcast group6", 16, v); err != nil {
				return d, err
			}
			d.Group = netip.AddrFrom16([16]byte(v[:16]))
		case daemonAttrMcastPort:
			if err := short("mcast port", 2, v); err != nil {
				return d, err
			}
			d.Port = binary.BigEndian.Uint16(v)
		case daemonAttrMcastTTL:
			if err := short("mcast ttl", 1, v); err != nil {
				return d, err
			}
			d.TTL = v[0]
		}
	}
	if d.State == 0 {
		return d, errors.New("daemon without a state")
	}
	return d, nil
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// execute sends req and collects the answers until the acknowledgement or
// the end of a dump, as moby/ipvs does.
func (c *Conn) execute(req *nl.NetlinkRequest) ([][]byte, error) {
	if c.sock == nil {
		return nil, errors.New("connection closed")
	}
	if err := c.sock.Send(req); err != nil {
		return nil, err
	}
	pid, err := c.sock.GetPid()
	if err != nil {
		return nil, err
	}
	var res [][]byte
	for {
		msgs, _, err := c.sock.Receive()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue
			}
			if m.Header.Pid != pid {
				return nil, fmt.Errorf("answer for port %d, want %d", m.Header.Pid, pid)
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return res, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error message")
				}
				if e := int32(nl.NativeEndian().Uint32(m.Data[:4])); e != 0 {
					return nil, syscall.Errno(-e)
				}
				return res, nil
			}
			res = append(res, m.Data)
			if m.Header.Flags&unix.NLM_F_MULTI == 0 {
				return res, nil
			}
		}
	}
}

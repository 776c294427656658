package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, as iproute2
// does, so that `ip netns exec <Host.Namespace> ...` works while debugging.
const NetnsDir = "/run/netns"

// Interface names used inside the lab. Every host has one interface, IfName,
// whose veth peer in the switch namespace is named after the host ("n1", "c1")
// and enslaved to the bridge BridgeName.
const (
	IfName     = "eth0"
	BridgeName = "br0"
)

// Limits of the host numbering (see Options).
const (
	MaxNodes   = 39 // nodes n1..n39 get host numbers 11..49
	MaxClients = 49 // clients c1..c49 get host numbers 51..99
	MaxVIPs    = 100
)

// Default address plan.
var (
	DefaultIPv4 = netip.MustParsePrefix("192.0.2.0/24")
	DefaultIPv6 = netip.MustParsePrefix("2001:db8::/64")
)

// setupTimeout bounds how long New waits for links and link-local addresses.
const setupTimeout = 10 * time.Second

// labSeq numbers the labs of this process. It is the package's only mutable
// state and exists solely to make generated names unique when tests run labs
// in parallel: together with the PID it gives every lab its own prefix.
var labSeq atomic.Uint64

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// Options describe a lab. The zero value (after New fills in defaults) is a
// lab with one node and no clients.
type Options struct {
	// Name prefixes every namespace name (Name+"-sw", Name+"-n1", ...). It
	// must match [a-z][a-z0-9-]{0,19} and not be in use. When empty, New picks
	// "vl<pid>-<seq>", unique per process and lab.
	Name string
	// Nodes is the number of node namespaces n1..nN (at most MaxNodes); 0 means 1.
	Nodes int
	// Clients is the number of client namespaces c1..cN (at most MaxClients).
	Clients int
	// IPv4 is the lab's subnet, default DefaultIPv4, at most a /24. Node i has
	// host number 10+i (192.0.2.11), client j 50+j (192.0.2.51); host numbers
	// 100..199 are left free for VIPs (see Lab.VIPv4).
	IPv4 netip.Prefix
	// IPv6 is the lab's IPv6 subnet, default DefaultIPv6, at most a /64.
	// Host numbers are written with the same digits: n1 is 2001:db8::11.
	IPv6 netip.Prefix
	// LogDir receives the logs of processes started with Host.Start. When
	// empty New creates a temporary directory that Close removes (NewT uses
	// t.TempDir instead, so logs survive until the test's own cleanup).
	LogDir string
}

// Lab is a set of network namespaces joined by a Linux bridge: a switch
// namespace holding bridge BridgeName, and per node and client a namespace
// with one veth interface IfName whose peer is a port of the bridge. Create it
// with New or NewT and release it with Close.
type Lab struct {
	opts      Options
	ownLogDir bool

	sw      *Host
	nodes   []*Host
	clients []*Host

	mu     sync.Mutex
	closed bool
	procs  []*Proc
	stops  []func() // servers and probers to stop before the namespaces go
	nftSeq int      // numbers nftables chains of Partition and Loss
	// nsPaths are the /run/netns files this lab created, in creation order.
	nsPaths []string
}

// RequireRoot skips the test unless it runs as root: a lab creates network
// namespaces, veth pairs, a bridge and nftables rules.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veth pairs, a bridge and nftables rules (run the tests as root)")
	}
}

// NewT is New for tests: it skips the test when not root (RequireRoot), fails
// it when the lab cannot be built, and registers a cleanup that dumps the lab
// (Lab.Dump) into the test log if the test failed and then closes it.
func NewT(t testing.TB, opts Options) *Lab {
	t.Helper()
	RequireRoot(t)
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	l, err := New(opts)
	if err != nil {
		t.Fatalf("creating lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			l.Dump(&b)
			t.Logf("lab dump after failure:\n%s", b.String())
		}
		if err := l.Close(); err != nil {
			t.Errorf("closing lab: %v", err)
		}
	})
	return l
}

// New builds a lab. On error everything created so far is removed again.
// It first deletes namespaces that labs of dead processes left behind (see
// the package documentation on names).
//
// Settings made in every node and client namespace, before its interface
// exists (so eth0 inherits them) and again on eth0:
//   - net.ipv4.ip_forward=0 and conf.{all,default}: rp_filter=0,
//     arp_ignore=0, arp_announce=0 (IPv4 settings of a new namespace are
//     copied from the host's, so they are pinned here);
//   - net.ipv6.conf.{all,default,eth0}: accept_dad=0 (link-local and global
//     addresses are usable at once; globals are also added with nodad) and
//     keep_addr_on_down=1 (a downed link keeps its IPv6 addresses, as IPv4 does);
//   - loopback up.
//
// The switch namespace has IPv6 disabled (the bridge is a pure layer-2
// switch, it sends no ND or MLD), STP off (ports forward as soon as they have
// carrier) and multicast snooping off, so VRRP multicast is flooded to all ports.
func New(opts Options) (*Lab, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := sweepStale(); err != nil {
		return nil, err
	}
	l := &Lab{opts: opts}
	if err := l.build(); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up after failed setup: %w", cerr))
		}
		return nil, fmt.Errorf("creating lab %s: %w", opts.Name, err)
	}
	return l, nil
}

// staleRE matches the namespace names New generates: vl<pid>-<seq>-<host>.
var staleRE = regexp.MustCompile(`^vl([0-9]+)-[0-9]+-[a-z0-9]+$`)

// sweepStale deletes the namespaces that labs of dead processes (a test
// binary that crashed or was killed before Close) left in NetnsDir. Only
// generated names ("vl<pid>-...") whose PID no longer exists are touched.
func sweepStale() error {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", NetnsDir, err)
	}
	var errs []error
	for _, e := range entries {
		m := staleRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		if err := deleteNamedNS(filepath.Join(NetnsDir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("removing stale namespace: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (o *Options) fill() error {
	if o.Name == "" {
		for {
			o.Name = fmt.Sprintf("vl%d-%d", os.Getpid(), labSeq.Add(1))
			// A crashed run with the same PID may have left namespaces behind.
			if _, err := os.Stat(filepath.Join(NetnsDir, o.Name+"-sw")); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
	}
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("invalid lab name %q: must match %s", o.Name, nameRE)
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Nodes < 0 || o.Nodes > MaxNodes {
		return fmt.Errorf("invalid number of nodes %d: must be 1-%d", o.Nodes, MaxNodes)
	}
	if o.Clients < 0 || o.Clients > MaxClients {
		return fmt.Errorf("invalid number of clients %d: must be 0-%d", o.Clients, MaxClients)
	}
	if !o.IPv4.IsValid() {
		o.IPv4 = DefaultIPv4
	}
	if !o.IPv6.IsValid() {
		o.IPv6 = DefaultIPv6
	}
	o.IPv4, o.IPv6 = o.IPv4.Masked(), o.IPv6.Masked()
	if !o.IPv4.Addr().Is4() || o.IPv4.Bits() > 24 {
		return fmt.Errorf("invalid IPv4 subnet %s: must be IPv4 and at most a /24", o.IPv4)
	}
	if !o.IPv6.Addr().Is6() || o.IPv6.Addr().Is4In6() || o.IPv6.Bits() > 64 {
		return fmt.Errorf("invalid IPv6 subnet %s: must be IPv6 and at most a /64", o.IPv6)
	}
	return nil
}

// hostV4 returns the IPv4 address with host number n in the lab's subnet.
func (l *Lab) hostV4(n int) netip.Addr {
	a := l.opts.IPv4.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// hostV6 returns the IPv6 address whose last group spells n in decimal
// digits (n1 = 11 -> 2001:db8::11).
func (l *Lab) hostV6(n int) netip.Addr {
	v, err := strconv.ParseUint(strconv.Itoa(n), 16, 16)
	if err != nil {
		panic(fmt.Sprintf("lab: host number %d out of range", n)) // bounded by fill
	}
	a := l.opts.IPv6.Addr().As16()
	a[14], a[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(a)
}

// VIPv4 returns the i-th free IPv4 address (host number 100+i, i in 0..99),
// meant for virtual IPs.
func (l *Lab) VIPv4(i int) netip.Addr {
	if i < 0 || i >= MaxVIPs {
		panic(fmt.Sprintf("lab: VIP index %d out of range 0-%d", i, MaxVIPs-1))
	}
	return l.hostV4(100 + i)
}

// VIPv6 returns the i-th free IPv6 address (2001:db8::100 + i in decimal
// digits, i in 0..99), meant for virtual IPs.
func (l *Lab) VIPv6(i int) netip.Addr {
	if i < 0 || i >= MaxVIPs {
		panic(fmt.Sprintf("lab: VIP index %d out of range 0-%d", i, MaxVIPs-1))
	}
	return l.hostV6(100 + i)
}

// Name returns the lab's name, the prefix of all its namespace names.
func (l *Lab) Name() string { return l.opts.Name }

// Options returns the options the lab was built with, defaults filled in.
func (l *Lab) Options() Options { return l.opts }

// Node returns node i (1-based, like its name "n<i>"); it panics when i is
// out of range, as a slice index would.
func (l *Lab) Node(i int) *Host { return l.nodes[i-1] }

// Client returns client i (1-based, like its name "c<i>").
func (l *Lab) Client(i int) *Host { return l.clients[i-1] }

// Nodes returns all nodes in order.
func (l *Lab) Nodes() []*Host { return append([]*Host(nil), l.nodes...) }

// Clients returns all clients in order.
func (l *Lab) Clients() []*Host { return append([]*Host(nil), l.clients...) }

// LogDir returns the directory holding the logs of started processes.
func (l *Lab) LogDir() string { return l.opts.LogDir }

func (l *Lab) build() error {
	if l.opts.LogDir == "" {
		d, err := os.MkdirTemp("", "lab-"+l.opts.Name+"-")
		if err != nil {
			return fmt.Errorf("creating log directory: %w", err)
		}
		l.opts.LogDir, l.ownLogDir = d, true
	}
	if _, err := l.newHost("sw", nil, nil, netip.Addr{}, netip.Addr{}); err != nil {
		return err
	}
	if err := l.setupSwitch(); err != nil {
		return err
	}
	for i := 1; i <= l.opts.Nodes; i++ {
		n := 10 + i
		if _, err := l.newHost(fmt.Sprintf("n%d", i), &l.nodes, net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}, l.hostV4(n), l.hostV6(n)); err != nil {
			return err
		}
	}
	for i := 1; i <= l.opts.Clients; i++ {
		n := 50 + i
		if _, err := l.newHost(fmt.Sprintf("c%d", i), &l.clients, net.HardwareAddr{2, 0, 0, 0, 2, byte(i)}, l.hostV4(n), l.hostV6(n)); err != nil {
			return err
		}
	}
	for _, h := range l.hosts() {
		if err := l.wire(h); err != nil {
			return fmt.Errorf("wiring %s: %w", h.Name, err)
		}
	}
	for _, h := range l.hosts() {
		if err := h.waitReady(setupTimeout); err != nil {
			return err
		}
	}
	return nil
}

// hosts returns nodes then clients (not the switch).
func (l *Lab) hosts() []*Host {
	return append(l.Nodes(), l.clients...)
}

// newHost creates the named namespace of a host, a netlink handle in it and
// its base sysctls. The host is appended to list (the switch, with a nil
// list, is stored in l.sw) as soon as its namespace exists, so that Close
// releases it even if a later step fails.
func (l *Lab) newHost(name string, list *[]*Host, mac net.HardwareAddr, v4, v6 netip.Addr) (*Host, error) {
	h := &Host{
		Name:      name,
		Namespace: l.opts.Name + "-" + name,
		IfName:    IfName,
		MAC:       mac,
		IPv4:      v4,
		IPv6:      v6,
		lab:       l,
		ns:        netns.None(),
	}
	if mac != nil {
		h.LinkLocal = eui64LinkLocal(mac)
	}
	path := filepath.Join(NetnsDir, h.Namespace)
	ns, err := newNamedNS(path, func() { l.nsPaths = append(l.nsPaths, path) })
	if err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", h.Namespace, err)
	}
	h.ns = ns
	if list != nil {
		*list = append(*list, h)
	} else {
		l.sw = h
	}
	if h.nl, err = netlink.NewHandleAt(ns); err != nil {
		return h, fmt.Errorf("opening netlink in %s: %w", h.Namespace, err)
	}
	lo, err := h.nl.LinkByName("lo")
	if err == nil {
		err = h.nl.LinkSetUp(lo)
	}
	if err != nil {
		return h, fmt.Errorf("setting lo up in %s: %w", h.Namespace, err)
	}
	var sysctls [][2]string
	if name == "sw" {
		sysctls = [][2]string{
			{"net.ipv6.conf.all.disable_ipv6", "1"},
			{"net.ipv6.conf.default.disable_ipv6", "1"},
		}
	} else {
		sysctls = [][2]string{
			{"net.ipv4.ip_forward", "0"},
			{"net.ipv4.conf.all.rp_filter", "0"},
			{"net.ipv4.conf.default.rp_filter", "0"},
			{"net.ipv4.conf.all.arp_ignore", "0"},
			{"net.ipv4.conf.default.arp_ignore", "0"},
			{"net.ipv4.conf.all.arp_announce", "0"},
			{"net.ipv4.conf.default.arp_announce", "0"},
			{"net.ipv6.conf.all.accept_dad", "0"},
			{"net.ipv6.conf.default.accept_dad", "0"},
			{"net.ipv6.conf.all.keep_addr_on_down", "1"},
			{"net.ipv6.conf.default.keep_addr_on_down", "1"},
		}
	}
	for _, s := range sysctls {
		if err := h.SetSysctl(s[0], s[1]); err != nil {
			return h, err
		}
	}
	return h, nil
}

// newNamedNS creates a network namespace bind-mounted at path, without
// moving the calling goroutine's thread into it. created is called once path
// exists and belongs to us, so the caller can remove it even if a later step fails.
func newNamedNS(path string, created func()) (netns.NsHandle, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return netns.None(), fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return netns.None(), fmt.Errorf("creating mount point: %w", err)
	}
	f.Close()
	created()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	res := make(chan result, 1)
	// A fresh goroutine: if switching back fails, it exits still locked and
	// the Go runtime destroys the thread instead of reusing it.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{netns.None(), fmt.Errorf("getting current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{netns.None(), fmt.Errorf("unshare: %w", err)}
			return
		}
		var r result
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			r.err = fmt.Errorf("bind-mounting namespace on %s: %w", path, err)
		} else if r.ns, err = netns.GetFromPath(path); err != nil {
			r.err = fmt.Errorf("opening %s: %w", path, err)
		}
		if err := netns.Set(orig); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("restoring thread namespace: %w", err))
			res <- r
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		res <- r
	}()
	r := <-res
	return r.ns, r.err
}

func (l *Lab) setupSwitch() error {
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: BridgeName}, MulticastSnooping: &off}
	if err := l.sw.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("adding bridge %s: %w", BridgeName, err)
	}
	// STP is off for a bridge created over netlink, so ports forward as soon
	// as they have carrier (the forward delay only applies with STP on).
	if err := l.sw.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("setting bridge %s up: %w", BridgeName, err)
	}
	return nil
}

// wire creates h's veth pair: IfName in h's namespace, the port named h.Name
// on the bridge; it then addresses IfName and brings both ends up.
func (l *Lab) wire(h *Host) error {
	br, err := l.sw.nl.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("finding bridge: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: h.Name, MasterIndex: br.Attrs().Index},
		PeerName:         IfName,
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(h.ns),
	}
	if err := l.sw.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s/%s: %w", h.Name, IfName, err)
	}
	for _, s := range [][2]string{
		{"net.ipv6.conf." + IfName + ".accept_dad", "0"},
		{"net.ipv6.conf." + IfName + ".keep_addr_on_down", "1"},
	} {
		if err := h.SetSysctl(s[0], s[1]); err != nil {
			return err
		}
	}
	link, err := h.nl.LinkByName(IfName)
	if err != nil {
		return fmt.Errorf("finding %s: %w", IfName, err)
	}
	h.ifIndex = link.Attrs().Index
	for _, a := range []*netlink.Addr{
		{IPNet: ipNet(netip.PrefixFrom(h.IPv4, l.opts.IPv4.Bits()))},
		{IPNet: ipNet(netip.PrefixFrom(h.IPv6, l.opts.IPv6.Bits())), Flags: unix.IFA_F_NODAD},
	} {
		if err := h.nl.AddrAdd(link, a); err != nil {
			return fmt.Errorf("adding %s to %s: %w", a.IPNet, IfName, err)
		}
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", IfName, err)
	}
	port, err := l.sw.nl.LinkByName(h.Name)
	if err != nil {
		return fmt.Errorf("finding bridge port %s: %w", h.Name, err)
	}
	if err := l.sw.nl.LinkSetUp(port); err != nil {
		return fmt.Errorf("setting bridge port %s up: %w", h.Name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Close stops every prober and server, kills every process started in the
// lab (SIGKILL to its process group, then waits for it), and deletes the
// namespaces, the switch last. It is idempotent, safe after a failed New, and
// returns every error it met. Sockets that callers created with Host.Do and
// did not close keep their namespace alive until they are closed.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stops, procs := l.stops, l.procs
	l.mu.Unlock()

	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(l.clients) - 1; i >= 0; i-- {
		l.clients[i].release()
	}
	for i := len(l.nodes) - 1; i >= 0; i-- {
		l.nodes[i].release()
	}
	if l.sw != nil {
		l.sw.release()
	}
	for i := len(l.nsPaths) - 1; i >= 0; i-- {
		if err := deleteNamedNS(l.nsPaths[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if l.ownLogDir {
		if err := os.RemoveAll(l.opts.LogDir); err != nil {
			errs = append(errs, fmt.Errorf("removing log directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// deleteNamedNS unmounts and removes a namespace mount point; the kernel
// destroys the namespace (and the veth in it, and so its peer) once nothing
// refers to it any more.
func deleteNamedNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// register records a process or a stop function; it fails once the lab is closed.
func (l *Lab) register(p *Proc, stop func()) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab is closed")
	}
	if p != nil {
		l.procs = append(l.procs, p)
	}
	if stop != nil {
		l.stops = append(l.stops, stop)
	}
	return nil
}

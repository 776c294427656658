package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// ErrNoIPVS means the kernel has no IPVS: the IPVS generic netlink family
// does not exist.
var ErrNoIPVS = errors.New("ipvs: the kernel has no IPVS (module ip_vs not loaded?)")

// Connection flags of a destination (IP_VS_CONN_F_*, <linux/ip_vs.h>).
const (
	connMasq      = 0
	connLocalNode = 1
	connTunnel    = 2
	connDRoute    = 3
	connFwdMask   = 0x7
)

// Programmer reads and writes the IPVS table of one network namespace
// through one github.com/moby/ipvs handle; a mutex serialises all use of
// the handle, which is not safe for concurrent use.
type Programmer struct {
	mu sync.Mutex
	h  *ipvs.Handle
	// ns is the path of the network namespace, "" for the caller's.
	ns string
	// requests counts the calls made through h, each one netlink request
	// and its reply.
	requests uint64
}

var (
	_ Table       = (*Programmer)(nil)
	_ realsFilter = (*Programmer)(nil)
)

// New opens a Programmer in the caller's network namespace (of the calling
// OS thread). It returns ErrNoIPVS when the kernel has no IPVS.
func New() (*Programmer, error) { return NewAt("") }

// NewAt opens a Programmer in the network namespace at path (e.g.
// /run/netns/x or /proc/self/fd/N); "" means the caller's.
//
// moby/ipvs looks up the IPVS generic netlink family once per process and,
// when that fails, sends its requests to family 0, which the kernel
// acknowledges without doing anything: every call "succeeds". NewAt
// therefore looks the family up itself first, and probes the handle so that
// a process whose first moby/ipvs handle predates the ip_vs module gets an
// error rather than a table that never changes.
func NewAt(path string) (*Programmer, error) {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoIPVS
		}
		return nil, fmt.Errorf("ipvs: looking up the IPVS generic netlink family: %w", err)
	}
	h, err := ipvs.New(path)
	if err != nil {
		return nil, fmt.Errorf("ipvs: opening a handle: %w", err)
	}
	p := &Programmer{h: h, ns: path}
	if err := p.probe(); err != nil {
		h.Close()
		return nil, err
	}
	return p, nil
}

// probe checks that the handle talks to IPVS: a service that does not
// exist must not be reported present.
func (p *Programmer) probe() error {
	k := &ipvs.Service{AddressFamily: syscall.AF_INET, Protocol: uint16(TCP), Address: net.IPv4zero.To4(), Netmask: 0xFFFFFFFF, SchedName: DefaultScheduler}
	p.requests++
	if !p.h.IsServicePresent(k) {
		return nil
	}
	p.requests++
	svcs, err := p.h.GetServices()
	if err != nil {
		return fmt.Errorf("ipvs: probing the handle: %w", err)
	}
	for _, s := range svcs {
		if s.FWMark == 0 && s.Protocol == k.Protocol && s.Port == 0 && s.Address.Equal(k.Address) {
			return nil // someone really has tcp/0.0.0.0:0
		}
	}
	return fmt.Errorf("%w: moby/ipvs sends to an unknown generic netlink family (it looked IPVS up before the module was loaded; restart the process)", ErrNoIPVS)
}

// Close releases the handle.
func (p *Programmer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h != nil {
		p.h.Close()
		p.h = nil
	}
	return nil
}

// requestCount returns the number of calls the Programmer has made through
// moby/ipvs, each one netlink request and its reply (a round trip to the
// kernel): one per operation applied, one for the service list and one per
// service whose reals were read (plus one or two for the probe of NewAt).
func (p *Programmer) requestCount() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Services reads the kernel's table: every service with its reals, each
// real with its forwarding method. Firewall-mark services cannot be
// expressed as a Service and are left out (they are never touched).
func (p *Programmer) Services(ctx context.Context) ([]Service, error) {
	return p.ServicesWithReals(ctx, nil)
}

// ServicesWithReals is Services reading the reals only of the services for
// which withReals returns true (nil: all); the others come without reals.
// withReals gets the service without its reals. IPVS has no dump of all
// real servers: each service's costs a netlink round trip, and kube-proxy
// may hold thousands of services the Reconciler never needs the reals of.
func (p *Programmer) ServicesWithReals(ctx context.Context, withReals func(Service) bool) ([]Service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h == nil {
		return nil, errors.New("ipvs: reading services: the programmer is closed")
	}
	p.requests++
	ks, err := p.h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs: reading services: %w", err)
	}
	out := make([]Service, 0, len(ks))
	for _, k := range ks {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ipvs: reading services: %w", err)
		}
		s, ok := fromKernelService(k)
		if !ok {
			continue
		}
		if withReals != nil && !withReals(s) {
			out = append(out, s)
			continue
		}
		p.requests++
		ds, err := p.h.GetDestinations(k)
		if err != nil {
			return nil, fmt.Errorf("ipvs: reading real servers of %s: %w", s.Key(), err)
		}
		s.Inserted = make([]netip.AddrPort, len(ds))
		for i, d := range ds {
			r := fromKernelDest(d)
			s.Reals = append(s.Reals, r)
			// The kernel lists the newest first.
			s.Inserted[len(ds)-1-i] = r.key()
		}
		sortReals(s.Reals)
		s.Forward = commonForward(s.Reals)
		out = append(out, s)
	}
	return out, nil
}

// Apply runs the plan's operations in order. A failed operation does not
// stop the others, except that the reals of a service that could not be
// added are skipped; all errors are returned joined, one OpError per failed
// operation, wrapping the kernel's syscall.Errno. Cancelling ctx stops
// before the next operation.
func (p *Programmer) Apply(ctx context.Context, plan Plan) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.h == nil {
		return errors.New("ipvs: applying a plan: the programmer is closed")
	}
	var errs []error
	failed := map[serviceID]bool{} // services that could not be added
	for _, op := range plan.Ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: applying a plan: %w", err))
			break
		}
		if failed[op.Service.id()] {
			continue
		}
		if err := p.apply(op); err != nil {
			errs = append(errs, err)
			if op.Kind == AddService {
				failed[op.Service.id()] = true
			}
		}
	}
	return errors.Join(errs...)
}

func (p *Programmer) apply(op Op) error {
	s := toKernelService(op.Service)
	var call func() error
	switch op.Kind {
	case AddService:
		call = func() error { return p.h.NewService(s) }
	case UpdateService:
		call = func() error { return p.h.UpdateService(s) }
	case DelService:
		call = func() error { return p.h.DelService(s) }
	case AddReal:
		call = func() error { return p.h.NewDestination(s, toKernelDest(op.Real)) }
	case UpdateReal:
		call = func() error { return p.h.UpdateDestination(s, toKernelDest(op.Real)) }
	case DelReal:
		call = func() error { return p.h.DelDestination(s, toKernelDest(op.Real)) }
	default:
		return &OpError{Op: op, Err: errors.New("unknown operation")}
	}
	p.requests++
	if err := call(); err != nil {
		return &OpError{Op: op, Err: err}
	}
	return nil
}

// toKernelService converts s for moby/ipvs. The address family and the
// netmask are not derived by moby/ipvs: without them the kernel rejects
// the service (family) or an IPv6 service (netmask).
func toKernelService(s Service) *ipvs.Service {
	s = s.normalAttrs()
	k := &ipvs.Service{
		Address:   net.IP(s.VIP.AsSlice()),
		Protocol:  uint16(s.Protocol),
		Port:      s.Port,
		SchedName: s.Scheduler,
		Flags:     uint32(s.Flags),
	}
	if s.VIP.Is4() {
		k.AddressFamily, k.Netmask = syscall.AF_INET, 0xFFFFFFFF
	} else {
		k.AddressFamily, k.Netmask = syscall.AF_INET6, 128
	}
	if s.Persistence > 0 {
		k.Flags |= uint32(flagPersistent)
		k.Timeout = uint32(s.Persistence / time.Second)
	}
	return k
}

// normalAttrs fills in the defaults of the service-level attributes.
func (s Service) normalAttrs() Service {
	if s.Scheduler == "" {
		s.Scheduler = DefaultScheduler
	}
	return s
}

// toKernelDest converts r for moby/ipvs, with its address family set by
// hand as for the service.
func toKernelDest(r Real) *ipvs.Destination {
	d := &ipvs.Destination{Address: net.IP(r.Addr.AsSlice()), Port: r.Port, Weight: r.Weight}
	if r.Addr.Is4() {
		d.AddressFamily = syscall.AF_INET
	} else {
		d.AddressFamily = syscall.AF_INET6
	}
	switch r.Forward {
	case DR:
		d.ConnectionFlags = connDRoute
	case Tunnel:
		d.ConnectionFlags = connTunnel
	default:
		d.ConnectionFlags = connMasq
	}
	return d
}

// fromKernelService converts a service read back; ok is false for a
// firewall-mark service.
func fromKernelService(k *ipvs.Service) (Service, bool) {
	if k.FWMark != 0 {
		return Service{}, false
	}
	vip, ok := addrFromIP(k.Address)
	if !ok {
		return Service{}, false
	}
	s := Service{
		VIP:       vip,
		Port:      k.Port,
		Protocol:  Protocol(k.Protocol),
		Scheduler: k.SchedName,
		// The kernel adds IP_VS_SVC_F_HASHED to every service it holds.
		Flags: Flag(k.Flags) &^ (flagPersistent | flagHashed),
	}
	if Flag(k.Flags)&flagPersistent != 0 {
		s.Persistence = time.Duration(k.Timeout) * time.Second
	}
	return s, true
}

func fromKernelDest(d *ipvs.Destination) Real {
	addr, _ := addrFromIP(d.Address)
	r := Real{Addr: addr, Port: d.Port, Weight: d.Weight}
	switch d.ConnectionFlags & connFwdMask {
	case connMasq:
		r.Forward = NAT
	case connTunnel:
		r.Forward = Tunnel
	case connDRoute:
		r.Forward = DR
	case connLocalNode:
		r.Forward = Local
	default:
		r.Forward = Forward(100 + d.ConnectionFlags&connFwdMask)
	}
	return r
}

// addrFromIP converts moby's net.IP (4 bytes for IPv4, 16 for IPv6) into a
// netip.Addr, unmapping IPv4-mapped addresses.
func addrFromIP(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// commonForward returns the forwarding method all reals share, or
// ForwardDefault.
func commonForward(rs []Real) Forward {
	if len(rs) == 0 {
		return ForwardDefault
	}
	f := rs[0].Forward
	for _, r := range rs[1:] {
		if r.Forward != f {
			return ForwardDefault
		}
	}
	return f
}

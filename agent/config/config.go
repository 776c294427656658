// Package config loads the agent's configuration file (apiVersion
// agent.vipvs.io/v1alpha1, kind AgentConfig, see package
// github.com/vipvs/vipvs/api/agent/v1alpha1), validates it with package
// github.com/vipvs/vipvs/api/agent/validation and turns it into a Config of typed
// values; code past this package never sees raw strings. A Watcher reports
// each new valid version of the file and keeps the last good one when a new
// version is invalid.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/api/agent/validation"
)

// DefaultPath is where the agent reads its configuration by default.
const DefaultPath = "/etc/vipvs/agent.yaml"

// MaxFileSize is the largest configuration file Parse and Load accept.
const MaxFileSize = 1 << 20

// Config is a validated agent configuration: code past this package never
// sees raw strings. A Config is shared between goroutines: treat it as
// read-only.
type Config struct {
	// NodeName is the node's name for logs and status; may be "".
	NodeName string
	// StatusListen is the host:port of the HTTP status server (/healthz,
	// /readyz, /metrics, /status); "" means no server.
	StatusListen string
	// StatusSocket is the absolute path of the status unix socket; "" means
	// no socket.
	StatusSocket string
	// Notify is the command run on each transition.
	Notify Notify
	// Checks are the health checks of this node, in file order, with unique
	// names.
	Checks []Check
	// Routers are the virtual routers, in file order: 1 to 255, with unique
	// names, VRIDs unique per interface and family, and VIPs unique across
	// all routers.
	Routers []Router
	// IPVS configures the programming of Services.
	IPVS IPVS
	// BGP is the speaker of the routers in mode bgp; nil when the file has
	// no bgp section.
	BGP *BGP
	// Services are the IPVS virtual services of all routers, router by
	// router in file order. They are kept apart from Routers so that a
	// change of services never restarts a router.
	Services []VirtualService
	// Hash is the hex SHA-256 of the file's bytes, identifying this
	// version of the configuration (log key configHash).
	Hash string
}

// Notify is the command run on each state transition of a virtual router.
type Notify struct {
	// Command is the program (an absolute path) and its leading arguments;
	// nil means no command. The caller appends INSTANCE <name> <STATE>
	// <priority>.
	Command []string
	// Master, Backup, Fault and Stop run, without extra arguments, when a
	// router enters that state; nil means none.
	Master, Backup, Fault, Stop []string
	// Timeout bounds one run; greater than 0 when Command is set.
	Timeout time.Duration
}

// ChecksumMode selects the checksum of sent VRRPv3 IPv4 advertisements. Its
// values equal those of the packet package's enum of the same meaning.
type ChecksumMode int

const (
	// ChecksumPseudoHeader includes the IPv4 pseudo-header, as keepalived
	// and FRR do. It is also the value for routers the choice does not
	// apply to (version 2, IPv6).
	ChecksumPseudoHeader ChecksumMode = 0
	// ChecksumRFC9568 leaves the IPv4 pseudo-header out (RFC 9568 §5.2.8).
	ChecksumRFC9568 ChecksumMode = 1
)

// String returns the mode's name in the configuration file.
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return string(agentv1alpha1.ChecksumPseudoHeader)
	case ChecksumRFC9568:
		return string(agentv1alpha1.ChecksumRFC9568)
	}
	return fmt.Sprintf("ChecksumMode(%d)", int(m))
}

// Router is one virtual router. Parse guarantees each property stated.
// A router in mode bgp has only Name, Mode, Interface, IPv6, VIPs and
// TrackChecks; its VRRP fields are zero.
type Router struct {
	// Name is a DNS-1123 label, unique in the Config.
	Name string
	// Mode is how the VIPs are announced.
	Mode Mode
	// VRID is 1 to 255 (0 in mode bgp).
	VRID uint8
	// Interface is the router's interface (its own or the file's default;
	// in mode bgp its own or DefaultBGPInterface): a valid Linux interface
	// name, which may not exist on this node.
	Interface string
	// Version is the VRRP version, 2 or 3; 2 only when IPv6 is false.
	Version int
	// IPv6 is the family of VIPs, SourceAddr and Peers.
	IPv6 bool
	// Priority is 1 to 255; 255 means the node owns the VIPs.
	Priority uint8
	// AdvertInterval is 10ms to 40.95s in steps of 10ms for version 3, 1s to
	// 255s in whole seconds for version 2.
	AdvertInterval time.Duration
	// Preempt lets this node take over from a master of lower priority.
	Preempt bool
	// PreemptDelay is 0 to 1h, and 0 when Preempt is false.
	PreemptDelay time.Duration
	// ChecksumMode applies to version 3 IPv4 only; ChecksumPseudoHeader
	// otherwise.
	ChecksumMode ChecksumMode
	// AuthPassword is the VRRPv2 simple password, 0 to 8 bytes; "" (always
	// for version 3) means no authentication. Never log it.
	AuthPassword string
	// SourceAddr is the advertisements' source address, or the zero Addr to
	// choose the interface's first address of the family (IPv6: its
	// link-local address). When valid it has no zone and is not a VIP.
	SourceAddr netip.Addr
	// Peers are the unicast peers, distinct, without zone, not SourceAddr
	// and not a VIP of any router; empty means multicast.
	Peers []netip.Addr
	// MulticastPeers is multicast mode's peer allowlist (same rules as
	// Peers; only when Peers is empty): adverts from other sources are
	// dropped. Empty accepts any source.
	MulticastPeers []netip.Addr
	// VIPs are 1 to 16 addresses with their prefix lengths ("192.0.2.100"
	// in the file is 192.0.2.100/32), unique across all routers, none
	// multicast, loopback, unspecified or link-local.
	VIPs []netip.Prefix
	// Announce configures the GARP / unsolicited NA bursts.
	Announce Announce
	// TrackChecks are the checks that change the priority or put the router
	// in FAULT; each names an entry of Config.Checks, once. In mode bgp any
	// failing one withdraws the VIPs, whatever its weight.
	TrackChecks []TrackCheck
	// PreemptAfterChecks holds preemption until every tracked check has been
	// healthy since the start; only with TrackChecks.
	PreemptAfterChecks bool
}

// MarshalLog implements logr.Marshaler: a logged Config shows the
// routers' passwords as "<redacted>".
func (c *Config) MarshalLog() any {
	if c == nil {
		return nil
	}
	type config Config // without methods
	out := config(*c)
	out.Routers = make([]Router, len(c.Routers))
	for i, r := range c.Routers {
		out.Routers[i] = r.redacted()
	}
	return out
}

// MarshalLog implements logr.Marshaler: a logged Router shows its password
// as "<redacted>".
func (r Router) MarshalLog() any {
	type router Router // without methods
	return router(r.redacted())
}

func (r Router) redacted() Router {
	if r.AuthPassword != "" {
		r.AuthPassword = "<redacted>"
	}
	return r
}

// Multicast reports whether the router sends its advertisements by
// multicast (224.0.0.18 or ff02::12), that is, has no unicast peers.
func (r Router) Multicast() bool { return len(r.Peers) == 0 }

// Announce configures the gratuitous ARP (IPv4) or unsolicited neighbour
// advertisement (IPv6) bursts sent for each VIP on becoming master.
type Announce struct {
	// Count is the number of packets per VIP in a burst, sent back to back:
	// 1 to 100.
	Count int
	// RepeatDelay is when, after the first burst, a second one is sent:
	// 0 (no second burst) to 1m.
	RepeatDelay time.Duration
	// RefreshInterval is the interval of periodic bursts while master:
	// 0 (none) or 1s to 1h.
	RefreshInterval time.Duration
}

// InvalidError reports every problem found in a configuration file, each
// naming its field path. errors.As finds each *field.Error through it.
type InvalidError struct {
	Errs field.ErrorList
}

// Error lists the problems on one line, separated by "; ".
func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		msgs[i] = fe.Error()
	}
	if len(msgs) == 1 {
		return "invalid agent config: " + msgs[0]
	}
	return fmt.Sprintf("invalid agent config (%d problems): %s", len(msgs), strings.Join(msgs, "; "))
}

// Unwrap returns the field errors.
func (e *InvalidError) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		errs[i] = fe
	}
	return errs
}

// Parse decodes an agent configuration file strictly (unknown or mis-cased
// fields, duplicate keys, wrongly typed values and several documents are
// errors), applies the defaults, validates it and converts it. A file with
// problems of fields and values gives an *InvalidError listing all of them.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("agent config is %d bytes, more than the limit of %d", len(data), MaxFileSize)
	}
	obj, err := agentv1alpha1.Decode(data)
	if err != nil {
		var agg utilerrors.Aggregate
		if errors.As(err, &agg) {
			return nil, &InvalidError{Errs: fieldErrors(agg)}
		}
		return nil, fmt.Errorf("invalid agent config: %w", err)
	}
	agentv1alpha1.SetDefaults(obj)
	if errs := validation.ValidateAgentConfig(obj); len(errs) > 0 {
		return nil, &InvalidError{Errs: errs}
	}
	c, err := fromV1alpha1(obj)
	if err != nil {
		// Validation accepted what conversion cannot convert: a bug.
		return nil, fmt.Errorf("converting a validated agent config: %w", err)
	}
	sum := sha256.Sum256(data)
	c.Hash = hex.EncodeToString(sum[:])
	return c, nil
}

// fieldErrors turns the aggregate of a field.ErrorList back into the list.
func fieldErrors(agg utilerrors.Aggregate) field.ErrorList {
	var errs field.ErrorList
	for _, err := range agg.Errors() {
		var fe *field.Error
		if errors.As(err, &fe) {
			errs = append(errs, fe)
		} else {
			errs = append(errs, field.InternalError(nil, err))
		}
	}
	return errs
}

// Load reads and parses the configuration file at path. Its errors start
// with "loading agent config <path>: ".
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading agent config %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("loading agent config %s: %w", path, err)
	}
	return c, nil
}

// readFile reads at most MaxFileSize+1 bytes of path, so that Parse sees an
// oversized file as such without reading all of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// fromV1alpha1 converts a defaulted, validated object.
func fromV1alpha1(obj *agentv1alpha1.AgentConfig) (*Config, error) {
	c := &Config{NodeName: obj.NodeName}
	if obj.Status != nil {
		c.StatusListen = deref(obj.Status.ListenAddress)
		c.StatusSocket = deref(obj.Status.SocketPath)
	}
	if obj.Notify != nil {
		c.Notify.Command = cloneArgv(obj.Notify.Command)
		c.Notify.Master = cloneArgv(obj.Notify.Master)
		c.Notify.Backup = cloneArgv(obj.Notify.Backup)
		c.Notify.Fault = cloneArgv(obj.Notify.Fault)
		c.Notify.Stop = cloneArgv(obj.Notify.Stop)
		c.Notify.Timeout = durationOf(obj.Notify.Timeout)
	}
	for i := range obj.Checks {
		ch, err := checkFromV1alpha1(&obj.Checks[i])
		if err != nil {
			return nil, fmt.Errorf("checks[%d]: %w", i, err)
		}
		c.Checks = append(c.Checks, ch)
	}
	if obj.IPVS != nil {
		c.IPVS.ResyncInterval = durationOf(obj.IPVS.ResyncInterval)
		c.IPVS.CheckConcurrency = int(deref(obj.IPVS.CheckConcurrency))
	}
	c.IPVS.RecordFile = recordFile(c.StatusSocket)
	var cs *agentv1alpha1.ConnectionSync
	if obj.IPVS != nil {
		cs = obj.IPVS.ConnectionSync
	}
	sync, err := connectionSyncFromV1alpha1(cs, obj.VirtualRouters)
	if err != nil {
		return nil, err
	}
	c.IPVS.Sync = sync
	if c.BGP, err = bgpFromV1alpha1(obj.BGP); err != nil {
		return nil, err
	}
	for i := range obj.VirtualRouters {
		r, err := routerFromV1alpha1(&obj.VirtualRouters[i], obj.Interface)
		if err != nil {
			return nil, fmt.Errorf("virtualRouters[%d]: %w", i, err)
		}
		c.Routers = append(c.Routers, r)
		svcs, err := servicesFromV1alpha1(&obj.VirtualRouters[i])
		if err != nil {
			return nil, fmt.Errorf("virtualRouters[%d]: %w", i, err)
		}
		c.Services = append(c.Services, svcs...)
	}
	return c, nil
}

func routerFromV1alpha1(vr *agentv1alpha1.VirtualRouter, defaultIface string) (Router, error) {
	r := Router{
		Name:           vr.Name,
		VRID:           uint8(vr.VRID),
		Interface:      vr.Interface,
		Version:        int(deref(vr.Version)),
		Priority:       uint8(deref(vr.Priority)),
		AdvertInterval: durationOf(vr.AdvertInterval),
		Preempt:        deref(vr.Preempt),
		PreemptDelay:   durationOf(vr.PreemptDelay),
		AuthPassword:   vr.AuthPassword,

		PreemptAfterChecks: vr.PreemptAfterChecks,
	}
	for _, tc := range vr.TrackChecks {
		r.TrackChecks = append(r.TrackChecks, TrackCheck{Check: tc.Check, Weight: int(tc.Weight)})
	}
	if vr.Mode == agentv1alpha1.ModeBGP {
		r.Mode = ModeBGP
		if r.Interface == "" {
			r.Interface = DefaultBGPInterface
		}
	}
	if r.Interface == "" {
		r.Interface = defaultIface
	}
	if vr.ChecksumMode == agentv1alpha1.ChecksumRFC9568 {
		r.ChecksumMode = ChecksumRFC9568
	}
	for j, s := range vr.VIPs {
		p, err := parseVIP(s)
		if err != nil {
			return r, fmt.Errorf("vips[%d]: %w", j, err)
		}
		r.VIPs = append(r.VIPs, p)
	}
	if len(r.VIPs) > 0 {
		r.IPv6 = r.VIPs[0].Addr().Is6()
	}
	if vr.SourceAddress != "" {
		a, err := netip.ParseAddr(vr.SourceAddress)
		if err != nil {
			return r, fmt.Errorf("sourceAddress: %w", err)
		}
		r.SourceAddr = a
	}
	for k, s := range vr.UnicastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return r, fmt.Errorf("unicastPeers[%d]: %w", k, err)
		}
		r.Peers = append(r.Peers, a)
	}
	for k, s := range vr.MulticastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return r, fmt.Errorf("multicastPeers[%d]: %w", k, err)
		}
		r.MulticastPeers = append(r.MulticastPeers, a)
	}
	if a := vr.Announce; a != nil {
		r.Announce = Announce{
			Count:           int(deref(a.Count)),
			RepeatDelay:     durationOf(a.RepeatDelay),
			RefreshInterval: durationOf(a.RefreshInterval),
		}
	}
	return r, nil
}

// parseVIP parses "address" (a host prefix) or "address/length".
func parseVIP(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

func durationOf(d *agentv1alpha1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

func durationPtr(d time.Duration) *agentv1alpha1.Duration {
	return &agentv1alpha1.Duration{Duration: d}
}

// cloneArgv copies an argv, keeping nil as nil.
func cloneArgv(a []string) []string {
	if len(a) == 0 {
		return nil
	}
	return append([]string(nil), a...)
}

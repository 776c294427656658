package v1alpha1

import (
	"fmt"
	"time"
)

// APIVersion is the apiVersion of the documents of this package.
const APIVersion = "status.vipvs.io/v1alpha1"

// Kinds of the documents of this package.
const (
	// KindAgentReport is the kind of a Report.
	KindAgentReport = "AgentReport"
	// KindNodeReport is the kind of a NodeReport.
	KindNodeReport = "NodeReport"
)

// CheckAPIVersion accepts APIVersion and the empty string (a document
// written before the field existed).
func CheckAPIVersion(v string) error {
	if v != "" && v != APIVersion {
		return fmt.Errorf("status document of apiVersion %q: this version of vipvs reads %s", v, APIVersion)
	}
	return nil
}

// Router states (Router.State, RouterSummary.State): keepalived's words.
const (
	// StateMaster: the router holds its VIPs and sends adverts.
	StateMaster = "MASTER"
	// StateBackup: another router is (or may become) master.
	StateBackup = "BACKUP"
	// StateFault: the router cannot run (its interface is down, or it has
	// no usable interface); it holds no VIP. Reason says why.
	StateFault = "FAULT"
	// StateStop: the router is stopped.
	StateStop = "STOP"
	// StateAdvertised (mode bgp): the node holds the router's VIPs and
	// advertises them as host routes (its tracked checks pass).
	StateAdvertised = "ADVERTISED"
	// StateWithdrawn (mode bgp): the node does not serve the router's
	// VIPs: a tracked check fails, or the node drains. LastReason says why.
	StateWithdrawn = "WITHDRAWN"
)

// Announcement modes of a router (Router.Mode, RouterSummary.Mode).
const (
	// ModeVRRP: one master node holds the VIPs ("" means the same).
	ModeVRRP = "vrrp"
	// ModeBGP: every healthy node holds the VIPs and advertises host
	// routes (active/active over ECMP).
	ModeBGP = "bgp"
)

// Report is the agent's status document, kind AgentReport.
type Report struct {
	// APIVersion is APIVersion; the agent's status server fills it in.
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is KindAgentReport; the agent's status server fills it in.
	Kind string `json:"kind,omitempty"`
	// Node is the node name from the config, if any.
	Node string `json:"node,omitempty"`
	// Version is the agent's build version.
	Version string `json:"version"`
	// ConfigHash is the sha256 of the config file the agent runs.
	ConfigHash string `json:"configHash"`
	// ConfigError says, for people, why the newest config file was rejected
	// or could not be applied in full ("" when it runs). ConfigProblems
	// says the same for programs.
	ConfigError string `json:"configError,omitempty"`
	// ConfigProblems are the reasons, one per problem, why the newest
	// config file was rejected or could not be applied in full; empty when
	// the agent runs the newest file.
	ConfigProblems []Problem `json:"configProblems,omitempty"`
	// Started is when the agent started.
	Started time.Time `json:"started"`
	// Routers holds one entry per virtual router.
	Routers []Router `json:"routers"`
	// Checks are the node's health checks.
	Checks []Check `json:"checks,omitempty"`
	// IPVS is the state of the load balancing; nil when the config has no
	// virtual services.
	IPVS *IPVS `json:"ipvs,omitempty"`
	// BGP is the state of the announcement of the routers in mode bgp; nil
	// when no router is in mode bgp.
	BGP *BGP `json:"bgp,omitempty"`
}

// Speakers of BGP.Speaker.
const (
	// SpeakerEmbedded: the agent speaks BGP to its peers itself.
	SpeakerEmbedded = "embedded"
	// SpeakerExternal: the agent writes routes into a kernel routing table
	// for the node's BGP daemon (bgp.externalSpeaker).
	SpeakerExternal = "external"
)

// BGP session states (BGPPeer.State): RFC 4271's, in lower case.
const (
	BGPStateIdle        = "idle"
	BGPStateConnect     = "connect"
	BGPStateActive      = "active"
	BGPStateOpenSent    = "opensent"
	BGPStateOpenConfirm = "openconfirm"
	BGPStateEstablished = "established"
)

// BFD session states (BGPPeer.BFD): RFC 5880's, in lower case.
const (
	BFDStateAdminDown = "admin-down"
	BFDStateDown      = "down"
	BFDStateInit      = "init"
	BFDStateUp        = "up"
)

// BGP is the state of the node's announcement of VIPs as host routes.
type BGP struct {
	// Speaker is SpeakerEmbedded or SpeakerExternal.
	Speaker string `json:"speaker"`
	// Advertised are the host routes the node serves now (prefix form, in
	// address order): the VIPs of the bgp routers whose checks pass.
	Advertised []string `json:"advertised,omitempty"`
	// GracefulShutdown is true while the node drains (RFC 8326): its routes
	// carry the GRACEFUL_SHUTDOWN community, then are withdrawn.
	GracefulShutdown bool `json:"gracefulShutdown,omitempty"`
	// Peers are the BGP sessions, in configuration order (embedded speaker
	// only).
	Peers []BGPPeer `json:"peers,omitempty"`
	// RouteTable is the kernel routing table the routes are written to
	// (external speaker only).
	RouteTable int64 `json:"routeTable,omitempty"`
	// LastError is the last failure to start the speaker or to write a
	// route ("" when none).
	LastError string `json:"lastError,omitempty"`
}

// BGPPeer is the state of one BGP session.
type BGPPeer struct {
	// Address is the peer's address.
	Address string `json:"address"`
	// ASN is the peer's AS number.
	ASN uint32 `json:"asn"`
	// State is one of the BGPState constants ("" while not running).
	State string `json:"state"`
	// BFD is one of the BFDState constants; "" when the peer does not use
	// BFD.
	BFD string `json:"bfd,omitempty"`
	// Advertised are the routes sent to the peer (prefix form, in address
	// order).
	Advertised []string `json:"advertised,omitempty"`
	// Since is when State last changed (zero when unknown).
	Since time.Time `json:"since,omitempty"`
}

// Established reports whether the session is up.
func (p BGPPeer) Established() bool { return p.State == BGPStateEstablished }

// IPVS states (IPVS.State).
const (
	// IPVSActive: the virtual services are programmed.
	IPVSActive = "active"
	// IPVSUnavailable: the kernel has no IPVS (or it cannot be used); the
	// VIPs still move but connections are not balanced. Reason says why.
	IPVSUnavailable = "unavailable"
	// IPVSFailing: IPVS is there but the last reconcile failed; LastError
	// says why.
	IPVSFailing = "failing"
)

// IPVS is the state of the agent's IPVS load balancing.
type IPVS struct {
	// State is IPVSActive, IPVSUnavailable or IPVSFailing.
	State string `json:"state"`
	// Reason says why IPVS is unavailable, and what to do.
	Reason string `json:"reason,omitempty"`
	// Services is the number of IPVS virtual services the agent programs
	// (one per service and VIP).
	Services int `json:"services"`
	// LastReconcile is when the kernel's table was last reconciled.
	LastReconcile time.Time `json:"lastReconcile,omitempty"`
	// LastError is the last reconcile's error, if any.
	LastError string `json:"lastError,omitempty"`
	// RealServers are the real servers of every service, with their health.
	RealServers []RealServer `json:"realServers,omitempty"`
	// ConnectionSync is the state of the IPVS connection synchronisation
	// between the directors; nil without virtual services.
	ConnectionSync *ConnectionSync `json:"connectionSync,omitempty"`
}

// The states of ConnectionSync.
const (
	// SyncRunning: the master and backup sync daemons run.
	SyncRunning = "running"
	// SyncDisabled: switched off in the config; established connections
	// break when the VIP moves.
	SyncDisabled = "disabled"
	// SyncFailing: the daemons could not be started (LastError says why).
	SyncFailing = "failing"
)

// ConnectionSync is the state of the kernel's IPVS sync daemons.
type ConnectionSync struct {
	// State is running, disabled or failing.
	State string `json:"state"`
	// Daemons describe the running daemons, as the kernel reports them.
	Daemons []string `json:"daemons,omitempty"`
	// LastError is why the daemons could not be started.
	LastError string `json:"lastError,omitempty"`
	// LocalConnections and SyncedConnections count the connections of the
	// IPVS table balanced here and received from a master, at the last
	// resync.
	LocalConnections  int `json:"localConnections"`
	SyncedConnections int `json:"syncedConnections"`
	// Limitations say which connections cannot survive a failover, and why.
	Limitations []string `json:"limitations,omitempty"`
}

// RealServer is the state of one real server of one virtual service.
type RealServer struct {
	// Router is the virtual router whose VIPs the service is on.
	Router string `json:"router"`
	// Service is the virtual service's name.
	Service string `json:"service"`
	// Address is "ip:port".
	Address string `json:"address"`
	// Weight is the weight programmed now: the configured one while
	// healthy, 0 while drained.
	Weight int `json:"weight"`
	// Healthy is the health check's verdict (true without a check).
	Healthy bool `json:"healthy"`
	// LastError is why the last probe failed ("" if it passed).
	LastError string `json:"lastError,omitempty"`
}

// Check is the state of one health check of the node.
type Check struct {
	// Name is the check's name in the agent's config.
	Name string `json:"name"`
	// Kind is tcp, http, exec or interface.
	Kind string `json:"kind"`
	// Healthy is the check's verdict.
	Healthy bool `json:"healthy"`
	// LastError is why the last probe failed ("" if it passed).
	LastError string `json:"lastError,omitempty"`
	// LastProbe is when the check last ran.
	LastProbe time.Time `json:"lastProbe,omitempty"`
}

// TrackCheck is a check tracked by a router, with its weight.
type TrackCheck struct {
	// Check is the check's name.
	Check string `json:"check"`
	// Weight is what the router's priority changes by while it fails.
	Weight int `json:"weight"`
}

// Router is the status of one virtual router.
type Router struct {
	// Name is the router's name: the name of its entry in the
	// LoadBalancerConfig's spec.virtualIPs.
	Name string `json:"name"`
	// VRID is the virtual router ID.
	VRID uint8 `json:"vrid"`
	// Mode is ModeVRRP or ModeBGP ("" is ModeVRRP). A bgp router's State is
	// StateAdvertised or StateWithdrawn, and it has no VRID, priority,
	// master or adverts.
	Mode string `json:"mode,omitempty"`
	// Interface is the interface the router runs on (mode bgp: the one
	// that holds its VIPs).
	Interface string `json:"interface"`
	// Family is "IPv4" or "IPv6".
	Family string `json:"family"`
	// State is StateMaster, StateBackup, StateFault or StateStop (mode
	// bgp: StateAdvertised or StateWithdrawn).
	State string `json:"state"`
	// ProtocolState is the RFC 9568 word (Active, Backup, Initialize, ...).
	ProtocolState string `json:"protocolState"`
	// Priority is the effective priority.
	Priority uint8 `json:"priority"`
	// ConfiguredPriority is the configured priority.
	ConfiguredPriority uint8 `json:"configuredPriority"`
	// Master is the address of the current master as last seen ("" unknown).
	Master string `json:"master,omitempty"`
	// Source is the address this router sends from.
	Source string `json:"source,omitempty"`
	// VIPs are the router's virtual addresses (prefix form).
	VIPs []string `json:"vips"`
	// Since is when the router entered State.
	Since time.Time `json:"since"`
	// LastReason says, for people, why the router entered State (for
	// FAULT: why it cannot run).
	LastReason string `json:"lastReason,omitempty"`
	// Transitions counts the router's state changes.
	Transitions uint64 `json:"transitions"`
	// AdvertsSent counts the adverts sent.
	AdvertsSent uint64 `json:"advertsSent"`
	// AdvertsRecv counts the adverts received and accepted.
	AdvertsRecv uint64 `json:"advertsReceived"`
	// AdvertsDropped counts the adverts received and dropped.
	AdvertsDropped uint64 `json:"advertsDropped"`
	// Drops counts dropped adverts by reason.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// TrackChecks are the checks this router tracks.
	TrackChecks []TrackCheck `json:"trackChecks,omitempty"`
	// Conflicts are the current disagreements with other routers that use
	// this VRID (another VIP list, version, interval or password, a second
	// master). Empty when all agree.
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// IsMaster reports whether the router is master (StateMaster).
func (r Router) IsMaster() bool { return r.State == StateMaster }

// Conflict is a disagreement with another router that uses our VRID.
type Conflict struct {
	// Kind is address-mismatch, version-mismatch, interval-mismatch,
	// auth-mismatch or second-master.
	Kind string `json:"kind"`
	// Peer is the other router's address.
	Peer string `json:"peer"`
	// Detail says, for people, what differs.
	Detail string `json:"detail"`
	// First and Last are when the conflict was first and last seen.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Count is how often it was seen.
	Count uint64 `json:"count"`
}

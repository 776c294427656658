package status

import "time"

// Report is the agent's status document (JSON).
type Report struct {
	// Node is the node name from the config, if any.
	Node string `json:"node,omitempty"`
	// Version is the agent's build version.
	Version string `json:"version"`
	// ConfigHash is the sha256 of the config file the agent runs.
	ConfigHash string `json:"configHash"`
	// ConfigError is the last rejected config, if the newest file was bad.
	ConfigError string `json:"configError,omitempty"`
	// Started is when the agent started.
	Started time.Time `json:"started"`
	// Routers holds one entry per virtual router.
	Routers []Router `json:"routers"`
	// Checks are the node's health checks.
	Checks []Check `json:"checks,omitempty"`
}

// Check is the state of one health check of the node.
type Check struct {
	Name string `json:"name"`
	// Kind is tcp, http, exec or interface.
	Kind    string `json:"kind"`
	Healthy bool   `json:"healthy"`
	// LastError is why the last probe failed ("" if it passed).
	LastError string    `json:"lastError,omitempty"`
	LastProbe time.Time `json:"lastProbe,omitempty"`
}

// TrackCheck is a check tracked by a router, with its weight.
type TrackCheck struct {
	Check  string `json:"check"`
	Weight int    `json:"weight"`
}

// Router is the status of one virtual router.
type Router struct {
	Name      string `json:"name"`
	VRID      uint8  `json:"vrid"`
	Interface string `json:"interface"`
	// Family is "IPv4" or "IPv6".
	Family string `json:"family"`
	// State is the keepalived word: MASTER, BACKUP, FAULT or STOP.
	State string `json:"state"`
	// ProtocolState is the RFC 9568 word (Active, Backup, Initialize, ...).
	ProtocolState string `json:"protocolState"`
	// Priority is the effective priority; ConfiguredPriority the configured one.
	Priority           uint8 `json:"priority"`
	ConfiguredPriority uint8 `json:"configuredPriority"`
	// Master is the address of the current master as last seen ("" unknown).
	Master string `json:"master,omitempty"`
	// Source is the address this router sends from.
	Source string `json:"source,omitempty"`
	// VIPs are the router's virtual addresses (prefix form).
	VIPs []string `json:"vips"`
	// Since is when the router entered State.
	Since          time.Time `json:"since"`
	LastReason     string    `json:"lastReason,omitempty"`
	Transitions    uint64    `json:"transitions"`
	AdvertsSent    uint64    `json:"advertsSent"`
	AdvertsRecv    uint64    `json:"advertsReceived"`
	AdvertsDropped uint64    `json:"advertsDropped"`
	// Drops counts dropped adverts by reason.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// TrackChecks are the checks this router tracks.
	TrackChecks []TrackCheck `json:"trackChecks,omitempty"`
	// Conflicts are the current disagreements with other routers that use
	// this VRID (another VIP list, version, interval or password, a second
	// master). Empty when all agree.
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// Conflict is a disagreement with another router that uses our VRID.
type Conflict struct {
	// Kind is address-mismatch, version-mismatch, interval-mismatch,
	// auth-mismatch or second-master.
	Kind string `json:"kind"`
	// Peer is the other router's address.
	Peer string `json:"peer"`
	// Detail says what differs.
	Detail string    `json:"detail"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Count  uint64    `json:"count"`
}

// Master reports whether the router is master (MASTER).
func (r Router) IsMaster() bool { return r.State == "MASTER" }

package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// NodeReport is the agent's status in short, kind NodeReport: what the node
// companion writes into the vipvs.io/agent-status annotation of the node's
// Secret, and what the operator needs for the LoadBalancerConfig's status.
// It holds little that changes often.
type NodeReport struct {
	// APIVersion is APIVersion.
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is KindNodeReport.
	Kind string `json:"kind,omitempty"`
	// ConfigError says, for people, why the agent does not run (all of)
	// its newest configuration; empty when it does.
	ConfigError string `json:"configError,omitempty"`
	// ConfigProblems say the same for programs (Report.ConfigProblems).
	ConfigProblems []Problem `json:"configProblems,omitempty"`
	// Routers holds each virtual router, sorted by name.
	Routers []RouterSummary `json:"routers"`
	// BGPPeers are the node's BGP sessions (embedded speaker), in
	// configuration order; empty without routers in mode bgp.
	BGPPeers []BGPPeerSummary `json:"bgpPeers,omitempty"`
	// BGPError is BGP.LastError of the agent's report.
	BGPError string `json:"bgpError,omitempty"`
}

// BGPPeerSummary is one BGP session of a NodeReport.
type BGPPeerSummary struct {
	// Address is the peer's address.
	Address string `json:"address"`
	// State is the session state (BGPPeer.State).
	State string `json:"state"`
	// BFD is the BFD state, "" without BFD.
	BFD string `json:"bfd,omitempty"`
	// Advertised counts the routes sent to the peer.
	Advertised int `json:"advertised"`
}

// RouterSummary is one virtual router of a NodeReport.
type RouterSummary struct {
	// Name is the virtual router's name: the name of its entry in the
	// LoadBalancerConfig's spec.virtualIPs.
	Name string `json:"name"`
	// State is StateMaster, StateBackup, StateFault or StateStop (mode
	// bgp: StateAdvertised or StateWithdrawn).
	State string `json:"state"`
	// Mode is ModeVRRP or ModeBGP ("" is ModeVRRP).
	Mode string `json:"mode,omitempty"`
	// Master is the address of the master as this node last saw it.
	Master string `json:"master,omitempty"`
	// Interface is the interface the router runs on (or would: for a FAULT
	// router, the one that is down).
	Interface string `json:"interface,omitempty"`
	// Reason says, for people, why the router is in State (Router.LastReason);
	// set for FAULT only, where it says why the router cannot run, and for
	// WITHDRAWN, where it says why the node does not serve the VIPs.
	Reason string `json:"reason,omitempty"`
}

// Summarize shortens an agent's report.
func Summarize(r Report) NodeReport {
	n := NodeReport{APIVersion: APIVersion, Kind: KindNodeReport, ConfigError: r.ConfigError,
		ConfigProblems: r.ConfigProblems, Routers: make([]RouterSummary, 0, len(r.Routers))}
	for _, rt := range r.Routers {
		s := RouterSummary{Name: rt.Name, State: rt.State, Mode: rt.Mode, Master: rt.Master, Interface: rt.Interface}
		if rt.State == StateFault || rt.State == StateWithdrawn {
			s.Reason = rt.LastReason
		}
		n.Routers = append(n.Routers, s)
	}
	sort.Slice(n.Routers, func(i, j int) bool { return n.Routers[i].Name < n.Routers[j].Name })
	if r.BGP != nil {
		n.BGPError = r.BGP.LastError
		for _, p := range r.BGP.Peers {
			n.BGPPeers = append(n.BGPPeers, BGPPeerSummary{Address: p.Address, State: p.State, BFD: p.BFD, Advertised: len(p.Advertised)})
		}
	}
	return n
}

// Encode returns the compact JSON of n.
func (n NodeReport) Encode() string {
	b, err := json.Marshal(n)
	if err != nil {
		// Strings and slices of structs of strings: cannot fail.
		panic(fmt.Sprintf("status: encoding a node report: %v", err))
	}
	return string(b)
}

// ParseNodeReport decodes a NodeReport (the vipvs.io/agent-status
// annotation); it refuses another apiVersion or kind.
func ParseNodeReport(s string) (NodeReport, error) {
	var n NodeReport
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return NodeReport{}, fmt.Errorf("decoding a node report: %w", err)
	}
	if err := CheckAPIVersion(n.APIVersion); err != nil {
		return NodeReport{}, err
	}
	if n.Kind != "" && n.Kind != KindNodeReport {
		return NodeReport{}, fmt.Errorf("status document of kind %q, want %s", n.Kind, KindNodeReport)
	}
	return n, nil
}

// Digest identifies what a report says that the node companion passes on:
// its NodeReport and the running configuration's hash. Two reports with the
// same digest need no new NodeReport; counters and timestamps are not in it.
func Digest(r Report) string {
	sum := sha256.Sum256([]byte(r.ConfigHash + "\n" + Summarize(r).Encode()))
	return hex.EncodeToString(sum[:12])
}

// MaxWait is the longest wait a GET /status may ask for.
const MaxWait = time.Minute

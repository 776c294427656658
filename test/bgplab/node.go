package bgplab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/api/agent/v1alpha1"
	"github.com/vipvs/vipvs/test/lab"
)

// NodeConfig is what a node's agent runs: every VIP in mode bgp, tracking a
// check that fails while FailFile exists.
type NodeConfig struct {
	// Name is the node's name (nodeName).
	Name string
	// ASN and RouterID are the node's.
	ASN      uint32
	RouterID netip.Addr
	// Peers are the node's BGP peers.
	Peers []NodePeer
	// BFD is the BFD interval (x3); 0 turns BFD off towards every peer.
	BFD time.Duration
	// HoldTime and Keepalive are the sessions' timers.
	HoldTime, Keepalive time.Duration
	// GracefulWait is bgp.gracefulShutdownWait.
	GracefulWait time.Duration
	// VIPs are the VIPs, one router per VIP (named vip-4 and vip-6 by
	// family for the first two, vip-<index> for the others).
	VIPs []netip.Addr
	// Socket is the agent's status socket; FailFile, while it exists,
	// fails the check every router tracks.
	Socket, FailFile string
}

// NodePeer is one BGP peer of a node.
type NodePeer struct {
	Address netip.Addr
	ASN     uint32
	Source  netip.Addr
}

// AgentConfig renders the agent configuration of the node.
func (n NodeConfig) AgentConfig() *v1alpha1.AgentConfig {
	dur := func(d time.Duration) *v1alpha1.Duration { return &v1alpha1.Duration{Duration: d} }
	i32 := func(v int32) *int32 { return &v }
	listen := ""
	cfg := &v1alpha1.AgentConfig{
		APIVersion: v1alpha1.GroupVersion, Kind: v1alpha1.Kind, NodeName: n.Name,
		Status: &v1alpha1.Status{ListenAddress: &listen, SocketPath: &n.Socket},
		Checks: []v1alpha1.Check{{
			Name: "service", Exec: &v1alpha1.ExecCheck{Command: []string{"/bin/sh", "-c", "test ! -e " + n.FailFile}},
			Interval: dur(200 * time.Millisecond), Timeout: dur(200 * time.Millisecond), Rise: i32(1), Fall: i32(1),
		}},
		BGP: &v1alpha1.BGP{
			LocalASN: int64(n.ASN), RouterID: n.RouterID.String(),
			GracefulShutdownWait: dur(n.GracefulWait),
		},
	}
	if n.BFD > 0 {
		cfg.BGP.BFDProfile = &v1alpha1.BFDProfile{MinTxInterval: dur(n.BFD), MinRxInterval: dur(n.BFD), Multiplier: i32(3)}
	}
	for _, p := range n.Peers {
		cfg.BGP.Peers = append(cfg.BGP.Peers, v1alpha1.BGPPeer{
			Address: p.Address.String(), ASN: int64(p.ASN), SourceAddress: p.Source.String(),
			HoldTime: dur(n.HoldTime), KeepaliveTime: dur(n.Keepalive), ConnectRetry: dur(2 * time.Second),
			BFD: n.BFD > 0,
		})
	}
	for i, v := range n.VIPs {
		name := "vip-4"
		if v.Is6() {
			name = "vip-6"
		}
		if i >= 2 {
			name = fmt.Sprintf("vip-%d", i)
		}
		cfg.VirtualRouters = append(cfg.VirtualRouters, v1alpha1.VirtualRouter{
			Name: name, Mode: v1alpha1.ModeBGP, VIPs: []string{v.String()},
			TrackChecks: []v1alpha1.TrackCheck{{Check: "service"}},
		})
	}
	return cfg
}

// WriteConfig writes the node's agent config into dir atomically (a
// temporary file and a rename, as the node companion does) and returns its
// path. A running agent sees the change and applies it.
func WriteConfig(dir string, n NodeConfig) (string, error) {
	b, err := v1alpha1.Marshal(n.AgentConfig())
	if err != nil {
		return "", fmt.Errorf("%s: rendering the agent config: %w", n.Name, err)
	}
	path := filepath.Join(dir, n.Name+".yaml")
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

// StartAgent writes the node's config into dir and starts the agent binary
// bin (vipvs-agent) in h's namespace.
func StartAgent(h *lab.Host, bin, dir string, n NodeConfig) (*lab.Proc, error) {
	path, err := WriteConfig(dir, n)
	if err != nil {
		return nil, err
	}
	return h.Start("vipvs-agent", []string{bin, "--config", path}, nil, "")
}

// AgentStatus reads a node agent's status over its socket.
func AgentStatus(socket string) (status.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return status.Fetch(ctx, socket)
}

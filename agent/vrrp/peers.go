package vrrp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// DropReason says why the state machine ignored an advert that passed the
// packet checks: the sender is not a router this one should listen to.
type DropReason string

// The drop reasons of the state machine. The packet package's reasons
// (malformed adverts, another address list, ...) come before these.
const (
	// DropUnknownPeer: the source is not on the peer allowlist
	// (Config.AllowedPeers).
	DropUnknownPeer DropReason = "unknown-peer"
	// DropMACMismatch: the source address is a known peer's, but the frame
	// came from another link-layer address than the one pinned for it: a
	// forged advert.
	DropMACMismatch DropReason = "mac-mismatch"
	// DropForgedPriority0: a priority-0 advert that does not come from the
	// current master (by address and MAC). Honouring it would make a Backup
	// take over from a master that is still there.
	DropForgedPriority0 DropReason = "forged-priority-0"
	// DropImpostor: an advert from a router that claimed to be master and
	// then did not announce the VIPs within Master_Down_Interval; it is
	// ignored until it announces them.
	DropImpostor DropReason = "impostor"
)

// AlarmKind names a situation that an operator must hear about; it is not a
// dropped packet.
type AlarmKind string

// The alarms of the state machine.
const (
	// AlarmImpostor: a router we yielded to did not announce the VIPs within
	// Master_Down_Interval; we took them back.
	AlarmImpostor AlarmKind = "impostor"
	// AlarmDuplicateOwner: another node announces or answers for our VIPs
	// while we are master (a crashed agent's node still holds them, or a
	// loser still announcing); we announced them again.
	AlarmDuplicateOwner AlarmKind = "duplicate-owner"
	// AlarmStall: the process was paused or starved (a timer fired late).
	AlarmStall AlarmKind = "stall"
)

// Dropped reports an advert the state machine ignored. It is an Action: the
// runner counts it; nothing else changes (no timer is touched, no state
// moves).
type Dropped struct {
	Reason DropReason
	Src    netip.Addr
	MAC    net.HardwareAddr
	Detail string
}

// Alarm reports an impostor, a duplicate owner or a stall. The runner hands
// it to its reporter, which logs it once per change.
type Alarm struct {
	Kind   AlarmKind
	Peer   string // the other router's address or MAC; "" for a stall
	Detail string
}

// StopAnnouncing asks for the pending announcements of the VIPs to be
// cancelled (the VIPs stay): a router that stepped down must not announce
// after the winner did.
type StopAnnouncing struct{}

func (Dropped) isAction()        {}
func (Alarm) isAction()          {}
func (StopAnnouncing) isAction() {}

// Announced tells the router that another node announced one of its VIPs
// (gratuitous ARP or an ARP reply for it) from MAC, which is not ours.
type Announced struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

// Stalled tells the router that the process was paused or starved for Late
// (noticed from the monotonic clock).
type Stalled struct{ Late time.Duration }

// PeerMAC pins the link-layer address of a peer from a source other than
// its adverts (the neighbour table). A pin from an advert is replaced by it.
type PeerMAC struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
}

func (Announced) isEvent() {}
func (Stalled) isEvent()   {}
func (PeerMAC) isEvent()   {}

// pin is the link-layer address a peer was seen with.
type pin struct {
	mac  net.HardwareAddr
	last time.Time // last advert (or neighbour entry) with this MAC
}

// maxPins bounds the pinned peers: a flood of adverts from made-up sources
// must not grow the router's memory. Real peers are pinned first (they
// advertise before any attack, or come from the neighbour table).
const maxPins = 256

// pinExpiry is how long a pinned MAC must have been silent before another
// MAC may take its place (a replaced NIC, a migrated VM): ten
// Master_Down_Intervals at the lowest priority, at least 10 s.
func (r *Router) pinExpiry() time.Duration {
	return max(10*masterDownInterval(r.cfg.Version, 1, r.masterAdverInterval), 10*time.Second)
}

// admit applies the identity rules to an advert that passed the packet
// checks: the allowlist, the MAC pinned for the source, an impostor mark and
// the origin of a priority 0. It returns a Dropped action when the advert
// must be ignored.
func (r *Router) admit(now time.Time, adv AdvertReceived) *Dropped {
	if len(r.cfg.AllowedPeers) > 0 && !slices.Contains(r.cfg.AllowedPeers, adv.Src.WithZone("")) {
		return &Dropped{Reason: DropUnknownPeer, Src: adv.Src, MAC: adv.SrcMAC, Detail: "not on the peer allowlist"}
	}
	if len(adv.SrcMAC) > 0 {
		p := r.pins[adv.Src]
		switch {
		case p == nil:
			if len(r.pins) < maxPins {
				r.pins[adv.Src] = &pin{mac: adv.SrcMAC, last: now}
			}
		case bytes.Equal(p.mac, adv.SrcMAC):
			p.last = now
		case now.Sub(p.last) < r.pinExpiry():
			return &Dropped{Reason: DropMACMismatch, Src: adv.Src, MAC: adv.SrcMAC,
				Detail: fmt.Sprintf("%s is pinned at %s, this advert came from %s", adv.Src, p.mac, adv.SrcMAC)}
		default:
			// The pinned MAC has been silent for long: the peer moved.
			r.pins[adv.Src] = &pin{mac: adv.SrcMAC, last: now}
		}
	}
	if r.impostor.IsValid() && adv.Src == r.impostor && adv.Priority > 0 {
		return &Dropped{Reason: DropImpostor, Src: adv.Src, MAC: adv.SrcMAC, Detail: "claimed master without announcing the VIPs"}
	}
	if adv.Priority == 0 && r.state == Backup {
		if !r.master.IsValid() || adv.Src != r.master || !macAgrees(r.masterMAC, adv.SrcMAC) {
			master := "none known"
			if r.master.IsValid() {
				master = r.master.String()
			}
			return &Dropped{Reason: DropForgedPriority0, Src: adv.Src, MAC: adv.SrcMAC,
				Detail: fmt.Sprintf("priority 0 from %s, the master is %s", adv.Src, master)}
		}
	}
	return nil
}

// macAgrees says whether an advert's MAC is the expected one; an unknown
// side (nil) agrees with anything.
func macAgrees(want, got net.HardwareAddr) bool {
	return len(want) == 0 || len(got) == 0 || bytes.Equal(want, got)
}

// pinPeer handles PeerMAC.
func (r *Router) pinPeer(now time.Time, ev PeerMAC) {
	if !ev.Addr.IsValid() || len(ev.MAC) == 0 {
		return
	}
	r.pins[ev.Addr] = &pin{mac: slices.Clone(ev.MAC), last: now}
}

// announced handles Announced: another node announced one of our VIPs.
func (r *Router) announced(now time.Time, ev Announced) []Action {
	switch r.state {
	case Backup:
		if r.claimant.IsValid() && macAgrees(r.claimantMAC, ev.MAC) {
			// The router we yielded to has announced the VIPs: let them go
			// at once. The announcement reached the clients on the link
			// with ours, and every moment two nodes hold a VIP costs
			// connections: we answer ARP for it (a neighbour that resolves
			// it then may pick us and send the winner's traffic here), and
			// with IPVS NAT, which translates the source to the VIP,
			// packets the winner forwards to us as a real server (or
			// answers of real servers to the VIP) are dropped as martians
			// or answered locally (docs/bootstrap.md). What still reaches
			// us once the VIP is gone is routed to the winner.
			r.claimant, r.claimantMAC, r.claimUntil = netip.Addr{}, nil, time.Time{}
			return []Action{ReleaseVIPs{}}
		}
	case Active:
		if r.impostor.IsValid() && macAgrees(r.impostorMAC, ev.MAC) {
			// The impostor announced after all: it is a master again.
			r.impostor, r.impostorMAC = netip.Addr{}, nil
		}
		// Someone else announces our VIPs while we are master: a crashed
		// node that still holds them, or a loser of a contest. Announce
		// again at the next Adver_Timer, after the loser has had the time to
		// step down and go quiet (a winner's advert precedes its
		// announcement, so a real winner makes us step down first).
		r.duplicate = ev.MAC.String()
		r.announcedMAC, r.announcedAt = ev.MAC, now
	}
	return nil
}

// stalled handles Stalled.
func (r *Router) stalled(now time.Time, ev Stalled) []Action {
	acts := []Action{Alarm{Kind: AlarmStall, Detail: fmt.Sprintf("the process did not run for %v (state %v)", ev.Late.Round(time.Millisecond), r.state)}}
	if r.state == Active {
		// Clients may have followed another router meanwhile: tell the
		// others at once and announce the VIPs again.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		acts = append(acts, r.advertise(), Reannounce{})
	}
	return acts
}

package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// State is a virtual router's protocol state (RFC 9568 §6.4).
type State int

const (
	// Initialize is the state before Startup and after Shutdown (§6.4.1).
	Initialize State = iota
	// Backup monitors the Active router (§6.4.2).
	Backup
	// Active forwards for the VIPs and advertises (§6.4.3); keepalived says MASTER.
	Active
	// Releasing is the graceful hand-over of an Active router that was told to
	// shut down: it has advertised priority 0 and keeps the VIPs until another
	// router announces itself Active, bounded by Master_Down_Interval. It is not
	// an RFC state; to the network it looks like an Active router at priority 0.
	Releasing
	// Fault is a router whose track checks say it must not be Active (a check
	// with weight 0 failing, as keepalived's FAULT). It holds no VIP and sends
	// nothing.
	Fault
)

// String returns the RFC name of the state.
func (s State) String() string {
	switch s {
	case Initialize:
		return "Initialize"
	case Backup:
		return "Backup"
	case Active:
		return "Active"
	case Releasing:
		return "Releasing"
	case Fault:
		return "Fault"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Keepalived returns the state as keepalived names it in notify scripts and
// logs: MASTER, BACKUP, FAULT or STOP.
func (s State) Keepalived() string {
	switch s {
	case Active, Releasing:
		return "MASTER"
	case Backup:
		return "BACKUP"
	case Fault:
		return "FAULT"
	}
	return "STOP"
}

// OwnerPriority is the priority of the router that owns the VIPs (§6.1).
const OwnerPriority = 255

// Config is what the state machine needs to know of one virtual router.
type Config struct {
	// Version is the VRRP version, 2 or 3. It selects the skew formula.
	Version int
	// Priority is the configured priority, 1-255 (255: address owner).
	Priority uint8
	// AdvertInterval is the configured Advertisement_Interval.
	AdvertInterval time.Duration
	// Preempt lets a higher-priority Backup take over from a lower-priority
	// Active (Preempt_Mode).
	Preempt bool
	// PreemptDelay keeps a Backup from preempting for this long after it
	// started (keepalived's preempt_delay): a rebooted node does not take the
	// VIPs back before it has settled.
	PreemptDelay time.Duration
	// Primary is this router's own address (the source of its adverts),
	// compared with the sender's to break a priority tie (§6.4.3).
	Primary netip.Addr
	// AllowedPeers, when not empty, are the only routers whose adverts
	// count (multicast mode's peer allowlist); an advert from any other
	// source is dropped (DropUnknownPeer).
	AllowedPeers []netip.Addr
	// AwaitAnnouncement makes an Active router that yields keep its VIPs
	// until the router it yielded to has announced them (an Announced event
	// from its MAC), for at most Master_Down_Interval, and release them as
	// soon as it announces after we yielded (one linger after yielding when
	// its announcement came first); a claimant that has not announced by then is an
	// impostor: this router takes the VIPs back and ignores it until it
	// announces. Set it only where other routers' announcements are
	// observed (IPv4 with ARP watching); without it the VIPs are released
	// one linger after yielding.
	AwaitAnnouncement bool
	// TakeOver starts the router Active (an advert at once, the VIPs
	// acquired and announced) instead of Backup: it succeeds a router of
	// this node that was Active a moment ago and was stopped without a
	// hand-over (the agent restarting a router for a new config), so that
	// the VIPs stay where they are rather than moving to a Backup and,
	// Master_Down_Interval later, back. A better router, if there is one,
	// preempts it as it would have preempted its predecessor.
	TakeOver bool
}

// Event is an input to Handle.
type Event interface{ isEvent() }

// Startup starts the router (§6.4.1).
type Startup struct{}

// Shutdown stops the router. An Active router hands over gracefully: see
// Releasing.
type Shutdown struct{}

// TimerFired tells the router that its Deadline has passed.
type TimerFired struct{}

// AdvertReceived is an advertisement for this router's VRID that passed every
// receive check of the packet package.
type AdvertReceived struct {
	// Src is the advert's IP source address.
	Src netip.Addr
	// SrcMAC is the link-layer source address of the frame that carried
	// the advert, when the transport knows it (nil otherwise). Peers are
	// identified by (Src, SrcMAC).
	SrcMAC net.HardwareAddr
	// Priority is the sender's priority (0: the sender stops being Active).
	Priority uint8
	// Interval is the sender's advertisement interval.
	Interval time.Duration
}

// SetPriority changes the router's effective priority (track checks, a
// reloaded config). Priority 0 is not allowed; use SetFault.
type SetPriority struct{ Priority uint8 }

// SetPreemptHold holds preemption (true) or lets it go (false): a node whose
// track checks have not passed yet since it started follows a master of
// lower priority instead of taking over (preemptAfterChecks).
type SetPreemptHold struct{ Hold bool }

// SetFault moves the router into Fault (true) or out of it (false).
type SetFault struct {
	Fault  bool
	Reason string
}

func (Startup) isEvent()        {}
func (Shutdown) isEvent()       {}
func (TimerFired) isEvent()     {}
func (AdvertReceived) isEvent() {}
func (SetPriority) isEvent()    {}
func (SetFault) isEvent()       {}
func (SetPreemptHold) isEvent() {}

// Action is an output of Handle, to be carried out by the caller in order.
type Action interface{ isAction() }

// SendAdvert asks for one advertisement with this priority and interval.
type SendAdvert struct {
	Priority uint8
	Interval time.Duration
}

// Transition reports a state change and why it happened.
type Transition struct {
	From, To State
	Reason   string
}

// AcquireVIPs asks for the VIPs to be added to the interface and announced
// (gratuitous ARP / unsolicited NA).
type AcquireVIPs struct{}

// ReleaseVIPs asks for the VIPs to be removed from the interface, After
// from now (0: at once). A router that steps down for a better one keeps its
// VIPs for the release linger: the new master announces them right after its
// advert, and the connections that reach us meanwhile (clients that have not
// processed the announcement yet) are still served. Acquiring the VIPs again
// before then cancels the release.
type ReleaseVIPs struct {
	After time.Duration
}

// Reannounce asks for the VIPs to be announced again (an Active router that
// has just won a contest: clients may point at the loser's MAC).
type Reannounce struct{}

// Stopped reports that a Shutdown has completed; the router is in Initialize.
type Stopped struct{}

func (SendAdvert) isAction()  {}
func (Transition) isAction()  {}
func (AcquireVIPs) isAction() {}
func (ReleaseVIPs) isAction() {}
func (Reannounce) isAction()  {}
func (Stopped) isAction()     {}

// Router is one virtual router's state machine. The zero value is not usable;
// call New.
type Router struct {
	cfg      Config
	priority uint8 // effective priority (cfg.Priority adjusted by track checks)
	state    State
	// masterAdverInterval is Master_Adver_Interval (§6.1): the Active router's
	// interval as learned from its adverts (v3), or our own.
	masterAdverInterval time.Duration
	// deadline is Master_Down_Timer in Backup, Adver_Timer in Active and the
	// hand-over bound in Releasing. Zero means no timer.
	deadline     time.Time
	preemptAfter time.Time
	preemptHold  bool
	// stopping remembers a Shutdown received in Fault or Backup.
	faultReason string
	// master is the address of the current Active router as last seen.
	master netip.Addr
	// successor is the router that became Active while we were Releasing.
	successor         netip.Addr
	successorPriority uint8

	// masterMAC is the MAC the master's adverts came from (nil: unknown).
	masterMAC net.HardwareAddr
	// pins are the MACs peers were seen with, by address.
	pins map[netip.Addr]*pin
	// claimant is the router this one yielded to and that has not
	// announced the VIPs yet (AwaitAnnouncement); claimUntil bounds the wait.
	claimant    netip.Addr
	claimantMAC net.HardwareAddr
	claimUntil  time.Time
	// impostor is a claimant that did not announce in time; its adverts are
	// dropped until it announces.
	impostor    netip.Addr
	impostorMAC net.HardwareAddr
	// duplicate is the MAC of another node seen announcing our VIPs while we
	// are Active, "" when none; answered at the next Adver_Timer.
	duplicate string
	// announcedMAC and announcedAt are the last announcement of our VIPs by
	// another node seen while Active: a winner's announcement may be
	// handled before its advert.
	announcedMAC net.HardwareAddr
	announcedAt  time.Time
}

// New returns a router in Initialize.
func New(cfg Config) *Router {
	return &Router{
		cfg:                 cfg,
		priority:            cfg.Priority,
		state:               Initialize,
		masterAdverInterval: cfg.AdvertInterval,
		pins:                map[netip.Addr]*pin{},
	}
}

// State returns the current state.
func (r *Router) State() State { return r.state }

// Priority returns the effective priority.
func (r *Router) Priority() uint8 { return r.priority }

// Master returns the address of the Active router as last seen, and whether
// one is known. In Active it is our own primary address.
func (r *Router) Master() (netip.Addr, bool) {
	if r.state == Active || r.state == Releasing {
		return r.cfg.Primary, true
	}
	return r.master, r.master.IsValid()
}

// Deadline returns when the router next needs TimerFired; the zero time means
// no timer is running.
func (r *Router) Deadline() time.Time {
	if !r.claimUntil.IsZero() && (r.deadline.IsZero() || r.claimUntil.Before(r.deadline)) {
		return r.claimUntil
	}
	return r.deadline
}

// SkewTime returns Skew_Time. RFC 9568 §6.1 (v3):
// ((256 - Priority) * Master_Adver_Interval) / 256; RFC 3768 §6.1 (v2):
// (256 - Priority) / 256 seconds.
func (r *Router) SkewTime() time.Duration {
	return skewTime(r.cfg.Version, r.priority, r.masterAdverInterval)
}

// MasterDownInterval returns Master_Down_Interval:
// 3 * Master_Adver_Interval + Skew_Time (RFC 9568 §6.1; RFC 3768 uses the
// configured Advertisement_Interval, which a v2 router requires to be equal).
func (r *Router) MasterDownInterval() time.Duration {
	return masterDownInterval(r.cfg.Version, r.priority, r.masterAdverInterval)
}

func skewTime(version int, priority uint8, masterAdverInterval time.Duration) time.Duration {
	if version == 2 {
		return time.Duration(256-int64(priority)) * time.Second / 256
	}
	return time.Duration(256-int64(priority)) * masterAdverInterval / 256
}

func masterDownInterval(version int, priority uint8, masterAdverInterval time.Duration) time.Duration {
	return 3*masterAdverInterval + skewTime(version, priority, masterAdverInterval)
}

// Handle advances the router by one event at time now and returns the actions
// to carry out, in order. It reads no clock, does no I/O and never blocks.
func (r *Router) Handle(now time.Time, ev Event) []Action {
	switch ev := ev.(type) {
	case Startup:
		return r.startup(now)
	case Shutdown:
		return r.shutdown(now)
	case TimerFired:
		return r.timerFired(now)
	case AdvertReceived:
		return r.advert(now, ev)
	case SetPriority:
		return r.setPriority(now, ev.Priority)
	case SetFault:
		return r.setFault(now, ev)
	case SetPreemptHold:
		r.preemptHold = ev.Hold
		return nil
	case Announced:
		return r.announced(now, ev)
	case Stalled:
		return r.stalled(now, ev)
	case PeerMAC:
		r.pinPeer(now, ev)
		return nil
	}
	return nil
}

func (r *Router) to(s State, reason string) Action {
	from := r.state
	r.state = s
	if s != Backup {
		r.claimant, r.claimantMAC, r.claimUntil = netip.Addr{}, nil, time.Time{}
	}
	if s != Active {
		r.duplicate = ""
	}
	return Transition{From: from, To: s, Reason: reason}
}

func (r *Router) advertise() Action {
	return SendAdvert{Priority: r.priority, Interval: r.cfg.AdvertInterval}
}

// becomeActive is the common path into Active (§6.4.1 and §6.4.2): send an
// advert, take and announce the VIPs, start the Adver_Timer.
func (r *Router) becomeActive(now time.Time, reason string) []Action {
	r.deadline = now.Add(r.cfg.AdvertInterval)
	r.master, r.masterMAC = netip.Addr{}, nil
	return []Action{r.to(Active, reason), r.advertise(), AcquireVIPs{}}
}

// becomeBackup enters Backup with Master_Down_Timer = Master_Down_Interval.
func (r *Router) becomeBackup(now time.Time, reason string) []Action {
	r.deadline = now.Add(r.MasterDownInterval())
	return []Action{r.to(Backup, reason)}
}

func (r *Router) startup(now time.Time) []Action {
	if r.state != Initialize {
		return nil
	}
	r.masterAdverInterval = r.cfg.AdvertInterval
	r.preemptAfter = now.Add(r.cfg.PreemptDelay)
	if r.faultReason != "" {
		r.deadline = time.Time{}
		return []Action{r.to(Fault, r.faultReason)}
	}
	// §6.4.1: the address owner becomes Active at once.
	if r.priority == OwnerPriority {
		return r.becomeActive(now, "startup as address owner (priority 255)")
	}
	if r.cfg.TakeOver {
		return r.becomeActive(now, "startup: taking over from this node's previous router, which was active")
	}
	// §6.4.1: everyone else starts as Backup with Master_Down_Timer set.
	return r.becomeBackup(now, "startup")
}

func (r *Router) shutdown(now time.Time) []Action {
	switch r.state {
	case Active:
		// §6.4.3: send an advert with priority 0. vipvs keeps the VIPs and
		// keeps serving until another router is Active (Releasing), so that no
		// client is left without a holder during the hand-over.
		r.deadline = now.Add(r.releaseBound())
		return []Action{
			r.to(Releasing, "shutdown: priority 0 sent, keeping the VIPs until another router is active"),
			SendAdvert{Priority: 0, Interval: r.cfg.AdvertInterval},
		}
	case Releasing:
		return nil
	case Initialize:
		return []Action{Stopped{}}
	default:
		// §6.4.2: a Backup cancels its timer and goes to Initialize.
		r.deadline = time.Time{}
		return []Action{r.to(Initialize, "shutdown"), Stopped{}}
	}
}

// releaseBound is how long a Releasing router waits for a successor: a Backup
// that heard our priority-0 advert takes over after its Skew_Time, one that
// missed it after its Master_Down_Interval; the worst case is the
// Master_Down_Interval of the lowest possible priority, plus one interval for
// the successor's first advert to arrive.
func (r *Router) releaseBound() time.Duration {
	return masterDownInterval(r.cfg.Version, 1, r.cfg.AdvertInterval) + r.cfg.AdvertInterval
}

// releaseLinger is how long a Releasing router keeps the VIPs after its
// successor's first advert: one advertisement interval, at least 100 ms and at
// most 1 s. The successor announces the VIPs right after that advert; clients
// that have not processed the announcement yet, and connections being
// accepted, are still served by us meanwhile.
func (r *Router) releaseLinger() time.Duration {
	return min(max(r.cfg.AdvertInterval, 100*time.Millisecond), time.Second)
}

func (r *Router) release(reason string) []Action {
	r.deadline = time.Time{}
	r.successor = netip.Addr{}
	return []Action{r.to(Initialize, reason), ReleaseVIPs{}, Stopped{}}
}

func (r *Router) timerFired(now time.Time) []Action {
	if r.state == Backup && !r.claimUntil.IsZero() && !now.Before(r.claimUntil) {
		return r.impostorFound(now)
	}
	if r.deadline.IsZero() || now.Before(r.deadline) {
		return nil
	}
	switch r.state {
	case Backup:
		// §6.4.2: Master_Down_Timer fired: become Active.
		return r.becomeActive(now, fmt.Sprintf("master down timer expired (%v without a valid advert from a better router)", r.MasterDownInterval()))
	case Active:
		// §6.4.3: Adver_Timer fired: advertise and restart it.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		if r.duplicate != "" {
			// Another node announced our VIPs since the last advert and did
			// not turn out to be a better master: the last word is ours.
			mac := r.duplicate
			r.duplicate = ""
			return []Action{r.advertise(), Reannounce{}, Alarm{Kind: AlarmDuplicateOwner, Peer: mac,
				Detail: "another node announces our VIPs while we are master; announced them again"}}
		}
		return []Action{r.advertise()}
	case Releasing:
		if r.successor.IsValid() {
			return r.release(fmt.Sprintf("shutdown: %s is active (priority %d), releasing the VIPs", r.successor, r.successorPriority))
		}
		return r.release("shutdown: no other router became active in time, releasing the VIPs")
	}
	return nil
}

func (r *Router) advert(now time.Time, adv AdvertReceived) []Action {
	if r.state == Initialize {
		return nil
	}
	if d := r.admit(now, adv); d != nil {
		return []Action{*d}
	}
	switch r.state {
	case Backup:
		return r.backupAdvert(now, adv)
	case Active:
		return r.activeAdvert(now, adv)
	case Releasing:
		// A router that announces itself with a non-zero priority is the
		// successor. Keep the VIPs a little longer (releaseLinger): its
		// gratuitous ARP / NA follows its advert, and a client that has not
		// seen it yet still reaches us.
		if adv.Priority > 0 && !r.successor.IsValid() {
			r.master, r.masterMAC = adv.Src, adv.SrcMAC
			r.successor = adv.Src
			r.successorPriority = adv.Priority
			r.deadline = now.Add(r.releaseLinger())
		}
		return nil
	case Fault:
		if adv.Priority > 0 {
			r.master, r.masterMAC = adv.Src, adv.SrcMAC
		}
		return nil
	}
	return nil
}

// backupAdvert is RFC 9568 §6.4.2 "If an ADVERTISEMENT is received".
func (r *Router) backupAdvert(now time.Time, adv AdvertReceived) []Action {
	if adv.Priority == 0 {
		// The Active router is leaving (admit checked that it is the
		// master, by address and MAC): take over after Skew_Time only.
		r.deadline = now.Add(r.SkewTime())
		r.master, r.masterMAC = netip.Addr{}, nil
		return nil
	}
	preemptAllowed := r.cfg.Preempt && !r.preemptHold && !now.Before(r.preemptAfter)
	if !preemptAllowed || adv.Priority >= r.priority {
		// Follow this Active router: learn its interval (v3), recompute
		// Master_Down_Interval and restart Master_Down_Timer.
		if r.cfg.Version == 3 && adv.Interval > 0 {
			r.masterAdverInterval = adv.Interval
		}
		r.master, r.masterMAC = adv.Src, adv.SrcMAC
		r.deadline = now.Add(r.MasterDownInterval())
		return nil
	}
	// Preempt: discard the advert and let Master_Down_Timer run out.
	return nil
}

// activeAdvert is RFC 9568 §6.4.3 "If an ADVERTISEMENT is received".
func (r *Router) activeAdvert(now time.Time, adv AdvertReceived) []Action {
	if adv.Priority == 0 {
		// Another router left Active: answer at once so the Backups do not
		// take over after their Skew_Time, and restart the Adver_Timer.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		return []Action{r.advertise()}
	}
	if adv.Priority > r.priority || (adv.Priority == r.priority && addrGreater(adv.Src, r.cfg.Primary)) {
		// A better router is Active: step down.
		if r.cfg.Version == 3 && adv.Interval > 0 {
			r.masterAdverInterval = adv.Interval
		}
		r.master, r.masterMAC = adv.Src, adv.SrcMAC
		reason := fmt.Sprintf("advert from %s with higher priority %d (ours %d)", adv.Src, adv.Priority, r.priority)
		if adv.Priority == r.priority {
			reason = fmt.Sprintf("advert from %s with equal priority %d and a higher address", adv.Src, adv.Priority)
		}
		// Step down: stop announcing (the winner must have the last word),
		// and send one last advert so that the winner learns of the contest
		// and announces the VIPs again once we are quiet.
		acts := r.becomeBackup(now, reason)
		acts = append(acts, StopAnnouncing{}, r.advertise())
		if !r.cfg.AwaitAnnouncement {
			return append(acts, ReleaseVIPs{After: r.releaseLinger()})
		}
		if len(r.announcedMAC) > 0 && macAgrees(adv.SrcMAC, r.announcedMAC) && now.Sub(r.announcedAt) <= r.MasterDownInterval() {
			// Its announcement overtook its advert: it has announced. Keep
			// the linger here (not at once, as in announced, peers.go): that
			// announcement may be older than our own last one, and clients
			// that followed ours reach us until the winner announces again
			// (it answers our last advert with an announcement).
			return append(acts, ReleaseVIPs{After: r.releaseLinger()})
		}
		// Keep the VIPs until the winner has announced them.
		r.claimant, r.claimantMAC = adv.Src, adv.SrcMAC
		r.claimUntil = now.Add(r.MasterDownInterval())
		return acts
	}
	// A lower-priority router thinks it is Active (a healed partition, a
	// stray takeover). Answer at once so it steps down without waiting for
	// our next advert, and announce the VIPs again: clients may have followed
	// the loser's announcements.
	r.deadline = now.Add(r.cfg.AdvertInterval)
	return []Action{r.advertise(), Reannounce{}}
}

func addrGreater(a, b netip.Addr) bool {
	return a.Compare(b) > 0
}

func (r *Router) setPriority(now time.Time, p uint8) []Action {
	if p == 0 || p == r.priority {
		return nil
	}
	r.priority = p
	if r.state == Active {
		// Tell the Backups at once, so that a better one can preempt without
		// waiting for the next Adver_Timer.
		r.deadline = now.Add(r.cfg.AdvertInterval)
		return []Action{r.advertise()}
	}
	return nil
}

func (r *Router) setFault(now time.Time, ev SetFault) []Action {
	if !ev.Fault {
		r.faultReason = ""
		if r.state != Fault {
			return nil
		}
		return r.becomeBackup(now, "fault cleared: "+ev.Reason)
	}
	r.faultReason = ev.Reason
	switch r.state {
	case Active:
		// Tell the Backups to take over at once and let go.
		r.deadline = time.Time{}
		return []Action{r.to(Fault, ev.Reason), SendAdvert{Priority: 0, Interval: r.cfg.AdvertInterval}, ReleaseVIPs{}}
	case Backup:
		r.deadline = time.Time{}
		return []Action{r.to(Fault, ev.Reason)}
	}
	return nil
}

// impostorFound handles a claimant that did not announce the VIPs within
// Master_Down_Interval: it is reported, ignored until it announces, and this
// router, which kept the VIPs, is master again.
func (r *Router) impostorFound(now time.Time) []Action {
	imp, mac := r.claimant, r.claimantMAC
	r.impostor, r.impostorMAC = imp, mac
	acts := r.becomeActive(now, fmt.Sprintf("%s claimed master but did not announce the VIPs within %v: keeping them", imp, r.MasterDownInterval()))
	return append(acts, Alarm{Kind: AlarmImpostor, Peer: imp.String(), Detail: "claimed master (higher priority) but never announced the VIPs"})
}

package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	macUpper = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x13}
	macForge = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	stranger = netip.MustParseAddr("192.0.2.99")
)

// TestPeerRules is a table of the rules by which a router yields only to a
// router that is really there (issue #11, items 2-4 and 6). Every rule that
// drops an advert changes nothing but a counter: state and timer stay.
func TestPeerRules(t *testing.T) {
	const anyDeadline = time.Duration(-2)
	down100 := 3609375 * time.Microsecond
	// Active at down100, next Adver_Timer at down100+1s.
	active := []step{{0, Startup{}}, {down100, TimerFired{}}}
	await := func(c *Config) { c.AwaitAnnouncement = true }
	// The yield of an awaiting master to upper at 4 s.
	yielded := append(append([]step(nil), active...), step{ms(4000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}})
	tests := []struct {
		name         string
		cfg          Config
		steps        []step
		wantLast     []Action
		wantState    State
		wantDeadline time.Duration // offset from t0; -1 no timer; anyDeadline: not checked
	}{
		{
			name:      "allowlist: higher priority from a source not on the list is dropped, timer untouched",
			cfg:       cfg(func(c *Config) { c.AllowedPeers = []netip.Addr{upper, lower} }),
			steps:     []step{{0, Startup{}}, {ms(1000), AdvertReceived{Src: stranger, Priority: 254, Interval: time.Second}}},
			wantLast:  []Action{Dropped{Reason: DropUnknownPeer, Src: stranger, Detail: "not on the peer allowlist"}},
			wantState: Backup, wantDeadline: down100,
		},
		{
			name:      "allowlist: an active router does not yield to a stranger",
			cfg:       cfg(func(c *Config) { c.AllowedPeers = []netip.Addr{upper, lower} }),
			steps:     append(append([]step(nil), active...), step{ms(4000), AdvertReceived{Src: stranger, Priority: 254, Interval: time.Second}}),
			wantLast:  []Action{Dropped{Reason: DropUnknownPeer, Src: stranger, Detail: "not on the peer allowlist"}},
			wantState: Active, wantDeadline: down100 + time.Second,
		},
		{
			name:      "allowlist: a listed peer is followed",
			cfg:       cfg(func(c *Config) { c.AllowedPeers = []netip.Addr{upper, lower} }),
			steps:     []step{{0, Startup{}}, {ms(1000), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}}},
			wantState: Backup, wantDeadline: ms(1000) + down100,
		},
		{
			name: "MAC pinned from adverts: a known peer's address from another MAC is dropped",
			cfg:  cfg(),
			steps: append(append([]step(nil), active...),
				step{ms(4000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 50, Interval: time.Second}},
				step{ms(4100), AdvertReceived{Src: upper, SrcMAC: macForge, Priority: 200, Interval: time.Second}}),
			wantLast: []Action{Dropped{Reason: DropMACMismatch, Src: upper, MAC: macForge,
				Detail: "192.0.2.13 is pinned at 02:00:00:00:00:13, this advert came from 02:00:00:00:00:66"}},
			wantState: Active, wantDeadline: ms(5000),
		},
		{
			name: "MAC pinned from the neighbour table: a silent backup's address forged from another MAC is dropped",
			cfg:  cfg(),
			steps: append([]step{{0, PeerMAC{Addr: upper, MAC: macUpper}}}, append(append([]step(nil), active...),
				step{ms(4000), AdvertReceived{Src: upper, SrcMAC: macForge, Priority: 200, Interval: time.Second}})...),
			wantLast: []Action{Dropped{Reason: DropMACMismatch, Src: upper, MAC: macForge,
				Detail: "192.0.2.13 is pinned at 02:00:00:00:00:13, this advert came from 02:00:00:00:00:66"}},
			wantState: Active, wantDeadline: down100 + time.Second,
		},
		{
			name: "MAC pin: a peer silent for the pin expiry may come back with a new MAC (replaced NIC)",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(1000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				{ms(1000) + 40*time.Second, AdvertReceived{Src: upper, SrcMAC: macForge, Priority: 200, Interval: time.Second}},
			},
			wantState: Backup, wantDeadline: ms(1000) + 40*time.Second + down100,
		},
		{
			name: "priority 0 honoured only from the master: another peer's is dropped, timer untouched",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(1000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				{ms(1500), AdvertReceived{Src: lower, Priority: 0, Interval: time.Second}},
			},
			wantLast:  []Action{Dropped{Reason: DropForgedPriority0, Src: lower, Detail: "priority 0 from 192.0.2.11, the master is 192.0.2.13"}},
			wantState: Backup, wantDeadline: ms(1000) + down100,
		},
		{
			name: "priority 0 with the master's address from another MAC is dropped",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(1000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				{ms(40000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				{ms(40500), AdvertReceived{Src: upper, SrcMAC: macForge, Priority: 0, Interval: time.Second}},
			},
			wantLast: []Action{Dropped{Reason: DropMACMismatch, Src: upper, MAC: macForge,
				Detail: "192.0.2.13 is pinned at 02:00:00:00:00:13, this advert came from 02:00:00:00:00:66"}},
			wantState: Backup, wantDeadline: ms(40000) + down100,
		},
		{
			name:      "priority 0 with no master known is dropped",
			cfg:       cfg(),
			steps:     []step{{0, Startup{}}, {ms(500), AdvertReceived{Src: upper, Priority: 0, Interval: time.Second}}},
			wantLast:  []Action{Dropped{Reason: DropForgedPriority0, Src: upper, Detail: "priority 0 from 192.0.2.13, the master is none known"}},
			wantState: Backup, wantDeadline: down100,
		},
		{
			name: "priority 0 from the master's address and MAC is honoured (skew time)",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(1000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				{ms(1500), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 0, Interval: time.Second}},
			},
			wantState: Backup, wantDeadline: ms(1500) + 609375*time.Microsecond,
		},
		{
			name:  "await announcement: a master that yields stops announcing, sends a last advert and keeps the VIPs",
			cfg:   cfg(await),
			steps: yielded,
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with higher priority 200 (ours 100)"},
				StopAnnouncing{}, SendAdvert{Priority: 100, Interval: time.Second},
			},
			wantState: Backup, wantDeadline: ms(4000) + down100,
		},
		{
			name:      "await announcement: the winner's announcement releases the VIPs at once (no linger: two holders lose connections)",
			cfg:       cfg(await),
			steps:     append(append([]step(nil), yielded...), step{ms(4010), Announced{MAC: macUpper}}),
			wantLast:  []Action{ReleaseVIPs{}},
			wantState: Backup, wantDeadline: ms(4000) + down100,
		},
		{
			name:      "await announcement: another node's announcement is not the winner's",
			cfg:       cfg(await),
			steps:     append(append([]step(nil), yielded...), step{ms(4010), Announced{MAC: macForge}}),
			wantState: Backup, wantDeadline: ms(4000) + down100,
		},
		{
			name: "impostor: a claimant that has not announced within Master_Down_Interval is reported; we keep serving as master",
			cfg:  cfg(await),
			steps: append(append([]step(nil), yielded...),
				step{ms(5000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}},
				step{ms(4000) + down100, TimerFired{}}),
			wantLast: []Action{
				Transition{From: Backup, To: Active, Reason: "192.0.2.13 claimed master but did not announce the VIPs within 3.609375s: keeping them"},
				SendAdvert{Priority: 100, Interval: time.Second}, AcquireVIPs{},
				Alarm{Kind: AlarmImpostor, Peer: "192.0.2.13", Detail: "claimed master (higher priority) but never announced the VIPs"},
			},
			wantState: Active, wantDeadline: ms(5000) + down100,
		},
		{
			name: "impostor: its adverts are dropped while it does not announce",
			cfg:  cfg(await),
			steps: append(append([]step(nil), yielded...),
				step{ms(4000) + down100, TimerFired{}},
				step{ms(8000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}}),
			wantLast:  []Action{Dropped{Reason: DropImpostor, Src: upper, MAC: macUpper, Detail: "claimed master without announcing the VIPs"}},
			wantState: Active, wantDeadline: anyDeadline,
		},
		{
			name: "impostor: once it announces it is followed again",
			cfg:  cfg(await),
			steps: append(append([]step(nil), yielded...),
				step{ms(4000) + down100, TimerFired{}},
				step{ms(8000), Announced{MAC: macUpper}},
				step{ms(8001), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}}),
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with higher priority 200 (ours 100)"},
				StopAnnouncing{}, SendAdvert{Priority: 100, Interval: time.Second}, ReleaseVIPs{After: time.Second},
			},
			wantState: Backup, wantDeadline: ms(8001) + down100,
		},
		{
			name: "winner has the last word: a loser's last advert makes the master answer and announce again",
			cfg:  cfg(),
			steps: append(append([]step(nil), active...),
				step{ms(4000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}}),
			wantLast:  []Action{SendAdvert{Priority: 100, Interval: time.Second}, Reannounce{}},
			wantState: Active, wantDeadline: ms(5000),
		},
		{
			name: "duplicate owner: another node announcing our VIPs while we are master -> announce again at the next advert",
			cfg:  cfg(),
			steps: append(append([]step(nil), active...),
				step{ms(4000), Announced{MAC: macForge}},
				step{down100 + time.Second, TimerFired{}}),
			wantLast: []Action{SendAdvert{Priority: 100, Interval: time.Second}, Reannounce{},
				Alarm{Kind: AlarmDuplicateOwner, Peer: "02:00:00:00:00:66", Detail: "another node announces our VIPs while we are master; announced them again"}},
			wantState: Active, wantDeadline: down100 + 2*time.Second,
		},
		{
			name: "duplicate owner: a real winner's announcement after its advert is not fought (we stepped down first)",
			cfg:  cfg(await),
			steps: append(append([]step(nil), yielded...),
				step{ms(4001), Announced{MAC: macUpper}},
				step{down100 + time.Second, TimerFired{}}),
			wantLast:  nil,
			wantState: Backup, wantDeadline: ms(4000) + down100,
		},
		{
			name: "await announcement: a winner whose announcement overtook its advert has announced already",
			cfg:  cfg(await),
			steps: append(append([]step(nil), active...),
				step{ms(3999), Announced{MAC: macUpper}},
				step{ms(4000), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second}}),
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with higher priority 200 (ours 100)"},
				StopAnnouncing{}, SendAdvert{Priority: 100, Interval: time.Second}, ReleaseVIPs{After: time.Second},
			},
			wantState: Backup, wantDeadline: ms(4000) + down100,
		},
		{
			name: "stall noticed while master: alarm, advert and announcement at once",
			cfg:  cfg(),
			steps: append(append([]step(nil), active...),
				step{ms(9000), Stalled{Late: 4 * time.Second}}),
			wantLast: []Action{Alarm{Kind: AlarmStall, Detail: "the process did not run for 4s (state Active)"},
				SendAdvert{Priority: 100, Interval: time.Second}, Reannounce{}},
			wantState: Active, wantDeadline: ms(10000),
		},
		{
			name:      "stall noticed while backup: alarm only",
			cfg:       cfg(),
			steps:     []step{{0, Startup{}}, {ms(2000), Stalled{Late: time.Second}}},
			wantLast:  []Action{Alarm{Kind: AlarmStall, Detail: "the process did not run for 1s (state Backup)"}},
			wantState: Backup, wantDeadline: down100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.cfg)
			var got []Action
			for _, s := range tt.steps {
				got = r.Handle(at(s.at), s.ev)
			}
			if diff := cmp.Diff(tt.wantLast, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("actions of the last step (-want +got):\n%s", diff)
			}
			if r.State() != tt.wantState {
				t.Errorf("state = %v, want %v", r.State(), tt.wantState)
			}
			if tt.wantDeadline == anyDeadline {
				return
			}
			wantDeadline := time.Time{}
			if tt.wantDeadline >= 0 {
				wantDeadline = at(tt.wantDeadline)
			}
			if !r.Deadline().Equal(wantDeadline) {
				t.Errorf("deadline = t0+%v, want t0+%v", r.Deadline().Sub(t0), tt.wantDeadline)
			}
		})
	}
}

// TestPinsBounded: adverts from many made-up sources pin at most maxPins
// peers, and a peer pinned before the flood stays protected.
func TestPinsBounded(t *testing.T) {
	r := New(cfg())
	r.Handle(at(0), Startup{})
	r.Handle(at(ms(1)), AdvertReceived{Src: upper, SrcMAC: macUpper, Priority: 200, Interval: time.Second})
	for i := 0; i < 2*maxPins; i++ {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		r.Handle(at(ms(2+i)), AdvertReceived{Src: src, SrcMAC: macForge, Priority: 50, Interval: time.Second})
	}
	if len(r.pins) != maxPins {
		t.Errorf("%d pins, want at most %d", len(r.pins), maxPins)
	}
	got := r.Handle(at(ms(1000)), AdvertReceived{Src: upper, SrcMAC: macForge, Priority: 200, Interval: time.Second})
	if len(got) != 1 || got[0].(Dropped).Reason != DropMACMismatch {
		t.Errorf("forged advert for the pinned peer gave %v, want a mac-mismatch drop", got)
	}
}

package vrrp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	self  = netip.MustParseAddr("192.0.2.12")
	lower = netip.MustParseAddr("192.0.2.11")
	upper = netip.MustParseAddr("192.0.2.13")
)

func cfg(mod ...func(*Config)) Config {
	c := Config{Version: 3, Priority: 100, AdvertInterval: time.Second, Preempt: true, Primary: self}
	for _, m := range mod {
		m(&c)
	}
	return c
}

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// step is one event delivered at an offset from t0.
type step struct {
	at time.Duration
	ev Event
}

func TestTimerFormulas(t *testing.T) {
	tests := []struct {
		name     string
		version  int
		priority uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		// The worked values of the issue: 1 s, priority 100 -> 3.609375 s.
		{name: "6.1 v3 1s priority 100", version: 3, priority: 100, interval: time.Second, skew: 609375 * time.Microsecond, down: 3609375 * time.Microsecond},
		{name: "6.1 v3 1s priority 200", version: 3, priority: 200, interval: time.Second, skew: 218750 * time.Microsecond, down: 3218750 * time.Microsecond},
		{name: "6.1 v3 1s priority 254", version: 3, priority: 254, interval: time.Second, skew: 7812500 * time.Nanosecond, down: 3007812500 * time.Nanosecond},
		{name: "6.1 v3 10ms priority 100", version: 3, priority: 100, interval: 10 * time.Millisecond, skew: 6093750 * time.Nanosecond, down: 36093750 * time.Nanosecond},
		{name: "6.1 v3 100cs priority 1", version: 3, priority: 1, interval: time.Second, skew: 996093750 * time.Nanosecond, down: 3996093750 * time.Nanosecond},
		// RFC 3768 §6.1: v2 skew does not scale with the interval.
		{name: "3768 6.1 v2 3s priority 100", version: 2, priority: 100, interval: 3 * time.Second, skew: 609375 * time.Microsecond, down: 9609375 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Version: tt.version, Priority: tt.priority, AdvertInterval: tt.interval})
			if got := r.SkewTime(); got != tt.skew {
				t.Errorf("SkewTime() = %v, want %v", got, tt.skew)
			}
			if got := r.MasterDownInterval(); got != tt.down {
				t.Errorf("MasterDownInterval() = %v, want %v", got, tt.down)
			}
		})
	}
}

func TestHandle(t *testing.T) {
	down100 := 3609375 * time.Microsecond
	tests := []struct {
		name         string
		cfg          Config
		steps        []step
		wantLast     []Action // actions of the last step
		wantState    State
		wantDeadline time.Duration // offset from t0; -1 means no timer
	}{
		{
			name:         "6.4.1 startup: backup with master down timer",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}},
			wantLast:     []Action{Transition{From: Initialize, To: Backup, Reason: "startup"}},
			wantState:    Backup,
			wantDeadline: down100,
		},
		{
			name:  "6.4.1 startup: priority 255 owner becomes active at once",
			cfg:   cfg(func(c *Config) { c.Priority = 255 }),
			steps: []step{{0, Startup{}}},
			wantLast: []Action{
				Transition{From: Initialize, To: Active, Reason: "startup as address owner (priority 255)"},
				SendAdvert{Priority: 255, Interval: time.Second},
				AcquireVIPs{},
			},
			wantState:    Active,
			wantDeadline: time.Second,
		},
		{
			name:  "startup: a router taking over from this node's active one becomes active at once",
			cfg:   cfg(func(c *Config) { c.TakeOver = true }),
			steps: []step{{0, Startup{}}},
			wantLast: []Action{
				Transition{From: Initialize, To: Active, Reason: "startup: taking over from this node's previous router, which was active"},
				SendAdvert{Priority: 100, Interval: time.Second},
				AcquireVIPs{},
			},
			wantState:    Active,
			wantDeadline: time.Second,
		},
		{
			name:  "startup: a router taking over steps down for a better one",
			cfg:   cfg(func(c *Config) { c.TakeOver = true }),
			steps: []step{{0, Startup{}}, {ms(10), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}}},
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with higher priority 200 (ours 100)"},
				StopAnnouncing{},
				SendAdvert{Priority: 100, Interval: time.Second},
				ReleaseVIPs{After: time.Second},
			},
			wantState:    Backup,
			wantDeadline: ms(10) + down100,
		},
		{
			name:         "startup: a router taking over in fault starts in fault",
			cfg:          cfg(func(c *Config) { c.TakeOver = true }),
			steps:        []step{{0, SetFault{Fault: true, Reason: "link down"}}, {ms(1), Startup{}}},
			wantLast:     []Action{Transition{From: Initialize, To: Fault, Reason: "link down"}},
			wantState:    Fault,
			wantDeadline: -1,
		},
		{
			name:         "6.4.2 backup: timer not yet due does nothing",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(3609), TimerFired{}}},
			wantLast:     nil,
			wantState:    Backup,
			wantDeadline: down100,
		},
		{
			name:  "6.4.2 backup: master down timer fires -> active, advert, VIPs",
			cfg:   cfg(),
			steps: []step{{0, Startup{}}, {down100, TimerFired{}}},
			wantLast: []Action{
				Transition{From: Backup, To: Active, Reason: "master down timer expired (3.609375s without a valid advert from a better router)"},
				SendAdvert{Priority: 100, Interval: time.Second},
				AcquireVIPs{},
			},
			wantState:    Active,
			wantDeadline: down100 + time.Second,
		},
		{
			name:         "6.4.2 backup: advert from a higher priority restarts the master down timer",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(2000), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(2000) + down100,
		},
		{
			name:         "6.4.2 backup: equal priority is followed, not preempted",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(2000), AdvertReceived{Src: lower, Priority: 100, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(2000) + down100,
		},
		{
			name:         "6.4.2 backup: learns the active router's interval (v3)",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(1000), AdvertReceived{Src: upper, Priority: 200, Interval: 2 * time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(1000) + 6*time.Second + 1218750*time.Microsecond,
		},
		{
			name:         "6.4.2 backup: lower priority with preempt is discarded (timer keeps running)",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(2000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: down100,
		},
		{
			name:         "6.4.2 backup: lower priority without preempt is followed",
			cfg:          cfg(func(c *Config) { c.Preempt = false }),
			steps:        []step{{0, Startup{}}, {ms(2000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(2000) + down100,
		},
		{
			name: "preempt delay: lower priority followed while the delay runs",
			cfg:  cfg(func(c *Config) { c.PreemptDelay = 10 * time.Second }),
			steps: []step{
				{0, Startup{}},
				{ms(9000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantState:    Backup,
			wantDeadline: ms(9000) + down100,
		},
		{
			name: "preempt delay: lower priority discarded once the delay is over",
			cfg:  cfg(func(c *Config) { c.PreemptDelay = 10 * time.Second }),
			steps: []step{
				{0, Startup{}},
				{ms(9000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
				{ms(10000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantState:    Backup,
			wantDeadline: ms(9000) + down100,
		},
		{
			name: "preempt hold: lower priority followed while held",
			cfg:  cfg(),
			steps: []step{
				{0, SetPreemptHold{Hold: true}}, {0, Startup{}},
				{ms(2000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantState:    Backup,
			wantDeadline: ms(2000) + down100,
		},
		{
			name: "preempt hold released: lower priority discarded again",
			cfg:  cfg(),
			steps: []step{
				{0, SetPreemptHold{Hold: true}}, {0, Startup{}},
				{ms(2000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
				{ms(2500), SetPreemptHold{Hold: false}},
				{ms(3000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantState:    Backup,
			wantDeadline: ms(2000) + down100,
		},
		{
			name:         "preempt hold: no master at all still means takeover",
			cfg:          cfg(),
			steps:        []step{{0, SetPreemptHold{Hold: true}}, {0, Startup{}}, {down100, TimerFired{}}},
			wantLast:     []Action{Transition{From: Backup, To: Active, Reason: "master down timer expired (3.609375s without a valid advert from a better router)"}, SendAdvert{Priority: 100, Interval: time.Second}, AcquireVIPs{}},
			wantState:    Active,
			wantDeadline: down100 + time.Second,
		},
		{
			name:         "6.4.2 backup: priority-0 advert shortens the timer to skew time",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(1000), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}}, {ms(2000), AdvertReceived{Src: upper, Priority: 0, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(2000) + 609375*time.Microsecond,
		},
		{
			name: "6.4.2 backup: after priority 0, takeover at skew time",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(1000), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}},
				{ms(2000), AdvertReceived{Src: upper, Priority: 0, Interval: time.Second}},
				{ms(2000) + 609375*time.Microsecond, TimerFired{}},
			},
			wantLast: []Action{
				Transition{From: Backup, To: Active, Reason: "master down timer expired (3.609375s without a valid advert from a better router)"},
				SendAdvert{Priority: 100, Interval: time.Second},
				AcquireVIPs{},
			},
			wantState:    Active,
			wantDeadline: ms(3000) + 609375*time.Microsecond,
		},
		{
			name:         "6.4.3 active: adver timer fires -> advert, timer restarted",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {down100, TimerFired{}}, {down100 + time.Second, TimerFired{}}},
			wantLast:     []Action{SendAdvert{Priority: 100, Interval: time.Second}},
			wantState:    Active,
			wantDeadline: down100 + 2*time.Second,
		},
		{
			name: "6.4.3 active: higher priority advert -> backup, VIPs released",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), AdvertReceived{Src: upper, Priority: 200, Interval: time.Second}},
			},
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with higher priority 200 (ours 100)"},
				StopAnnouncing{},
				SendAdvert{Priority: 100, Interval: time.Second},
				ReleaseVIPs{After: time.Second},
			},
			wantState:    Backup,
			wantDeadline: ms(4000) + down100,
		},
		{
			name: "6.4.3 active: equal priority from a higher address -> backup",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), AdvertReceived{Src: upper, Priority: 100, Interval: time.Second}},
			},
			wantLast: []Action{
				Transition{From: Active, To: Backup, Reason: "advert from 192.0.2.13 with equal priority 100 and a higher address"},
				StopAnnouncing{},
				SendAdvert{Priority: 100, Interval: time.Second},
				ReleaseVIPs{After: time.Second},
			},
			wantState:    Backup,
			wantDeadline: ms(4000) + down100,
		},
		{
			name: "6.4.3 active: equal priority from a lower address -> stays, answers at once",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), AdvertReceived{Src: lower, Priority: 100, Interval: time.Second}},
			},
			wantLast:     []Action{SendAdvert{Priority: 100, Interval: time.Second}, Reannounce{}},
			wantState:    Active,
			wantDeadline: ms(5000),
		},
		{
			name: "active answers a lower-priority advert at once and re-announces",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantLast:     []Action{SendAdvert{Priority: 100, Interval: time.Second}, Reannounce{}},
			wantState:    Active,
			wantDeadline: ms(5000),
		},
		{
			name: "6.4.3 active: priority-0 advert from another router is answered at once",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), AdvertReceived{Src: lower, Priority: 0, Interval: time.Second}},
			},
			wantLast:     []Action{SendAdvert{Priority: 100, Interval: time.Second}},
			wantState:    Active,
			wantDeadline: ms(5000),
		},
		{
			name: "6.4.3 active: shutdown sends priority 0 and keeps the VIPs",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), Shutdown{}},
			},
			wantLast: []Action{
				Transition{From: Active, To: Releasing, Reason: "shutdown: priority 0 sent, keeping the VIPs until another router is active"},
				SendAdvert{Priority: 0, Interval: time.Second},
			},
			wantState: Releasing,
			// Master_Down_Interval at priority 1 plus one interval.
			wantDeadline: ms(4000) + 3996093750*time.Nanosecond + time.Second,
		},
		{
			name: "releasing: the successor's advert starts the linger",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), Shutdown{}},
				{ms(4300), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
			},
			wantLast:     nil,
			wantState:    Releasing,
			wantDeadline: ms(5300),
		},
		{
			name: "releasing: linger capped at 100ms for a 10ms interval",
			cfg:  cfg(func(c *Config) { c.AdvertInterval = 10 * time.Millisecond }),
			steps: []step{
				{0, Startup{}}, {ms(40), TimerFired{}},
				{ms(4000), Shutdown{}},
				{ms(4030), AdvertReceived{Src: lower, Priority: 50, Interval: 10 * time.Millisecond}},
			},
			wantLast:     nil,
			wantState:    Releasing,
			wantDeadline: ms(4130),
		},
		{
			name: "releasing: after the linger the VIPs are released",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), Shutdown{}},
				{ms(4300), AdvertReceived{Src: lower, Priority: 50, Interval: time.Second}},
				{ms(4500), AdvertReceived{Src: upper, Priority: 60, Interval: time.Second}},
				{ms(5300), TimerFired{}},
			},
			wantLast: []Action{
				Transition{From: Releasing, To: Initialize, Reason: "shutdown: 192.0.2.11 is active (priority 50), releasing the VIPs"},
				ReleaseVIPs{},
				Stopped{},
			},
			wantState:    Initialize,
			wantDeadline: -1,
		},
		{
			name: "releasing: another priority-0 advert is not a successor",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), Shutdown{}},
				{ms(4300), AdvertReceived{Src: lower, Priority: 0, Interval: time.Second}},
			},
			wantLast:     nil,
			wantState:    Releasing,
			wantDeadline: ms(4000) + 3996093750*time.Nanosecond + time.Second,
		},
		{
			name: "releasing: no successor in time -> VIPs released anyway",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), Shutdown{}},
				{ms(4000) + 3996093750*time.Nanosecond + time.Second, TimerFired{}},
			},
			wantLast: []Action{
				Transition{From: Releasing, To: Initialize, Reason: "shutdown: no other router became active in time, releasing the VIPs"},
				ReleaseVIPs{},
				Stopped{},
			},
			wantState:    Initialize,
			wantDeadline: -1,
		},
		{
			name:         "6.4.2 backup: shutdown cancels the timer",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {ms(100), Shutdown{}}},
			wantLast:     []Action{Transition{From: Backup, To: Initialize, Reason: "shutdown"}, Stopped{}},
			wantState:    Initialize,
			wantDeadline: -1,
		},
		{
			name:         "priority change in backup recomputes the skew at the next advert",
			cfg:          cfg(),
			steps:        []step{{0, Startup{}}, {0, SetPriority{Priority: 200}}, {ms(1000), AdvertReceived{Src: upper, Priority: 250, Interval: time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(1000) + 3218750*time.Microsecond,
		},
		{
			name: "priority change in active is advertised at once",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), SetPriority{Priority: 80}},
			},
			wantLast:     []Action{SendAdvert{Priority: 80, Interval: time.Second}},
			wantState:    Active,
			wantDeadline: ms(5000),
		},
		{
			name: "fault in active: priority 0 sent, VIPs released, nothing more sent",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}}, {down100, TimerFired{}},
				{ms(4000), SetFault{Fault: true, Reason: "track check api failed"}},
			},
			wantLast: []Action{
				Transition{From: Active, To: Fault, Reason: "track check api failed"},
				SendAdvert{Priority: 0, Interval: time.Second},
				ReleaseVIPs{},
			},
			wantState:    Fault,
			wantDeadline: -1,
		},
		{
			name: "fault cleared -> backup",
			cfg:  cfg(),
			steps: []step{
				{0, Startup{}},
				{ms(100), SetFault{Fault: true, Reason: "interface down"}},
				{ms(5000), SetFault{Fault: false, Reason: "interface up"}},
			},
			wantLast:     []Action{Transition{From: Fault, To: Backup, Reason: "fault cleared: interface up"}},
			wantState:    Backup,
			wantDeadline: ms(5000) + down100,
		},
		{
			name:         "fault before startup starts in fault",
			cfg:          cfg(),
			steps:        []step{{0, SetFault{Fault: true, Reason: "interface down"}}, {0, Startup{}}},
			wantLast:     []Action{Transition{From: Initialize, To: Fault, Reason: "interface down"}},
			wantState:    Fault,
			wantDeadline: -1,
		},
		{
			name:         "v2: interval is not learned from the advert",
			cfg:          cfg(func(c *Config) { c.Version = 2 }),
			steps:        []step{{0, Startup{}}, {ms(1000), AdvertReceived{Src: upper, Priority: 200, Interval: 2 * time.Second}}},
			wantState:    Backup,
			wantDeadline: ms(1000) + down100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.cfg)
			var got []Action
			for _, s := range tt.steps {
				got = r.Handle(at(s.at), s.ev)
			}
			if diff := cmp.Diff(tt.wantLast, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("actions of the last step (-want +got):\n%s", diff)
			}
			if r.State() != tt.wantState {
				t.Errorf("state = %v, want %v", r.State(), tt.wantState)
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

func TestKeepalivedStateNames(t *testing.T) {
	tests := []struct {
		state State
		want  string
	}{
		{Initialize, "STOP"}, {Backup, "BACKUP"}, {Active, "MASTER"}, {Releasing, "MASTER"}, {Fault, "FAULT"},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			if got := tt.state.Keepalived(); got != tt.want {
				t.Errorf("Keepalived() = %q, want %q", got, tt.want)
			}
		})
	}
}

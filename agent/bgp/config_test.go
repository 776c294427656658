package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		ASN:      65001,
		RouterID: netip.MustParseAddr("192.0.2.1"),
		Peers:    []Peer{{Address: netip.MustParseAddr("192.0.2.254"), ASN: 65000, BFD: true}},
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{name: "valid", change: func(*Config) {}},
		{name: "valid iBGP, IPv6 peer, multihop without BFD, 4-byte ASN", change: func(c *Config) {
			c.ASN = 4200000000
			c.Peers = append(c.Peers,
				Peer{Address: netip.MustParseAddr("2001:db8::1"), ASN: 4200000000, SourceAddress: netip.MustParseAddr("2001:db8::2")},
				Peer{Address: netip.MustParseAddr("198.51.100.1"), ASN: 65010, MultihopTTL: 4, HoldTime: 3 * time.Second, KeepaliveTime: time.Second})
		}},
		{name: "ASN zero", change: func(c *Config) { c.ASN = 0 }, want: []string{"asn: 0"}},
		{name: "ASN reserved", change: func(c *Config) { c.ASN = 0xFFFFFFFF }, want: []string{"asn: 4294967295"}},
		{name: "router ID IPv6", change: func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") }, want: []string{"routerID"}},
		{name: "router ID missing", change: func(c *Config) { c.RouterID = netip.Addr{} }, want: []string{"routerID"}},
		{name: "no peers", change: func(c *Config) { c.Peers = nil }, want: []string{"peers: none configured"}},
		{name: "peer without address or ASN", change: func(c *Config) { c.Peers[0] = Peer{} }, want: []string{"peers[0].address", "peers[0].asn"}},
		{name: "duplicate peer", change: func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, want: []string{"peers[1].address: 192.0.2.254 is also peers[0]"}},
		{name: "source of another family", change: func(c *Config) { c.Peers[0].SourceAddress = netip.MustParseAddr("2001:db8::2") }, want: []string{"peers[0].sourceAddress"}},
		{name: "hold time below 3s", change: func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second }, want: []string{"peers[0].holdTime: 2s is below 3s"}},
		{name: "hold time fractional", change: func(c *Config) { c.Peers[0].HoldTime = 4500 * time.Millisecond }, want: []string{"peers[0].holdTime: 4.5s is not a whole number"}},
		{name: "keepalive above hold", change: func(c *Config) {
			c.Peers[0].HoldTime = 9 * time.Second
			c.Peers[0].KeepaliveTime = 10 * time.Second
		}, want: []string{"peers[0].keepaliveTime"}},
		{name: "connect retry 1s", change: func(c *Config) { c.Peers[0].ConnectRetry = time.Second }, want: []string{"peers[0].connectRetry"}},
		{name: "password too long", change: func(c *Config) { c.Peers[0].Password = strings.Repeat("x", 81) }, want: []string{"peers[0].password: 81 bytes"}},
		{name: "BFD with multihop", change: func(c *Config) { c.Peers[0].MultihopTTL = 2 }, want: []string{"peers[0].bfd: BFD here is single-hop"}},
		{name: "BFD interval below 10ms", change: func(c *Config) { c.BFD.MinRx = 9 * time.Millisecond }, want: []string{"bfd.minRx: 9ms is below 10ms"}},
		{name: "BFD tx interval below 10ms", change: func(c *Config) { c.BFD.MinTx = time.Millisecond }, want: []string{"bfd.minTx"}},
		{name: "BFD interval too long for GoBGP", change: func(c *Config) { c.BFD.MinTx = 2 * time.Hour }, want: []string{"bfd.minTx: 2h0m0s is above"}},
		{name: "every problem at once", change: func(c *Config) {
			c.ASN = 0
			c.Peers[0].ASN = 0
			c.BFD.MinRx = time.Millisecond
		}, want: []string{"asn: 0", "peers[0].asn", "bfd.minRx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig().withDefaults()
	if c.BFD.MinTx != 300*time.Millisecond || c.BFD.MinRx != 300*time.Millisecond || c.BFD.Multiplier != 3 {
		t.Errorf("BFD defaults = %+v, want 300ms/300ms x3", c.BFD)
	}
	if got := c.BFD.DetectionTime(); got != 900*time.Millisecond {
		t.Errorf("DetectionTime() = %s, want 900ms", got)
	}
	p := c.Peers[0]
	if p.HoldTime != 90*time.Second || p.KeepaliveTime != 30*time.Second || p.ConnectRetry != 5*time.Second {
		t.Errorf("peer timer defaults = hold %s keepalive %s retry %s, want 90s 30s 5s", p.HoldTime, p.KeepaliveTime, p.ConnectRetry)
	}
	if c.GracefulWait != DefaultGracefulWait {
		t.Errorf("GracefulWait = %s, want %s", c.GracefulWait, DefaultGracefulWait)
	}
	// A hold time of 10s gives a whole-second keepalive of 3s, not 3.33s.
	c = validConfig()
	c.Peers[0].HoldTime = 10 * time.Second
	if got := c.withDefaults().Peers[0].KeepaliveTime; got != 3*time.Second {
		t.Errorf("keepalive for hold 10s = %s, want 3s", got)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestBFDMicroseconds(t *testing.T) {
	// GoBGP's BFD API takes microseconds: 300 ms is 300000, 10 ms 10000.
	for d, want := range map[time.Duration]uint32{
		300 * time.Millisecond: 300000,
		10 * time.Millisecond:  10000,
		time.Second:            1000000,
	} {
		if got := micros(d); got != want {
			t.Errorf("micros(%s) = %d, want %d", d, got, want)
		}
	}
	a := &Announcer{cfg: validConfig().withDefaults()}
	a.cfg.BFD = BFDProfile{MinTx: 30 * time.Millisecond, MinRx: 50 * time.Millisecond, Multiplier: 4}
	b := a.apiPeer(a.cfg.Peers[0]).GetBfd()
	if !b.GetEnabled() || b.GetDesiredMinimumTxInterval() != 30000 || b.GetRequiredMinimumReceive() != 50000 || b.GetDetectionMultiplier() != 4 {
		t.Errorf("BFD peer config = %v, want enabled, 30000/50000 us x4", b)
	}
}

func TestHostPrefix(t *testing.T) {
	tests := []struct {
		in, want string // want "" : an error
	}{
		{"192.0.2.10", "192.0.2.10/32"},
		{"2001:db8::10", "2001:db8::10/128"},
		{"::ffff:192.0.2.10", "192.0.2.10/32"},
		{"0.0.0.0", ""},
		{"::", ""},
		{"127.0.0.1", ""},
		{"224.0.0.5", ""},
		{"fe80::1", ""},
	}
	for _, tt := range tests {
		got, err := hostPrefix(netip.MustParseAddr(tt.in))
		if tt.want == "" {
			if err == nil {
				t.Errorf("hostPrefix(%s) = %s, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("hostPrefix(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := hostPrefix(netip.Addr{}); err == nil {
		t.Error("hostPrefix(zero) = nil error")
	}
}

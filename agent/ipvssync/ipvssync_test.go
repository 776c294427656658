package ipvssync

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink/nl"
)

// TestDaemonAttrs checks the NEW_DAEMON nest byte by byte (little-endian
// host): the layout the kernel's ip_vs_daemon_policy expects.
func TestDaemonAttrs(t *testing.T) {
	if nl.NativeEndian().Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden bytes are for a little-endian host")
	}
	tests := []struct {
		name string
		d    Daemon
		want string
	}{{
		name: "kernel defaults",
		d:    Daemon{State: Backup, Interface: "eth0", SyncID: 51},
		want: "2000" + "0300" + // nest IPVS_CMD_ATTR_DAEMON, 32 bytes
			"0800" + "0100" + "02000000" + // state backup
			"0900" + "0200" + "6574683000000000" + // "eth0\0" padded
			"0800" + "0300" + "33000000", // sync id 51
	}, {
		name: "every setting, IPv4 group",
		d:    Daemon{State: Master, Interface: "br0", SyncID: 7, MaxLen: 1400, Group: netip.MustParseAddr("239.1.2.3"), Port: 8849, TTL: 2},
		want: "3c00" + "0300" +
			"0800" + "0100" + "01000000" +
			"0800" + "0200" + "62723000" +
			"0800" + "0300" + "07000000" +
			"0600" + "0400" + "7805" + "0000" + // maxlen 1400, native
			"0800" + "0500" + "ef010203" + // group, network order
			"0600" + "0700" + "2291" + "0000" + // port 8849, network order
			"0500" + "0800" + "02" + "000000", // ttl
	}, {
		name: "IPv6 group",
		d:    Daemon{State: Master, Interface: "br0", Group: netip.MustParseAddr("ff02::81")},
		want: "3000" + "0300" +
			"0800" + "0100" + "01000000" +
			"0800" + "0200" + "62723000" +
			"0800" + "0300" + "00000000" +
			"1400" + "0600" + "ff020000000000000000000000000081",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(daemonAttrs(tt.d).Serialize())
			if got != tt.want {
				t.Errorf("attrs\n got %s\nwant %s", got, tt.want)
			}
			// The kernel answers GET_DAEMON with the same nest.
			msg := append([]byte{cmdNewDaemon, genlVersion, 0, 0}, daemonAttrs(tt.d).Serialize()...)
			back, ok, err := parseDaemonMsg(msg)
			if err != nil || !ok {
				t.Fatalf("parse: ok %v, %v", ok, err)
			}
			if back != tt.d {
				t.Errorf("parsed %+v, want %+v", back, tt.d)
			}
		})
	}
}

func TestParseDaemonErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":         {1, 1},
		"no state":      append([]byte{cmdNewDaemon, 1, 0, 0}, nl.NewRtAttr(cmdAttrDaemon, nl.NewRtAttr(daemonAttrSyncID, nl.Uint32Attr(1)).Serialize()).Serialize()...),
		"short sync id": append([]byte{cmdNewDaemon, 1, 0, 0}, nl.NewRtAttr(cmdAttrDaemon, nl.NewRtAttr(daemonAttrSyncID, []byte{1}).Serialize()).Serialize()...),
	} {
		if _, ok, err := parseDaemonMsg(b); err == nil || ok {
			t.Errorf("%s: ok %v, err %v; want an error", name, ok, err)
		}
	}
}

func TestDaemonValidate(t *testing.T) {
	tests := []struct {
		d    Daemon
		want string // "" = valid
	}{
		{Daemon{State: Master, Interface: "eth0"}, ""},
		{Daemon{State: 3, Interface: "eth0"}, "state 3"},
		{Daemon{State: Backup}, `interface ""`},
		{Daemon{State: Backup, Interface: "a-very-long-interface-name"}, "must be 1-15"},
		{Daemon{State: Backup, Interface: "eth0", Group: netip.MustParseAddr("192.0.2.1")}, "multicast"},
	}
	for _, tt := range tests {
		err := tt.d.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.d, err, tt.want)
		}
	}
}

// fakeKernel keeps daemons as the kernel does: one per state, defaults
// filled in, EEXIST for a second.
type fakeKernel struct {
	running map[State]Daemon
	ops     []string
	fail    error
}

func (f *fakeKernel) Daemons() ([]Daemon, error) {
	var out []Daemon
	for _, s := range []State{Master, Backup} {
		if d, ok := f.running[s]; ok {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeKernel) Start(d Daemon) error {
	f.ops = append(f.ops, "start "+d.State.String())
	if f.fail != nil {
		return f.fail
	}
	if _, ok := f.running[d.State]; ok {
		return errors.New("file exists")
	}
	d = d.normal()
	if d.MaxLen == 0 {
		d.MaxLen = 1472
	}
	f.running[d.State] = d
	return nil
}

func (f *fakeKernel) Stop(s State) error {
	f.ops = append(f.ops, "stop "+s.String())
	delete(f.running, s)
	return nil
}

func TestManagerSync(t *testing.T) {
	base := Config{Interface: "eth0", SyncID: 51}
	tests := []struct {
		name    string
		running []Daemon
		want    *Config
		ops     []string
	}{
		{"start both", nil, &base, []string{"start master", "start backup"}},
		{"keep matching", []Daemon{base.daemon(Master).normal(), base.daemon(Backup).normal()}, &base, nil},
		{"start missing backup", []Daemon{base.daemon(Master).normal()}, &base, []string{"start backup"}},
		{"replace other sync id", []Daemon{{State: Master, Interface: "eth0", SyncID: 9}}, &base, []string{"stop master", "start master", "start backup"}},
		{"stop all", []Daemon{base.daemon(Master), base.daemon(Backup)}, nil, []string{"stop master", "stop backup"}},
		{"nothing to stop", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &fakeKernel{running: map[State]Daemon{}}
			for _, d := range tt.running {
				k.running[d.State] = d
			}
			m := NewManager(k, logr.Discard())
			got, err := m.Sync(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(k.ops, tt.ops) {
				t.Errorf("ops %v, want %v", k.ops, tt.ops)
			}
			if tt.want == nil && len(got) != 0 || tt.want != nil && len(got) != 2 {
				t.Errorf("running after Sync: %v", got)
			}
			// A second Sync changes nothing.
			k.ops = nil
			if _, err := m.Sync(tt.want); err != nil || k.ops != nil {
				t.Errorf("second Sync: ops %v, err %v; want none", k.ops, err)
			}
		})
	}
}

func TestManagerSyncError(t *testing.T) {
	k := &fakeKernel{running: map[State]Daemon{}, fail: errors.New("no such device")}
	_, err := NewManager(k, logr.Discard()).Sync(&Config{Interface: "eth9"})
	if err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Fatalf("err %v, want the kernel's", err)
	}
}

// connSyncSample is /proc/net/ip_vs_conn_sync as the kernel writes it
// (ip_vs_conn_sync_seq_show: origin "LOCAL" or "SYNC", %pI6 for IPv6).
const connSyncSample = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C0000264 A1B2 C0000264 1F90 C0000205 1F90 ESTABLISHED LOCAL      899
TCP C0000264 A1B3 C0000264 1F90 C0000206 1F90 ESTABLISHED SYNC       899
TCP C0000264 A1B4 C0000264 1F90 C0000206 1F90 FIN_WAIT    SYNC        60
TCP 2001:0db8:0000:0000:0000:0000:0000:0064 1F90 2001:0db8:0000:0000:0000:0000:0000:0100 A1B2 2001:0db8:0000:0000:0000:0000:0000:0005 1F90 ESTABLISHED LOCAL     899
UDP C0000264 A1B5 C0000264 0035 C0000205 0035 UDP         SYNC       300
TCP C0000264 ZZZZ C0000264 1F90 C0000205 1F90 ESTABLISHED SYNC       899
`

func TestParseConnCounts(t *testing.T) {
	got, err := parseConnCounts(strings.NewReader(connSyncSample))
	if err != nil {
		t.Fatal(err)
	}
	if want := (ConnCounts{Local: 2, Synced: 4}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseConnections(t *testing.T) {
	got, err := parseConnections(strings.NewReader(connSyncSample))
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := []Connection{
		{Protocol: "TCP", Client: ap("192.0.2.100:41394"), VIP: ap("192.0.2.100:8080"), Real: ap("192.0.2.5:8080"), State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: "TCP", Client: ap("192.0.2.100:41395"), VIP: ap("192.0.2.100:8080"), Real: ap("192.0.2.6:8080"), State: "ESTABLISHED", Synced: true, Expires: 899 * time.Second},
		{Protocol: "TCP", Client: ap("192.0.2.100:41396"), VIP: ap("192.0.2.100:8080"), Real: ap("192.0.2.6:8080"), State: "FIN_WAIT", Synced: true, Expires: 60 * time.Second},
		{Protocol: "TCP", Client: ap("[2001:db8::64]:8080"), VIP: ap("[2001:db8::100]:41394"), Real: ap("[2001:db8::5]:8080"), State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: "UDP", Client: ap("192.0.2.100:41397"), VIP: ap("192.0.2.100:53"), Real: ap("192.0.2.5:53"), State: "UDP", Synced: true, Expires: 300 * time.Second},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("connections (-want +got):\n%s", diff)
	}
}

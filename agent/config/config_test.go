package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// cmpOpts compares Configs: netip values by ==, Hash ignored.
var cmpOpts = cmp.Options{cmpopts.IgnoreFields(Config{}, "Hash"), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func defaultIPVS() IPVS {
	return IPVS{ResyncInterval: 10 * time.Second, CheckConcurrency: 16, Sync: defaultSync(0), RecordFile: "/run/vipvs/agent.ipvs.json"}
}

// defaultSync is ipvs.connectionSync by default, for a first router with
// services of VRID id (0: no services).
func defaultSync(id uint8) ConnectionSync {
	return ConnectionSync{Enabled: true, SyncID: id, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}
}

func defaultAnnounce() Announce { return Announce{Count: 5, RepeatDelay: time.Second} }

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		name string
		file string
		want *Config
	}{
		{
			name: "multicast, every default written out",
			file: "agent.yaml",
			want: &Config{
				NodeName:     "master-0",
				IPVS:         defaultIPVS(),
				StatusListen: "127.0.0.1:9444",
				StatusSocket: "/run/vipvs/agent.sock",
				Notify:       Notify{Command: []string{"/usr/local/bin/notify.sh"}, Timeout: 10 * time.Second},
				Routers: []Router{{
					Name: "api", VRID: 51, Interface: "eth0", Version: 3, Priority: 100,
					AdvertInterval: time.Second, Preempt: true, ChecksumMode: ChecksumPseudoHeader,
					VIPs: prefixes("192.0.2.100/24"), Announce: defaultAnnounce(),
				}},
			},
		},
		{
			name: "unicast, v2 and v3",
			file: "unicast.yaml",
			want: &Config{
				NodeName:     "master-1",
				IPVS:         defaultIPVS(),
				StatusListen: "127.0.0.1:9444",
				StatusSocket: "/run/vipvs/agent.sock",
				Routers: []Router{
					{
						Name: "api", VRID: 51, Interface: "ens3", Version: 3, Priority: 110,
						AdvertInterval: 100 * time.Millisecond, Preempt: true, PreemptDelay: 30 * time.Second,
						SourceAddr: netip.MustParseAddr("192.0.2.12"), Peers: addrs("192.0.2.11", "192.0.2.13"),
						VIPs: prefixes("192.0.2.100/24"), Announce: defaultAnnounce(),
					},
					{
						Name: "ingress", VRID: 52, Interface: "ens3", Version: 3, Priority: 90,
						AdvertInterval: time.Second, Preempt: true, ChecksumMode: ChecksumRFC9568,
						SourceAddr: netip.MustParseAddr("192.0.2.12"), Peers: addrs("192.0.2.11", "192.0.2.13"),
						VIPs:     prefixes("192.0.2.101/24", "192.0.2.102/32"),
						Announce: Announce{Count: 3, RepeatDelay: 2 * time.Second, RefreshInterval: 30 * time.Second},
					},
					{
						Name: "legacy", VRID: 53, Interface: "ens4", Version: 2, Priority: 100,
						AdvertInterval: 2 * time.Second, Preempt: false, AuthPassword: "k8s-pass",
						Peers: addrs("198.51.100.11"), VIPs: prefixes("198.51.100.100/24"), Announce: defaultAnnounce(),
					},
				},
			},
		},
		{
			name: "IPv6",
			file: "ipv6.yaml",
			want: &Config{
				NodeName:     "master-2",
				IPVS:         IPVS{ResyncInterval: 10 * time.Second, CheckConcurrency: 16, Sync: defaultSync(0)}, // no socket, no record
				StatusListen: "[::1]:9444",
				Routers: []Router{{
					Name: "api-v6", VRID: 61, Interface: "eth0", Version: 3, IPv6: true, Priority: 255,
					AdvertInterval: 10 * time.Millisecond, Preempt: true,
					Peers: addrs("fe80::11", "fe80::12"), VIPs: prefixes("2001:db8::100/64", "2001:db8::101/128"),
					Announce: defaultAnnounce(),
				}},
			},
		},
	}
	tests = append(tests, struct {
		name string
		file string
		want *Config
	}{
		name: "virtual services",
		file: "services.yaml",
		want: &Config{
			NodeName:     "master-0",
			StatusListen: "127.0.0.1:9444",
			StatusSocket: "/run/vipvs/agent.sock",
			IPVS:         IPVS{ResyncInterval: 30 * time.Second, CheckConcurrency: 16, Sync: defaultSync(51), RecordFile: "/run/vipvs/agent.ipvs.json"},
			Routers: []Router{
				{
					Name: "api", VRID: 51, Interface: "eth0", Version: 3, Priority: 100,
					AdvertInterval: time.Second, Preempt: true, VIPs: prefixes("192.0.2.100/24"), Announce: defaultAnnounce(),
				},
				{
					Name: "ingress", VRID: 52, Interface: "eth0", Version: 3, Priority: 100,
					AdvertInterval: time.Second, Preempt: true, VIPs: prefixes("192.0.2.101/24"), Announce: defaultAnnounce(),
				},
			},
			Services: []VirtualService{
				{
					Router: "api", Name: "api", Port: 6443, Protocol: "TCP", Scheduler: "rr", Forwarding: "NAT",
					RealServers: []RealServer{
						{Addr: netip.MustParseAddrPort("192.0.2.11:6443"), Weight: 1},
						{Addr: netip.MustParseAddrPort("192.0.2.12:6443"), Weight: 1},
						{Addr: netip.MustParseAddrPort("192.0.2.13:6443"), Weight: 2},
					},
					HealthCheck: &RealServerCheck{
						HTTP:     &RealServerHTTPCheck{HTTPS: true, Path: "/readyz", ExpectStatus: []int{200}, InsecureSkipVerify: true},
						Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2,
					},
				},
				{
					Router: "ingress", Name: "http", Port: 80, Protocol: "TCP", Scheduler: "wlc", Forwarding: "DR",
					Persistence: time.Minute,
					RealServers: []RealServer{{Addr: netip.MustParseAddrPort("192.0.2.21:80"), Weight: 1}},
					HealthCheck: &RealServerCheck{TCP: true, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
				},
				{
					Router: "ingress", Name: "dns", Port: 53, Protocol: "UDP", Scheduler: "wlc", Forwarding: "NAT",
					RealServers: []RealServer{{Addr: netip.MustParseAddrPort("192.0.2.21:5353"), Weight: 1}},
					HealthCheck: &RealServerCheck{Exec: []string{"/usr/bin/dig", "+short"}, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
				},
			},
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load(%s) error: %v", path, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Errorf("Load(%s) (-want +got):\n%s", path, diff)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if want := hex.EncodeToString(sum[:]); got.Hash != want {
				t.Errorf("Hash = %s, want %s", got.Hash, want)
			}
		})
	}
}

func TestMulticast(t *testing.T) {
	if !(Router{}).Multicast() {
		t.Error("Router without peers: Multicast() = false, want true")
	}
	if (Router{Peers: addrs("192.0.2.1")}).Multicast() {
		t.Error("Router with peers: Multicast() = true, want false")
	}
}

const goodHeader = "apiVersion: agent.vipvs.io/v1alpha1\nkind: AgentConfig\ninterface: eth0\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want are substrings the error must contain.
		want []string
		// fieldErrors is the number of field errors, or 0 for an error
		// that is not an *InvalidError.
		fieldErrors int
	}{
		{name: "empty", yaml: "", want: []string{"invalid agent config: parsing YAML: the document is empty"}},
		{name: "comment only", yaml: "# nothing\n", want: []string{"the document is empty"}},
		{name: "not a mapping", yaml: "- a\n- b\n", want: []string{"the document must be a mapping"}},
		{name: "syntax error", yaml: "apiVersion: [\n", want: []string{"invalid agent config: parsing YAML: yaml: line"}},
		{name: "two documents", yaml: goodHeader + "virtualRouters: [{name: a, vrid: 1, vips: [192.0.2.1]}]\n---\n" + goodHeader,
			want: []string{"found more than one document, want exactly one"}},
		{name: "duplicate key", yaml: goodHeader + "interface: eth1\nvirtualRouters: []\n",
			want: []string{`key "interface" already set in map`}},
		{name: "unknown field",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vird: 1\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].vird: Forbidden: unknown field; known fields: name, vrid,`},
			fieldErrors: 1},
		{name: "field in wrong case",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  VRID: 1\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].VRID: Forbidden: unknown field; field names are case-sensitive: did you mean "vrid"?`},
			fieldErrors: 1},
		{name: "every unknown field is listed",
			yaml:        goodHeader + "statuss: {}\nvirtualRouters:\n- name: a\n  vrid: 1\n  vips: [192.0.2.1]\n  annouce: {}\n  unicastpeers: []\n",
			want:        []string{"invalid agent config (3 problems): statuss: Forbidden", "virtualRouters[0].annouce: Forbidden", `virtualRouters[0].unicastpeers: Forbidden: unknown field; field names are case-sensitive: did you mean "unicastPeers"?`},
			fieldErrors: 3},
		{name: "string for an integer",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: \"51\"\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].vrid: Invalid value: "51": must be an integer, not a string`},
			fieldErrors: 1},
		{name: "fraction for an integer",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1.5\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].vrid: Invalid value: 1.5: must be an integer`},
			fieldErrors: 1},
		{name: "integer out of int32 range",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 4294967347\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].vrid: Invalid value: 4.294967347e+09: must be an integer`},
			fieldErrors: 1},
		{name: "unquoted number as password is not converted, nor shown",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1\n  version: 2\n  authPassword: 0123\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].authPassword: Invalid value: "<redacted>": must be a string, not a number (quote it if it is meant as a string)`},
			fieldErrors: 1},
		{name: "unquoted yes as a name",
			yaml:        goodHeader + "virtualRouters:\n- name: yes\n  vrid: 1\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].name: Invalid value: true: must be a string, not a boolean (quote it`},
			fieldErrors: 1},
		{name: "string for a boolean",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1\n  preempt: \"false\"\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].preempt: Invalid value: "false": must be a boolean (true or false), not a string`},
			fieldErrors: 1},
		{name: "number for a duration",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1\n  advertInterval: 1\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].advertInterval: Invalid value: 1: must be a duration string such as "1s" or "10ms", not a number`},
			fieldErrors: 1},
		{name: "bad duration",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1\n  advertInterval: 1 second\n  vips: [192.0.2.1]\n",
			want:        []string{`virtualRouters[0].advertInterval: Invalid value: "1 second": must be a duration such as "1s", "10ms" or "1m30s"`},
			fieldErrors: 1},
		{name: "scalar for a list",
			yaml:        goodHeader + "virtualRouters:\n- name: a\n  vrid: 1\n  vips: 192.0.2.1\n",
			want:        []string{`virtualRouters[0].vips: Invalid value: "192.0.2.1": must be a list, not a string`},
			fieldErrors: 1},
		{name: "list for a mapping",
			yaml:        goodHeader + "status: []\nvirtualRouters:\n- name: a\n  vrid: 1\n  vips: [192.0.2.1]\n",
			want:        []string{`status: Invalid value: "<list>": must be a mapping, not a list`},
			fieldErrors: 1},
		{name: "validation: every problem, each with its path",
			yaml: "apiVersion: agent.vipvs.io/v1beta1\nkind: AgentConfig\nvirtualRouters:\n" +
				"- name: api\n  vrid: 0\n  vips: [192.0.2.100]\n" +
				"- name: api\n  vrid: 52\n  interface: eth0\n  version: 2\n  advertInterval: 10ms\n  vips: [\"2001:db8::1\"]\n",
			want: []string{
				"invalid agent config (5 problems): ",
				`apiVersion: Unsupported value: "agent.vipvs.io/v1beta1": supported values: "agent.vipvs.io/v1alpha1"`,
				`virtualRouters[0].vrid: Invalid value: 0: must be between 1 and 255`,
				`virtualRouters[1].version: Invalid value: 2: VRRP version 2 supports IPv4 only`,
				`virtualRouters[1].advertInterval: Invalid value: "10ms": must be between 1s and 4m15s in whole seconds for VRRP version 2`,
				`virtualRouters[1].name: Duplicate value: "api"`,
			},
			fieldErrors: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse() = %+v, want an error", c)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Parse() error = %q\nwant it to contain %q", err, want)
				}
			}
			var inv *InvalidError
			gotFieldErrors := 0
			if errors.As(err, &inv) {
				gotFieldErrors = len(inv.Errs)
			}
			if diff := cmp.Diff(tt.fieldErrors, gotFieldErrors); diff != "" {
				t.Errorf("number of field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(goodHeader + "# " + strings.Repeat("x", MaxFileSize) + "\n")
	if _, err := Parse(data); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Errorf("Parse(%d bytes) error = %v, want the size limit", len(data), err)
	}
}

func TestInvalidErrorUnwrap(t *testing.T) {
	_, err := Parse([]byte(goodHeader + "virtualRouters: [{name: a, vrid: 0, vips: [192.0.2.1]}]\n"))
	var fe *field.Error
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *field.Error) = false, want true", err)
	}
	if diff := cmp.Diff("virtualRouters[0].vrid", fe.Field); diff != "" {
		t.Errorf("field (-want +got):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(missing)
	if err == nil || !strings.HasPrefix(err.Error(), "loading agent config "+missing+": ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want it to start with the path and wrap fs.ErrNotExist", err)
	}

	bad := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(bad, []byte(goodHeader+"virtualRouters: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var inv *InvalidError
	if err == nil || !strings.HasPrefix(err.Error(), "loading agent config "+bad+": invalid agent config: virtualRouters: Required value") || !errors.As(err, &inv) {
		t.Errorf("Load(bad) error = %v, want the path, the field error and an *InvalidError", err)
	}
}

// TestMarshalRoundTrip checks that a Config marshals to a file that parses
// back to the same Config.
func TestMarshalRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := marshal(c)
			if err != nil {
				t.Fatalf("Marshal() error: %v", err)
			}
			c2, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal()) error: %v\n%s", err, out)
			}
			if diff := cmp.Diff(c, c2, cmpOpts); diff != "" {
				t.Errorf("Parse(marshal(c)) (-want +got):\n%s\n%s", diff, out)
			}
		})
	}
}

func TestMarshalLogRedactsPassword(t *testing.T) {
	c, err := Load("testdata/unicast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	log.Info("Config", "config", c, "router", c.Routers[2])
	out := strings.Join(lines, "\n")
	if strings.Contains(out, "k8s-pass") || !strings.Contains(out, "<redacted>") || !strings.Contains(out, "legacy") {
		t.Errorf("logged config shows the password or not the routers:\n%s", out)
	}
	if c.Routers[2].AuthPassword != "k8s-pass" {
		t.Errorf("MarshalLog changed the config: AuthPassword = %q", c.Routers[2].AuthPassword)
	}
}

// marshal writes c in the file format, every default written out.
func marshal(c *Config) ([]byte, error) { return agentv1alpha1.Marshal(toV1alpha1(c)) }

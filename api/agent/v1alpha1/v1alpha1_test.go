package v1alpha1

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSetDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   *AgentConfig
		want *AgentConfig
	}{
		{name: "nil", in: nil, want: nil},
		{
			name: "IPv4 router: every default",
			in: &AgentConfig{
				VirtualRouters: []VirtualRouter{{Name: "api", VRID: 51, VIPs: []string{"192.0.2.100/24"}}},
				Notify:         &Notify{Command: []string{"/bin/true"}},
			},
			want: &AgentConfig{
				Status: &Status{ListenAddress: ptr("127.0.0.1:9444"), SocketPath: ptr("/run/vipvs/agent.sock")},
				Notify: &Notify{Command: []string{"/bin/true"}, Timeout: &Duration{10 * time.Second}},
				IPVS:   &IPVS{ResyncInterval: &Duration{10 * time.Second}, CheckConcurrency: ptr[int32](16), ConnectionSync: defaultSync()},
				VirtualRouters: []VirtualRouter{{
					Name: "api", VRID: 51, VIPs: []string{"192.0.2.100/24"},
					Version: ptr[int32](3), Priority: ptr[int32](100), AdvertInterval: &Duration{time.Second},
					Preempt: ptr(true), PreemptDelay: &Duration{}, ChecksumMode: ChecksumPseudoHeader,
					Announce: &Announce{Count: ptr[int32](5), RepeatDelay: &Duration{time.Second}, RefreshInterval: &Duration{}},
				}},
			},
		},
		{
			name: "no checksum mode for IPv6 or v2; set values and disabled endpoints stay",
			in: &AgentConfig{
				Status: &Status{ListenAddress: ptr(""), SocketPath: ptr("")},
				VirtualRouters: []VirtualRouter{
					{Name: "v6", VIPs: []string{"2001:db8::1"}, Preempt: ptr(false), Priority: ptr[int32](0)},
					{Name: "v2", VIPs: []string{"192.0.2.1"}, Version: ptr[int32](2), Announce: &Announce{RepeatDelay: &Duration{}}},
				},
			},
			want: &AgentConfig{
				Status: &Status{ListenAddress: ptr(""), SocketPath: ptr("")},
				IPVS:   &IPVS{ResyncInterval: &Duration{10 * time.Second}, CheckConcurrency: ptr[int32](16), ConnectionSync: defaultSync()},
				VirtualRouters: []VirtualRouter{
					{
						Name: "v6", VIPs: []string{"2001:db8::1"},
						Version: ptr[int32](3), Priority: ptr[int32](0), AdvertInterval: &Duration{time.Second},
						Preempt: ptr(false), PreemptDelay: &Duration{},
						Announce: &Announce{Count: ptr[int32](5), RepeatDelay: &Duration{time.Second}, RefreshInterval: &Duration{}},
					},
					{
						Name: "v2", VIPs: []string{"192.0.2.1"},
						Version: ptr[int32](2), Priority: ptr[int32](100), AdvertInterval: &Duration{time.Second},
						Preempt: ptr(true), PreemptDelay: &Duration{},
						Announce: &Announce{Count: ptr[int32](5), RepeatDelay: &Duration{}, RefreshInterval: &Duration{}},
					},
				},
			},
		},
	}
	tests = append(tests, struct {
		name string
		in   *AgentConfig
		want *AgentConfig
	}{
		name: "virtual services: protocol, scheduler, forwarding, real servers, health check",
		in: &AgentConfig{
			IPVS: &IPVS{ResyncInterval: &Duration{time.Minute}},
			VirtualRouters: []VirtualRouter{{Name: "api", VIPs: []string{"2001:db8::1"}, VirtualServices: []VirtualService{{
				Name: "api", Port: 6443,
				RealServers: []RealServer{{Address: "2001:db8::11"}, {Address: "2001:db8::12", Port: ptr[int32](8443), Weight: ptr[int32](0)}},
				HealthCheck: &RealServerCheck{HTTP: &RealServerHTTPCheck{Scheme: "https"}, Interval: &Duration{500 * time.Millisecond}},
			}}}},
		},
		want: &AgentConfig{
			Status: &Status{ListenAddress: ptr("127.0.0.1:9444"), SocketPath: ptr("/run/vipvs/agent.sock")},
			IPVS:   &IPVS{ResyncInterval: &Duration{time.Minute}, CheckConcurrency: ptr[int32](16), ConnectionSync: defaultSync()},
			VirtualRouters: []VirtualRouter{{
				Name: "api", VIPs: []string{"2001:db8::1"},
				Version: ptr[int32](3), Priority: ptr[int32](100), AdvertInterval: &Duration{time.Second},
				Preempt: ptr(true), PreemptDelay: &Duration{},
				Announce: &Announce{Count: ptr[int32](5), RepeatDelay: &Duration{time.Second}, RefreshInterval: &Duration{}},
				VirtualServices: []VirtualService{{
					Name: "api", Port: 6443, Protocol: ProtocolTCP, Scheduler: "wlc", Forwarding: ForwardingNAT,
					RealServers: []RealServer{
						{Address: "2001:db8::11", Port: ptr[int32](6443), Weight: ptr[int32](1)},
						{Address: "2001:db8::12", Port: ptr[int32](8443), Weight: ptr[int32](0)},
					},
					HealthCheck: &RealServerCheck{
						HTTP:     &RealServerHTTPCheck{Scheme: "https", Path: "/", ExpectStatus: []int32{200}},
						Interval: &Duration{500 * time.Millisecond}, Timeout: &Duration{500 * time.Millisecond},
						Rise: ptr[int32](2), Fall: ptr[int32](3),
					},
				}},
			}},
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			SetDefaults(tt.in)
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("SetDefaults() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	const in = `
apiVersion: agent.vipvs.io/v1alpha1
kind: AgentConfig
interface: eth0
status: {socketPath: ""}
virtualRouters:
- name: api
  vrid: 51
  preempt: no
  advertInterval: 1.5s
  authPassword: "0123"
  vips: [192.0.2.100/24]
  announce: null
`
	want := &AgentConfig{
		APIVersion: GroupVersion, Kind: Kind, Interface: "eth0",
		Status: &Status{SocketPath: ptr("")},
		VirtualRouters: []VirtualRouter{{
			Name: "api", VRID: 51, Preempt: ptr(false), AdvertInterval: &Duration{1500 * time.Millisecond},
			AuthPassword: "0123", VIPs: []string{"192.0.2.100/24"},
		}},
	}
	got, err := Decode([]byte(in))
	if err != nil {
		t.Fatalf("Decode() error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode() (-want +got):\n%s", diff)
	}

	// Marshal writes what Decode reads back.
	out, err := Marshal(got)
	if err != nil {
		t.Fatalf("Marshal() error: %v", err)
	}
	again, err := Decode(out)
	if err != nil {
		t.Fatalf("Decode(Marshal()) error: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("Decode(Marshal()) (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(out), `authPassword: "0123"`) {
		t.Errorf("Marshal() does not quote a numeric string:\n%s", out)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "parsing YAML: the document is empty"},
		{name: "scalar", in: "42", want: "the document must be a mapping"},
		{name: "two documents", in: "kind: A\n---\nkind: B\n", want: "found more than one document, want exactly one"},
		{name: "duplicate key", in: "kind: A\nkind: B\n", want: `key "kind" already set`},
		{name: "unknown field", in: "kind: A\nfoo: 1\n", want: "foo: Forbidden: unknown field"},
		{name: "nested unknown field", in: "notify: {command: [/bin/true], timout: 1s}\n", want: "notify.timout: Forbidden: unknown field"},
		{name: "case", in: "Kind: A\n", want: `Kind: Forbidden: unknown field; field names are case-sensitive: did you mean "kind"?`},
		{name: "list for a duration", in: "notify: {timeout: [1]}\n", want: `notify.timeout: Invalid value: "<list>": must be a duration string`},
		{name: "element type", in: "virtualRouters: [{vips: [1]}]\n", want: "virtualRouters[0].vips[0]: Invalid value: 1: must be a string, not a number"},
		{name: "secret not shown", in: "virtualRouters: [{authPassword: 12345678}]\n", want: `virtualRouters[0].authPassword: Invalid value: "<redacted>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1m30s"`)); err != nil || d.Duration != 90*time.Second {
		t.Errorf("UnmarshalJSON(\"1m30s\") = %v, %v; want 1m30s", d.Duration, err)
	}
	if err := d.UnmarshalJSON([]byte(`90`)); err == nil {
		t.Error("UnmarshalJSON(90) = nil error, want an error")
	}
	b, err := Duration{10 * time.Millisecond}.MarshalJSON()
	if diff := cmp.Diff(`"10ms"`, string(b)); diff != "" || err != nil {
		t.Errorf("MarshalJSON() error %v, (-want +got):\n%s", err, diff)
	}
}

// defaultSync is ipvs.connectionSync as SetDefaults fills it in.
func defaultSync() *ConnectionSync {
	return &ConnectionSync{Enabled: ptr(true), Port: ptr[int32](DefaultConnectionSyncPort), TTL: ptr[int32](DefaultConnectionSyncTTL)}
}

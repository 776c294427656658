package config

import (
	"net/netip"
	"testing"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

func TestConnectionSyncFromV1alpha1(t *testing.T) {
	svc := []agentv1alpha1.VirtualService{{Name: "api", Port: 6443}}
	v4 := agentv1alpha1.VirtualRouter{Name: "v4", VRID: 51, VIPs: []string{"192.0.2.100/24"}, VirtualServices: svc}
	v6 := agentv1alpha1.VirtualRouter{Name: "v6", VRID: 61, VIPs: []string{"2001:db8::100"}, VirtualServices: svc}
	bare := agentv1alpha1.VirtualRouter{Name: "bare", VRID: 9, VIPs: []string{"192.0.2.9"}}
	f := false
	tests := []struct {
		name    string
		cs      *agentv1alpha1.ConnectionSync
		routers []agentv1alpha1.VirtualRouter
		want    ConnectionSync
	}{
		{"defaults follow the first router with services", nil, []agentv1alpha1.VirtualRouter{bare, v4, v6},
			ConnectionSync{Enabled: true, SyncID: 51, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}},
		{"IPv6 only: the IPv6 group", nil, []agentv1alpha1.VirtualRouter{bare, v6},
			ConnectionSync{Enabled: true, SyncID: 61, Group: netip.MustParseAddr("ff02::81"), Port: 8848, TTL: 1}},
		{"dual stack: the IPv4 group", nil, []agentv1alpha1.VirtualRouter{v6, v4},
			ConnectionSync{Enabled: true, SyncID: 61, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}},
		{"everything set", &agentv1alpha1.ConnectionSync{Enabled: &f, Interface: "eth1", SyncID: ptr[int32](0), MulticastGroup: "239.0.0.81", Port: ptr[int32](9000), TTL: ptr[int32](3)},
			[]agentv1alpha1.VirtualRouter{v4},
			ConnectionSync{Interface: "eth1", SyncID: 0, Group: netip.MustParseAddr("239.0.0.81"), Port: 9000, TTL: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connectionSyncFromV1alpha1(tt.cs, tt.routers)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			back, err := connectionSyncFromV1alpha1(connectionSyncToV1alpha1(got), tt.routers)
			if err != nil || back != got {
				t.Errorf("round trip: %+v, %v; want %+v", back, err, got)
			}
		})
	}
}

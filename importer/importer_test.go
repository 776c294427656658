package importer

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// vi1 wraps the body of a vrrp_instance with the lines every test
// needs.
func vi1(body string) string {
	return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.10/24\n    }\n" + body + "}\n"
}

func TestImport(t *testing.T) {
	tests := []struct {
		name    string
		files   mapFS
		inputs  []Input // default: node a reads k.conf
		check   func(t *testing.T, cs []v1alpha1.LoadBalancerConfig)
		notes   []string // substrings, each in some note
		wantErr string   // substring of the error
	}{
		{
			name:  "defaults of keepalived are written out",
			files: mapFS{"k.conf": vi1("")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				want := &v1alpha1.VRRP{Version: 2, AdvertInterval: &metav1.Duration{Duration: time.Second}, Unicast: ptr(false)}
				if diff := cmp.Diff(want, cs[0].Spec.VRRP); diff != "" {
					t.Errorf("vrrp (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]v1alpha1.NodePriority{{NodeName: "a", Priority: 100}}, cs[0].Spec.Priorities.ByNode); diff != "" {
					t.Errorf("byNode (-want +got):\n%s", diff)
				}
			},
			notes: []string{"keepalived's default VRRP version is 2", "the nodeSelector cannot be derived"},
		},
		{
			name:  "version 3 ignores authentication",
			files: mapFS{"k.conf": "global_defs {\n vrrp_version 3\n}\n" + vi1("authentication {\n auth_type PASS\n auth_pass secret\n}\nadvert_int 0.05\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				v := cs[0].Spec.VRRP
				if v.Version != 3 || v.PasswordSecretRef != nil || v.AdvertInterval.Duration != 50*time.Millisecond {
					t.Errorf("vrrp %+v", v)
				}
			},
			notes: []string{"VRRP version 3 has no authentication"},
		},
		{
			name:  "password truncated to what keepalived sends",
			files: mapFS{"k.conf": vi1("authentication {\n auth_type PASS\n auth_pass 0123456789\n}\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if r := cs[0].Spec.VRRP.PasswordSecretRef; r == nil || r.Name != "vi-1-vrrp" || r.Namespace != DefaultSecretNamespace || r.Key != "password" {
					t.Errorf("passwordSecretRef %+v", r)
				}
			},
			notes: []string{"goes into Secret vipvs-system/vi-1-vrrp"},
		},
		{
			name:  "AH authentication",
			files: mapFS{"k.conf": vi1("authentication {\n auth_type AH\n auth_pass x\n}\n")},
			notes: []string{"IPsec AH authentication has no equivalent"},
		},
		{
			name:  "nopreempt and preempt_delay with state MASTER are cleared, as keepalived does",
			files: mapFS{"k.conf": vi1("state MASTER\nnopreempt\npreempt_delay 10\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if v := cs[0].Spec.VRRP; v.Preempt != nil || v.PreemptDelay != nil {
					t.Errorf("vrrp %+v", v)
				}
			},
			notes: []string{"ignores nopreempt with state MASTER", "ignores preempt_delay with state MASTER", "every vipvs node starts as backup"},
		},
		{
			name:  "nopreempt",
			files: mapFS{"k.conf": vi1("nopreempt\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if v := cs[0].Spec.VRRP; v.Preempt == nil || *v.Preempt {
					t.Errorf("preempt %v", v.Preempt)
				}
			},
		},
		{
			name:  "preempt_delay",
			files: mapFS{"k.conf": vi1("preempt_delay 30\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if d := cs[0].Spec.VRRP.PreemptDelay; d == nil || d.Duration != 30*time.Second {
					t.Errorf("preemptDelay %v", d)
				}
			},
			notes: []string{"approximated: vipvs waits 30s only after its agent starts"},
		},
		{
			name:  "VRRPv2 advert interval in whole seconds",
			files: mapFS{"k.conf": vi1("advert_int 0.5\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if d := cs[0].Spec.VRRP.AdvertInterval.Duration; d != time.Second {
					t.Errorf("advertInterval %v", d)
				}
			},
			notes: []string{"VRRP version 2 advertises in whole seconds: 500ms rounded to 1s"},
		},
		{
			name:  "priority 255",
			files: mapFS{"k.conf": vi1("priority 255\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if p := cs[0].Spec.Priorities.ByNode[0].Priority; p != 254 {
					t.Errorf("priority %d", p)
				}
			},
			notes: []string{"255 (address owner) is not a vipvs priority"},
		},
		{
			name:  "IPv6 instance is version 3",
			files: mapFS{"k.conf": "vrrp_instance V6 {\n interface eth0\n virtual_router_id 9\n version 2\n virtual_ipaddress {\n  2001:db8::9/64\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if v := cs[0].Spec.VRRP.Version; v != 3 {
					t.Errorf("version %d", v)
				}
			},
		},
		{
			name:  "addresses of another family are ignored, as keepalived does",
			files: mapFS{"k.conf": vi1("virtual_ipaddress {\n 2001:db8::1/64\n}\n")},
			notes: []string{"an IPv6 address in an IPv4 instance: keepalived ignores it"},
		},
		{
			name: "several addresses: one virtual router each, with the next free VRIDs",
			files: mapFS{"k.conf": "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.10\n  192.0.2.11 dev eth1\n 192.0.2.12 label eth0:x\n }\n virtual_ipaddress_excluded {\n  2001:db8::10/64\n }\n}\n" +
				"vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  192.0.2.20\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				var got []string
				for _, v := range cs[0].Spec.VirtualIPs {
					got = append(got, v.Name+" "+v.Address+" "+v.Interface+" "+itoa(v.VRID))
				}
				want := []string{"vi-1 192.0.2.10 eth0 51", "vi-1-2 192.0.2.11 eth1 53", "vi-1-3 192.0.2.12 eth0 54", "vi-2 192.0.2.20 eth0 52"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("virtual IPs (-want +got):\n%s", diff)
				}
			},
			notes: []string{"gets vrid 53", "label eth0:x: no equivalent", "virtual_ipaddress_excluded: vipvs advertises every address", "an IPv6 address in a VRRP version 2 instance"},
		},
		{
			name:  "link-local and loopback addresses are skipped",
			files: mapFS{"k.conf": vi1("virtual_ipaddress {\n 127.0.0.2\n}\n")},
			notes: []string{"not a unicast address vipvs can hold"},
		},
		{
			name: "track_script weight override and track_interface",
			files: mapFS{"k.conf": "vrrp_script chk {\n script \"/usr/bin/true\"\n interval 5\n timeout 10\n weight 10\n rise 2\n fall 3\n}\n" +
				vi1("track_script {\n chk weight -30\n missing\n}\ntrack_interface {\n eth1\n bond0 weight 20\n}\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				want := []v1alpha1.TrackCheck{
					{Name: "chk", Weight: -30, Exec: &v1alpha1.ExecCheck{Command: []string{"/usr/bin/true"}}, ProbeTiming: timing(5*time.Second, 5*time.Second, 2, 3)},
					{Name: "if-eth1", Interface: &v1alpha1.InterfaceCheck{Name: "eth1"}},
					{Name: "if-bond0", Weight: 20, Interface: &v1alpha1.InterfaceCheck{Name: "bond0"}},
				}
				if diff := cmp.Diff(want, cs[0].Spec.TrackChecks); diff != "" {
					t.Errorf("trackChecks (-want +got):\n%s", diff)
				}
			},
			notes: []string{"timeout 10s is longer than the interval 5s", "missing: no vrrp_script of this name"},
		},
		{
			name:  "values beyond vipvs's range are cut",
			files: mapFS{"k.conf": "vrrp_script chk {\n script /usr/bin/true\n fall 1000\n}\n" + vi1("track_script {\n chk\n}\n") + "virtual_server 192.0.2.10 80 {\n persistence_timeout 100000\n real_server 10.0.0.1 80 {\n  TCP_CHECK {\n   retry 500\n  }\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				s := cs[0].Spec
				if *s.TrackChecks[0].Fall != 100 || *s.Services[0].PersistenceSeconds != 86400 || *s.Services[0].HealthCheck.Fall != 100 {
					t.Errorf("fall %d, persistence %d, service fall %d", *s.TrackChecks[0].Fall, *s.Services[0].PersistenceSeconds, *s.Services[0].HealthCheck.Fall)
				}
			},
			notes: []string{"fall: 1000 is more than vipvs's largest, 100", "persistence_timeout: 100000 is more than vipvs's largest, 86400", "retry: 500 is more than vipvs's largest, 99"},
		},
		{
			name: "sync group: weights become 0 and the group's tracking applies to its members",
			files: mapFS{"k.conf": "vrrp_script chk {\n script \"/usr/bin/true\"\n weight 10\n}\nvrrp_sync_group G {\n group {\n  VI_1\n }\n track_interface {\n  eth9\n }\n}\n" +
				vi1("track_script {\n chk\n}\n")},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				tc := cs[0].Spec.TrackChecks
				if len(tc) != 2 || tc[0].Weight != 0 || tc[1].Interface == nil {
					t.Errorf("trackChecks %+v", tc)
				}
			},
			notes: []string{"in sync group G keepalived sets the weight to 0", "its instances share one LoadBalancerConfig (VI_1 in vi-1)"},
		},
		{
			name:  "notify and unknown keywords are reported",
			files: mapFS{"k.conf": vi1("notify_master /bin/x\nsome_new_keyword 1\nuse_vmac\n")},
			notes: []string{"notify commands are set per node in the agent's configuration", "some_new_keyword: no equivalent in vipvs: ignored", "holds the VIP with the interface's own MAC"},
		},
		{
			name: "virtual_server group with a range, a real server without port, a differing checker",
			files: mapFS{"k.conf": vi1("") + "virtual_server_group G {\n 192.0.2.1-20 8080\n fwmark 3\n}\n" +
				"virtual_server group G {\n lb_algo nq\n lb_kind NAT\n real_server 10.0.0.1 {\n  TCP_CHECK {\n   connect_port 81\n  }\n }\n real_server 10.0.0.2 8081 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n real_server 10.0.0.3 {\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				s := cs[0].Spec.Services
				if len(s) != 1 || s[0].Port != 8080 || s[0].Scheduler != v1alpha1.SchedulerWeightedLeastConnection || len(s[0].Backends.Static) != 3 {
					t.Fatalf("services %+v", s)
				}
				if p := s[0].HealthCheck.TCP.Port; p == nil || *p != 81 {
					t.Errorf("tcp check port %v", p)
				}
				if p := s[0].Backends.Static[1].Port; p == nil || *p != 8081 {
					t.Errorf("backend port %v", p)
				}
			},
			notes: []string{"a range: only its virtual IPs are served (192.0.2.10)", "fwmark: firewall-mark services have no equivalent", "scheduler nq has no equivalent", "differs from the checker at k.conf:16", "has no checker: vipvs checks it with the service's health check"},
		},
		{
			name:  "a virtual_server outside the virtual IPs is skipped",
			files: mapFS{"k.conf": vi1("") + "virtual_server 198.51.100.1 80 {\n real_server 10.0.0.1 80 {\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if len(cs[0].Spec.Services) != 0 {
					t.Errorf("services %+v", cs[0].Spec.Services)
				}
			},
			notes: []string{"198.51.100.1 is not a virtual_ipaddress of any vrrp_instance"},
		},
		{
			name:  "HTTP_GET status codes and retry",
			files: mapFS{"k.conf": vi1("") + "virtual_server 192.0.2.10 80 {\n delay_loop 2\n real_server 10.0.0.1 80 {\n  HTTP_GET {\n   url {\n    path /h\n    status_code 200 300-302 503\n   }\n   connect_timeout 5\n   nb_get_retry 4\n  }\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				hc := cs[0].Spec.Services[0].HealthCheck
				if diff := cmp.Diff([]int32{200, 300, 301, 302, 503}, hc.HTTP.ExpectStatus); diff != "" {
					t.Errorf("expectStatus (-want +got):\n%s", diff)
				}
				if *hc.Fall != 5 || *hc.Rise != 1 || hc.Timeout.Duration != 2*time.Second || hc.Interval.Duration != 2*time.Second {
					t.Errorf("timing %+v", hc.ProbeTiming)
				}
			},
			notes: []string{"timeout 5s is longer than delay_loop 2s", "retry 4: keepalived marked a backend down after 5 failures"},
		},
		{
			name:  "DR keeps the port",
			files: mapFS{"k.conf": vi1("") + "virtual_server 192.0.2.10 80 {\n lb_kind DR\n real_server 10.0.0.1 8080 {\n }\n}\n"},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if p := cs[0].Spec.Services[0].Backends.Static[0].Port; p != nil {
					t.Errorf("backend port %v", *p)
				}
			},
			notes: []string{"direct routing and tunnelling cannot change the port"},
		},
		{
			name: "two nodes: priorities by node, peers checked",
			files: mapFS{
				"a.conf": vi1("priority 150\nunicast_src_ip 192.0.2.1\nunicast_peer {\n 192.0.2.2\n 192.0.2.9\n}\n"),
				"b.conf": vi1("priority 100\nunicast_src_ip 192.0.2.2\nunicast_peer {\n 192.0.2.1\n}\n"),
			},
			inputs: []Input{{Node: "a", File: "a.conf"}, {Node: "b", File: "b.conf"}},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				want := []v1alpha1.NodePriority{{NodeName: "a", Priority: 150}, {NodeName: "b", Priority: 100}}
				if diff := cmp.Diff(want, cs[0].Spec.Priorities.ByNode); diff != "" {
					t.Errorf("byNode (-want +got):\n%s", diff)
				}
			},
			notes: []string{"192.0.2.9 is not the unicast_src_ip of an imported file"},
		},
		{
			name: "two nodes that differ in what vipvs holds once",
			files: mapFS{
				"a.conf": vi1("nopreempt\n"),
				"b.conf": strings.Replace(vi1(""), "eth0", "ens3", 1),
			},
			inputs: []Input{{Node: "a", File: "a.conf"}, {Node: "b", File: "b.conf"}},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				if cs[0].Spec.VirtualIPs[0].Interface != "" {
					t.Errorf("interface %q, want none", cs[0].Spec.VirtualIPs[0].Interface)
				}
			},
			notes: []string{"preemption (preempt true, delay 0s) differs", "ens3 differs from eth0"},
		},
		{
			name: "a node without the instance",
			files: mapFS{
				"a.conf": vi1(""),
				"b.conf": "global_defs {\n}\n" + strings.ReplaceAll(strings.ReplaceAll(vi1(""), "51", "52"), "192.0.2.10", "192.0.2.20"),
			},
			inputs: []Input{{Node: "a", File: "a.conf"}, {Node: "b", File: "b.conf"}},
			notes:  []string{"not in b.conf: the LoadBalancerConfig lists priorities only for a"},
		},
		{
			name: "nodes named after router_id, else node-N",
			files: mapFS{
				"a.conf": "global_defs {\n router_id Master-0\n}\n" + vi1(""),
				"b.conf": "global_defs {\n router_id LVS_DEVEL\n}\n" + vi1(""),
			},
			inputs: []Input{{File: "a.conf"}, {File: "b.conf"}},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				bn := cs[0].Spec.Priorities.ByNode
				if bn[0].NodeName != "master-0" || bn[1].NodeName != "node-1" {
					t.Errorf("byNode %+v", bn)
				}
			},
			notes: []string{`node name "master-0" taken from router_id`, `"LVS_DEVEL" is not a node name`},
		},
		{
			name:    "files that disagree on the password",
			files:   mapFS{"a.conf": vi1("authentication {\n auth_type PASS\n auth_pass one\n}\n"), "b.conf": vi1("authentication {\n auth_type PASS\n auth_pass two\n}\n")},
			inputs:  []Input{{Node: "a", File: "a.conf"}, {Node: "b", File: "b.conf"}},
			wantErr: "b.conf:1: authentication: the password differs from that of vrrp_instance VI_1 at a.conf:1 (neither is shown)",
		},
		{
			name:  "one VRID on two interfaces",
			files: mapFS{"k.conf": vi1("") + strings.Replace(strings.Replace(vi1(""), "192.0.2.10", "192.0.2.11", 1), "eth0", "eth1", 1)},
			check: func(t *testing.T, cs []v1alpha1.LoadBalancerConfig) {
				v := cs[0].Spec.VirtualIPs
				if len(v) != 2 || v[0].VRID != 51 || v[1].VRID != 51 || v[1].Interface != "eth1" {
					t.Errorf("virtualIPs %+v", v)
				}
			},
		},
		{
			name:    "one VRID twice in a file",
			files:   mapFS{"k.conf": vi1("") + strings.Replace(vi1(""), "192.0.2.10", "192.0.2.11", 1)},
			wantErr: "51 is also the virtual_router_id of vrrp_instance VI_1",
		},
		{
			name:    "the same address in two instances",
			files:   mapFS{"k.conf": vi1("") + strings.Replace(vi1(""), "51", "52", 1)},
			wantErr: "each virtualIPs address must appear once",
		},
		{
			name:    "an invalid node name",
			files:   mapFS{"k.conf": vi1("")},
			inputs:  []Input{{Node: "Master_0", File: "k.conf"}},
			wantErr: `node name "Master_0" of k.conf`,
		},
		{name: "a block where none belongs", files: mapFS{"k.conf": "use_pid_dir {\n}\n"}, wantErr: "k.conf:1: use_pid_dir: takes no block"},
		{name: "no block where one belongs", files: mapFS{"k.conf": "vrrp_instance VI_1\n"}, wantErr: "k.conf:1: vrrp_instance: needs a { ... } block"},
		{name: "a block in a value block", files: mapFS{"k.conf": vi1("virtual_ipaddress {\n 192.0.2.9\n track_script {\n }\n}\n")}, wantErr: "k.conf:9: track_script: opens a block inside virtual_ipaddress"},
		{name: "a bad address", files: mapFS{"k.conf": vi1("virtual_ipaddress {\n 192.0.2.300\n}\n")}, wantErr: "k.conf:8: 192.0.2.300: needs an IP address"},
		{name: "a bad state", files: mapFS{"k.conf": vi1("state ACTIVE\n")}, wantErr: `k.conf:7: state: must be MASTER or BACKUP, not "ACTIVE"`},
		{name: "an unknown virtual_server_group", files: mapFS{"k.conf": vi1("") + "virtual_server group X {\n}\n"}, wantErr: `virtual_server_group "X" is not defined`},
		{name: "nothing to import", files: mapFS{"k.conf": "global_defs {\n}\n"}, wantErr: ErrNothingToImport.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inputs := tt.inputs
			if inputs == nil {
				inputs = []Input{{Node: "a", File: "k.conf"}}
			}
			res, err := Import(Options{Inputs: inputs, FS: tt.files})
			if res == nil {
				t.Fatal("Import returned a nil Result")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, res.Configs)
			}
			for _, want := range tt.notes {
				found := false
				for _, n := range res.Notes {
					if strings.Contains(n.String(), want) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no note contains %q; notes:\n%s", want, notesText(res.Notes))
				}
			}
		})
	}
}

func notesText(ns []Note) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }

func TestImportErrorsAreNotNothing(t *testing.T) {
	_, err := Import(Options{Inputs: []Input{{File: "k.conf"}}, FS: mapFS{"k.conf": "global_defs {\n}\n"}})
	if !errors.Is(err, ErrNothingToImport) {
		t.Errorf("error %v, want ErrNothingToImport", err)
	}
	_, err = Import(Options{Inputs: []Input{{File: "k.conf"}}, FS: mapFS{"k.conf": "bogus\n"}})
	if err == nil || errors.Is(err, ErrNothingToImport) {
		t.Errorf("error %v, want an input error", err)
	}
}

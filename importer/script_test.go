package importer

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

func TestTranslateScript(t *testing.T) {
	// Every script below runs every 2s with a 2s timeout, rise 1, fall 3.
	tm := func(timeout time.Duration) v1alpha1.ProbeTiming {
		return timing(2*time.Second, timeout, 1, 3)
	}
	httpCheck := func(url string, insecure bool, timeout time.Duration) v1alpha1.TrackCheck {
		return v1alpha1.TrackCheck{HTTP: &v1alpha1.HTTPCheck{URL: url, InsecureSkipVerify: insecure}, ProbeTiming: tm(timeout)}
	}
	tcpCheck := func(addr string) v1alpha1.TrackCheck {
		return v1alpha1.TrackCheck{TCP: &v1alpha1.TCPCheck{Address: addr}, ProbeTiming: tm(2 * time.Second)}
	}
	execCheck := func(cmd ...string) v1alpha1.TrackCheck {
		return v1alpha1.TrackCheck{Exec: &v1alpha1.ExecCheck{Command: cmd}, ProbeTiming: tm(2 * time.Second)}
	}
	tests := []struct {
		name      string
		script    string
		want      []v1alpha1.TrackCheck
		notUsable bool
		wantNote  string
	}{
		{
			name:     "OpenShift's API check: two curls joined by &&",
			script:   "/usr/bin/curl -o /dev/null -kLfs https://localhost:6443/readyz && /usr/bin/curl -o /dev/null -kLfs http://localhost:50936/readyz",
			want:     []v1alpha1.TrackCheck{httpCheck("https://localhost:6443/readyz", true, 2*time.Second), httpCheck("http://localhost:50936/readyz", false, 2*time.Second)},
			wantNote: "'&&' and what follows reached it as arguments",
		},
		{
			name:     "timeout(1) wrapper shortens the timeout",
			script:   "/usr/bin/timeout 0.9 /usr/bin/curl -o /dev/null -Lfs http://localhost:1936/healthz/ready",
			want:     []v1alpha1.TrackCheck{httpCheck("http://localhost:1936/healthz/ready", false, 900*time.Millisecond)},
			wantNote: "curl -L followed redirects, the check does not",
		},
		{
			name:     "host 0 is this node",
			script:   "curl -o /dev/null -kLs https://0:6443/readyz",
			want:     []v1alpha1.TrackCheck{httpCheck("https://127.0.0.1:6443/readyz", true, 2*time.Second)},
			wantNote: "without -f curl accepted any HTTP answer",
		},
		{
			name:   "long options, --max-time and --cacert",
			script: "/usr/bin/curl --silent --fail --max-time=1.5 --cacert /etc/kubernetes/pki/ca.crt https://127.0.0.1:6443/readyz",
			want: []v1alpha1.TrackCheck{{
				HTTP:        &v1alpha1.HTTPCheck{URL: "https://127.0.0.1:6443/readyz", CAFile: "/etc/kubernetes/pki/ca.crt"},
				ProbeTiming: tm(1500 * time.Millisecond),
			}},
		},
		{
			name:   "a curl with a header is not an http check",
			script: "/usr/bin/curl -sf -H 'Host: x' http://127.0.0.1/",
			want:   []v1alpha1.TrackCheck{execCheck("/usr/bin/curl", "-sf", "-H", "Host: x", "http://127.0.0.1/")},
		},
		{
			name:   "nc -z",
			script: "/usr/bin/nc -z -w 1 localhost 6443",
			want:   []v1alpha1.TrackCheck{tcpCheck("127.0.0.1:6443")},
		},
		{
			name:   "bash /dev/tcp",
			script: "/bin/bash -c '</dev/tcp/127.0.0.1/443'",
			want:   []v1alpha1.TrackCheck{tcpCheck("127.0.0.1:443")},
		},
		{
			name:   "bare /dev/tcp",
			script: "</dev/tcp/::1/443",
			want:   []v1alpha1.TrackCheck{tcpCheck("[::1]:443")},
		},
		{name: "pidof", script: "pidof haproxy", notUsable: true, wantNote: "vipvs has no process check"},
		{name: "killall -0", script: "/usr/bin/killall -0 haproxy", notUsable: true, wantNote: "vipvs has no process check"},
		{name: "systemctl is-active", script: "/usr/bin/systemctl is-active nginx", notUsable: true, wantNote: "vipvs has no process check"},
		{
			name:     "absolute program: exec without shell",
			script:   "/etc/keepalived/check_apiserver.sh",
			want:     []v1alpha1.TrackCheck{execCheck("/etc/keepalived/check_apiserver.sh")},
			wantNote: "kubeadm's check_apiserver.sh",
		},
		{
			name:     "relative program: through the shell",
			script:   "check.sh --quiet",
			want:     []v1alpha1.TrackCheck{execCheck("/bin/sh", "-c", "check.sh --quiet")},
			wantNote: "check.sh has no absolute path",
		},
		{
			name:     "shell syntax: through the shell",
			script:   "/usr/bin/test -f /run/ok || /usr/bin/false",
			want:     []v1alpha1.TrackCheck{execCheck("/bin/sh", "-c", "/usr/bin/test -f /run/ok || /usr/bin/false")},
			wantNote: "because it needs a shell",
		},
		{
			name:   "process check and curl: through the shell",
			script: "/usr/bin/pidof haproxy && /usr/bin/curl -sf http://127.0.0.1:8404/",
			want:   []v1alpha1.TrackCheck{execCheck("/bin/sh", "-c", "/usr/bin/pidof haproxy && /usr/bin/curl -sf http://127.0.0.1:8404/")},
		},
		{
			name:   "argument with a space is quoted for the shell",
			script: `/usr/bin/test "a b" = x || /bin/true`,
			want:   []v1alpha1.TrackCheck{execCheck("/bin/sh", "-c", "/usr/bin/test 'a b' = x || /bin/true")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &notes{}
			sc := &vrrpScript{name: "chk", scriptPos: Pos{File: "k.conf", Line: 2}, interval: 2 * time.Second, timeout: 2 * time.Second, rise: 1, fall: 3}
			got, usable := translateScript(splitWords(tt.script), sc, n)
			if usable == tt.notUsable {
				t.Fatalf("usable %v, want %v; notes %v", usable, !tt.notUsable, n.list)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
			if len(n.list) != 1 {
				t.Fatalf("want one note at the script line, got %v", n.list)
			}
			if !strings.Contains(n.list[0].Message, tt.wantNote) {
				t.Errorf("note %q lacks %q", n.list[0].Message, tt.wantNote)
			}
		})
	}
}

func TestParseCurl(t *testing.T) {
	tests := []struct {
		args   string
		want   curlRequest
		reject bool
	}{
		{args: "-sfk https://x:1/a", want: curlRequest{url: "https://x:1/a", insecure: true, fail: true}},
		{args: "-m2 -o/dev/null http://h/", want: curlRequest{url: "http://h/", timeout: 2 * time.Second}},
		{args: "--connect-timeout 3 --max-time 5 h:80/x", want: curlRequest{url: "http://h:80/x", timeout: 3 * time.Second}},
		{args: "-X GET -I http://h/", want: curlRequest{url: "http://h/", head: true}},
		{args: "-X POST http://h/", reject: true},
		{args: "-d x http://h/", reject: true},
		{args: "-u a:b http://h/", reject: true},
		{args: "http://a/ http://b/", reject: true},
		{args: "ftp://h/", reject: true},
		{args: "-Z http://h/", reject: true},
		{args: "-o", reject: true},
	}
	for _, tt := range tests {
		got, ok := parseCurl(strings.Fields(tt.args))
		if ok == tt.reject {
			t.Errorf("parseCurl(%s): ok %v, want %v", tt.args, ok, !tt.reject)
			continue
		}
		if ok {
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(curlRequest{})); diff != "" {
				t.Errorf("parseCurl(%s) (-want +got):\n%s", tt.args, diff)
			}
		}
	}
}

func TestSplitWeight(t *testing.T) {
	tests := []struct {
		w     int32
		n     int
		want  []int32
		exact bool
	}{
		{w: 50, n: 1, want: []int32{50}, exact: true},
		{w: 0, n: 3, want: []int32{0, 0, 0}, exact: true},
		{w: 50, n: 2, want: []int32{25, 25}},
		{w: 51, n: 2, want: []int32{26, 25}},
		{w: -20, n: 2, want: []int32{-20, -20}},
		{w: 1, n: 2, want: []int32{1, 1}},
	}
	for _, tt := range tests {
		got, how := splitWeight(tt.w, tt.n)
		if diff := cmp.Diff(tt.want, got); diff != "" || (how == "") != tt.exact {
			t.Errorf("splitWeight(%d, %d) = %v, %q (-want +got):\n%s", tt.w, tt.n, got, how, diff)
		}
		for _, p := range got {
			if tt.w != 0 && p == 0 {
				t.Errorf("splitWeight(%d, %d) gives a check weight 0, which means FAULT", tt.w, tt.n)
			}
		}
	}
}

func TestStripTimeout(t *testing.T) {
	tests := []struct {
		cmd  string
		want time.Duration
		rest string
	}{
		{"/usr/bin/timeout 1.9 /bin/x", 1900 * time.Millisecond, "/bin/x"},
		{"timeout -s KILL 2m /bin/x a", 2 * time.Minute, "/bin/x a"},
		{"timeout --foreground 3s /bin/x", 3 * time.Second, "/bin/x"},
		{"timeout nonsense /bin/x", 0, ""},
		{"/bin/x 1 2", 0, ""},
	}
	for _, tt := range tests {
		d, rest, ok := stripTimeout(strings.Fields(tt.cmd))
		if d != tt.want || strings.Join(rest, " ") != tt.rest || ok != (tt.want != 0) {
			t.Errorf("stripTimeout(%q) = %v, %q, %v", tt.cmd, d, rest, ok)
		}
	}
}

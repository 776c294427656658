package v1alpha1

import "time"

// Defaults and limits of checks.
const (
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = time.Second
	DefaultCheckRise     = 2
	DefaultCheckFall     = 3
	MaxChecks            = 32
	MaxTrackChecks       = 16
)

// Check is a named health check of this node: a track check that, while it
// fails, lowers the priority of the virtual routers that track it (or puts
// them in FAULT), so that the VIP leaves a node whose API server is down.
// Exactly one of tcp, http, exec and interface is set.
type Check struct {
	// Name identifies the check in trackChecks, logs, metrics and status: a
	// DNS-1123 label, unique among checks. Required.
	Name string `json:"name"`
	// TCP is healthy when a TCP connection to an address succeeds.
	// +optional
	TCP *TCPCheck `json:"tcp,omitempty"`
	// HTTP is healthy when an HTTP(S) GET is answered with an expected
	// status (kube-apiserver: https://127.0.0.1:6443/readyz).
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`
	// Exec is healthy when a command exits with status 0 (keepalived's
	// vrrp_script).
	// +optional
	Exec *ExecCheck `json:"exec,omitempty"`
	// Interface is healthy while a network interface is up (keepalived's
	// track_interface).
	// +optional
	Interface *InterfaceCheck `json:"interface,omitempty"`
	// Interval between two probes, 100ms to 1h. Default 2s.
	// +optional
	Interval *Duration `json:"interval,omitempty"`
	// Timeout of one probe, greater than 0 and at most interval. Default 1s
	// (or the interval, if shorter).
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
	// Rise is the number of consecutive successes that make a failed check
	// healthy, 1 to 100. Default 2.
	// +optional
	Rise *int32 `json:"rise,omitempty"`
	// Fall is the number of consecutive failures that make a healthy check
	// failed, 1 to 100. Default 3.
	// +optional
	Fall *int32 `json:"fall,omitempty"`
}

// TCPCheck connects to an address.
type TCPCheck struct {
	// Address is "host:port" with an IP address as host ("[::1]:6443" for
	// IPv6). Required.
	Address string `json:"address"`
}

// HTTPCheck sends a GET and compares the status code.
type HTTPCheck struct {
	// URL is the http:// or https:// URL to GET, with an IP address or a
	// host name. Required.
	URL string `json:"url"`
	// ExpectStatus lists the status codes that mean healthy, each 100 to
	// 599. Default [200].
	// +optional
	ExpectStatus []int32 `json:"expectStatus,omitempty"`
	// CAFile is an absolute path to the PEM bundle that verifies the
	// server's certificate (for kube-apiserver:
	// /etc/kubernetes/pki/ca.crt). Default: the system roots.
	// +optional
	CAFile string `json:"caFile,omitempty"`
	// InsecureSkipVerify accepts any server certificate. Default false.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
	// ServerName is the name the certificate is verified against (and the
	// TLS SNI), when the URL holds an IP address. Optional.
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// ExecCheck runs a command.
type ExecCheck struct {
	// Command is the program (an absolute path) and its arguments; no shell.
	// Required.
	Command []string `json:"command"`
}

// InterfaceCheck watches a network interface.
type InterfaceCheck struct {
	// Name is the interface's name. Required.
	Name string `json:"name"`
}

// TrackCheck ties a check to a virtual router.
type TrackCheck struct {
	// Check is the name of an entry of checks. Required.
	Check string `json:"check"`
	// Weight is what the check does to the router, -254 to 254:
	// negative lowers the priority by -weight while the check fails;
	// positive raises it by weight while the check is healthy (keepalived's
	// semantics); 0 puts the router in FAULT (no VIP, no adverts) while the
	// check fails. The effective priority stays within 1 to 254. A router
	// of priority 255 (the address owner) is only affected by weight 0.
	Weight int32 `json:"weight"`
}

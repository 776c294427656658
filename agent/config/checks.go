package config

import (
	"fmt"
	"net/netip"
	"time"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Check is a validated health check of this node. Exactly one of TCP, HTTP,
// Exec and Interface is set.
type Check struct {
	// Name is a DNS-1123 label, unique among the checks.
	Name string
	// TCP is the address to connect to, when valid.
	TCP netip.AddrPort
	// HTTP is the GET to send, when not nil.
	HTTP *HTTPCheck
	// Exec is the argv to run (absolute program path), when not empty.
	Exec []string
	// Interface is the interface that must be up, when not "".
	Interface string
	// Interval is 100ms to 1h; Timeout is greater than 0 and at most
	// Interval.
	Interval, Timeout time.Duration
	// Rise and Fall are 1 to 100.
	Rise, Fall int
}

// HTTPCheck is a validated HTTP(S) GET.
type HTTPCheck struct {
	// URL is an http:// or https:// URL with a host.
	URL string
	// ExpectStatus is not empty; each code is 100 to 599.
	ExpectStatus []int
	// CAFile is an absolute path or "" (system roots).
	CAFile string
	// InsecureSkipVerify is never true together with CAFile.
	InsecureSkipVerify bool
	// ServerName overrides the verified name; "" means the URL's host.
	ServerName string
}

// TrackCheck ties a check (by name, present in Config.Checks) to a router.
type TrackCheck struct {
	Check string
	// Weight is -254 to 254; 0 means FAULT while the check fails.
	Weight int
}

func checkFromV1alpha1(c *agentv1alpha1.Check) (Check, error) {
	out := Check{
		Name:     c.Name,
		Interval: durationOf(c.Interval),
		Timeout:  durationOf(c.Timeout),
		Rise:     int(deref(c.Rise)),
		Fall:     int(deref(c.Fall)),
	}
	switch {
	case c.TCP != nil:
		ap, err := netip.ParseAddrPort(c.TCP.Address)
		if err != nil {
			return out, fmt.Errorf("tcp.address: %w", err)
		}
		out.TCP = ap
	case c.HTTP != nil:
		h := &HTTPCheck{URL: c.HTTP.URL, CAFile: c.HTTP.CAFile, InsecureSkipVerify: c.HTTP.InsecureSkipVerify, ServerName: c.HTTP.ServerName}
		for _, s := range c.HTTP.ExpectStatus {
			h.ExpectStatus = append(h.ExpectStatus, int(s))
		}
		out.HTTP = h
	case c.Exec != nil:
		out.Exec = cloneArgv(c.Exec.Command)
	case c.Interface != nil:
		out.Interface = c.Interface.Name
	}
	return out, nil
}

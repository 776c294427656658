package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1alpha1 "github.com/vipvs/vipvs/api/status/v1alpha1"
)

// Fetch reads the report from an agent. target is a unix socket path (it
// starts with "/") or an HTTP host:port.
func Fetch(ctx context.Context, target string) (Report, error) {
	r, _, _, err := get(ctx, target, "", 0)
	return r, err
}

// Watch reads the report from an agent (target as for Fetch) once it
// differs from the one whose ETag is etag, waiting at most wait (the watch
// protocol of api/status/v1alpha1). It returns the report and its ETag, or
// changed false when wait passed without a change. With an empty etag it
// returns at once. An agent that does not know the protocol answers at
// once, with changed true.
func Watch(ctx context.Context, target, etag string, wait time.Duration) (rep Report, newETag string, changed bool, err error) {
	return get(ctx, target, etag, wait)
}

func get(ctx context.Context, target, etag string, wait time.Duration) (Report, string, bool, error) {
	client := &http.Client{Timeout: 5*time.Second + wait}
	base := "http://" + target
	if strings.HasPrefix(target, "/") {
		client.Transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", target)
			},
			// A transport per call: a kept-alive connection would stay
			// open in both processes for good.
			DisableKeepAlives: true,
		}
		base = "http://agent"
	}
	u := base + "/status"
	if etag != "" && wait > 0 {
		u += "?wait=" + url.QueryEscape(wait.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Report{}, "", false, fmt.Errorf("status: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Report{}, "", false, fmt.Errorf("status: reading the agent's status from %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return Report{}, etag, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return Report{}, "", false, fmt.Errorf("status: %s answered %s: %s", target, resp.Status, strings.TrimSpace(string(b)))
	}
	var r Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&r); err != nil {
		return Report{}, "", false, fmt.Errorf("status: decoding the status from %s: %w", target, err)
	}
	if err := v1alpha1.CheckAPIVersion(r.APIVersion); err != nil {
		return Report{}, "", false, fmt.Errorf("status: the status from %s: %w", target, err)
	}
	newETag := resp.Header.Get("ETag")
	if newETag == "" {
		newETag = `"` + v1alpha1.Digest(r) + `"`
	}
	return r, newETag, true, nil
}

// WriteTable prints the report as a table: router, VRID, state, priority,
// master, VIPs.
func WriteTable(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s, config %s, version %s\n", orDash(r.Node), short(r.ConfigHash), r.Version)
	if r.ConfigError != "" {
		fmt.Fprintf(&b, "newest config rejected: %s\n", r.ConfigError)
	}
	// The state column is as wide as ADVERTISED only when a router is in
	// mode bgp.
	sw := 7
	for _, rt := range r.Routers {
		if rt.Mode == v1alpha1.ModeBGP {
			sw = len(v1alpha1.StateAdvertised)
		}
	}
	fmt.Fprintf(&b, "%-16s %-4s %-10s %-*s %-9s %-28s %s\n", "ROUTER", "VRID", "INTERFACE", sw, "STATE", "PRIORITY", "MASTER", "VIPS")
	for _, rt := range r.Routers {
		if rt.Mode == v1alpha1.ModeBGP {
			// No election: every healthy node advertises the VIPs.
			fmt.Fprintf(&b, "%-16s %-4s %-10s %-*s %-9s %-28s %s\n", rt.Name, "bgp", rt.Interface, sw, rt.State, "-", "-", strings.Join(rt.VIPs, ","))
			if rt.State == v1alpha1.StateWithdrawn && rt.LastReason != "" {
				fmt.Fprintf(&b, "  withdrawn: %s\n", rt.LastReason)
			}
			continue
		}
		prio := fmt.Sprint(rt.Priority)
		if rt.Priority != rt.ConfiguredPriority {
			prio = fmt.Sprintf("%d/%d", rt.Priority, rt.ConfiguredPriority)
		}
		fmt.Fprintf(&b, "%-16s %-4d %-10s %-*s %-9s %-28s %s\n", rt.Name, rt.VRID, rt.Interface, sw, rt.State, prio, orDash(rt.Master), strings.Join(rt.VIPs, ","))
		for _, c := range rt.Conflicts {
			fmt.Fprintf(&b, "  ! %s from %s: %s (seen %d times)\n", c.Kind, c.Peer, c.Detail, c.Count)
		}
	}
	if len(r.Checks) > 0 {
		fmt.Fprintf(&b, "\n%-16s %-9s %-7s %s\n", "CHECK", "KIND", "HEALTHY", "LAST ERROR")
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "%-16s %-9s %-7v %s\n", c.Name, c.Kind, c.Healthy, orDash(c.LastError))
		}
	}
	if g := r.BGP; g != nil {
		fmt.Fprintf(&b, "\nBGP %s speaker, %d routes advertised: %s", g.Speaker, len(g.Advertised), orDash(strings.Join(g.Advertised, ",")))
		if g.GracefulShutdown {
			b.WriteString(" (draining: GRACEFUL_SHUTDOWN, then withdrawn)")
		}
		if g.RouteTable != 0 {
			fmt.Fprintf(&b, ", kernel table %d", g.RouteTable)
		}
		if g.LastError != "" {
			fmt.Fprintf(&b, "; last error: %s", g.LastError)
		}
		b.WriteString("\n")
		if len(g.Peers) > 0 {
			fmt.Fprintf(&b, "%-28s %-10s %-12s %-10s %s\n", "PEER", "ASN", "SESSION", "BFD", "ADVERTISED")
			for _, p := range g.Peers {
				fmt.Fprintf(&b, "%-28s %-10d %-12s %-10s %s\n", p.Address, p.ASN, orDash(p.State), orDash(p.BFD), orDash(strings.Join(p.Advertised, ",")))
			}
		}
	}
	if ip := r.IPVS; ip != nil {
		fmt.Fprintf(&b, "\nIPVS %s, %d services", ip.State, ip.Services)
		if ip.Reason != "" {
			fmt.Fprintf(&b, ": %s", ip.Reason)
		}
		if ip.LastError != "" {
			fmt.Fprintf(&b, "; last error: %s", ip.LastError)
		}
		b.WriteString("\n")
		if len(ip.RealServers) > 0 {
			fmt.Fprintf(&b, "%-16s %-16s %-28s %-7s %-7s %s\n", "ROUTER", "SERVICE", "REAL SERVER", "WEIGHT", "HEALTHY", "LAST ERROR")
			for _, rs := range ip.RealServers {
				fmt.Fprintf(&b, "%-16s %-16s %-28s %-7d %-7v %s\n", rs.Router, rs.Service, rs.Address, rs.Weight, rs.Healthy, orDash(rs.LastError))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return orDash(h)
}

// Drain asks the agent behind the unix socket path to drain its bgp routes
// gracefully (RFC 8326), or, with on false, to advertise them again. The
// agent answers at once; the withdrawal follows after
// bgp.gracefulShutdownWait.
func Drain(ctx context.Context, path string, on bool) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("status: drain: %q is not a unix socket path: the drain is served on the agent's socket only", path)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	u := "http://agent/undrain"
	if on {
		u = "http://agent/drain"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("status: drain via %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: drain via %s: the agent answered %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

package validation

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	agentv1alpha1 "github.com/vipvs/vipvs/api/agent/v1alpha1"
)

// Limits of health checks, shared with the LoadBalancerConfig's checks.
const (
	// MinCheckInterval is the shortest interval between two runs of a check.
	MinCheckInterval = 100 * time.Millisecond
	// MaxCheckInterval is the longest interval between two runs of a check.
	MaxCheckInterval = time.Hour
	// MaxRiseFall is the largest rise or fall count of a check.
	MaxRiseFall = 100
	// MaxWeight is the largest priority change of a tracked check, either way.
	MaxWeight = 254
)

// validateChecks checks the checks list and returns the set of names.
func validateChecks(p *field.Path, checks []agentv1alpha1.Check) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	if n := len(checks); n > agentv1alpha1.MaxChecks {
		errs = append(errs, field.TooMany(p, n, agentv1alpha1.MaxChecks))
	}
	names := map[string]bool{}
	for i := range checks {
		c := &checks[i]
		cp := p.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(cp.Child("name"), "must name the check (a DNS-1123 label), so that trackChecks can refer to it"))
		case DNS1123Label(c.Name) != "":
			errs = append(errs, field.Invalid(cp.Child("name"), c.Name, DNS1123Label(c.Name)))
		case names[c.Name]:
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		default:
			names[c.Name] = true
		}
		errs = append(errs, validateCheck(cp, c)...)
	}
	return names, errs
}

func validateCheck(p *field.Path, c *agentv1alpha1.Check) field.ErrorList {
	var errs field.ErrorList
	var kinds []string
	if c.TCP != nil {
		kinds = append(kinds, "tcp")
		if _, err := netip.ParseAddrPort(c.TCP.Address); err != nil {
			errs = append(errs, field.Invalid(p.Child("tcp", "address"), c.TCP.Address, `must be "IP:port" (e.g. "127.0.0.1:6443" or "[::1]:6443")`))
		}
	}
	if c.HTTP != nil {
		kinds = append(kinds, "http")
		errs = append(errs, validateHTTPCheck(p.Child("http"), c.HTTP)...)
	}
	if c.Exec != nil {
		kinds = append(kinds, "exec")
		errs = append(errs, validateExecCommand(p.Child("exec", "command"), c.Exec.Command)...)
	}
	if c.Interface != nil {
		kinds = append(kinds, "interface")
		errs = append(errs, ValidateInterfaceName(p.Child("interface", "name"), c.Interface.Name)...)
	}
	switch len(kinds) {
	case 0:
		errs = append(errs, field.Required(p, "must set one of tcp, http, exec or interface"))
	case 1:
	default:
		errs = append(errs, field.Invalid(p, strings.Join(kinds, ", "), "must set exactly one of tcp, http, exec or interface"))
	}
	errs = append(errs, validateProbeTiming(p, c.Interval, c.Timeout, c.Rise, c.Fall)...)
	return errs
}

// validateExecCommand checks the argv of an exec check: a program given by
// its absolute path, then its arguments.
func validateExecCommand(p *field.Path, cmd []string) field.ErrorList {
	switch {
	case len(cmd) == 0:
		return field.ErrorList{field.Required(p, "must list the program (an absolute path) and its arguments")}
	case !filepath.IsAbs(cmd[0]):
		return field.ErrorList{field.Invalid(p.Index(0), cmd[0], "must be the absolute path of the program: the command runs without a shell or a PATH lookup")}
	}
	return nil
}

// validateStatusAndCA checks the expected status codes, the CA file and
// insecureSkipVerify of an HTTP check (p is the check's http path).
func validateStatusAndCA(p *field.Path, expect []int32, caFile string, insecure bool) field.ErrorList {
	var errs field.ErrorList
	for i, s := range expect {
		if s < 100 || s > 599 {
			errs = append(errs, field.Invalid(p.Child("expectStatus").Index(i), s, "must be an HTTP status code, 100 to 599"))
		}
	}
	if caFile != "" && !filepath.IsAbs(caFile) {
		errs = append(errs, field.Invalid(p.Child("caFile"), caFile, "must be an absolute path"))
	}
	if caFile != "" && insecure {
		errs = append(errs, field.Invalid(p.Child("insecureSkipVerify"), true, "must not be set together with caFile: either verify the certificate or do not"))
	}
	return errs
}

// validateProbeTiming checks the interval, timeout, rise and fall of a
// check, each optional.
func validateProbeTiming(p *field.Path, interval, timeout *agentv1alpha1.Duration, rise, fall *int32) field.ErrorList {
	var errs field.ErrorList
	if interval != nil {
		if d := interval.Duration; d < MinCheckInterval || d > MaxCheckInterval {
			errs = append(errs, field.Invalid(p.Child("interval"), d.String(), fmt.Sprintf("must be between %v and %v", MinCheckInterval, MaxCheckInterval)))
		}
	}
	if timeout != nil {
		d := timeout.Duration
		switch {
		case d <= 0:
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), "must be greater than 0"))
		case interval != nil && d > interval.Duration:
			errs = append(errs, field.Invalid(p.Child("timeout"), d.String(), fmt.Sprintf("must be at most the interval (%v): probes of one check never overlap", interval.Duration)))
		}
	}
	for _, rf := range []struct {
		name string
		v    *int32
	}{{"rise", rise}, {"fall", fall}} {
		if rf.v != nil && (*rf.v < 1 || *rf.v > MaxRiseFall) {
			errs = append(errs, field.Invalid(p.Child(rf.name), *rf.v, fmt.Sprintf("must be between 1 and %d", MaxRiseFall)))
		}
	}
	return errs
}

func validateHTTPCheck(p *field.Path, h *agentv1alpha1.HTTPCheck) field.ErrorList {
	var errs field.ErrorList
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "":
		errs = append(errs, field.Required(p.Child("url"), `must be an http:// or https:// URL, e.g. "https://127.0.0.1:6443/readyz"`))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, field.Invalid(p.Child("url"), h.URL, `must be an http:// or https:// URL with a host, e.g. "https://127.0.0.1:6443/readyz"`))
	}
	errs = append(errs, validateStatusAndCA(p, h.ExpectStatus, h.CAFile, h.InsecureSkipVerify)...)
	if u != nil && u.Scheme == "http" && (h.CAFile != "" || h.InsecureSkipVerify || h.ServerName != "") {
		errs = append(errs, field.Invalid(p.Child("url"), h.URL, "caFile, insecureSkipVerify and serverName need an https:// URL"))
	}
	return errs
}

// validateTrackChecks checks a router's trackChecks against the checks.
func validateTrackChecks(p *field.Path, r *agentv1alpha1.VirtualRouter, names map[string]bool) field.ErrorList {
	var errs field.ErrorList
	if n := len(r.TrackChecks); n > agentv1alpha1.MaxTrackChecks {
		errs = append(errs, field.TooMany(p.Child("trackChecks"), n, agentv1alpha1.MaxTrackChecks))
	}
	seen := map[string]bool{}
	for i, tc := range r.TrackChecks {
		tp := p.Child("trackChecks").Index(i)
		switch {
		case tc.Check == "":
			errs = append(errs, field.Required(tp.Child("check"), "must name an entry of checks"))
		case !names[tc.Check]:
			errs = append(errs, field.NotFound(tp.Child("check"), tc.Check))
		case seen[tc.Check]:
			errs = append(errs, field.Duplicate(tp.Child("check"), tc.Check))
		}
		seen[tc.Check] = true
		if tc.Weight < -MaxWeight || tc.Weight > MaxWeight {
			errs = append(errs, field.Invalid(tp.Child("weight"), tc.Weight, "must be between -254 and 254 (0: FAULT while the check fails)"))
		}
	}
	if r.PreemptAfterChecks && len(r.TrackChecks) == 0 {
		errs = append(errs, field.Invalid(p.Child("preemptAfterChecks"), true, "needs trackChecks: there is no check to wait for"))
	}
	return errs
}

package agent

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/go-logr/logr"

	"github.com/vipvs/vipvs/agent/check"
	"github.com/vipvs/vipvs/agent/config"
	"github.com/vipvs/vipvs/agent/status"
	"github.com/vipvs/vipvs/agent/vrrp"
)

// effective computes a router's priority from its configured priority and
// the health of its tracked checks, with keepalived's semantics: a negative
// weight lowers the priority while the check fails, a positive one raises it
// while the check is healthy, and the result stays within 1 to 254. The
// address owner (255) keeps its priority. faults lists the failing checks of
// weight 0, which put the router in FAULT.
func effective(base uint8, tracks []config.TrackCheck, healthy func(string) bool) (prio uint8, faults []string) {
	p := int(base)
	for _, tc := range tracks {
		h := healthy(tc.Check)
		switch {
		case tc.Weight == 0 && !h:
			faults = append(faults, tc.Check)
		case tc.Weight < 0 && !h, tc.Weight > 0 && h:
			p += tc.Weight
		}
	}
	if base == vrrp.OwnerPriority {
		return base, faults
	}
	return uint8(min(max(p, 1), 254)), faults
}

// newChecker builds the checker of a validated check.
func newChecker(c config.Check) (check.Checker, error) {
	switch {
	case c.TCP.IsValid():
		return check.TCP{Address: c.TCP}, nil
	case c.HTTP != nil:
		h, err := check.NewHTTP(check.HTTPOptions{
			URL:                c.HTTP.URL,
			ExpectStatus:       c.HTTP.ExpectStatus,
			CAFile:             c.HTTP.CAFile,
			InsecureSkipVerify: c.HTTP.InsecureSkipVerify,
			ServerName:         c.HTTP.ServerName,
		})
		if err != nil {
			return nil, err
		}
		return h, nil
	case len(c.Exec) > 0:
		return check.Exec{Argv: c.Exec}, nil
	case c.Interface != "":
		return check.Interface{Name: c.Interface}, nil
	}
	return nil, fmt.Errorf("check %s has no kind", c.Name)
}

// applyChecks makes the running checks match cfg: unchanged checks keep
// running (and their health), changed and new ones start failed, removed ones
// stop. It is called with the config, before the routers are applied.
func (a *Agent) applyChecks(checks []config.Check) error {
	var members []check.Member
	var errs []string
	cfgs := map[string]config.Check{}
	for _, c := range checks {
		checker, err := newChecker(c)
		if err != nil {
			errs = append(errs, err.Error()) // the check package's errors name the target
			continue
		}
		name := c.Name
		cfgs[name] = c
		members = append(members, check.Member{
			Spec: check.Spec{
				Name:     name,
				Checker:  checker,
				Interval: c.Interval,
				Timeout:  c.Timeout,
				Rise:     c.Rise,
				Fall:     c.Fall,
				// A check starts failed: a node claims the priority its
				// checks give only once they have proved healthy (rise
				// successes).
				InitiallyHealthy: false,
			},
			Config:   c,
			OnResult: func(res check.Result) { a.m.checkResult(name, res.OK) },
			OnChange: func(healthy bool, _ check.Result) {
				if healthy {
					a.mu.Lock()
					a.everHealthy[name] = true
					a.mu.Unlock()
				}
				a.m.checkUp(name, healthy)
				a.recompute()
			},
		})
	}
	a.mu.Lock()
	old := a.checkCfgs
	a.mu.Unlock()
	stopped, err := a.checks.Sync(members)
	if err != nil {
		errs = append(errs, err.Error())
	}
	a.mu.Lock()
	for _, name := range stopped {
		delete(a.everHealthy, name)
	}
	a.checkCfgs = cfgs
	a.mu.Unlock()
	for _, name := range stopped {
		if _, kept := cfgs[name]; !kept {
			a.m.forgetCheck(name)
		}
	}
	for name := range cfgs {
		if oc, ok := old[name]; !ok || !reflect.DeepEqual(oc, cfgs[name]) {
			a.m.checkUp(name, false)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("starting checks: %s", strings.Join(errs, "; "))
	}
	return nil
}

// trackState is what was last delivered to a router, so that only changes
// are delivered.
type trackState struct {
	priority uint8
	fault    string
	hold     bool
	set      bool
}

// recompute derives each router's priority, fault and preemption hold from
// its checks and its interface, and delivers what changed. It is called on
// every check state change, link change and config change.
func (a *Agent) recompute() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.routers {
		healthy := a.checks.Healthy
		prio, failing := effective(r.cfg.Priority, r.cfg.TrackChecks, healthy)
		var reasons []string
		if st, known := a.links[r.cfg.Interface]; known && !st.Up {
			reasons = append(reasons, "interface "+r.cfg.Interface+" is down")
		}
		for _, name := range failing {
			reasons = append(reasons, "track check "+name+" failed")
		}
		hold := false
		if r.cfg.PreemptAfterChecks {
			for _, tc := range r.cfg.TrackChecks {
				if !a.everHealthy[tc.Check] {
					hold = true
				}
			}
		}
		fault := strings.Join(reasons, ", ")
		r.deliverTrack(trackState{priority: prio, fault: fault, hold: hold, set: true}, a.log, a.m)
	}
	a.bgp.evaluate(a.checks.Healthy)
}

// deliverTrack sends the events that move the router from its last track
// state to s.
func (r *router) deliverTrack(s trackState, log logr.Logger, m *metrics) {
	r.mu.Lock()
	last := r.track
	r.track = s
	r.mu.Unlock()
	if !last.set {
		last = trackState{priority: r.cfg.Priority}
	}
	if s.hold != last.hold {
		r.runner.Deliver(vrrp.SetPreemptHold{Hold: s.hold})
		if s.hold {
			r.log.Info("preemption held until the tracked checks pass")
		} else {
			r.log.Info("tracked checks passed, preemption allowed")
		}
	}
	if s.priority != last.priority {
		r.log.Info("priority changed by track checks", "priority", s.priority, "configured", r.cfg.Priority)
		r.runner.Deliver(vrrp.SetPriority{Priority: s.priority})
		m.setPriority(r.cfg, s.priority)
	}
	switch {
	case s.fault != "" && s.fault != last.fault:
		r.runner.Deliver(vrrp.SetFault{Fault: true, Reason: s.fault})
	case s.fault == "" && last.fault != "":
		r.runner.Deliver(vrrp.SetFault{Fault: false, Reason: "no more faults (was: " + last.fault + ")"})
	}
}

// checkReports returns the status of every check, by name.
func (a *Agent) checkReports() []status.Check {
	out := make([]status.Check, 0, len(a.checkCfgs))
	for name, cfg := range a.checkCfgs {
		r, ok := a.checks.Runner(name)
		if !ok {
			continue
		}
		last := r.Last()
		c := status.Check{Name: name, Kind: checkKind(cfg), Healthy: r.Healthy(), LastProbe: last.At}
		if last.Err != nil {
			c.LastError = last.Err.Error()
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func checkKind(c config.Check) string {
	switch {
	case c.TCP.IsValid():
		return "tcp"
	case c.HTTP != nil:
		return "http"
	case len(c.Exec) > 0:
		return "exec"
	}
	return "interface"
}

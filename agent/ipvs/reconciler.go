package ipvs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Table is the kernel's IPVS table as the Reconciler uses it; Programmer
// implements it.
type Table interface {
	Services(ctx context.Context) ([]Service, error)
	Apply(ctx context.Context, p Plan) error
}

// realsFilter is implemented by tables (Programmer) that can skip reading
// the reals of services the Reconciler does not need them of.
type realsFilter interface {
	ServicesWithReals(ctx context.Context, withReals func(Service) bool) ([]Service, error)
}

// Reconciler keeps the kernel's table at the desired state: it reads the
// table, computes the Diff and applies it. It owns the services it is asked
// for and remembers them, so that a service later dropped from the desired
// state is deleted; everything else in the table is left alone.
//
// Reconcile and Run may be called from different goroutines; reconciles
// are serialised.
type Reconciler struct {
	table Table
	clock clock.Clock
	log   logr.Logger
	// alsoOwned, if set, claims services the Reconciler has not desired in
	// this process (e.g. from the configuration before a restart).
	alsoOwned func(Service) bool

	mu    chan struct{} // a lock that Run can select on: held while reconciling
	owned map[string]bool
	// trigger is buffered: Trigger never blocks and coalesces.
	trigger chan struct{}
}

// ReconcilerOption configures a Reconciler.
type ReconcilerOption func(*Reconciler)

// WithOwned makes the Reconciler also own (and so delete when not desired)
// the services for which owned returns true, e.g. those of the previous
// configuration after a restart.
func WithOwned(owned func(Service) bool) ReconcilerOption {
	return func(r *Reconciler) { r.alsoOwned = owned }
}

// NewReconciler returns a Reconciler of t. clk measures durations and, in
// Run, the period; log receives the changes ("ipvs" is appended to its
// name).
func NewReconciler(t Table, clk clock.Clock, log logr.Logger, opts ...ReconcilerOption) *Reconciler {
	r := &Reconciler{
		table:   t,
		clock:   clk,
		log:     log.WithName("ipvs"),
		mu:      make(chan struct{}, 1),
		owned:   map[string]bool{},
		trigger: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Reconcile makes the kernel's table match desired and returns the plan it
// applied (or tried to). Invalid desired services are reported in the
// error and left as they are in the kernel; the valid ones are reconciled
// anyway. Apply's errors are returned joined; the next Reconcile retries.
func (r *Reconciler) Reconcile(ctx context.Context, desired []Service) (Plan, error) {
	select {
	case r.mu <- struct{}{}:
	case <-ctx.Done():
		return Plan{}, fmt.Errorf("ipvs: reconciling: %w", ctx.Err())
	}
	defer func() { <-r.mu }()
	start := r.clock.Now()

	var errs []error
	valid := make([]Service, 0, len(desired))
	keep := map[string]bool{} // desired keys, valid or not
	for _, s := range desired {
		k := s.Key()
		if keep[k] {
			errs = append(errs, fmt.Errorf("ipvs: service %s: duplicate service, the first one is used", k))
			continue
		}
		keep[k] = true
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		valid = append(valid, s)
	}

	var actual []Service
	var err error
	if f, ok := r.table.(realsFilter); ok {
		// Diff compares the reals of desired services only.
		wantKeys := make(map[string]bool, len(valid))
		for _, s := range valid {
			wantKeys[s.Key()] = true
		}
		actual, err = f.ServicesWithReals(ctx, func(s Service) bool { return wantKeys[s.Key()] })
	} else {
		actual, err = r.table.Services(ctx)
	}
	if err != nil {
		return Plan{}, errors.Join(append(errs, err)...)
	}
	owned := func(s Service) bool {
		k := s.Key()
		if keep[k] {
			return false // desired but invalid: leave it alone
		}
		return r.owned[k] || (r.alsoOwned != nil && r.alsoOwned(s))
	}
	plan := Diff(valid, actual, owned)
	applyErr := r.table.Apply(ctx, plan)
	if applyErr != nil {
		errs = append(errs, applyErr)
	}

	// Own what is desired now; keep owning what we failed to delete.
	next := make(map[string]bool, len(keep))
	for k := range keep {
		next[k] = true
	}
	if applyErr != nil {
		for _, op := range plan.Ops {
			if op.Kind == DelService {
				next[op.Service.Key()] = true
			}
		}
	}
	r.owned = next

	took := r.clock.Since(start)
	if plan.Empty() {
		r.log.V(1).Info("IPVS table up to date", "services", len(valid), "duration", took)
	} else {
		c := plan.Counts()
		r.log.Info("IPVS changes made",
			"servicesAdded", c[AddService], "servicesUpdated", c[UpdateService], "servicesDeleted", c[DelService],
			"realsAdded", c[AddReal], "realsUpdated", c[UpdateReal], "realsDeleted", c[DelReal],
			"failed", applyErr != nil, "duration", took)
		for _, op := range plan.Ops {
			r.log.V(1).Info("IPVS operation", "op", op.String())
		}
	}
	return plan, errors.Join(errs...)
}

// Trigger asks Run to reconcile now; it never blocks, and triggers during a
// reconcile coalesce into one more.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles at once, then every period and whenever triggered, until
// ctx ends; desired is called each time for the current state. onResult,
// if not nil, gets each reconcile's plan, duration and error. The period is
// measured on the Reconciler's clock from the end of one reconcile to the
// start of the next. Errors are logged when they change.
func (r *Reconciler) Run(ctx context.Context, every time.Duration, desired func() []Service, onResult func(Plan, time.Duration, error)) {
	var lastErr string
	for {
		start := r.clock.Now()
		plan, err := r.Reconcile(ctx, desired())
		took := r.clock.Since(start)
		if ctx.Err() != nil {
			return
		}
		if msg := errString(err); msg != lastErr {
			if err != nil {
				r.log.Error(err, "IPVS reconcile failed")
			} else {
				r.log.Info("IPVS reconcile succeeds again")
			}
			lastErr = msg
		}
		if onResult != nil {
			onResult(plan, took, err)
		}
		t := r.clock.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-r.trigger:
			t.Stop()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// A reconcile is full (Reconcile) or incremental (ReconcileChanged). IPVS
// has no dump of all real servers: reading a service's reals costs a
// netlink round trip, so a full reconcile of n services costs n+1. The
// Reconciler remembers, per service, the desired state it last left in the
// kernel (applied without error, or found in sync); an incremental
// reconcile reads the service list (one dump) and the reals only of the
// desired services that differ from that memory, and trusts the reals of
// the others. The caller (package balancer) decides when: fully at start
// and on a timer, so that a real server changed by someone else is
// repaired, and incrementally on a change of the desired state.
//
// With a Record (WithRecord), what the Reconciler owns survives a restart
// of the process: the first reconcile claims the recorded services, so a
// service dropped from the desired state while the process was down is
// deleted; the record is written before a reconcile adds a service (so a
// crash cannot leave an unrecorded service behind) and after one deletes.
//
// Reconcile and ReconcileChanged may be called from different goroutines;
// reconciles are serialised.
type Reconciler struct {
	table Table
	clock clock.Clock
	log   logr.Logger
	// record, if set, keeps owned across restarts.
	record Record

	mu chan struct{} // a lock that a reconcile waits for with its context
	// loaded is set once the record was loaded into owned.
	loaded bool
	// saved is what the record holds (when loaded).
	saved map[serviceID]bool
	owned map[serviceID]bool
	// applied holds each desired service as the last reconcile left it in
	// the kernel: applied without error or found in sync. A service whose
	// operations failed, or that is no longer desired, is not in it.
	applied map[serviceID]*appliedService
}

// ReconcilerOption configures a Reconciler.
type ReconcilerOption func(*Reconciler)

// WithRecord keeps the services the Reconciler owns in rec, so that after
// a restart it owns (and so deletes when not desired) those it programmed
// before. A record that cannot be loaded is reported by the first
// reconcile, which then owns only what it is asked for; a record that
// cannot be saved is reported by each reconcile until it is saved.
func WithRecord(rec Record) ReconcilerOption {
	return func(r *Reconciler) { r.record = rec }
}

// NewReconciler returns a Reconciler of t. clk measures durations; log
// receives the changes ("ipvs" is appended to its name).
func NewReconciler(t Table, clk clock.Clock, log logr.Logger, opts ...ReconcilerOption) *Reconciler {
	r := &Reconciler{
		table:   t,
		clock:   clk,
		log:     log.WithName("ipvs"),
		mu:      make(chan struct{}, 1),
		owned:   map[serviceID]bool{},
		applied: map[serviceID]*appliedService{},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Reconcile makes the kernel's table match desired and returns the plan it
// applied (or tried to). It is a full reconcile: it reads the reals of every
// desired service, so it also repairs real servers that someone else
// changed. Invalid desired services are reported in the error and left as
// they are in the kernel; the valid ones are reconciled anyway. Apply's
// errors are returned joined; the next reconcile retries.
func (r *Reconciler) Reconcile(ctx context.Context, desired []Service) (Plan, error) {
	return r.reconcile(ctx, desired, true)
}

// ReconcileChanged is the incremental Reconcile, for a change of the
// desired state (configuration, health): it reads the service list without
// reals plus the reals of the desired services that changed since the last
// reconcile left them in the kernel, or whose operations failed then. A
// desired service that did not change and is in the kernel is assumed in
// sync: only its scheduler, persistence and flags, which the service list
// carries, are compared; its reals are left to the next Reconcile. A desired
// service missing from the kernel (deleted by someone else) is added back
// with its reals, and owned services no longer desired are deleted, as
// Reconcile does.
func (r *Reconciler) ReconcileChanged(ctx context.Context, desired []Service) (Plan, error) {
	return r.reconcile(ctx, desired, false)
}

func (r *Reconciler) reconcile(ctx context.Context, desired []Service, full bool) (Plan, error) {
	select {
	case r.mu <- struct{}{}:
	case <-ctx.Done():
		return Plan{}, fmt.Errorf("ipvs: reconciling: %w", ctx.Err())
	}
	defer func() { <-r.mu }()
	start := r.clock.Now()
	var errs []error
	if r.record != nil && !r.loaded {
		// Claim what the previous process owned.
		r.loaded = true
		r.saved = map[serviceID]bool{}
		prev, err := r.record.Load()
		if err != nil {
			errs = append(errs, fmt.Errorf("%w; services dropped from the configuration while the agent was down are left in the kernel", err))
		}
		for _, s := range prev {
			r.owned[s.id()] = true
			r.saved[s.id()] = true
		}
		if len(prev) > 0 {
			r.log.Info("claiming the IPVS services of the previous run", "services", len(prev))
		}
	}

	// list holds the valid desired services in order, byID the index in
	// list of every desired service (-1 for an invalid one).
	list := make([]wanted, 0, len(desired))
	byID := make(map[serviceID]int, len(desired))
	reads := 0
	for _, s := range desired {
		k := s.id()
		if _, dup := byID[k]; dup {
			errs = append(errs, fmt.Errorf("ipvs: service %s: duplicate service, the first one is used", s.Key()))
			continue
		}
		byID[k] = -1
		prev := r.applied[k]
		w := wanted{svc: prev}
		if prev == nil || !sameInput(prev.in, s) {
			// Otherwise it was validated and normalised when applied.
			if err := s.Validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			w.svc = &appliedService{in: cloneService(s), norm: s.normal()}
		}
		// The reals to read: all in a full reconcile, those of the
		// changed services in an incremental one.
		w.readReals = full || prev == nil || !equalServices(prev.norm, w.svc.norm)
		if w.readReals {
			reads++
		}
		byID[k] = len(list)
		list = append(list, w)
	}
	lookup := func(k serviceID) *wanted {
		if i, ok := byID[k]; ok && i >= 0 {
			return &list[i]
		}
		return nil
	}
	owned := func(s Service) bool {
		k := s.id()
		if _, ok := byID[k]; ok {
			return false // desired but invalid: leave it alone
		}
		return r.owned[k]
	}

	var actual []Service
	var err error
	if f, ok := r.table.(realsFilter); ok {
		// Diff compares the reals of these services only.
		actual, err = f.ServicesWithReals(ctx, func(s Service) bool {
			w := lookup(s.id())
			return w != nil && w.readReals
		})
	} else {
		actual, err = r.table.Services(ctx)
	}
	if err != nil {
		return Plan{}, errors.Join(append(errs, err)...)
	}

	// Diff gets what may need work: the desired services whose reals were
	// read, the services it may delete, and the services assumed in sync
	// (present, reals not read) only if their attributes differ, then
	// without reals on both sides. The others would give no operation.
	have := make([]Service, 0, len(actual))
	for _, s := range actual {
		w := lookup(s.id())
		switch {
		case w == nil && !owned(s):
			continue // not ours, or desired but invalid
		case w != nil && !w.readReals:
			w.assumed = true
			if attrsEqual(w.svc.norm, s.normalAttrs()) {
				continue
			}
			w.attrsDiffer = true
			s = bare(s)
		}
		have = append(have, s)
	}
	diffWant := make([]Service, 0, len(list))
	for _, w := range list {
		switch {
		case !w.assumed:
			diffWant = append(diffWant, w.svc.norm)
		case w.attrsDiffer:
			diffWant = append(diffWant, bare(w.svc.norm))
		}
	}
	plan := Diff(diffWant, have, owned)
	// Record first what this reconcile may add: everything desired.
	if err := r.save(r.owned, byID); err != nil {
		errs = append(errs, err)
	}
	applyErr := r.table.Apply(ctx, plan)
	if applyErr != nil {
		errs = append(errs, applyErr)
	}

	// Own what is desired now; keep owning what we failed to delete.
	var failedDeletes map[serviceID]bool
	if applyErr != nil {
		failedDeletes = map[serviceID]bool{}
		for _, op := range plan.Ops {
			if op.Kind == DelService {
				failedDeletes[op.Service.id()] = true
			}
		}
	}
	for k := range r.owned {
		if _, desired := byID[k]; !desired && !failedDeletes[k] {
			delete(r.owned, k)
		}
	}
	for k := range byID {
		r.owned[k] = true
	}
	// Then what it deleted.
	if err := r.save(r.owned, nil); err != nil {
		errs = append(errs, err)
	}
	// Remember what the kernel now holds of each valid desired service,
	// except those whose operations failed: the next reconcile reads them.
	failed := failedServices(plan, applyErr)
	for k := range r.applied {
		if i, ok := byID[k]; !ok || i < 0 || failed[k] {
			delete(r.applied, k)
		}
	}
	for _, w := range list {
		if k := w.svc.norm.id(); !failed[k] {
			r.applied[k] = w.svc
		}
	}

	took := r.clock.Since(start)
	mode := "full"
	if !full {
		mode = "changed"
	}
	if plan.Empty() {
		r.log.V(1).Info("IPVS table up to date", "mode", mode, "services", len(list), "realsRead", reads, "duration", took)
	} else {
		c := plan.Counts()
		r.log.Info("IPVS changes made", "mode", mode,
			"servicesAdded", c[AddService], "servicesUpdated", c[UpdateService], "servicesDeleted", c[DelService],
			"realsAdded", c[AddReal], "realsUpdated", c[UpdateReal], "realsDeleted", c[DelReal],
			"realsRead", reads, "failed", applyErr != nil, "duration", took)
		if v := r.log.V(1); v.Enabled() {
			for _, op := range plan.Ops {
				v.Info("IPVS operation", "op", op.String())
			}
		}
	}
	return plan, errors.Join(errs...)
}

// appliedService is a desired service as the Reconciler remembers it.
type appliedService struct {
	in   Service // as the caller gave it, a copy
	norm Service // normalised
}

// wanted is a valid desired service during a reconcile.
type wanted struct {
	svc         *appliedService
	readReals   bool // its reals are read from the kernel
	assumed     bool // it is in the kernel and its reals are not read
	attrsDiffer bool // assumed, but its scheduler, persistence or flags differ
}

// sameInput reports whether two desired services are given exactly alike,
// reals in the same order.
func sameInput(a, b Service) bool {
	return a.VIP == b.VIP && a.Port == b.Port && a.Protocol == b.Protocol && a.Scheduler == b.Scheduler &&
		a.Persistence == b.Persistence && a.Flags == b.Flags && a.Forward == b.Forward && slices.Equal(a.Reals, b.Reals)
}

func cloneService(s Service) Service {
	s.Reals = slices.Clone(s.Reals)
	return s
}

// failedServices returns the keys of the services whose operations in plan
// failed, from the OpErrors in err. When err holds an error that names no
// operation (a cancelled context, a Table that does not return OpErrors),
// every service of the plan counts as failed.
func failedServices(plan Plan, err error) map[serviceID]bool {
	if err == nil {
		return nil
	}
	failed := map[serviceID]bool{}
	if !collectOpErrors(err, failed) {
		for _, op := range plan.Ops {
			failed[op.Service.id()] = true
		}
	}
	return failed
}

// collectOpErrors adds the service key of every OpError in err's tree to
// keys; it reports false if some branch of the tree holds no OpError.
func collectOpErrors(err error, keys map[serviceID]bool) bool {
	switch e := err.(type) {
	case *OpError:
		keys[e.Op.Service.id()] = true
		return true
	case interface{ Unwrap() []error }:
		ok := true
		for _, x := range e.Unwrap() {
			if !collectOpErrors(x, keys) {
				ok = false
			}
		}
		return ok
	case interface{ Unwrap() error }:
		if x := e.Unwrap(); x != nil {
			return collectOpErrors(x, keys)
		}
	}
	return false
}

// save makes the record hold the union of a and b, when it does not yet.
// Nothing is saved before the record was loaded, or without a record.
func (r *Reconciler) save(a map[serviceID]bool, b map[serviceID]int) error {
	if r.record == nil || !r.loaded {
		return nil
	}
	// Without allocating in the common case: the union is saved already
	// when each of its keys is, and it is as large as saved.
	union, same := len(a), true
	for k := range a {
		same = same && r.saved[k]
	}
	for k := range b {
		if !a[k] {
			union++
			same = same && r.saved[k]
		}
	}
	if same && union == len(r.saved) {
		return nil
	}
	want := make(map[serviceID]bool, union)
	for k := range a {
		want[k] = true
	}
	for k := range b {
		want[k] = true
	}
	list := make([]Service, 0, len(want))
	for k := range want {
		list = append(list, Service{Protocol: k.proto, VIP: k.vip, Port: k.port})
	}
	if err := r.record.Save(list); err != nil {
		return err
	}
	r.saved = want
	return nil
}

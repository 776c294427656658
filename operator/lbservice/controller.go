// Package lbservice is the operator's allocator of addresses for Services
// of type LoadBalancer: it gives the Services whose spec.loadBalancerClass
// is vipvs.io/lb (and, when told, those with no class) addresses from the
// IPPools, writes them to status.loadBalancer.ingress with ipMode VIP, and
// reports each pool's use in its status.
//
// One reconcile looks at every Service and pool at once (one queue key),
// so that the decisions are a pure function of the cluster's state plus
// what this process gave since it started: addresses are replayed in a
// fixed order (oldest Service first), then the Services without one get
// theirs. At start the given addresses are read back from the Services'
// status; when two Services claim one address there, the older keeps it
// and the other is given another, with an event. Nothing is stored
// outside the Services' status (no finalizer, no annotation): a Service
// deleted, or changed to another type or class, frees its addresses.
package lbservice

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/operator/ipam"
)

// Event reasons besides the ipam.Reason* of failures (which are the
// reasons of the Warning events and of the False condition).
const (
	// EventAllocated: the Service was given addresses.
	EventAllocated = "IPAllocated"
	// EventReleased: the addresses of a Service that is no longer of the
	// class or type were released and its status cleared.
	EventReleased = "IPReleased"
	// EventAddressConflict: at start, two Services had one address in
	// their status; the older keeps it.
	EventAddressConflict = "AddressConflict"
	// ReasonAllocated is the reason of the True condition.
	ReasonAllocated = "Allocated"
)

// EventRecorder records events: the method of
// k8s.io/client-go/tools/events.EventRecorder the allocator uses (the
// manager's GetEventRecorder returns one).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Options configure the allocator.
type Options struct {
	// ServeClassless makes it also serve the Services of type
	// LoadBalancer with no spec.loadBalancerClass (for clusters where
	// vipvs is the only implementation).
	ServeClassless bool
	// Registerer is where the metrics are registered. Default:
	// controller-runtime's metrics.Registry.
	Registerer prometheus.Registerer
	// Clock gives the conditions' transition times. Default: the real
	// clock.
	Clock clock.PassiveClock
}

// Reconciler is the allocator.
type Reconciler struct {
	client   client.Client
	recorder EventRecorder
	metrics  *metrics
	opts     Options

	mu sync.Mutex
	// started is set once the claims were read from the Services' status.
	started bool
	// claims are the addresses given, by Service UID: what the cache may
	// not show yet after a status write.
	claims map[types.UID]claim
	// failed is the last failure message reported per Service, so that
	// each is an event and a count once.
	failed map[types.UID]string
}

// claim is the addresses given to one Service.
type claim struct {
	name  types.NamespacedName
	addrs []netip.Addr
	// key and ports are the Service's sharing key and ports when it was
	// given the addresses: a Service that changed them since yields a
	// shared address to those that did not.
	key   string
	ports []ipam.Port
	// fromStatus marks a claim read from the status at start, not yet
	// confirmed against the others.
	fromStatus bool
}

// changed reports whether the Service asks to share with another key or
// ports than when it was given its addresses.
func (c claim) changed(req ipam.Request) bool {
	return !c.fromStatus && (c.key != req.SharingKey || !slices.Equal(c.ports, req.Ports))
}

// conflictRetry is when a reconcile whose write lost a race with another
// writer (or with the cache) runs again, should no event come first.
const conflictRetry = 200 * time.Millisecond

// key is the one queue key: every event reconciles everything.
var key = reconcile.Request{NamespacedName: types.NamespacedName{Name: "ip-pools"}}

// Setup creates the allocator with mgr's client and event recorder and
// registers it with mgr.
func Setup(mgr manager.Manager, opts Options) error {
	r, err := NewReconciler(mgr.GetClient(), mgr.GetEventRecorder("vipvs-operator"), opts)
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// NewReconciler returns an allocator.
func NewReconciler(c client.Client, rec EventRecorder, opts Options) (*Reconciler, error) {
	if opts.Registerer == nil {
		opts.Registerer = crmetrics.Registry
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Reconciler{client: c, recorder: rec, metrics: m, opts: opts, claims: map[types.UID]claim{}, failed: map[types.UID]string{}}, nil
}

// SetupWithManager registers the controller: Services, IPPools (their
// spec: the status is the allocator's) and Namespaces (their labels, for
// the pools' namespace selectors) all map to the one key.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{key} })
	return ctrl.NewControllerManagedBy(mgr).
		Named("ip-pools").
		Watches(&corev1.Service{}, all, builder.WithPredicates(serviceChanges())).
		Watches(&v1alpha1.IPPool{}, all, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, all, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(r)
}

// serviceChanges passes what can change an allocation: anything but a
// change of the status's conditions alone (the allocator's own write).
func serviceChanges() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Service)
		n, ok2 := e.ObjectNew.(*corev1.Service)
		if !ok1 || !ok2 {
			return true
		}
		return !equality.Semantic.DeepEqual(o.Spec, n.Spec) || !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
			!equality.Semantic.DeepEqual(o.Annotations, n.Annotations) || !equality.Semantic.DeepEqual(o.Status.LoadBalancer, n.Status.LoadBalancer)
	}}
}

// The permissions Reconcile needs are granted by
// manifests/10-operator-rbac.yaml: services (get, list, watch),
// services/status (update, patch), namespaces (get, list, watch),
// ippools (get, list, watch), ippools/status (update, patch), events.

// Reconcile gives every Service of the class its addresses and writes the
// pools' status and metrics.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	log := logr.FromContextOrDiscard(ctx)
	var pools v1alpha1.IPPoolList
	if err := r.client.List(ctx, &pools); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing IPPools: %w", err)
	}
	var svcs corev1.ServiceList
	if err := r.client.List(ctx, &svcs); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing Services: %w", err)
	}
	var nss corev1.NamespaceList
	if err := r.client.List(ctx, &nss); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing Namespaces: %w", err)
	}
	nsLabels := map[string]labels.Set{}
	for _, ns := range nss.Items {
		nsLabels[ns.Name] = ns.Labels
	}
	states := parsePools(pools.Items)
	var usable []ipam.Pool
	byName := map[string]*poolState{}
	for _, p := range states {
		byName[p.obj.Name] = p
		if p.usable() {
			usable = append(usable, p.pool)
		}
	}
	poolExists := func(name string) bool { p := byName[name]; return p != nil && p.usable() }

	// Oldest first: the order in which claims are replayed decides who
	// keeps a contested address.
	items := svcs.Items
	sort.Slice(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	var mine []*corev1.Service
	present := map[types.UID]bool{}
	type releaseItem struct {
		svc   *corev1.Service
		addrs []netip.Addr
	}
	var release []releaseItem
	for i := range items {
		s := &items[i]
		if ours(s, r.opts.ServeClassless) {
			mine = append(mine, s)
			present[s.UID] = true
			if !r.started {
				if addrs := statusAddresses(s); len(addrs) > 0 {
					r.claims[s.UID] = claim{name: nameOf(s), addrs: addrs, fromStatus: true}
				}
			}
			continue
		}
		c, claimed := r.claims[s.UID]
		// At start, a Service that stopped being of type LoadBalancer while
		// no allocator ran may still show an address of a pool.
		if claimed || (!r.started && s.Spec.Type != corev1.ServiceTypeLoadBalancer && hasVIPIngress(s) && inPools(statusAddresses(s), usable)) {
			addrs := c.addrs
			if !claimed {
				addrs = statusAddresses(s)
			}
			release = append(release, releaseItem{s, addrs})
		}
	}
	r.started = true
	for uid := range r.claims {
		if !present[uid] {
			delete(r.claims, uid) // deleted, or no longer ours (cleared below)
		}
	}
	for uid := range r.failed {
		if !present[uid] {
			delete(r.failed, uid)
		}
	}

	alloc := ipam.New(usable)
	type outcome struct {
		svc   *corev1.Service
		addrs []netip.Addr
		err   error
		fresh bool // newly given this time
	}
	outcomes := make([]outcome, 0, len(mine))
	reqs := make([]ipam.Request, len(mine))
	reqErrs := make([]error, len(mine))
	for i, s := range mine {
		ns := nsLabels[s.Namespace]
		svcLabels := labels.Set(s.Labels)
		reqs[i], reqErrs[i] = request(s, func(pool string) bool {
			p := byName[pool]
			return p != nil && p.sel.admits(ns, svcLabels)
		})
	}
	// Replay: each Service keeps what it was given while that still fits
	// what it asks for and no other Service holds the address: first those
	// whose sharing key and ports are unchanged, then the others, each
	// oldest first (so that a Service whose new ports collide on a shared
	// address is the one that moves).
	kept := make([]bool, len(mine))
	var replay []int
	for pass := 0; pass < 2; pass++ {
		for i, s := range mine {
			if c, ok := r.claims[s.UID]; ok && reqErrs[i] == nil && c.changed(reqs[i]) == (pass == 1) {
				replay = append(replay, i)
			}
		}
	}
	for _, i := range replay {
		s := mine[i]
		c := r.claims[s.UID]
		if !satisfies(alloc, c.addrs, reqs[i], poolExists) {
			continue
		}
		if err := alloc.Assign(svcKey(s), c.addrs, reqs[i].SharingKey, reqs[i].Ports); err != nil {
			if c.fromStatus {
				r.metrics.failures.WithLabelValues(failureReasonAddrConflict).Inc()
				r.recorder.Eventf(s, nil, corev1.EventTypeWarning, EventAddressConflict, "Allocate",
					"the addresses %s in this Service's status are also claimed by an older Service (%v): it keeps them, this Service is given others", joinAddrs(c.addrs), err)
				log.Info("address conflict in the Services' status: the older Service keeps the address", "service", svcKey(s), "addresses", joinAddrs(c.addrs), "conflict", err.Error())
			}
			continue
		}
		kept[i] = true
		c.fromStatus, c.key, c.ports = false, reqs[i].SharingKey, reqs[i].Ports
		r.claims[s.UID] = c
		outcomes = append(outcomes, outcome{svc: s, addrs: c.addrs})
	}
	// Allocate for the others, oldest first.
	for i, s := range mine {
		if kept[i] {
			continue
		}
		delete(r.claims, s.UID)
		if reqErrs[i] != nil {
			outcomes = append(outcomes, outcome{svc: s, err: reqErrs[i]})
			continue
		}
		addrs, err := alloc.Allocate(svcKey(s), reqs[i])
		if err != nil {
			outcomes = append(outcomes, outcome{svc: s, err: err})
			continue
		}
		r.claims[s.UID] = claim{name: nameOf(s), addrs: addrs, key: reqs[i].SharingKey, ports: reqs[i].Ports}
		outcomes = append(outcomes, outcome{svc: s, addrs: addrs, fresh: true})
	}

	var conflicts int
	var errs []error
	for _, o := range outcomes {
		err := r.writeService(ctx, o.svc, o.addrs, o.err, alloc, o.fresh)
		switch {
		case apierrors.IsConflict(err):
			conflicts++
		case apierrors.IsNotFound(err):
		case err != nil:
			errs = append(errs, err)
		}
	}
	for _, rel := range release {
		if err := r.clearService(ctx, rel.svc, rel.addrs); err != nil && !apierrors.IsNotFound(err) {
			if apierrors.IsConflict(err) {
				conflicts++
				continue
			}
			errs = append(errs, err)
		}
	}
	if err := r.writePools(ctx, states); err != nil {
		if apierrors.IsConflict(err) {
			conflicts++
		} else {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return reconcile.Result{}, fmt.Errorf("writing the allocations: %w", errors.Join(errs...))
	}
	if conflicts > 0 {
		// The cache is behind a write; its event reconciles again, and so
		// does this, should none come.
		log.V(1).Info("objects changed meanwhile: reconciling again", "conflicts", conflicts)
		return reconcile.Result{RequeueAfter: conflictRetry}, nil
	}
	return reconcile.Result{}, nil
}

// writeService writes the outcome for one Service: its ingress (the given
// addresses, none on failure) and its condition, and the events.
func (r *Reconciler) writeService(ctx context.Context, s *corev1.Service, addrs []netip.Addr, allocErr error, alloc *ipam.Allocator, fresh bool) error {
	cond := metav1.Condition{Type: v1alpha1.ConditionServiceIPAllocated, ObservedGeneration: s.Generation}
	if allocErr != nil {
		reason := string(ipam.ErrorReason(allocErr))
		if reason == "" {
			reason = string(ipam.ReasonInvalidRequest)
		}
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reason, truncate(allocErr.Error(), 1024)
		if r.failed[s.UID] != cond.Message {
			r.failed[s.UID] = cond.Message
			r.metrics.failures.WithLabelValues(reason).Inc()
			r.recorder.Eventf(s, nil, corev1.EventTypeWarning, reason, "Allocate", "%s", cond.Message)
		}
	} else {
		delete(r.failed, s.UID)
		var parts []string
		for _, a := range addrs {
			if p := alloc.PoolOf(a); p != "" {
				parts = append(parts, fmt.Sprintf("%s (IPPool %s)", a, p))
			} else {
				parts = append(parts, fmt.Sprintf("%s (in no usable IPPool now)", a))
			}
		}
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, ReasonAllocated, "given "+strings.Join(parts, ", ")
		if fresh {
			r.recorder.Eventf(s, nil, corev1.EventTypeNormal, EventAllocated, "Allocate", "%s", cond.Message)
		}
	}
	want := s.DeepCopy()
	want.Status.LoadBalancer.Ingress = ingress(addrs)
	cond.LastTransitionTime = metav1.NewTime(r.opts.Clock.Now())
	apimeta.SetStatusCondition(&want.Status.Conditions, cond)
	if equality.Semantic.DeepEqual(s.Status, want.Status) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, want, client.MergeFromWithOptions(s, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing the status of Service %s: %w", svcKey(s), err)
	}
	return nil
}

// clearService removes the ingress and the condition from a Service that
// is no longer of the class or type.
func (r *Reconciler) clearService(ctx context.Context, s *corev1.Service, addrs []netip.Addr) error {
	want := s.DeepCopy()
	want.Status.LoadBalancer.Ingress = nil
	apimeta.RemoveStatusCondition(&want.Status.Conditions, v1alpha1.ConditionServiceIPAllocated)
	if equality.Semantic.DeepEqual(s.Status, want.Status) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, want, client.MergeFromWithOptions(s, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("clearing the status of Service %s: %w", svcKey(s), err)
	}
	r.recorder.Eventf(s, nil, corev1.EventTypeNormal, EventReleased, "Release", "released %s: the Service is no longer of type LoadBalancer with class %s", joinAddrs(addrs), v1alpha1.LoadBalancerClass)
	return nil
}

// writePools writes each pool's status and the pools' metrics.
func (r *Reconciler) writePools(ctx context.Context, states []*poolState) error {
	used := map[netip.Addr]bool{}
	for _, c := range r.claims {
		for _, a := range c.addrs {
			used[a] = true
		}
	}
	total, inUse := map[string]float64{}, map[string]float64{}
	var errs []error
	conflict := false
	for _, p := range states {
		u := poolUsage(p, used)
		if p.usable() {
			total[p.obj.Name] = float64(u.usableTotal)
		} else {
			total[p.obj.Name] = 0
		}
		inUse[p.obj.Name] = float64(u.assigned)
		want := p.obj.DeepCopy()
		want.Status.ObservedGeneration = p.obj.Generation
		want.Status.Assigned = clamp(u.assigned)
		want.Status.Available = clamp(u.available)
		now := metav1.NewTime(r.opts.Clock.Now())
		ready := metav1.Condition{Type: v1alpha1.IPPoolConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonPoolValid,
			Message: fmt.Sprintf("%d addresses, %d assigned", u.usableTotal, u.assigned), ObservedGeneration: p.obj.Generation, LastTransitionTime: now}
		if !p.usable() {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, p.reason, truncate(p.message, 1024)
		}
		exhausted := metav1.Condition{Type: v1alpha1.IPPoolConditionExhausted, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonPoolHasFree,
			Message: fmt.Sprintf("%d of %d usable addresses free", u.available, u.usableTotal), ObservedGeneration: p.obj.Generation, LastTransitionTime: now}
		if p.usable() && u.available == 0 {
			exhausted.Status, exhausted.Reason, exhausted.Message = metav1.ConditionTrue, v1alpha1.ReasonPoolFull, fmt.Sprintf("all %d usable addresses are assigned", u.usableTotal)
		}
		if !p.usable() {
			exhausted.Message = "the pool hands out no address (see Ready)"
		}
		apimeta.SetStatusCondition(&want.Status.Conditions, ready)
		apimeta.SetStatusCondition(&want.Status.Conditions, exhausted)
		if equality.Semantic.DeepEqual(p.obj.Status, want.Status) {
			continue
		}
		if err := r.client.Status().Patch(ctx, want, client.MergeFromWithOptions(p.obj, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				conflict = true
			} else if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("writing the status of IPPool %s: %w", p.obj.Name, err))
			}
		}
	}
	r.metrics.setPools(total, inUse)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if conflict {
		return apierrors.NewConflict(v1alpha1.GroupVersion.WithResource("ippools").GroupResource(), "", fmt.Errorf("changed meanwhile"))
	}
	return nil
}

func nameOf(s *corev1.Service) types.NamespacedName {
	return types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
}

func svcKey(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func joinAddrs(addrs []netip.Addr) string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return strings.Join(out, ", ")
}

// inPools reports whether any of addrs is in one of pools.
func inPools(addrs []netip.Addr, pools []ipam.Pool) bool {
	for _, a := range addrs {
		for i := range pools {
			if pools[i].Contains(a) {
				return true
			}
		}
	}
	return false
}

// hasVIPIngress reports whether s's status has an ingress with ipMode
// VIP, as the allocator writes them.
func hasVIPIngress(s *corev1.Service) bool {
	return slices.ContainsFunc(s.Status.LoadBalancer.Ingress, func(in corev1.LoadBalancerIngress) bool {
		return in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeVIP
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

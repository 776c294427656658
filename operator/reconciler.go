package operator

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/api/validation"
	"github.com/vipvs/vipvs/companion"
	"github.com/vipvs/vipvs/render"
)

// Finalizer is the finalizer the operator puts on every LoadBalancerConfig:
// it deletes the published Secrets (so that the node companions remove the
// agents) before it lets the object go. (Its name is older than the
// Secrets: objects created by an earlier operator carry it.)
const Finalizer = "vipvs.io/configmaps"

// requeueDelay is when a reconcile that lost a race with a companion's
// patch runs again, should no event come first.
const requeueDelay = time.Second

// DefaultNamespace is the operator's namespace unless told otherwise: where
// it publishes the nodes' Secrets.
const DefaultNamespace = "vipvs-system"

// Event reasons, besides the v1alpha1.Reason* constants used for warnings.
const (
	EventRendered      = "Rendered"
	EventPublished     = "Published"
	EventNodeJoined    = "NodeJoined"
	EventNodeLeft      = "NodeLeft"
	EventNodeForgotten = "NodeForgotten"
	EventNodeMissing   = "NodeMissing"
	EventReady         = "Ready"
	EventCleanedUp     = "CleanedUp"
)

// EventRecorder records events about a LoadBalancerConfig: the method of
// k8s.io/client-go/tools/events.EventRecorder that the operator uses (the
// manager's GetEventRecorder returns one).
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Options configure the reconciler.
type Options struct {
	// Namespace is where the nodes' Secrets are published. Default
	// DefaultNamespace.
	Namespace string
	// Image is the agent image of the static pods. Required.
	Image string
	// Clock gives the conditions' transition times. Default: the real
	// clock.
	Clock clock.PassiveClock
	// Registerer is where the operator's metrics (metrics.go) are
	// registered. Default: controller-runtime's metrics.Registry, which the
	// manager serves on /metrics.
	Registerer prometheus.Registerer
}

// Reconciler reconciles LoadBalancerConfigs: it selects each one's member
// nodes, validates it against the others, renders each node's files,
// publishes them as Secrets for the node companions, and reports the
// status the companions read back from the agents.
type Reconciler struct {
	client client.Client
	// reader reads what the cache does not hold (the Secrets a
	// LoadBalancerConfig references) and what must be fresh (the Secrets
	// left at deletion).
	reader   client.Reader
	scheme   *runtime.Scheme
	recorder EventRecorder
	metrics  *statusMetrics
	opts     Options
	// missing are the member nodes already warned about as gone.
	missing missingNodes
	// settle holds back the masters of a virtual IP that moves.
	settle masterSettle
	// rollout tracks the node-by-node rollouts (rollout.go).
	rollout rolloutState
}

// NewScheme returns a scheme with the Kubernetes types and the
// LoadBalancerConfig API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	return s, nil
}

// CacheOptions restricts a manager's cache to what the operator needs: the
// published Secrets of namespace (label vipvs.io/load-balancer-config; the
// informer lists and watches with that namespace and selector, so no other
// Secret is cached), Nodes without their image lists, and no managed
// fields. The metadata of the Secrets that LoadBalancerConfigs reference
// is watched through a cache of its own (see SetupWithManager). Of the
// DaemonSets, only the node companion's in namespace is cached (for
// --manage-node-daemonset, NodeDaemonSet).
func CacheOptions(namespace string) cache.Options {
	hasLBC, _ := labels.NewRequirement(companion.LabelLoadBalancerConfig, selection.Exists, nil)
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{namespace: {}},
				Label:      labels.NewSelector().Add(*hasLBC),
			},
			&corev1.Node{}:      {Transform: stripNode},
			&appsv1.DaemonSet{}: nodeDaemonSetCache(namespace),
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

// stripNode drops from a cached Node what the operator never reads.
func stripNode(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		n.ManagedFields = nil
		n.Status.Images = nil
	}
	return obj, nil
}

// Setup creates the reconciler with mgr's client, API reader, scheme and
// event recorder, and registers it with mgr, whose cache should be
// restricted with CacheOptions(opts.Namespace).
func Setup(mgr manager.Manager, opts Options) error {
	r, err := NewReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetScheme(), mgr.GetEventRecorder("vipvs-operator"), opts)
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// NewReconciler returns a reconciler.
func NewReconciler(c client.Client, reader client.Reader, s *runtime.Scheme, rec EventRecorder, opts Options) (*Reconciler, error) {
	if opts.Image == "" {
		return nil, errors.New("operator: the agent image is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Registerer == nil {
		opts.Registerer = crmetrics.Registry
	}
	m, err := newStatusMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Reconciler{client: c, reader: reader, scheme: s, recorder: rec, metrics: m, opts: opts}, nil
}

// SetupWithManager registers the controller: LoadBalancerConfigs (any
// change of one may resolve or cause a conflict with the others), the
// Nodes they select, their published Secrets (the companions' reports) and
// the Secrets they reference, in any namespace.
//
// The referenced Secrets are watched as metadata only (their values are
// read when rendering, never cached), through a cache of their own that mgr
// runs: the manager's cache keeps one configuration per kind, and its
// Secrets are restricted to the published ones (CacheOptions).
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	refs, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("creating the cache of referenced secrets: %w", err)
	}
	if err := mgr.Add(refs); err != nil {
		return fmt.Errorf("adding the cache of referenced secrets: %w", err)
	}
	secretMeta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("loadbalancerconfig").
		For(&v1alpha1.LoadBalancerConfig{}).
		Watches(&v1alpha1.LoadBalancerConfig{}, handler.EnqueueRequestsFromMapFunc(r.allOthers),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.Funcs{
				UpdateFunc: func(event.UpdateEvent) bool { return false },
			}))).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.forNode), builder.WithPredicates(nodeChanges())).
		Owns(&corev1.Secret{}).
		WatchesRawSource(source.Kind[client.Object](refs, secretMeta, handler.EnqueueRequestsFromMapFunc(r.forSecret))).
		Complete(r)
}

// The permissions Reconcile needs are granted by manifests/10-operator-rbac.yaml,
// written by hand with the reason for each rule and kept least-privilege by
// test/envtest (TestOperatorRBAC), which runs this reconciler under them:
// change both together.

// Reconcile brings one LoadBalancerConfig's Secrets, status and metrics in
// line with its spec, the Nodes and the companions' reports.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("loadBalancerConfig", req.Name)
	ctx = logr.NewContext(ctx, log)
	var lbc v1alpha1.LoadBalancerConfig
	if err := r.client.Get(ctx, req.NamespacedName, &lbc); err != nil {
		if apierrors.IsNotFound(err) {
			r.metrics.forget(req.Name)
			r.missing.forget(req.Name)
			r.settle.forget(req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("getting LoadBalancerConfig %s: %w", req.Name, err)
	}
	if lbc.DeletionTimestamp != nil {
		return reconcile.Result{}, r.finalize(ctx, &lbc)
	}
	if !controllerutil.ContainsFinalizer(&lbc, Finalizer) {
		orig := lbc.DeepCopy()
		controllerutil.AddFinalizer(&lbc, Finalizer)
		if err := r.client.Patch(ctx, &lbc, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding the finalizer to LoadBalancerConfig %s: %w", lbc.Name, err)
		}
	}

	obs, err := r.observe(ctx, &lbc)
	if obs.blind {
		// An API hiccup is not a node leaving: writing a status now would
		// forget the remembered members and shrink the peer lists.
		return reconcile.Result{}, err
	}
	obs.unsettled = r.settle.get(lbc.Name)
	settleAfter, serr := r.writeStatus(ctx, &lbc, obs)
	log.V(1).Info("reconciled", "generation", lbc.Generation, "members", len(obs.members), "problem", obs.problem != nil)
	var res reconcile.Result
	if obs.requeue {
		res.RequeueAfter = requeueDelay
	}
	if settleAfter > 0 && (res.RequeueAfter == 0 || settleAfter < res.RequeueAfter) {
		res.RequeueAfter = settleAfter
	}
	return res, errors.Join(err, serr)
}

// observe runs the phases of a reconcile: select the members, validate,
// resolve the secrets, render, publish. A phase that fails records a
// problem and stops; what the status needs is in the result either way.
// The error is for what should be retried (API errors).
func (r *Reconciler) observe(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig) (observed, error) {
	log := logr.FromContextOrDiscard(ctx)
	var nodes corev1.NodeList
	if err := r.client.List(ctx, &nodes); err != nil {
		return observed{blind: true}, fmt.Errorf("listing nodes: %w", err)
	}
	published, err := r.nodeSecrets(ctx, lbc.Name)
	if err != nil {
		return observed{blind: true}, err
	}
	prev := observed{members: previousMembers(lbc, nodes.Items), published: byNode(published)}
	fail := func(reason, msg string) (observed, error) {
		prev.problem = &problem{reason: reason, message: msg}
		r.warnOnChange(lbc, reason, msg)
		return prev, nil
	}

	ms, err := selectMembers(lbc, nodes.Items)
	if err != nil {
		return fail(v1alpha1.ReasonInvalidSpec, err.Error())
	}
	if n := len(ms.members); n > v1alpha1.MaxNodes {
		return fail(v1alpha1.ReasonInvalidSpec, field.Invalid(field.NewPath("spec", "nodeSelector"), metav1.FormatLabelSelector(&lbc.Spec.NodeSelector),
			fmt.Sprintf("selects %d nodes: at most %d nodes can share virtual IPs", n, v1alpha1.MaxNodes)).Error())
	}
	if errs := validation.ValidateLoadBalancerConfig(lbc); len(errs) > 0 {
		return fail(v1alpha1.ReasonInvalidSpec, errs.ToAggregate().Error())
	}
	var all v1alpha1.LoadBalancerConfigList
	if err := r.client.List(ctx, &all); err != nil {
		return prev, fmt.Errorf("listing LoadBalancerConfigs: %w", err)
	}
	names := make([]string, 0, len(ms.members))
	for _, m := range ms.members {
		names = append(names, m.name)
	}
	if errs := conflicts(lbc, all.Items, names, nodes.Items); len(errs) > 0 {
		return fail(v1alpha1.ReasonConflict, errs.ToAggregate().Error())
	}

	nodesToRender := ms.rendered()
	if len(nodesToRender) == 0 {
		// Every node left on purpose (a missing Node stays a member): take
		// the agents away.
		out, res, err := r.publish(ctx, lbc, nil)
		if err != nil {
			return prev, err
		}
		r.committed(lbc, ms, res)
		msg := render.ErrNoNodes.Error() + fmt.Sprintf(": no Node matches %s with an InternalIP address", metav1.FormatLabelSelector(&lbc.Spec.NodeSelector))
		r.warnOnChange(lbc, v1alpha1.ReasonNoNodesSelected, msg)
		return observed{members: ms.members, published: byNode(out), problem: &problem{v1alpha1.ReasonNoNodesSelected, msg}}, nil
	}

	password, secrets, errs, err := r.resolveSecrets(ctx, lbc)
	if err != nil {
		return prev, err
	}
	if len(errs) > 0 {
		return fail(v1alpha1.ReasonInvalidSpec, errs.ToAggregate().Error())
	}

	rendered, err := render.Render(render.Input{Config: lbc, Nodes: nodesToRender, Image: r.opts.Image, Password: password, Secrets: secrets})
	if err != nil {
		return fail(v1alpha1.ReasonRenderFailed, err.Error())
	}
	want := make([]*corev1.Secret, 0, len(rendered.Nodes))
	for _, nf := range rendered.Nodes {
		s, err := r.desiredSecret(lbc, nf)
		if err != nil {
			return fail(v1alpha1.ReasonRenderFailed, err.Error())
		}
		want = append(want, s)
	}
	st := r.stage(lbc, want, published, r.opts.Clock.Now())
	out, res, err := r.publish(ctx, lbc, st.publish)
	if apierrors.IsConflict(err) {
		// A companion patched a Secret since the cache read it: its event
		// queues another reconcile, which retries with the new one.
		log.V(1).Info("secret changed meanwhile: publishing again", "err", err.Error())
		prev.requeue = true
		return prev, nil
	}
	if err != nil {
		prev.problem = &problem{v1alpha1.ReasonDeliveryFailed, "publishing the nodes' Secrets: " + err.Error()}
		r.warnOnChange(lbc, v1alpha1.ReasonDeliveryFailed, prev.problem.message)
		return prev, err
	}
	if lbc.Generation != lbc.Status.ObservedGeneration || findCondition(lbc.Status.Conditions, v1alpha1.ConditionDegraded) == nil {
		r.recorder.Eventf(lbc, nil, corev1.EventTypeNormal, EventRendered, "Render", "rendered generation %d for %d nodes", lbc.Generation, len(rendered.Nodes))
	}
	r.committed(lbc, ms, res)
	if res.changed() {
		log.Info("node files published", "created", res.created, "updated", res.updated, "deleted", res.deleted)
	}
	if len(st.held) > 0 {
		log.Info("rolling a restarting change out in steps", "waitingNodes", heldNodes(st.held))
		return observed{members: ms.members, published: withHeld(byNode(out), st.held), requeue: true}, nil
	}
	return observed{members: ms.members, published: byNode(out)}, nil
}

// committed emits the events of a published membership: one event per
// node, related to the Node, so that the events of two nodes are two
// series (the events library folds events with the same regarding and
// related objects, reason and action into one, keeping the first note).
func (r *Reconciler) committed(lbc *v1alpha1.LoadBalancerConfig, ms membership, res publishResult) {
	log := func(reason, msg string, nodes []string) {
		for _, n := range nodes {
			r.recorder.Eventf(lbc, nodeRef(n), corev1.EventTypeNormal, reason, "Select", msg, n)
		}
	}
	log(EventNodeJoined, "node %s joined: it matches spec.nodeSelector", ms.joined)
	log(EventNodeLeft, "node %s left: it no longer matches spec.nodeSelector; its agent is removed and the other nodes drop it from their peers", ms.left)
	log(EventNodeForgotten, "node %s, gone from the API, was forgotten as the "+v1alpha1.AnnotationForgetNodes+" annotation asks; the other nodes drop it from their peers", ms.forgotten)
	for _, n := range r.missing.update(lbc.Name, ms.missing) {
		r.recorder.Eventf(lbc, nodeRef(n), corev1.EventTypeWarning, EventNodeMissing, "Select",
			"the Node object of %s is gone from the API: it stays a peer of the other nodes until it is named in the %s annotation", n, v1alpha1.AnnotationForgetNodes)
	}
	if res.changed() {
		r.recorder.Eventf(lbc, nil, corev1.EventTypeNormal, EventPublished, "Publish",
			"published the nodes' files: %d Secrets created, %d updated, %d deleted", len(res.created), len(res.updated), len(res.deleted))
	}
}

// nodeRef is the related object of an event about node name.
func nodeRef(name string) *corev1.Node {
	return &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// missingNodes remembers, per LoadBalancerConfig, the member nodes whose
// Node object is gone, so that each is warned about once while it stays
// gone (and again after an operator restart).
type missingNodes struct {
	mu    sync.Mutex
	nodes map[string]map[string]bool // by LoadBalancerConfig
}

// update records that the members names of lbc are missing now and returns
// those that were not before.
func (m *missingNodes) update(lbc string, names []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[string]map[string]bool{}
	}
	now := make(map[string]bool, len(names))
	var added []string
	for _, n := range names {
		now[n] = true
		if !m.nodes[lbc][n] {
			added = append(added, n)
		}
	}
	if len(now) == 0 {
		delete(m.nodes, lbc)
	} else {
		m.nodes[lbc] = now
	}
	return added
}

// forget drops what is remembered of lbc.
func (m *missingNodes) forget(lbc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, lbc)
}

// warnOnChange emits a warning event unless the Degraded condition already
// says the same.
func (r *Reconciler) warnOnChange(lbc *v1alpha1.LoadBalancerConfig, reason, msg string) {
	if c := findCondition(lbc.Status.Conditions, v1alpha1.ConditionDegraded); c != nil && c.Reason == reason &&
		strings.HasPrefix(c.Message, truncate(msg, maxConditionMessage)) && c.ObservedGeneration == lbc.Generation {
		return
	}
	r.recorder.Eventf(lbc, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", truncate(msg, 1024))
}

// previousMembers are the members status.nodes remembers, with their Node
// objects: what the status lists while a new spec cannot be published.
func previousMembers(lbc *v1alpha1.LoadBalancerConfig, nodes []corev1.Node) []member {
	byName := map[string]*corev1.Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	out := make([]member, 0, len(lbc.Status.Nodes))
	for _, ns := range lbc.Status.Nodes {
		m := member{name: ns.Name, addrs: parseAddrs(ns.Addresses), node: byName[ns.Name]}
		if m.node == nil && !m.pending() {
			m.message = "the Node object is gone from the API: the node stays a peer of the others"
		}
		out = append(out, m)
	}
	return out
}

// byNode indexes published Secrets by the node they are for.
func byNode(secrets map[string]*corev1.Secret) map[string]*corev1.Secret {
	out := make(map[string]*corev1.Secret, len(secrets))
	for _, s := range secrets {
		n := s.Annotations[annotationNodeName]
		if n == "" {
			n = s.Labels[companion.LabelNode]
		}
		out[n] = s
	}
	return out
}

// resolveSecrets resolves the Secrets spec references: the VRRP password,
// the CA bundles of HTTPS health checks and the TCP MD5 keys of BGP peers, read from the API server (not
// cached). A missing Secret or key is a problem of the spec (field errors);
// an API error is returned as err.
func (r *Reconciler) resolveSecrets(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig) (string, map[string][]byte, field.ErrorList, error) {
	var errs field.ErrorList
	var password string
	get := func(p *field.Path, ref v1alpha1.SecretKeyReference) ([]byte, bool, error) {
		var s corev1.Secret
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, &s)
		if apierrors.IsNotFound(err) {
			errs = append(errs, field.NotFound(p, fmt.Sprintf("Secret %s/%s", ref.Namespace, ref.Name)))
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			errs = append(errs, field.Invalid(p.Child("key"), ref.Key, fmt.Sprintf("Secret %s/%s has no key %q", ref.Namespace, ref.Name, ref.Key)))
			return nil, false, nil
		}
		return v, true, nil
	}
	if v := lbc.Spec.VRRP; v != nil && v.PasswordSecretRef != nil {
		b, ok, err := get(field.NewPath("spec", "vrrp", "passwordSecretRef"), *v.PasswordSecretRef)
		if err != nil {
			return "", nil, nil, err
		}
		if ok {
			// A file made with an editor, or `kubectl create secret
			// --from-file`, often ends with a newline that is no part of the
			// password.
			password = strings.TrimRight(string(b), "\r\n")
		}
	}
	secrets := map[string][]byte{}
	for i, s := range lbc.Spec.Services {
		if s.HealthCheck == nil || s.HealthCheck.HTTP == nil || s.HealthCheck.HTTP.CASecretRef == nil {
			continue
		}
		ref := *s.HealthCheck.HTTP.CASecretRef
		b, ok, err := get(field.NewPath("spec", "services").Index(i).Child("healthCheck", "http", "caSecretRef"), ref)
		if err != nil {
			return "", nil, nil, err
		}
		if ok {
			secrets[render.SecretKey(ref)] = b
		}
	}
	if b := lbc.Spec.BGP; b != nil {
		for i, peer := range b.Peers {
			if peer.PasswordSecretRef == nil {
				continue
			}
			ref := *peer.PasswordSecretRef
			v, ok, err := get(field.NewPath("spec", "bgp", "peers").Index(i).Child("passwordSecretRef"), ref)
			if err != nil {
				return "", nil, nil, err
			}
			if ok {
				secrets[render.SecretKey(ref)] = v
			}
		}
	}
	return password, secrets, errs, nil
}

// writeStatus computes the status from obs, sets the metrics from it, and
// patches it when it changed, with an event when the LoadBalancerConfig
// becomes Ready. It returns when to look again at masters held back.
func (r *Reconciler) writeStatus(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig, obs observed) (time.Duration, error) {
	st, masters, settle := computeStatus(lbc, obs, metav1.NewTime(r.opts.Clock.Now()))
	r.settle.put(lbc.Name, settle.unsettled)
	r.metrics.set(lbc.Name, st, masters)
	if equality.Semantic.DeepEqual(lbc.Status, st) {
		return settle.after, nil
	}
	orig := lbc.DeepCopy()
	wasReady := findCondition(lbc.Status.Conditions, v1alpha1.ConditionReady)
	lbc.Status = st
	if err := r.client.Status().Patch(ctx, lbc, client.MergeFrom(orig)); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return settle.after, fmt.Errorf("writing the status of LoadBalancerConfig %s: %w", lbc.Name, err)
	}
	if c := findCondition(st.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue &&
		(wasReady == nil || wasReady.Status != metav1.ConditionTrue) {
		r.recorder.Eventf(lbc, nil, corev1.EventTypeNormal, EventReady, "Reconcile", "%s", c.Message)
	}
	return settle.after, nil
}

// finalize deletes the Secrets of a LoadBalancerConfig being deleted
// (listed from the API server, not the cache) and its metrics, and then
// removes the finalizer.
func (r *Reconciler) finalize(ctx context.Context, lbc *v1alpha1.LoadBalancerConfig) error {
	r.metrics.forget(lbc.Name)
	r.missing.forget(lbc.Name)
	r.settle.forget(lbc.Name)
	if !controllerutil.ContainsFinalizer(lbc, Finalizer) {
		return nil
	}
	log := logr.FromContextOrDiscard(ctx)
	var list corev1.SecretList
	if err := r.reader.List(ctx, &list, client.InNamespace(r.opts.Namespace),
		client.MatchingLabels{companion.LabelLoadBalancerConfig: companion.LabelValue(lbc.Name)}); err != nil {
		return fmt.Errorf("listing the secrets of LoadBalancerConfig %s: %w", lbc.Name, err)
	}
	var deleted []string
	for i := range list.Items {
		s := &list.Items[i]
		if err := r.client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		deleted = append(deleted, s.Name)
	}
	sort.Strings(deleted)
	if len(deleted) > 0 {
		log.Info("node files deleted with their LoadBalancerConfig", "secrets", deleted)
		r.recorder.Eventf(lbc, nil, corev1.EventTypeNormal, EventCleanedUp, "Delete",
			"deleted the Secrets of %d nodes: their companions remove the agents", len(deleted))
	}
	orig := lbc.DeepCopy()
	controllerutil.RemoveFinalizer(lbc, Finalizer)
	if err := r.client.Patch(ctx, lbc, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing the finalizer of LoadBalancerConfig %s: %w", lbc.Name, err)
	}
	return nil
}

// allOthers maps a LoadBalancerConfig to every other one: a spec change or
// a deletion may cause or resolve a conflict with them.
func (r *Reconciler) allOthers(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v1alpha1.LoadBalancerConfigList
	if err := r.client.List(ctx, &list); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "cannot list LoadBalancerConfigs")
		return nil
	}
	var out []reconcile.Request
	for _, c := range list.Items {
		if c.Name != obj.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
		}
	}
	return out
}

// forNode maps a Node to the LoadBalancerConfigs that select it or have it
// as a member.
func (r *Reconciler) forNode(ctx context.Context, obj client.Object) []reconcile.Request {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	var list v1alpha1.LoadBalancerConfigList
	if err := r.client.List(ctx, &list); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "cannot list LoadBalancerConfigs")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if selects(&list.Items[i], n) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return out
}

// nodeChanges passes the Node events that can change a membership or a
// status: creation, deletion, and changes of labels, addresses or
// readiness (not the kubelet's heartbeats).
func nodeChanges() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		if !ok1 || !ok2 {
			return true
		}
		return !reflect.DeepEqual(o.Labels, n.Labels) || !reflect.DeepEqual(o.Status.Addresses, n.Status.Addresses) ||
			readiness(o) != readiness(n) || !o.DeletionTimestamp.Equal(n.DeletionTimestamp)
	}}
}

func readiness(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

// forSecret maps a Secret to the LoadBalancerConfigs that reference it.
func (r *Reconciler) forSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v1alpha1.LoadBalancerConfigList
	if err := r.client.List(ctx, &list); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "cannot list LoadBalancerConfigs")
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		if references(&list.Items[i], obj.GetNamespace(), obj.GetName()) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return out
}

// references reports whether lbc references Secret namespace/name.
func references(lbc *v1alpha1.LoadBalancerConfig, namespace, name string) bool {
	is := func(ref *v1alpha1.SecretKeyReference) bool {
		return ref != nil && ref.Namespace == namespace && ref.Name == name
	}
	if v := lbc.Spec.VRRP; v != nil && is(v.PasswordSecretRef) {
		return true
	}
	for _, s := range lbc.Spec.Services {
		if s.HealthCheck != nil && s.HealthCheck.HTTP != nil && is(s.HealthCheck.HTTP.CASecretRef) {
			return true
		}
	}
	if b := lbc.Spec.BGP; b != nil {
		for _, p := range b.Peers {
			if is(p.PasswordSecretRef) {
				return true
			}
		}
	}
	return false
}

package companion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/vipvs/vipvs/agent/status"
	statusv1 "github.com/vipvs/vipvs/api/status/v1alpha1"
	"github.com/vipvs/vipvs/api/v1alpha1"
	"github.com/vipvs/vipvs/render"
)

// DefaultStatusInterval is how often the companion reads its agents'
// status when nothing else happens (it also watches them: a change is
// reported at once).
const DefaultStatusInterval = 10 * time.Second

// DefaultAgentStopTimeout bounds the wait, after the static pod of a
// removed Secret is deleted, for its agent to stop before the agent's
// config is deleted too: the static pod's grace period (30 s) and kubelet's
// delay in noticing the file's removal.
const DefaultAgentStopTimeout = time.Minute

// agentGoneRecheck is how often the companion looks whether the agent of a
// deleted static pod has stopped.
const agentGoneRecheck = 250 * time.Millisecond

// statusTimeout bounds one read of an agent's status.
const statusTimeout = 3 * time.Second

// StatusSource reads the status of the agent of one LoadBalancerConfig on
// this node. AgentSocket is the real one.
type StatusSource interface {
	// Fetch returns the report of the agent of LoadBalancerConfig lbc,
	// whose unix socket is socketPath (below the host root).
	Fetch(ctx context.Context, lbc, socketPath string) (status.Report, error)
}

// AgentSocket reads an agent's status over its unix socket
// (agent/status.Fetch).
type AgentSocket struct{}

var _ StatusSource = AgentSocket{}

// Fetch implements StatusSource.
func (AgentSocket) Fetch(ctx context.Context, _, socketPath string) (status.Report, error) {
	return status.Fetch(ctx, socketPath)
}

// Options configure a companion.
type Options struct {
	// NodeName is this node's name. Required.
	NodeName string
	// Namespace is where the operator publishes the Secrets. Required.
	Namespace string
	// Writer writes the files on the host. Required.
	Writer *Writer
	// HostRoot is the directory that stands for the host's "/", where the
	// agents' sockets are found. Default: Writer.Root.
	HostRoot string
	// Status reads the agents' status. Default: AgentSocket.
	Status StatusSource
	// StatusInterval is how often the agents' status is read.
	// Default: DefaultStatusInterval.
	StatusInterval time.Duration
	// WatchPoll is how often an agent that does not answer (or a Status
	// that cannot wait for a change) is read again. Default
	// DefaultWatchPoll.
	WatchPoll time.Duration
	// AgentStopTimeout bounds the wait for an agent to stop after its
	// static pod was deleted, before its config is deleted too. Default
	// DefaultAgentStopTimeout.
	AgentStopTimeout time.Duration
	// Registerer, when set, gets the collector that re-exports the agents'
	// metrics (AgentMetrics), by Setup.
	Registerer prometheus.Registerer
}

// Companion is the node companion's reconciler. Whatever happens to any of
// its node's Secrets, it brings the whole node in line (there are only a
// few Secrets per node, one per LoadBalancerConfig): it writes the files of
// every Secret, removes those of Secrets that are gone, reads every agent's
// status and patches the Secrets' annotations where they differ.
type Companion struct {
	client client.Client
	opts   Options
	// agents are the LoadBalancerConfigs of the last reconcile, whose
	// agents' metrics AgentMetrics reads.
	agents agentSet
	// watch follows the agents' status and wakes the reconcile.
	watch *watchers

	mu sync.Mutex
	// podGone is when the static pod of a removed set was deleted, by set:
	// its other files wait until its agent has stopped.
	podGone map[string]time.Time
	// now is the clock.
	now func() time.Time
}

// CacheOptions restricts a manager's cache to what a companion needs: the
// Secrets of one node (label vipvs.io/node) in the operator's namespace. The
// informer lists and watches with that namespace and label selector, so no
// other Secret ever reaches the companion's memory.
func CacheOptions(namespace, nodeName string) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{namespace: {}},
				Label:      labels.SelectorFromSet(labels.Set{LabelNode: LabelValue(nodeName)}),
			},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

// Setup creates a companion and adds it to mgr, whose cache must be
// restricted with CacheOptions(opts.Namespace, opts.NodeName).
func Setup(mgr manager.Manager, opts Options) error {
	c, err := New(mgr.GetClient(), opts)
	if err != nil {
		return err
	}
	c.watch.log = mgr.GetLogger().WithName("watch")
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.AgentMetrics(mgr.GetLogger().WithName("metrics"))); err != nil {
			return fmt.Errorf("node companion: registering the agents' metrics: %w", err)
		}
	}
	return c.SetupWithManager(mgr)
}

// New returns a companion that reads and patches Secrets with cl.
func New(cl client.Client, opts Options) (*Companion, error) {
	if opts.NodeName == "" || opts.Namespace == "" || opts.Writer == nil {
		return nil, errors.New("node companion: the node name, the namespace and a writer are required")
	}
	if opts.HostRoot == "" {
		opts.HostRoot = opts.Writer.Root
	}
	if opts.Status == nil {
		opts.Status = AgentSocket{}
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	if opts.WatchPoll <= 0 {
		opts.WatchPoll = DefaultWatchPoll
	}
	if opts.AgentStopTimeout <= 0 {
		opts.AgentStopTimeout = DefaultAgentStopTimeout
	}
	return &Companion{client: cl, opts: opts, podGone: map[string]time.Time{}, now: time.Now,
		watch: newWatchers(opts.Status, opts.HostRoot, opts.WatchPoll, logr.Discard())}, nil
}

// SetupWithManager registers the companion's controller with mgr: it
// watches the node's Secrets (changes of what the operator writes, not of
// the companion's own annotations) and its agents' status (a change wakes
// it within a second), and runs once at start, so that the files of
// Secrets deleted while it was down are removed too.
func (c *Companion) SetupWithManager(mgr manager.Manager) error {
	if err := mgr.Add(c.watch); err != nil {
		return fmt.Errorf("node companion: adding the agents' watch: %w", err)
	}
	toNode := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: c.opts.NodeName}}}
	})
	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{Object: &corev1.Secret{}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("vipvs-node").
		Watches(&corev1.Secret{}, toNode, builder.WithPredicates(operatorChanges())).
		WatchesRawSource(source.Channel(start, toNode)).
		WatchesRawSource(source.Channel(c.watch.wake, toNode)).
		Complete(c)
}

// operatorChanges passes the events of a Secret except updates that change
// nothing the operator writes (the companion's own patches).
func operatorChanges() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Secret)
		n, ok2 := e.ObjectNew.(*corev1.Secret)
		if !ok1 || !ok2 {
			return true
		}
		return !reflect.DeepEqual(o.Data, n.Data) ||
			o.Annotations[AnnotationFiles] != n.Annotations[AnnotationFiles] ||
			o.Annotations[AnnotationConfigHash] != n.Annotations[AnnotationConfigHash] ||
			!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
			!reflect.DeepEqual(o.OwnerReferences, n.OwnerReferences)
	}}
}

// Reconcile brings the node in line with its Secrets; the request's name
// is the node's, whatever changed. It runs again after the status interval,
// or sooner while an agent whose static pod was removed still runs.
func (c *Companion) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("node", c.opts.NodeName)
	var list corev1.SecretList
	if err := c.client.List(ctx, &list, client.InNamespace(c.opts.Namespace),
		client.MatchingLabels{LabelNode: LabelValue(c.opts.NodeName)}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the node's secrets: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })

	var errs []error
	live := map[string]bool{}
	var agents []string
	for i := range list.Items {
		s := &list.Items[i]
		if s.DeletionTimestamp != nil {
			continue // removed below, like a Secret that is gone
		}
		live[s.Name] = true
		if lbc := lbcName(s); lbc != "" {
			agents = append(agents, lbc)
		}
		if err := c.sync(ctx, log, s); err != nil {
			errs = append(errs, err)
		}
	}
	c.agents.set(agents)
	c.watch.set(agents)

	sets, err := c.opts.Writer.Sets()
	if err != nil {
		errs = append(errs, err)
	}
	res := reconcile.Result{RequeueAfter: c.opts.StatusInterval}
	for _, set := range sets {
		if live[set] {
			continue
		}
		done, err := c.remove(ctx, log, set)
		if err != nil {
			errs = append(errs, fmt.Errorf("removing the files of secret %s: %w", set, err))
		}
		if !done {
			res.RequeueAfter = agentGoneRecheck
		}
	}
	return res, errors.Join(errs...)
}

// remove deletes the files of a set whose Secret is gone, in two steps: the
// static pod first (kubelet then stops the agent, which hands its VIPs
// over), the agent's config and the rest once the agent no longer answers
// on its socket, or AgentStopTimeout after the pod went. Deleting the
// config under a running agent would make it reject its config (a false
// config-rejected alert) while it still serves. It reports whether the
// set is gone.
func (c *Companion) remove(ctx context.Context, log logr.Logger, set string) (bool, error) {
	paths, err := c.opts.Writer.Paths(set)
	if err != nil {
		return false, err
	}
	lbc := staticPodLBC(paths)
	c.mu.Lock()
	gone, waiting := c.podGone[set]
	c.mu.Unlock()
	if lbc != "" {
		pod := render.StaticPodPath(lbc)
		if slices.Contains(paths, pod) {
			removed, err := c.opts.Writer.RemoveFile(set, pod)
			if err != nil {
				return false, err
			}
			if removed {
				log.Info("static pod removed: its secret is gone; the agent's config follows once the agent has stopped", "secret", set, "file", pod)
			}
		}
		if !waiting {
			gone = c.now()
			c.mu.Lock()
			c.podGone[set] = gone
			c.mu.Unlock()
		}
		if c.agentAnswers(ctx, lbc) {
			if waited := c.now().Sub(gone); waited < c.opts.AgentStopTimeout {
				return false, nil
			}
			log.Info("the agent still answers after its static pod was removed; removing its config anyway", "secret", set,
				"loadBalancerConfig", lbc, "waited", c.opts.AgentStopTimeout.String())
		}
	}
	removed, err := c.opts.Writer.Remove(set)
	if len(removed) > 0 {
		log.Info("files removed: their secret is gone", "secret", set, "files", removed)
	}
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	delete(c.podGone, set)
	c.mu.Unlock()
	return true, nil
}

// agentAnswers reports whether the agent of lbc answers on its socket.
func (c *Companion) agentAnswers(ctx context.Context, lbc string) bool {
	sctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	_, err := c.opts.Status.Fetch(sctx, lbc, filepath.Join(c.opts.HostRoot, render.SocketPath(lbc)))
	return err == nil
}

// staticPodLBC returns the LoadBalancerConfig whose files paths are (written
// by this companion): the one of the static pod among them, or of the
// config directory they are in; "" when none is.
func staticPodLBC(paths []string) string {
	for _, p := range paths {
		name, ok := strings.CutSuffix(strings.TrimPrefix(path.Base(p), "vipvs-"), ".yaml")
		if ok && render.StaticPodPath(name) == p {
			return name
		}
	}
	for _, p := range paths {
		rest, ok := strings.CutPrefix(p, render.ConfigDir+"/")
		if name, _, found := strings.Cut(rest, "/"); ok && found && name != "" {
			return name
		}
	}
	return ""
}

// sync writes one Secret's files, reads its agent's status and patches the
// Secret's annotations. A problem with the files or the agent is reported
// in the annotations; the error returned is for what should be retried
// soon.
func (c *Companion) sync(ctx context.Context, log logr.Logger, s *corev1.Secret) error {
	lbc := lbcName(s)
	log = log.WithValues("secret", s.Name, "loadBalancerConfig", lbc)
	var problems []string
	var retry error

	files, err := c.files(s, lbc)
	if err == nil {
		var changed []string
		changed, err = c.opts.Writer.Apply(s.Name, files)
		if len(changed) > 0 {
			log.Info("files written", "files", changed, "configHash", s.Annotations[AnnotationConfigHash])
			// The agent reports its new config within about 100 ms:
			// read it fast until then (a rollout waits for it).
			c.watch.expect(lbc, s.Annotations[AnnotationConfigHash])
		}
		if err != nil {
			retry = fmt.Errorf("secret %s: %w", s.Name, err)
		}
	}
	if err != nil {
		log.Error(err, "cannot write the files")
		problems = append(problems, "writing the files: "+err.Error())
	}

	want := map[string]string{}
	if lbc != "" {
		sctx, cancel := context.WithTimeout(ctx, statusTimeout)
		rep, err := c.opts.Status.Fetch(sctx, lbc, filepath.Join(c.opts.HostRoot, render.SocketPath(lbc)))
		cancel()
		if err != nil {
			log.V(1).Info("agent status unavailable", "err", err.Error())
			problems = append(problems, agentProblem(lbc, err))
		} else {
			want[AnnotationRunningConfigHash] = rep.ConfigHash
			want[AnnotationAgentStatus] = statusv1.Summarize(rep).Encode()
		}
	}
	if len(problems) > 0 {
		want[AnnotationAgentError] = truncate(strings.Join(problems, "; "), 4096)
	}
	if err := c.patchAnnotations(ctx, s, want); err != nil {
		return errors.Join(retry, err)
	}
	return retry
}

// files decodes a Secret's files, checks that each belongs to the
// LoadBalancerConfig (its directory under /etc/vipvs, or its static pod)
// and puts the static pod last: it is written after the agent's config
// (kubelet does not start an agent without one), and removed first
// (kubelet stops the agent before its config goes).
func (c *Companion) files(s *corev1.Secret, lbc string) ([]File, error) {
	if lbc == "" {
		return nil, fmt.Errorf("secret %s names no LoadBalancerConfig (no owner reference, no %s label)", s.Name, LabelLoadBalancerConfig)
	}
	files, err := DecodeFiles(s)
	if err != nil {
		return nil, err
	}
	pod := render.StaticPodPath(lbc)
	dir := path.Dir(path.Dir(render.AgentConfigPath(lbc, c.opts.NodeName))) + "/"
	var out, last []File
	for _, f := range files {
		switch {
		case f.Path == pod:
			last = append(last, f)
		case strings.HasPrefix(f.Path, dir):
			out = append(out, f)
		default:
			return nil, fmt.Errorf("secret %s: file %s is neither below %s nor the static pod %s: refused", s.Name, f.Path, dir, pod)
		}
	}
	return append(out, last...), nil
}

// lbcName is the name of the LoadBalancerConfig that owns a Secret: from
// its owner reference, or from its label when that holds the full name.
func lbcName(s *corev1.Secret) string {
	for _, o := range s.OwnerReferences {
		if o.Kind == "LoadBalancerConfig" && strings.HasPrefix(o.APIVersion, v1alpha1.GroupVersion.Group+"/") {
			return o.Name
		}
	}
	if v := s.Labels[LabelLoadBalancerConfig]; v != "" && len(v) < maxLabelValue {
		return v
	}
	return ""
}

// patchAnnotations sets the companion's annotations of s to want (an absent
// key is removed), with a merge patch that touches nothing else, and only
// when they differ.
func (c *Companion) patchAnnotations(ctx context.Context, s *corev1.Secret, want map[string]string) error {
	patch := map[string]any{}
	for _, k := range []string{AnnotationRunningConfigHash, AnnotationAgentStatus, AnnotationAgentError} {
		v, ok := want[k]
		cur, has := s.Annotations[k]
		switch {
		case ok && (!has || cur != v):
			patch[k] = v
		case !ok && has:
			patch[k] = nil
		}
	}
	if len(patch) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": patch}})
	if err != nil {
		return fmt.Errorf("encoding the annotations of secret %s: %w", s.Name, err)
	}
	if err := c.client.Patch(ctx, s, client.RawPatch(types.MergePatchType, b)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted meanwhile: the next run removes its files
		}
		return fmt.Errorf("patching the annotations of secret %s: %w", s.Name, err)
	}
	return nil
}

// agentProblem says why an agent's status could not be read, in the
// words of the host (not of the companion's mount).
func agentProblem(lbc string, err error) string {
	sock := render.SocketPath(lbc)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("the agent does not run: there is no socket %s (kubelet runs the agent from the static pod %s)", sock, render.StaticPodPath(lbc))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("the agent does not run: nothing listens on %s", sock)
	}
	return "the agent does not answer: " + err.Error()
}

// truncate shortens s to at most n bytes, on a rune boundary, marking the
// cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

package system

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/render"
	"github.com/vipvs/vipvs/test/lab"
)

// kubelet stands in for one node's kubelet: it watches the node's static-pod
// directory (render.ManifestsDir below root) and runs the command of each
// pod's first container as a process inside the node's network namespace,
// in a private mount namespace where every hostPath volume is the node's
// directory below root, bind-mounted on the volume's mountPath. A changed
// manifest restarts the pod (SIGTERM, then the new one), a removed one
// stops it (SIGTERM, SIGKILL after the pod's grace period), as kubelet does.
type kubelet struct {
	node string
	host *lab.Host
	root string
	// bin replaces the container's command /vipvs (other commands are
	// looked up by base name beside it).
	bin    string
	logDir string

	mu     sync.Mutex
	pods   map[string]*pod // by manifest file name
	events []podEvent
	err    error // the last error starting a pod

	stop chan struct{}
	done chan struct{}
}

// pod is a running static pod.
type pod struct {
	manifest []byte
	proc     *lab.Proc
	grace    time.Duration
}

// podEvent records a start or a stop, for the test's checks.
type podEvent struct {
	At time.Time
	// Term is when a stopped pod's process was sent SIGTERM (At is when
	// it had exited).
	Term  time.Time
	File  string
	Start bool
	Pid   int
}

func newKubelet(node string, host *lab.Host, root, bin, logDir string) *kubelet {
	k := &kubelet{node: node, host: host, root: root, bin: bin, logDir: logDir,
		pods: map[string]*pod{}, stop: make(chan struct{}), done: make(chan struct{})}
	go k.loop()
	return k
}

// pollEvery is how often the stand-in reads the manifests directory (the
// real kubelet reads it every 20 s and on inotify events).
const pollEvery = 20 * time.Millisecond

func (k *kubelet) loop() {
	defer close(k.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		k.sync()
		select {
		case <-k.stop:
			k.mu.Lock()
			names := make([]string, 0, len(k.pods))
			for n := range k.pods {
				names = append(names, n)
			}
			k.mu.Unlock()
			for _, n := range names {
				k.stopPod(n)
			}
			return
		case <-t.C:
		}
	}
}

// close stops every pod and the loop.
func (k *kubelet) close() {
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
}

func (k *kubelet) sync() {
	dir := filepath.Join(k.root, render.ManifestsDir)
	want := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // renamed away meanwhile
		}
		want[e.Name()] = b
	}
	k.mu.Lock()
	var stale []string
	for n, p := range k.pods {
		if b, ok := want[n]; !ok || !bytes.Equal(b, p.manifest) || p.proc.Exited() {
			stale = append(stale, n)
		}
	}
	k.mu.Unlock()
	for _, n := range stale {
		k.stopPod(n)
	}
	for n, b := range want {
		k.mu.Lock()
		_, running := k.pods[n]
		k.mu.Unlock()
		if running {
			continue
		}
		if err := k.startPod(n, b); err != nil {
			k.mu.Lock()
			k.err = fmt.Errorf("node %s: static pod %s: %w", k.node, n, err)
			k.mu.Unlock()
		}
	}
}

// mountScript bind-mounts "$1" on "$2", "$3" on "$4"... (read-only where
// the next word says ro), then runs the rest of the arguments.
const mountScript = `set -e
while [ "$1" != "--" ]; do
	mount --bind "$1" "$2"
	if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi
	shift 3
done
shift
exec "$@"`

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func (k *kubelet) startPod(file string, manifest []byte) error {
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(manifest, &p); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if len(p.Spec.Containers) != 1 {
		return fmt.Errorf("%d containers, the stand-in runs exactly one", len(p.Spec.Containers))
	}
	c := p.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = k.node
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		default:
			return fmt.Errorf("env %s: only spec.nodeName and values are supported", e.Name)
		}
	}
	expand := func(s string) string {
		return envRef.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := env[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	if len(c.Command) == 0 {
		return errors.New("no command (the image's entrypoint is not known here)")
	}
	cmd := k.bin
	if c.Command[0] != "/vipvs" {
		cmd = filepath.Join(filepath.Dir(k.bin), filepath.Base(c.Command[0]))
	}
	argv := []string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mountScript, "kubelet"}
	vols := map[string]string{}
	for _, v := range p.Spec.Volumes {
		if v.HostPath == nil {
			return fmt.Errorf("volume %s: only hostPath volumes are supported", v.Name)
		}
		vols[v.Name] = v.HostPath.Path
	}
	for _, m := range c.VolumeMounts {
		hp, ok := vols[m.Name]
		if !ok {
			return fmt.Errorf("volume mount %s: no such volume", m.Name)
		}
		src := filepath.Join(k.root, hp)
		if err := os.MkdirAll(src, 0o755); err != nil { // DirectoryOrCreate
			return err
		}
		if err := mountPoint(m.MountPath); err != nil {
			return err
		}
		ro := "rw"
		if m.ReadOnly {
			ro = "ro"
		}
		argv = append(argv, src, m.MountPath, ro)
	}
	argv = append(argv, "--", cmd)
	for _, a := range c.Args {
		argv = append(argv, expand(a))
	}
	procEnv := []string{"PATH=" + os.Getenv("PATH")}
	for n, v := range env {
		procEnv = append(procEnv, n+"="+v)
	}
	sort.Strings(procEnv)
	grace := 30 * time.Second
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	name := strings.TrimSuffix(file, ".yaml")
	proc, err := k.host.Start(name, argv, procEnv, filepath.Join(k.logDir, k.node+"-"+name+".log"))
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.pods[file] = &pod{manifest: manifest, proc: proc, grace: grace}
	k.events = append(k.events, podEvent{At: time.Now(), File: file, Start: true, Pid: proc.Pid()})
	k.mu.Unlock()
	return nil
}

func (k *kubelet) stopPod(file string) {
	k.mu.Lock()
	p := k.pods[file]
	delete(k.pods, file)
	k.mu.Unlock()
	if p == nil {
		return
	}
	term := time.Now()
	if !p.proc.Exited() {
		_ = p.proc.Signal(syscall.SIGTERM)
		if _, err := p.proc.Wait(p.grace); err != nil {
			_ = p.proc.Kill()
		}
	}
	k.mu.Lock()
	k.events = append(k.events, podEvent{At: time.Now(), Term: term, File: file, Pid: p.proc.Pid()})
	k.mu.Unlock()
}

// pid returns the PID of the running pod of manifest file, 0 when none.
func (k *kubelet) pid(file string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p := k.pods[file]; p != nil && !p.proc.Exited() {
		return p.proc.Pid()
	}
	return 0
}

// running returns the manifest file names of the running pods.
func (k *kubelet) running() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var names []string
	for n, p := range k.pods {
		if !p.proc.Exited() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// lastStop returns the last stop of the pod of manifest file (zero when
// none).
func (k *kubelet) lastStop(file string) podEvent {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.events) - 1; i >= 0; i-- {
		if e := k.events[i]; e.File == file && !e.Start {
			return e
		}
	}
	return podEvent{}
}

// lastErr returns the last error starting a pod.
func (k *kubelet) lastErr() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// mountPoints are the directories of the host that the stand-ins created
// as mount points (kubelet's container runtime makes them inside the
// container's root; here the processes share the host's), removed at the
// end when empty.
var mountPoints struct {
	sync.Mutex
	created []string
}

func mountPoint(dir string) error {
	mountPoints.Lock()
	defer mountPoints.Unlock()
	var missing []string
	for d := filepath.Clean(dir); d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	mountPoints.created = append(mountPoints.created, missing...)
	return nil
}

// removeMountPoints removes the created mount points, deepest first.
func removeMountPoints() error {
	mountPoints.Lock()
	defer mountPoints.Unlock()
	var errs []error
	sort.Slice(mountPoints.created, func(i, j int) bool { return len(mountPoints.created[i]) > len(mountPoints.created[j]) })
	for _, d := range mountPoints.created {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	mountPoints.created = nil
	return errors.Join(errs...)
}

package render

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// Labels of the static pod.
const (
	// LabelLoadBalancerConfig names the LoadBalancerConfig of an agent pod.
	LabelLoadBalancerConfig = "vipvs.io/load-balancer-config"
	// AgentAppName is the app.kubernetes.io/name of an agent pod.
	AgentAppName = "vipvs-agent"
)

// Fixed settings of the static pod.
const (
	podNamespace         = "kube-system"
	podPriorityClass     = "system-node-critical"
	containerName        = "agent"
	binaryPath           = "/vipvs-agent" // the lean agent (agentd/), without a Kubernetes client
	nodeNameEnv          = "NODE_NAME"
	gracePeriodSeconds   = 30
	probePeriodSeconds   = 10
	probeFailures        = 3
	cpuRequest           = "10m"
	memoryRequest        = "32Mi"
	configVolumeName     = "config"
	runVolumeName        = "run"
	loopbackProbeAddress = "127.0.0.1"
)

// staticPod is the agent's static-pod manifest for a defaulted
// LoadBalancerConfig: the same on every node (the agent picks its own
// config by $(NODE_NAME)), without the config's hash.
func staticPod(c *v1alpha1.LoadBalancerConfig, image string) ([]byte, error) {
	lbc := c.Name
	dir := configDir(lbc)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Host: loopbackProbeAddress,
				Port: intstr.FromInt32(c.Spec.AgentStatusPort),
				Path: path,
			}},
			PeriodSeconds:    probePeriodSeconds,
			FailureThreshold: probeFailures,
		}
	}
	hostPath := func(path string) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr(corev1.HostPathDirectoryOrCreate)}}
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      podName(lbc),
			Namespace: podNamespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       AgentAppName,
				"app.kubernetes.io/instance":   lbc,
				"app.kubernetes.io/managed-by": "vipvs",
				LabelLoadBalancerConfig:        lbc,
			},
		},
		Spec: corev1.PodSpec{
			HostNetwork:                   true,
			PriorityClassName:             podPriorityClass,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: ptr[int64](gracePeriodSeconds),
			Containers: []corev1.Container{{
				Name:    containerName,
				Image:   image,
				Command: []string{binaryPath},
				Args:    []string{"--config=" + AgentConfigPath(lbc, "$("+nodeNameEnv+")")},
				Env: []corev1.EnvVar{{
					Name:      nodeNameEnv,
					ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
				}},
				SecurityContext: &corev1.SecurityContext{
					Privileged:               ptr(false),
					AllowPrivilegeEscalation: ptr(false),
					Capabilities: &corev1.Capabilities{
						Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
						Drop: []corev1.Capability{"ALL"},
					},
					ReadOnlyRootFilesystem: ptr(true),
					// The image's default user is 65532 (the operator and the
					// companion run as it); the agent runs as root so that
					// the capabilities above are effective: Kubernetes does
					// not raise a non-root container's ambient capabilities.
					RunAsUser:    ptr[int64](0),
					RunAsNonRoot: ptr(false),
				},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse(cpuRequest),
					corev1.ResourceMemory: resource.MustParse(memoryRequest),
				}},
				LivenessProbe:  probe("/healthz"),
				ReadinessProbe: probe("/readyz"),
				VolumeMounts: []corev1.VolumeMount{
					{Name: configVolumeName, MountPath: dir, ReadOnly: true},
					{Name: runVolumeName, MountPath: RunDir},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: configVolumeName, VolumeSource: hostPath(dir)},
				{Name: runVolumeName, VolumeSource: hostPath(RunDir)},
			},
		},
	}
	return marshalObject(pod, "metadata.creationTimestamp", "status")
}

// marshalObject encodes obj as YAML without the fields at the given dotted
// paths (the noise of zero-valued structs, such as "creationTimestamp:
// null" and "status: {}").
func marshalObject(obj any, drop ...string) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	for _, path := range drop {
		deletePath(m, path)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	return b, nil
}

// deletePath deletes the key at a dotted path of nested maps, if there.
func deletePath(m map[string]any, path string) {
	for {
		key, rest, nested := strings.Cut(path, ".")
		if !nested {
			delete(m, key)
			return
		}
		next, ok := m[key].(map[string]any)
		if !ok {
			return
		}
		m, path = next, rest
	}
}

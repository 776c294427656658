package render

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// wantPodYAML is the static pod of the contract (issue #6), written out
// independently of the code that builds it; %[1]s is the
// LoadBalancerConfig's name, %[2]s the image, %[3]d the agent status port.
const wantPodYAML = `
apiVersion: v1
kind: Pod
metadata:
  name: vipvs-%[1]s
  namespace: kube-system
  labels:
    app.kubernetes.io/name: vipvs-agent
    app.kubernetes.io/instance: %[1]s
    app.kubernetes.io/managed-by: vipvs
    vipvs.io/load-balancer-config: %[1]s
spec:
  hostNetwork: true
  priorityClassName: system-node-critical
  tolerations:
  - operator: Exists
  terminationGracePeriodSeconds: 30
  containers:
  - name: agent
    image: %[2]s
    command: ["/vipvs-agent"]
    args: ["--config=/etc/vipvs/%[1]s/nodes/$(NODE_NAME).yaml"]
    env:
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    securityContext:
      privileged: false
      allowPrivilegeEscalation: false
      capabilities:
        add: [NET_ADMIN, NET_RAW]
        drop: [ALL]
      readOnlyRootFilesystem: true
      runAsUser: 0
      runAsNonRoot: false
    resources:
      requests:
        cpu: 10m
        memory: 32Mi
    livenessProbe:
      httpGet:
        host: 127.0.0.1
        port: %[3]d
        path: /healthz
      periodSeconds: 10
      failureThreshold: 3
    readinessProbe:
      httpGet:
        host: 127.0.0.1
        port: %[3]d
        path: /readyz
      periodSeconds: 10
      failureThreshold: 3
    volumeMounts:
    - name: config
      mountPath: /etc/vipvs/%[1]s
      readOnly: true
    - name: run
      mountPath: /run/vipvs
  volumes:
  - name: config
    hostPath:
      path: /etc/vipvs/%[1]s
      type: DirectoryOrCreate
  - name: run
    hostPath:
      path: /run/vipvs
      type: DirectoryOrCreate
`

func TestStaticPod(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			lbc := tc.in.Config.Name
			port := tc.in.Config.Spec.AgentStatusPort
			if port == 0 {
				port = 9444
			}
			var want corev1.Pod
			if err := decodeStrict(fmt.Appendf(nil, wantPodYAML, lbc, tc.in.Image, port), &want); err != nil {
				t.Fatalf("decoding the expected pod: %v", err)
			}
			var first []byte
			for _, n := range out.Nodes {
				var pod []byte
				for _, f := range n.Files {
					if f.Path == StaticPodPath(lbc) {
						pod = f.Data
						if f.Mode != ModePublic {
							t.Errorf("node %s: static pod mode %04o, want %04o", n.NodeName, f.Mode, ModePublic)
						}
					}
				}
				if pod == nil {
					t.Fatalf("node %s: no static pod at %s", n.NodeName, StaticPodPath(lbc))
				}
				if first == nil {
					first = pod
				} else if !bytes.Equal(first, pod) {
					t.Errorf("node %s: the static pod differs from node %s's; it must be the same on every node", n.NodeName, out.Nodes[0].NodeName)
				}
				if strings.Contains(string(pod), n.Hash) {
					t.Errorf("node %s: the static pod holds the config hash: a config change would restart the pod", n.NodeName)
				}
				for _, noise := range []string{"creationTimestamp", "status:", "null"} {
					if strings.Contains(string(pod), noise) {
						t.Errorf("node %s: the static pod holds %q", n.NodeName, noise)
					}
				}
				var got corev1.Pod
				if err := decodeStrict(pod, &got); err != nil {
					t.Fatalf("node %s: the static pod does not decode strictly into a corev1.Pod: %v", n.NodeName, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("node %s: static pod (-contract +rendered):\n%s", n.NodeName, diff)
				}
				checkPodProperties(t, &got, port)
			}
		})
	}
}

// checkPodProperties states the properties that matter most one by one,
// so that a failure says which.
func checkPodProperties(t *testing.T, pod *corev1.Pod, port int32) {
	t.Helper()
	s := &pod.Spec
	if !s.HostNetwork {
		t.Error("hostNetwork is not true")
	}
	if s.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", s.PriorityClassName)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0].Operator != corev1.TolerationOpExists || s.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v, want one {operator: Exists}", s.Tolerations)
	}
	if len(s.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(s.Containers))
	}
	c := &s.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil || sc.Privileged == nil || *sc.Privileged:
		t.Error("the container is not explicitly unprivileged")
	case sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Errorf("capabilities %+v, want add NET_ADMIN, NET_RAW and drop ALL", sc.Capabilities)
	}
	lp := c.LivenessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || lp.HTTPGet.Port.IntVal != port || lp.HTTPGet.Host != "127.0.0.1" {
		t.Errorf("liveness probe %+v, want GET http://127.0.0.1:%d/healthz", lp, port)
	}
	for _, v := range s.Volumes {
		if v.HostPath == nil || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("volume %s is not a hostPath of type DirectoryOrCreate", v.Name)
		}
	}
}

package companion

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEncodeDecodeFiles(t *testing.T) {
	files := []File{
		{Path: "/etc/kubernetes/manifests/vipvs-api.yaml", Data: []byte("kind: Pod\n"), Mode: 0o644},
		{Path: "/etc/vipvs/api/nodes/vipvs-api.yaml", Data: []byte("kind: AgentConfig\n"), Mode: 0o600},
		{Path: "/etc/vipvs/api/blob", Data: []byte{0xff, 0x00, 0xfe}, Mode: 0o644},
	}
	data, ann, err := EncodeFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	// Two files share a base name: the second gets another key. Binary
	// content is kept as it is.
	want := map[string][]byte{"vipvs-api.yaml": []byte("kind: Pod\n"), "1.vipvs-api.yaml": []byte("kind: AgentConfig\n"), "blob": {0xff, 0x00, 0xfe}}
	if diff := cmp.Diff(want, data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if !strings.Contains(ann, `"mode":"0600"`) {
		t.Errorf("annotation %s: want octal modes", ann)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Annotations: map[string]string{AnnotationFiles: ann}},
		Data:       data,
	}
	got, err := DecodeFiles(s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(files, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeFilesRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		ann  string
		want []string
	}{
		{"no annotation", "", []string{"no vipvs.io/files annotation"}},
		{"not JSON", "[", []string{"decoding"}},
		{"relative path and bad mode", `[{"path":"etc/x","key":"a","mode":"0644"},{"path":"/etc/y","key":"a","mode":"9"}]`,
			[]string{`path "etc/x" must be absolute`, `mode "9" is not an octal number`}},
		{"setuid", `[{"path":"/etc/y","key":"a","mode":"4755"}]`, []string{"more than permission bits"}},
		{"missing key", `[{"path":"/etc/y","key":"b","mode":"0644"}]`, []string{`no data key "b"`}},
		{"twice", `[{"path":"/etc/y","key":"a","mode":"0644"},{"path":"/etc/y","key":"a","mode":"0644"}]`, []string{"listed twice"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"a": []byte("x")}}
			if tt.ann != "" {
				s.Annotations = map[string]string{AnnotationFiles: tt.ann}
			}
			_, err := DecodeFiles(s)
			if err == nil {
				t.Fatal("DecodeFiles accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	short := "master-0.example.com"
	if got := LabelValue(short); got != short {
		t.Errorf("LabelValue(%q) = %q", short, got)
	}
	long := strings.Repeat("a", 60) + ".-" + strings.Repeat("b", 60)
	got := LabelValue(long)
	if len(got) > 63 {
		t.Errorf("LabelValue of a long name is %d characters", len(got))
	}
	if strings.Contains(got, ".-") || strings.HasSuffix(got, "-") {
		t.Errorf("LabelValue = %q: not a valid label value", got)
	}
	other := strings.Repeat("a", 60) + ".-" + strings.Repeat("c", 60)
	if LabelValue(other) == got {
		t.Error("two long names with a common prefix map to one label value")
	}
}

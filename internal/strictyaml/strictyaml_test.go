package strictyaml

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// doc exercises what the agent's format does not: an inlined embedded
// struct, maps, unsigned and 64-bit integers, floats, metav1.Duration and
// a type with its own UnmarshalJSON (metav1.Time).
type doc struct {
	metav1.TypeMeta `json:",inline"`
	Labels          map[string]string   `json:"labels,omitempty"`
	Ports           map[string][]uint16 `json:"ports,omitempty"`
	Big             int64               `json:"big,omitempty"`
	Ratio           float64             `json:"ratio,omitempty"`
	Every           *metav1.Duration    `json:"every,omitempty"`
	When            *metav1.Time        `json:"when,omitempty"`
	Secret          string              `json:"secret,omitempty" datapolicy:"password"`
}

func TestDecode(t *testing.T) {
	in := `
apiVersion: example.com/v1
kind: Doc
labels: {a: b}
ports: {web: [80, 443]}
big: 9007199254740991
ratio: 0.5
every: 90s
when: "2026-01-01T00:00:00Z"
secret: s3cret
`
	var got doc
	if err := Decode([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := doc{
		TypeMeta: metav1.TypeMeta{APIVersion: "example.com/v1", Kind: "Doc"},
		Labels:   map[string]string{"a": "b"}, Ports: map[string][]uint16{"web": {80, 443}},
		Big: 9007199254740991, Ratio: 0.5, Every: &metav1.Duration{Duration: 90 * time.Second},
		When:   &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Secret: "s3cret",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []string // each in the error
	}{
		{"empty", "# nothing\n", []string{"parsing YAML: the document is empty"}},
		{"two documents", "kind: A\n---\nkind: B\n", []string{"parsing YAML: found more than one document"}},
		{"a list", "- a\n", []string{"parsing YAML: the document must be a mapping"}},
		{"repeated key", "kind: A\nkind: B\n", []string{`key "kind" already set`}},
		{"inlined field, wrong case", "Kind: A\n", []string{`Kind: Forbidden: unknown field; field names are case-sensitive: did you mean "kind"?`}},
		{"map value", "labels: {a: 1}\n", []string{"labels[a]: Invalid value: 1: must be a string, not a number"}},
		{"map of lists", "ports: {web: [80, 70000, -1, 1.5]}\n", []string{
			"ports[web][1]: Invalid value: 70000: must be an integer from 0 to 65535",
			"ports[web][2]: Invalid value: -1: must be an integer from 0 to 65535",
			"ports[web][3]: Invalid value: 1.5: must be an integer",
		}},
		{"not a map", "labels: [a]\n", []string{`labels: Invalid value: "<list>": must be a mapping, not a list`}},
		{"float", "ratio: half\n", []string{`ratio: Invalid value: "half": must be a number, not a string`}},
		{"duration", "every: 90\n", []string{`every: Invalid value: 90: must be a duration string`}},
		{"bad duration", "every: 90x\n", []string{`every: Invalid value: "90x": must be a duration`}},
		{"own UnmarshalJSON", "when: yesterday\n", []string{"decoding: "}},
		{"secret", "secret: 1234\n", []string{`secret: Invalid value: "<redacted>": must be a string, not a number`}},
		{"all reported", "kind: 1\nfoo: 2\n", []string{"foo: Forbidden: unknown field", "kind: Invalid value: 1: must be a string"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(tt.in), &d)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "1234") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
	if err := Decode([]byte("kind: A\n"), doc{}); err == nil {
		t.Error("Decode into a non-pointer succeeded")
	}
}

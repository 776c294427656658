package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/vipvs/vipvs/api/v1alpha1"
)

// FuzzKeepalivedImport feeds arbitrary configurations to Import: it must
// never panic, and whatever it accepts must be written, read back
// strictly and still be valid.
func FuzzKeepalivedImport(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/*/*.conf")
	for _, s := range append(seeds, more...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("vrrp_instance A {\n virtual_router_id 1\n virtual_ipaddress {\n 2001:db8::1\n }\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files := mapFS{"k.conf": string(data), "inc.conf": string(data)}
		var res *Result
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = Import(Options{Inputs: []Input{{Node: "a", File: "k.conf"}, {Node: "b", File: "inc.conf"}}, FS: files})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Import hangs on %q", data)
		}
		if res == nil {
			t.Fatal("Import returned a nil Result")
		}
		for _, n := range res.Notes {
			if n.Pos.File == "" {
				t.Errorf("a note without file: %v", n)
			}
		}
		if err != nil {
			if len(res.Configs) != 0 {
				t.Errorf("Import failed (%v) and returned configurations", err)
			}
			return
		}
		if len(res.Configs) == 0 {
			t.Fatal("Import succeeded without a LoadBalancerConfig")
		}
		if err := validate(res.Configs); err != nil {
			t.Fatalf("Import accepted an invalid result: %v", err)
		}
		var buf bytes.Buffer
		if err := WriteConfigs(&buf, res.Configs, []string{"k.conf"}); err != nil {
			t.Fatal(err)
		}
		var back []v1alpha1.LoadBalancerConfig
		for _, doc := range strings.Split(buf.String(), "\n---\n") {
			var c v1alpha1.LoadBalancerConfig
			if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
				t.Fatalf("the output does not read back: %v\n%s", err, doc)
			}
			back = append(back, c)
		}
		if err := validate(back); err != nil {
			t.Fatalf("the output read back is invalid: %v\n%s", err, buf.String())
		}
	})
}

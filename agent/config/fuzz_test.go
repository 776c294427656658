package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzAgentConfig checks that Parse never panics, and that an accepted
// configuration marshals to a file that parses back to the same Config.
// Seeds: the files in testdata/ and a few edge cases; crashers found are
// kept in testdata/fuzz/FuzzAgentConfig and run with the ordinary tests.
func FuzzAgentConfig(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(goodHeader + "virtualRouters: [{name: a, vrid: 1, version: 2, authPassword: x, vips: [192.0.2.1]}]\n"))
	f.Add([]byte(goodHeader + "virtualRouters: [{name: a, vrid: 1, vips: [\"2001:db8::1/64\"], unicastPeers: [\"fe80::1\"]}]\n"))
	f.Add([]byte("{\"apiVersion\": \"agent.vipvs.io/v1alpha1\", \"kind\": \"AgentConfig\"}"))
	f.Add([]byte("a: &a [*a, *a]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		out, err := marshal(c)
		if err != nil {
			t.Fatalf("Marshal() of an accepted config: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal()) of an accepted config: %v\ninput:\n%s\nmarshalled:\n%s", err, data, out)
		}
		if diff := cmp.Diff(c, c2, cmpOpts); diff != "" {
			t.Fatalf("Parse(marshal(c)) (-want +got):\n%s\ninput:\n%s\nmarshalled:\n%s", diff, data, out)
		}
	})
}

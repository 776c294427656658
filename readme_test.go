package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestREADMECommands runs the `vipvs` commands of the README's shell blocks
// that can run here (render, import, agent --check of a rendered file: no
// cluster, no root, no node's /etc),
// in order, as a reader would, and fails when one does not succeed. Their
// outputs go under /tmp/vipvs-*, which the test points at a temporary
// directory.
func TestREADMECommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var ran []string
	for _, cmd := range shellCommands(string(readme)) {
		args := strings.Fields(cmd)
		if len(args) < 2 || args[0] != "vipvs" {
			continue
		}
		switch {
		case args[1] == "render", args[1] == "import", args[1] == "agent" && slices.Contains(args, "--check"):
		default:
			continue
		}
		if strings.Contains(cmd, " /etc/") {
			continue // a node's own files: not on this machine
		}
		for i, a := range args {
			if strings.Contains(a, "/tmp/vipvs-") {
				args[i] = strings.ReplaceAll(a, "/tmp/", tmp+"/")
			}
		}
		var out, errOut strings.Builder
		if code := run(args[1:], &out, &errOut); code != 0 {
			t.Errorf("README command failed (exit %d):\n  %s\n%s%s", code, cmd, out.String(), errOut.String())
			continue
		}
		ran = append(ran, args[1])
	}
	if len(ran) < 4 {
		t.Errorf("ran %d README commands (%v), want the render, check, OpenShift render and import examples", len(ran), ran)
	}
	if _, err := os.Stat(filepath.Join(tmp, "vipvs-rendered", "openshift", "99-master-vipvs-control-plane.yaml")); err != nil {
		t.Errorf("the OpenShift example did not write the MachineConfig the README copies: %v", err)
	}
}

// shellCommands returns the commands of the ```sh blocks, with
// continuation lines joined and comments removed.
func shellCommands(md string) []string {
	var cmds []string
	in := false
	cur := ""
	for _, line := range strings.Split(md, "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "```sh"):
			in = true
			continue
		case strings.HasPrefix(trim, "```"):
			in = false
			continue
		case !in:
			continue
		}
		if i := strings.Index(trim, " #"); i >= 0 {
			trim = strings.TrimSpace(trim[:i])
		}
		if strings.HasSuffix(trim, "\\") {
			cur += strings.TrimSuffix(trim, "\\") + " "
			continue
		}
		cmds = append(cmds, cur+trim)
		cur = ""
	}
	return cmds
}

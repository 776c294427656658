package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// mdLink matches the target of a Markdown link or image: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinks checks the relative links of the repository's Markdown
// files: each names a file or directory of the repository, never one
// outside it (the documentation travels with the source).
func TestDocLinks(t *testing.T) {
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			p := filepath.Join(filepath.Dir(f), target)
			if r, err := filepath.Rel(root, p); err != nil || r == ".." || strings.HasPrefix(r, "../") {
				t.Errorf("%s links %s, outside the repository", rel, m[1])
				continue
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links %s, which does not exist", rel, m[1])
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("checked %d links, want the README's and docs/'s", checked)
	}
}

package companion

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	podPath    = "/etc/kubernetes/manifests/vipvs-api.yaml"
	configPath = "/etc/vipvs/api/nodes/m0.yaml"
	caPath     = "/etc/vipvs/api/ca-kube.crt"
)

// testFiles is a set as the companion applies it: the static pod last.
func testFiles() []File {
	return []File{
		{Path: configPath, Data: []byte("kind: AgentConfig\n"), Mode: 0o600},
		{Path: caPath, Data: []byte("-----BEGIN CERTIFICATE-----\n"), Mode: 0o644},
		{Path: podPath, Data: []byte("kind: Pod\n"), Mode: 0o644},
	}
}

func newTestWriter(t *testing.T) *Writer {
	t.Helper()
	return &Writer{Root: t.TempDir()}
}

// fileID is what tells a rewritten file from an untouched one.
type fileID struct {
	ino   uint64
	mtime time.Time
	mode  os.FileMode
}

func stat(t *testing.T, w *Writer, p string) fileID {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(w.Root, p))
	if err != nil {
		t.Fatal(err)
	}
	return fileID{ino: fi.Sys().(*syscall.Stat_t).Ino, mtime: fi.ModTime(), mode: fi.Mode()}
}

func readHost(t *testing.T, w *Writer, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.Root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers lists the temporary files below root.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".vipvs-") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriterApply(t *testing.T) {
	// A restrictive umask must not change the modes asked for.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	w := newTestWriter(t)
	files := testFiles()
	changed, err := w.Apply("vipvs-api-m0", files)
	if err != nil {
		t.Fatal(err)
	}
	// In the order given: the static pod after the config it needs.
	if diff := cmp.Diff([]string{configPath, caPath, podPath}, changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}
	for _, f := range files {
		if got := readHost(t, w, f.Path); got != string(f.Data) {
			t.Errorf("%s = %q, want %q", f.Path, got, f.Data)
		}
		if got := stat(t, w, f.Path).mode; got != f.Mode {
			t.Errorf("%s mode = %v, want %v", f.Path, got, f.Mode)
		}
	}
	for _, d := range []string{"etc", "etc/vipvs", "etc/vipvs/api", "etc/vipvs/api/nodes", "etc/kubernetes/manifests", "var/lib/vipvs/node"} {
		fi, err := os.Stat(filepath.Join(w.Root, d))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Errorf("directory %s mode = %v, want 0755", d, got)
		}
	}
	if l := leftovers(t, w.Root); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
	sets, err := w.Sets()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"vipvs-api-m0"}, sets); diff != "" {
		t.Errorf("sets (-want +got):\n%s", diff)
	}
}

func TestWriterIdempotent(t *testing.T) {
	w := newTestWriter(t)
	if _, err := w.Apply("s", testFiles()); err != nil {
		t.Fatal(err)
	}
	before := map[string]fileID{}
	for _, f := range testFiles() {
		before[f.Path] = stat(t, w, f.Path)
	}
	// A rewrite would show in the inode: the temporary file is created
	// while the old file exists.
	changed, err := w.Apply("s", testFiles())
	if err != nil {
		t.Fatal(err)
	}
	if changed != nil {
		t.Errorf("second apply changed %v, want nothing", changed)
	}
	for _, f := range testFiles() {
		if got := stat(t, w, f.Path); got != before[f.Path] {
			t.Errorf("%s was rewritten: %+v, before %+v", f.Path, got, before[f.Path])
		}
	}
}

func TestWriterChanges(t *testing.T) {
	w := newTestWriter(t)
	if _, err := w.Apply("s", testFiles()); err != nil {
		t.Fatal(err)
	}
	podBefore := stat(t, w, podPath)
	caBefore := stat(t, w, caPath)

	t.Run("content", func(t *testing.T) {
		files := testFiles()
		files[0].Data = []byte("kind: AgentConfig\nnodeName: m0\n")
		before := stat(t, w, configPath)
		changed, err := w.Apply("s", files)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{configPath}, changed); diff != "" {
			t.Errorf("changed (-want +got):\n%s", diff)
		}
		after := stat(t, w, configPath)
		if after.ino == before.ino {
			t.Error("the new content was written in place, not renamed over the old file")
		}
		if got := readHost(t, w, configPath); got != string(files[0].Data) {
			t.Errorf("content = %q", got)
		}
		if stat(t, w, podPath) != podBefore {
			t.Error("the unchanged static pod was rewritten")
		}
	})
	t.Run("mode", func(t *testing.T) {
		files := testFiles()
		files[0].Data = []byte("kind: AgentConfig\nnodeName: m0\n")
		files[1].Mode = 0o640
		changed, err := w.Apply("s", files)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{caPath}, changed); diff != "" {
			t.Errorf("changed (-want +got):\n%s", diff)
		}
		if got := stat(t, w, caPath); got.mode != 0o640 || got.ino == caBefore.ino {
			t.Errorf("CA file after a mode change: %+v (before %+v), want mode 0640 and a new file", got, caBefore)
		}
	})
	t.Run("stale file removed", func(t *testing.T) {
		files := []File{testFiles()[0], testFiles()[2]}
		files[0].Data = []byte("kind: AgentConfig\nnodeName: m0\n")
		changed, err := w.Apply("s", files)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{caPath}, changed); diff != "" {
			t.Errorf("changed (-want +got):\n%s", diff)
		}
		if _, err := os.Lstat(filepath.Join(w.Root, caPath)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the CA file the set no longer has is still there: %v", err)
		}
	})
	if l := leftovers(t, w.Root); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

func TestWriterRemove(t *testing.T) {
	w := newTestWriter(t)
	if _, err := w.Apply("a", testFiles()); err != nil {
		t.Fatal(err)
	}
	other := []File{{Path: "/etc/vipvs/other/nodes/m0.yaml", Data: []byte("x"), Mode: 0o644}}
	if _, err := w.Apply("b", other); err != nil {
		t.Fatal(err)
	}
	// A new Writer (a restarted companion) finds the sets from its records.
	w = &Writer{Root: w.Root}
	removed, err := w.Remove("a")
	if err != nil {
		t.Fatal(err)
	}
	// In the reverse of the order Apply was given them: the static pod first.
	if diff := cmp.Diff([]string{podPath, caPath, configPath}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for _, f := range testFiles() {
		if _, err := os.Lstat(filepath.Join(w.Root, f.Path)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", f.Path, err)
		}
	}
	if got := readHost(t, w, other[0].Path); got != "x" {
		t.Errorf("the other set's file = %q", got)
	}
	sets, err := w.Sets()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, sets); diff != "" {
		t.Errorf("sets (-want +got):\n%s", diff)
	}
	removed, err = w.Remove("a")
	if err != nil || removed != nil {
		t.Errorf("removing a removed set: %v, %v; want nothing", removed, err)
	}
	// A file someone else removed already is no error.
	if err := os.Remove(filepath.Join(w.Root, other[0].Path)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Remove("b"); err != nil {
		t.Errorf("removing a set whose file is gone: %v", err)
	}
}

// TestWriterAtomic reads the file while it is replaced again and again:
// every read must see one whole version, never a missing, empty or partial
// file.
func TestWriterAtomic(t *testing.T) {
	w := newTestWriter(t)
	versions := [][]byte{
		bytes.Repeat([]byte("a"), 1<<20),
		bytes.Repeat([]byte("b"), 1<<20+7),
	}
	apply := func(i int) {
		t.Helper()
		if _, err := w.Apply("s", []File{{Path: configPath, Data: versions[i%2], Mode: 0o644}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(0)
	host := filepath.Join(w.Root, configPath)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad int
	var firstBad string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(host)
			reads++
			switch {
			case err != nil:
				bad++
				if firstBad == "" {
					firstBad = err.Error()
				}
			case !bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1]):
				bad++
				if firstBad == "" {
					firstBad = fmt.Sprintf("a read of %d bytes matched no version", len(b))
				}
			}
		}
	}()
	for i := 1; i <= 40; i++ {
		apply(i)
	}
	close(stop)
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d of %d concurrent reads saw no whole version; first: %s", bad, reads, firstBad)
	}
	t.Logf("%d concurrent reads, each saw a whole version", reads)
	if l := leftovers(t, w.Root); len(l) > 0 {
		t.Errorf("temporary files left: %v", l)
	}
}

// TestWriterSymlinks checks that no write or removal goes through a
// symbolic link out of the root.
func TestWriterSymlinks(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkVictim := func(t *testing.T) {
		t.Helper()
		b, err := os.ReadFile(victim)
		if err != nil || string(b) != "keep" {
			t.Errorf("the file outside the root changed: %q, %v", b, err)
		}
		entries, err := os.ReadDir(outside)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Errorf("files appeared outside the root: %v", entries)
		}
	}

	for _, tt := range []struct {
		name   string
		link   string // below the root
		target string
	}{
		{name: "absolute directory link", link: "etc/vipvs", target: outside},
		{name: "relative directory link", link: "etc/vipvs", target: "../../" + strings.Repeat("../", 20) + outside},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWriter(t)
			if err := os.MkdirAll(filepath.Join(w.Root, filepath.Dir(tt.link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, filepath.Join(w.Root, tt.link)); err != nil {
				t.Fatal(err)
			}
			_, err := w.Apply("s", []File{{Path: "/etc/vipvs/victim", Data: []byte("owned"), Mode: 0o644}})
			if err == nil {
				t.Error("Apply wrote through a link out of the root")
			}
			checkVictim(t)
		})
	}

	t.Run("file link is replaced, not followed", func(t *testing.T) {
		w := newTestWriter(t)
		dir := filepath.Join(w.Root, "etc/vipvs/api/nodes")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, "m0.yaml")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Apply("s", []File{{Path: configPath, Data: []byte("new"), Mode: 0o644}}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(filepath.Join(w.Root, configPath))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("the link was not replaced by a regular file: %v, %v", fi, err)
		}
		if got := readHost(t, w, configPath); got != "new" {
			t.Errorf("content = %q", got)
		}
		checkVictim(t)
	})

	t.Run("remove does not follow a directory link", func(t *testing.T) {
		w := newTestWriter(t)
		if _, err := w.Apply("s", []File{{Path: "/etc/vipvs/x/victim", Data: []byte("mine"), Mode: 0o644}}); err != nil {
			t.Fatal(err)
		}
		x := filepath.Join(w.Root, "etc/vipvs/x")
		if err := os.RemoveAll(x); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, x); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Remove("s"); err == nil {
			t.Error("Remove went through a link out of the root without an error")
		}
		checkVictim(t)
	})
}

func TestWriterRefuses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		set   string
		files []File
		want  string
	}{
		{"relative path", "s", []File{{Path: "etc/x", Mode: 0o644}}, "must be absolute"},
		{"unclean path", "s", []File{{Path: "/etc/vipvs/../shadow", Mode: 0o644}}, "must be absolute and clean"},
		{"root", "s", []File{{Path: "/", Mode: 0o644}}, "name a file"},
		{"setuid", "s", []File{{Path: "/etc/vipvs/x", Mode: 0o4755}}, "more than permission bits"},
		{"twice", "s", []File{{Path: "/etc/vipvs/x", Mode: 0o644}, {Path: "/etc/vipvs/x", Mode: 0o644}}, "listed twice"},
		{"bad set name", "../s", []File{{Path: "/etc/vipvs/x", Mode: 0o644}}, "DNS-1123"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWriter(t)
			_, err := w.Apply(tt.set, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want an error containing %q", err, tt.want)
			}
			entries, _ := os.ReadDir(w.Root)
			if len(entries) > 0 {
				t.Errorf("a refused apply wrote %v", entries)
			}
		})
	}
}

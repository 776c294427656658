package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
)

// waitTimeout bounds every wait for the watcher; the watcher reacts within
// its debounce interval, so only a broken watcher reaches it.
const waitTimeout = 10 * time.Second

// configFor returns a valid configuration file whose node name is node.
func configFor(node string) []byte {
	return []byte(goodHeader + "nodeName: " + node + "\nvirtualRouters: [{name: api, vrid: 51, vips: [192.0.2.100/24]}]\n")
}

var badConfig = []byte(goodHeader + "virtualRouters: [{name: api, vrid: 0, vips: [192.0.2.100/24]}]\n")

// writeAtomic replaces path by renaming a new file over it, as the node
// companion does.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// watcherHarness runs a Watcher and records the outcome of each check.
type watcherHarness struct {
	w        *Watcher
	outcomes chan outcome
}

// startWatcher starts a Watcher of path, which must hold a valid file, and
// stops it when the test ends.
func startWatcher(t *testing.T, path string) *watcherHarness {
	t.Helper()
	w, err := NewWatcher(path, testr.New(t))
	if err != nil {
		t.Fatalf("NewWatcher() error: %v", err)
	}
	h := &watcherHarness{w: w, outcomes: make(chan outcome, 1000)}
	w.debounce = 20 * time.Millisecond
	w.afterCheck = func(o outcome) { h.outcomes <- o }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil after cancel", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run() did not return %v after its context was cancelled", waitTimeout)
		}
	})
	// Run checks the file once as soon as it watches the directory: after
	// that, every change is seen.
	h.waitFor(t, outcomeUnchanged)
	return h
}

// waitFor waits until a check has the outcome want. Checks that changed
// nothing (unchanged, rejected again) may come first; any other outcome is
// a failure.
func (h *watcherHarness) waitFor(t *testing.T, want outcome) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case got := <-h.outcomes:
			if got == want {
				return
			}
			if got != outcomeUnchanged && got != outcomeRejectedAgain {
				t.Fatalf("waiting for a check with outcome %v: got %v", want, got)
			}
		case <-deadline:
			t.Fatalf("no check with outcome %v within %v", want, waitTimeout)
		}
	}
}

// update takes the update that a check with outcome updated has sent.
func (h *watcherHarness) update(t *testing.T) *Config {
	t.Helper()
	select {
	case c := <-h.w.Updates():
		return c
	default:
		t.Fatal("no config on Updates after an update")
		return nil
	}
}

// noUpdate checks that no config waits on Updates.
func (h *watcherHarness) noUpdate(t *testing.T) {
	t.Helper()
	select {
	case c := <-h.w.Updates():
		t.Fatalf("got an update to config %s (node %q), want none", c.Hash, c.NodeName)
	default:
	}
}

// rejection takes the error that a check with outcome rejected has sent.
func (h *watcherHarness) rejection(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.w.Errors():
		return err
	default:
		t.Fatal("no error on Errors after a rejection")
		return nil
	}
}

func (h *watcherHarness) noError(t *testing.T) {
	t.Helper()
	select {
	case err := <-h.w.Errors():
		t.Fatalf("got error %v, want none", err)
	default:
	}
}

func TestWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	writeAtomic(t, path, configFor("a"))
	h := startWatcher(t, path)
	if got := h.w.Current().NodeName; got != "a" {
		t.Fatalf("Current().NodeName = %q, want %q", got, "a")
	}

	// In-place write.
	if err := os.WriteFile(path, configFor("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, outcomeUpdated)
	if got := h.update(t); got.NodeName != "b" || got != h.w.Current() {
		t.Fatalf("update: node %q (current: %v), want node %q, the current config", got.NodeName, got == h.w.Current(), "b")
	}

	// Rename-replace.
	writeAtomic(t, path, configFor("c"))
	h.waitFor(t, outcomeUpdated)
	if got := h.update(t).NodeName; got != "c" {
		t.Fatalf("update: node %q, want %q", got, "c")
	}

	// An invalid file is reported; the last good config stays.
	writeAtomic(t, path, badConfig)
	h.waitFor(t, outcomeRejected)
	err := h.rejection(t)
	var inv *InvalidError
	if want := "loading agent config " + path + ": invalid agent config: virtualRouters[0].vrid: Invalid value: 0"; !strings.HasPrefix(err.Error(), want) || !errors.As(err, &inv) {
		t.Errorf("error = %v, want an *InvalidError starting with %q", err, want)
	}
	h.noUpdate(t)
	if got := h.w.Current().NodeName; got != "c" {
		t.Errorf("Current().NodeName = %q after a bad file, want %q", got, "c")
	}

	// The same invalid file again is not reported again...
	writeAtomic(t, path, badConfig)
	h.waitFor(t, outcomeRejectedAgain)
	h.noError(t)
	// ...unless a reload is asked for.
	h.w.Reload()
	h.waitFor(t, outcomeRejected)
	if err := h.rejection(t); !errors.As(err, &inv) {
		t.Errorf("error after Reload = %v, want an *InvalidError", err)
	}

	// The fixed file is an update.
	writeAtomic(t, path, configFor("d"))
	h.waitFor(t, outcomeUpdated)
	d := h.update(t)
	if d.NodeName != "d" {
		t.Fatalf("update: node %q, want %q", d.NodeName, "d")
	}

	// Rewriting the same bytes, or a reload, is not an update.
	writeAtomic(t, path, configFor("d"))
	h.waitFor(t, outcomeUnchanged)
	h.w.Reload()
	h.waitFor(t, outcomeUnchanged)
	h.noUpdate(t)
	h.noError(t)
	if got := h.w.Current(); got != d {
		t.Errorf("Current() = config %s, want the unchanged %s", got.Hash, d.Hash)
	}
}

// TestWatcherSymlinkSwap follows a file mounted from a Kubernetes ConfigMap
// or Secret: path -> ..data/agent.yaml, and ..data -> a timestamped
// directory that is replaced by renaming a new ..data symlink over it.
func TestWatcherSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	swap := func(version string, data []byte) {
		t.Helper()
		vdir := filepath.Join(dir, "..2025_01_01_00_00_0"+version)
		if err := os.Mkdir(vdir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vdir, "agent.yaml"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Base(vdir), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap("1", configFor("a"))
	path := filepath.Join(dir, "agent.yaml")
	if err := os.Symlink(filepath.Join("..data", "agent.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := startWatcher(t, path)

	swap("2", configFor("b"))
	if err := os.RemoveAll(filepath.Join(dir, "..2025_01_01_00_00_01")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, outcomeUpdated)
	if got := h.update(t).NodeName; got != "b" {
		t.Fatalf("update: node %q, want %q", got, "b")
	}
}

// TestWatcherFileRemoved reports a missing file once and takes the file
// back when it returns.
func TestWatcherFileRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	writeAtomic(t, path, configFor("a"))
	h := startWatcher(t, path)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, outcomeRejected)
	if err := h.rejection(t); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "loading agent config "+path+": ") {
		t.Errorf("error = %v, want one naming the path and wrapping os.ErrNotExist", err)
	}
	writeAtomic(t, path, configFor("b"))
	h.waitFor(t, outcomeUpdated)
	if got := h.update(t).NodeName; got != "b" {
		t.Fatalf("update: node %q, want %q", got, "b")
	}
}

func TestNewWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte // nil: no file
		want string
	}{
		{name: "missing file", want: "no such file or directory"},
		{name: "invalid file", data: badConfig, want: "invalid agent config: virtualRouters[0].vrid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if tt.data != nil {
				writeAtomic(t, path, tt.data)
			}
			_, err := NewWatcher(path, testr.New(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewWatcher() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSendLatest(t *testing.T) {
	ch := make(chan int, 1)
	sendLatest(ch, 1)
	sendLatest(ch, 2)
	if diff := cmp.Diff(2, <-ch); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

// TestWatcherRunError reports a directory that cannot be watched both as
// Run's result and on Errors.
func TestWatcherRunError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	writeAtomic(t, path, configFor("a"))
	w, err := NewWatcher(path, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	w.path = filepath.Join(dir, "gone", "agent.yaml")
	runErr := w.Run(context.Background())
	if runErr == nil || !strings.Contains(runErr.Error(), "watching agent config directory") {
		t.Fatalf("Run() = %v, want an error about the directory", runErr)
	}
	select {
	case err := <-w.Errors():
		if err.Error() != runErr.Error() {
			t.Errorf("Errors() = %v, want %v", err, runErr)
		}
	default:
		t.Error("no error on Errors")
	}
}

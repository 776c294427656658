package config

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

const (
	// defaultDebounce is how long the directory must be quiet after an
	// event before the file is read: an editor or a non-atomic writer
	// (truncate, then write) produces several events, and reading between
	// them would see a partial file.
	defaultDebounce = 100 * time.Millisecond
	// defaultResync is the period of a re-read without any event, a safety
	// net for lost events (inotify queue overflow) and for changes that a
	// directory watch cannot see (the target of a symlink elsewhere being
	// edited in place).
	defaultResync = time.Minute
)

// outcome is the result of one check of the file, reported to tests.
type outcome int

const (
	outcomeUpdated       outcome = iota // a new valid config was sent on Updates
	outcomeUnchanged                    // the file has the current config's hash
	outcomeRejected                     // the file is invalid or unreadable; an error was sent on Errors
	outcomeRejectedAgain                // the same invalid file or read error as last time; nothing sent
)

func (o outcome) String() string {
	switch o {
	case outcomeUpdated:
		return "updated"
	case outcomeUnchanged:
		return "unchanged"
	case outcomeRejected:
		return "rejected"
	case outcomeRejectedAgain:
		return "rejectedAgain"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Watcher follows the agent's configuration file. It watches the file's
// directory with fsnotify, so that an in-place write, an atomic
// rename-replace and a Kubernetes-style symlink swap (..data) are all seen;
// it also re-reads the file on Reload (SIGHUP) and once a minute.
//
// After each change it sends the new Config on Updates if the file is valid
// and differs (by hash) from the current config; otherwise it sends the
// error on Errors and the current config stays. The same invalid file is
// reported once, except on an explicit Reload.
//
// Both channels keep only the latest value: a consumer that falls behind
// receives the newest config or error, never a stale one, and Run never
// blocks on a consumer. The Watcher logs at V(1) only: logging "config
// accepted" / "config rejected" at V(0), and counting, is the consumer's
// job. Take the initial config from Current, not from a separate Load: the
// Watcher reports changes relative to Current. A typical consumer:
//
//	w, err := config.NewWatcher(path, log)
//	if err != nil { return err }      // no valid config to start with
//	cfg := w.Current()
//	go w.Run(ctx)
//	for {
//		select {
//		case cfg = <-w.Updates(): // apply cfg
//		case err := <-w.Errors(): // count it; the last good config stays
//		case <-sighup: w.Reload()
//		case <-ctx.Done(): return nil
//		}
//	}
type Watcher struct {
	path     string
	log      logr.Logger
	debounce time.Duration
	resync   time.Duration

	current atomic.Pointer[Config]
	updates chan *Config
	errs    chan error
	reload  chan struct{}

	// lastRejected identifies the last invalid file (its hash) or read
	// error (its text), so that it is reported once. Owned by Run.
	lastRejected string
	// afterCheck, when set (by tests), is called by Run after each check.
	afterCheck func(outcome)
}

// NewWatcher loads the configuration file at path and returns a Watcher
// whose Current config is it. An invalid or unreadable file is an error: the
// agent has no configuration to start with. Call Run to follow changes.
func NewWatcher(path string, log logr.Logger) (*Watcher, error) {
	c, err := Load(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		path:     path,
		log:      log,
		debounce: defaultDebounce,
		resync:   defaultResync,
		updates:  make(chan *Config, 1),
		errs:     make(chan error, 1),
		reload:   make(chan struct{}, 1),
	}
	w.current.Store(c)
	return w, nil
}

// Current returns the last valid configuration: the one loaded by
// NewWatcher or the last one sent on Updates. Safe for concurrent use.
func (w *Watcher) Current() *Config { return w.current.Load() }

// Updates delivers each new valid configuration, the newest only.
func (w *Watcher) Updates() <-chan *Config { return w.updates }

// Errors delivers the newest problem: an invalid or unreadable file
// (wrapping the path: "loading agent config <path>: ...", with an
// *InvalidError for field problems) or a failure of the directory watch.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Reload asks Run to re-read the file now, as on SIGHUP. A changed valid
// file is sent on Updates; an invalid one on Errors even if it was reported
// before. It never blocks, and requests made while one is pending merge.
func (w *Watcher) Reload() {
	select {
	case w.reload <- struct{}{}:
	default:
	}
}

// Run watches the file until ctx is done, then returns nil. It returns an
// error only if the directory watch cannot be set up; that error is also
// sent on Errors, for a consumer that runs it with a bare `go w.Run(ctx)`.
// Call it once. Right
// after the watch is set up it re-reads the file, so a change made between
// NewWatcher and Run is not missed.
func (w *Watcher) Run(ctx context.Context) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		err = fmt.Errorf("watching agent config %s: %w", w.path, err)
		sendLatest(w.errs, err)
		return err
	}
	defer fsw.Close()
	dir := filepath.Dir(w.path)
	if err := fsw.Add(dir); err != nil {
		err = fmt.Errorf("watching agent config directory %s: %w", dir, err)
		sendLatest(w.errs, err)
		return err
	}
	w.log.V(1).Info("Watching config file", "path", w.path)

	w.check(false)

	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	debounce := time.NewTimer(w.debounce)
	debounce.Stop()
	defer debounce.Stop()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return nil
			}
			// Any event in the directory may change what path resolves to
			// (a symlink swap renames ..data, not the file); re-reading is
			// cheap and the hash filters non-changes.
			w.log.V(1).Info("Config directory changed", "event", ev.String())
			debounce.Reset(w.debounce)
		case err, ok := <-fsw.Errors:
			if !ok {
				return nil
			}
			// On a queue overflow events were lost: read the file anyway.
			w.log.V(1).Info("Watching config directory failed", "path", dir, "error", err.Error())
			sendLatest(w.errs, fmt.Errorf("watching agent config directory %s: %w", dir, err))
			debounce.Reset(w.debounce)
		case <-w.reload:
			w.log.V(1).Info("Config reload requested", "path", w.path)
			w.check(true)
		case <-resync.C:
			w.check(false)
		case <-debounce.C:
			w.check(false)
		}
	}
}

// check reads and parses the file and reports the outcome. explicit is true
// for a Reload, which re-reports an error already reported.
func (w *Watcher) check(explicit bool) {
	o := w.checkFile(explicit)
	if w.afterCheck != nil {
		w.afterCheck(o)
	}
}

func (w *Watcher) checkFile(explicit bool) outcome {
	data, err := readFile(w.path)
	if err != nil {
		return w.reject("read error: "+err.Error(), fmt.Errorf("loading agent config %s: %w", w.path, err), explicit)
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	cur := w.current.Load()
	if hash == cur.Hash {
		w.lastRejected = ""
		w.log.V(1).Info("Config file unchanged", "configHash", hash)
		return outcomeUnchanged
	}
	c, err := Parse(data)
	if err != nil {
		return w.reject(hash, fmt.Errorf("loading agent config %s: %w", w.path, err), explicit)
	}
	w.lastRejected = ""
	w.current.Store(c)
	w.log.V(1).Info("Config file changed", "configHash", c.Hash, "previousConfigHash", cur.Hash)
	sendLatest(w.updates, c)
	return outcomeUpdated
}

func (w *Watcher) reject(key string, err error, explicit bool) outcome {
	if key == w.lastRejected && !explicit {
		return outcomeRejectedAgain
	}
	w.lastRejected = key
	w.log.V(1).Info("Config file rejected", "path", w.path, "error", err.Error())
	sendLatest(w.errs, err)
	return outcomeRejected
}

// sendLatest puts v into ch, a channel of capacity 1 with one sender,
// replacing a value the receiver has not taken yet. It never blocks.
func sendLatest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

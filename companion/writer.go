package companion

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
)

// DefaultStateDir is the host directory where a Writer records which files
// it wrote for each set, so that it can remove them after a restart.
const DefaultStateDir = "/var/lib/vipvs/node"

// Modes of what a Writer creates besides the files themselves.
const (
	dirMode    os.FileMode = 0o755
	recordMode os.FileMode = 0o644
)

// Writer writes sets of files below a root directory (the host's root file
// system, as mounted into the companion's container), atomically and only
// when something changed. A set is what one Secret carries; the Writer
// records the paths of each set (below StateDir) so that Remove can delete
// them later, even after a restart.
//
// Every path is taken relative to the root and resolved with os.Root: a
// symbolic link is followed only while it stays below the root, and never
// when it is absolute (the operation fails instead). A file is replaced by
// writing a temporary file in the same directory, syncing it, and renaming
// it over the old one, so a reader sees the old file or the new one, never
// part of one; the directory is synced after the rename. Missing
// directories are created with mode 0755.
//
// A Writer holds no state in memory; its methods may be called from one
// goroutine at a time.
type Writer struct {
	// Root is the directory that stands for the host's "/".
	Root string
	// StateDir is the host path of the records, DefaultStateDir when empty.
	StateDir string
}

// record is what a Writer remembers of a set.
type record struct {
	// Set is the set's name.
	Set string `json:"set"`
	// Paths are the set's files, in the order they were written (they are
	// removed in the reverse order).
	Paths []string `json:"paths"`
}

// Apply makes the files of set exist below the root with their content and
// mode, and removes the files that the set had before but no longer has.
// It writes only what differs, and returns the host paths it wrote or
// removed (nil when nothing changed). Files are written in the order given
// and Remove deletes them in the reverse order: put the static pod last, so
// that it comes after the config its pod reads, and goes before it.
// It stops at the first error; what it wrote until then stays written.
func (w *Writer) Apply(set string, files []File) (changed []string, err error) {
	if err := checkSet(set); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		if err := checkPath(f.Path); err != nil {
			return nil, fmt.Errorf("set %s: %w", set, err)
		}
		if err := checkMode(f.Path, f.Mode); err != nil {
			return nil, fmt.Errorf("set %s: %w", set, err)
		}
		if slices.Contains(paths, f.Path) {
			return nil, fmt.Errorf("set %s: file %s listed twice", set, f.Path)
		}
		paths = append(paths, f.Path)
	}
	r, err := os.OpenRoot(w.Root)
	if err != nil {
		return nil, fmt.Errorf("opening the host root: %w", err)
	}
	defer r.Close()

	old, err := w.readRecord(r, set)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, p := range old.Paths {
		if !slices.Contains(paths, p) {
			stale = append(stale, p)
		}
	}
	// Record first every path that may exist once this call ends, so that a
	// crash in between leaves nothing that Remove would not find.
	if !slices.Equal(old.Paths, paths) {
		if err := w.writeRecord(r, record{Set: set, Paths: append(slices.Clone(paths), stale...)}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		wrote, err := writeFile(r, f.Path, f.Data, f.Mode)
		if err != nil {
			return changed, fmt.Errorf("set %s: %w", set, err)
		}
		if wrote {
			changed = append(changed, f.Path)
		}
	}
	for _, p := range stale {
		removed, err := removeFile(r, p)
		if err != nil {
			return changed, fmt.Errorf("set %s: %w", set, err)
		}
		if removed {
			changed = append(changed, p)
		}
	}
	if !slices.Equal(old.Paths, paths) {
		if err := w.writeRecord(r, record{Set: set, Paths: paths}); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// Remove deletes the files of set in the reverse of the order Apply was
// given them, then the set's record. It returns the host paths it removed; a set without
// record, or files already gone, are not an error.
func (w *Writer) Remove(set string) (removed []string, err error) {
	if err := checkSet(set); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(w.Root)
	if err != nil {
		return nil, fmt.Errorf("opening the host root: %w", err)
	}
	defer r.Close()
	rec, err := w.readRecord(r, set)
	if err != nil {
		return nil, err
	}
	for i := len(rec.Paths) - 1; i >= 0; i-- {
		p := rec.Paths[i]
		ok, err := removeFile(r, p)
		if err != nil {
			return removed, fmt.Errorf("set %s: %w", set, err)
		}
		if ok {
			removed = append(removed, p)
		}
	}
	if _, err := removeFile(r, w.recordPath(set)); err != nil {
		return removed, fmt.Errorf("set %s: removing its record: %w", set, err)
	}
	return removed, nil
}

// Paths returns the host paths recorded for set, in the order Apply was
// given them (nil for a set without record).
func (w *Writer) Paths(set string) ([]string, error) {
	if err := checkSet(set); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(w.Root)
	if err != nil {
		return nil, fmt.Errorf("opening the host root: %w", err)
	}
	defer r.Close()
	rec, err := w.readRecord(r, set)
	if err != nil {
		return nil, err
	}
	return rec.Paths, nil
}

// RemoveFile deletes one file of set, the host path p, and drops it from
// the set's record; Remove deletes the others later. It reports whether
// there was a file to remove.
func (w *Writer) RemoveFile(set, p string) (bool, error) {
	if err := checkSet(set); err != nil {
		return false, err
	}
	r, err := os.OpenRoot(w.Root)
	if err != nil {
		return false, fmt.Errorf("opening the host root: %w", err)
	}
	defer r.Close()
	rec, err := w.readRecord(r, set)
	if err != nil {
		return false, err
	}
	i := slices.Index(rec.Paths, p)
	if i < 0 {
		return false, nil
	}
	removed, err := removeFile(r, p)
	if err != nil {
		return false, fmt.Errorf("set %s: %w", set, err)
	}
	rec.Paths = slices.Delete(rec.Paths, i, i+1)
	if err := w.writeRecord(r, rec); err != nil {
		return removed, err
	}
	return removed, nil
}

// Sets returns the names of the sets that have a record, sorted.
func (w *Writer) Sets() ([]string, error) {
	r, err := os.OpenRoot(w.Root)
	if err != nil {
		return nil, fmt.Errorf("opening the host root: %w", err)
	}
	defer r.Close()
	dir := rel(w.stateDir())
	entries, err := fs.ReadDir(r.FS(), dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the records in %s: %w", w.stateDir(), err)
	}
	var sets []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := r.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading the record %s: %w", path.Join(w.stateDir(), e.Name()), err)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil || checkSet(rec.Set) != nil {
			return nil, fmt.Errorf("record %s is not a record of this companion", path.Join(w.stateDir(), e.Name()))
		}
		sets = append(sets, rec.Set)
	}
	sort.Strings(sets)
	return sets, nil
}

func (w *Writer) stateDir() string {
	if w.StateDir == "" {
		return DefaultStateDir
	}
	return w.StateDir
}

// recordPath is the host path of a set's record: the set's name, shortened
// when a file name could not hold it.
func (w *Writer) recordPath(set string) string {
	return path.Join(w.stateDir(), Shorten(set, 200)+".json")
}

func (w *Writer) readRecord(r *os.Root, set string) (record, error) {
	p := w.recordPath(set)
	b, err := r.ReadFile(rel(p))
	if errors.Is(err, fs.ErrNotExist) {
		return record{Set: set}, nil
	}
	if err != nil {
		return record{}, fmt.Errorf("reading the record of set %s: %w", set, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, fmt.Errorf("decoding the record %s: %w", p, err)
	}
	if rec.Set != set {
		return record{}, fmt.Errorf("record %s is for set %q, not %q", p, rec.Set, set)
	}
	for _, fp := range rec.Paths {
		if err := checkPath(fp); err != nil {
			return record{}, fmt.Errorf("record %s: %w", p, err)
		}
	}
	return rec, nil
}

func (w *Writer) writeRecord(r *os.Root, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding the record of set %s: %w", rec.Set, err)
	}
	if _, err := writeFile(r, w.recordPath(rec.Set), b, recordMode); err != nil {
		return fmt.Errorf("writing the record of set %s: %w", rec.Set, err)
	}
	return nil
}

// checkSet accepts a set name that is a DNS-1123 subdomain (a Secret's
// name): it becomes a file name.
func checkSet(set string) error {
	if set == "" || len(set) > 253 || strings.Trim(set, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" ||
		strings.HasPrefix(set, ".") || strings.HasPrefix(set, "-") {
		return fmt.Errorf("set name %q must be a DNS-1123 subdomain", set)
	}
	return nil
}

// rel turns a clean absolute host path into a path relative to the root.
func rel(p string) string {
	return strings.TrimPrefix(p, "/")
}

// writeFile writes data to the host path p with mode unless the file there
// already is a regular file with that content and mode. It reports whether
// it wrote.
func writeFile(r *os.Root, p string, data []byte, mode os.FileMode) (bool, error) {
	name := rel(p)
	same, err := unchanged(r, name, data, mode)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", p, err)
	}
	if same {
		return false, nil
	}
	dir := path.Dir(name)
	if err := mkdirAll(r, dir); err != nil {
		return false, fmt.Errorf("creating the directory of %s: %w", p, err)
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return false, fmt.Errorf("writing %s: %w", p, err)
	}
	tmp := path.Join(dir, "."+path.Base(name)+".vipvs-"+hex.EncodeToString(rnd[:]))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", p, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			_ = r.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return false, fmt.Errorf("writing %s: %w", p, err)
	}
	// The umask may have cleared bits of mode.
	if err := f.Chmod(mode); err != nil {
		return false, fmt.Errorf("setting the mode of %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("syncing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("writing %s: %w", p, err)
	}
	if err := r.Rename(tmp, name); err != nil {
		_ = r.Remove(tmp)
		done = true
		return false, fmt.Errorf("renaming the new %s into place: %w", p, err)
	}
	done = true
	if err := syncDir(r, dir); err != nil {
		return true, fmt.Errorf("syncing the directory of %s: %w", p, err)
	}
	return true, nil
}

// unchanged reports whether name is a regular file with data and mode. A
// symbolic link or another kind of file is never unchanged: the rename
// replaces it (the link itself, not its target).
func unchanged(r *os.Root, name string, data []byte, mode os.FileMode) (bool, error) {
	fi, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode || fi.Size() != int64(len(data)) {
		return false, nil
	}
	old, err := r.ReadFile(name)
	if err != nil {
		return false, err
	}
	return bytes.Equal(old, data), nil
}

// mkdirAll creates dir and its missing parents with mode 0755.
func mkdirAll(r *os.Root, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		err := r.Mkdir(cur, dirMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		// The umask may have cleared bits: set them on the new directory
		// through its descriptor.
		d, err := r.Open(cur)
		if err != nil {
			return err
		}
		err = d.Chmod(dirMode)
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func syncDir(r *os.Root, dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := r.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeFile removes the host path p and syncs its directory. It reports
// whether there was something to remove.
func removeFile(r *os.Root, p string) (bool, error) {
	name := rel(p)
	err := r.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing %s: %w", p, err)
	}
	if err := syncDir(r, path.Dir(name)); err != nil {
		return true, fmt.Errorf("syncing the directory of %s: %w", p, err)
	}
	return true, nil
}

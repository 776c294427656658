package day0

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// outFile is a file to write under --out.
type outFile struct {
	rel  string // path relative to --out, slash-separated
	data []byte
	mode os.FileMode
}

// writeAll writes every file under dir, each atomically (a temporary file
// in the same directory, synced, then renamed over the target). A file
// whose content and mode are already right is left alone. It returns the
// number of files it wrote.
func writeAll(dir string, files []outFile) (int, error) {
	written := 0
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.rel))
		same, err := unchanged(path, f.data, f.mode)
		if err != nil {
			return written, err
		}
		if same {
			continue
		}
		if err := writeFileAtomic(path, f.data, f.mode); err != nil {
			return written, err
		}
		written++
	}
	return written, nil
}

// unchanged reports whether path is a regular file with data and mode.
func unchanged(path string, data []byte, mode os.FileMode) (bool, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("checking %s: %w", path, err)
	case fi.IsDir():
		return false, fmt.Errorf("cannot write %s: it is a directory", path)
	case !fi.Mode().IsRegular() || fi.Mode().Perm() != mode.Perm() || fi.Size() != int64(len(data)):
		return false, nil
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return bytes.Equal(old, data), nil
}

// writeFileAtomic replaces path with data and mode, so that a reader sees
// the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

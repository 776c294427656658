package companion

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Labels and annotations of the Secrets that carry a node's files: the
// contract between the operator and the node companion.
const (
	// LabelLoadBalancerConfig is the LoadBalancerConfig a Secret belongs to
	// (its name, through LabelValue).
	LabelLoadBalancerConfig = "vipvs.io/load-balancer-config"
	// LabelNode is the node a Secret is for (its name, through
	// LabelValue). The companion watches the Secrets with its own.
	LabelNode = "vipvs.io/node"

	// AnnotationFiles maps the data keys to host paths and modes (JSON, a
	// list of FileEntry). Written by the operator.
	AnnotationFiles = "vipvs.io/files"
	// AnnotationConfigHash is the hash (sha256, hex) of the rendered agent
	// configuration. Written by the operator.
	AnnotationConfigHash = "vipvs.io/config-hash"

	// AnnotationRunningConfigHash is the hash of the configuration the
	// node's agent reports it runs. Written by the companion; absent while
	// the agent does not answer.
	AnnotationRunningConfigHash = "vipvs.io/running-config-hash"
	// AnnotationAgentStatus is the agent's status in short: a NodeReport of
	// the status contract (github.com/vipvs/vipvs/api/status/v1alpha1), as
	// JSON. Written by the companion; absent while the agent does not
	// answer.
	AnnotationAgentStatus = "vipvs.io/agent-status"
	// AnnotationAgentError says why the companion could not write the
	// files or read the agent's status. Written by the companion; absent
	// when all is well.
	AnnotationAgentError = "vipvs.io/agent-error"
)

// maxLabelValue is the length limit of a label value.
const maxLabelValue = 63

// LabelValue returns the label value that stands for a node or
// LoadBalancerConfig name: the name itself when it fits in a label value
// (63 characters), otherwise a prefix of it and a hash of the whole name.
// Node and LoadBalancerConfig names are DNS-1123 subdomains, whose
// characters are all allowed in a label value.
func LabelValue(name string) string {
	if len(name) <= maxLabelValue {
		return name
	}
	return Shorten(name, maxLabelValue)
}

// Shorten returns s when it has at most max characters, otherwise a prefix
// of s and the first 10 hex digits of the sha256 of s, max characters in
// all, joined by "-" (a trailing '.' or '-' of the prefix is dropped, so
// that a DNS-1123 name stays one). max must be at least 12.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:10]
	return strings.TrimRight(s[:max-len(h)-1], ".-") + "-" + h
}

// File is one file to write on the host.
type File struct {
	// Path is the absolute path on the host, in clean form.
	Path string
	// Data is the file's content.
	Data []byte
	// Mode holds the file's permission bits (no type, setuid, setgid or
	// sticky bits).
	Mode os.FileMode
}

// FileEntry is one element of the vipvs.io/files annotation.
type FileEntry struct {
	// Path is the file's absolute path on the host.
	Path string `json:"path"`
	// Key is the data key that holds the content.
	Key string `json:"key"`
	// Mode is the file's permission bits in octal, e.g. "0644".
	Mode string `json:"mode"`
}

// EncodeFiles returns the Secret data and vipvs.io/files annotation that
// carry files. Each file is keyed by its base name (with a number in front
// when two share one). Entries keep the order of files.
func EncodeFiles(files []File) (data map[string][]byte, annotation string, err error) {
	entries := make([]FileEntry, 0, len(files))
	data = make(map[string][]byte, len(files))
	paths := map[string]bool{}
	for i, f := range files {
		if err := checkPath(f.Path); err != nil {
			return nil, "", err
		}
		if err := checkMode(f.Path, f.Mode); err != nil {
			return nil, "", err
		}
		if paths[f.Path] {
			return nil, "", fmt.Errorf("file %s listed twice", f.Path)
		}
		paths[f.Path] = true
		key := path.Base(f.Path)
		if _, used := data[key]; used {
			key = Shorten(strconv.Itoa(i)+"."+key, 253)
		}
		data[key] = f.Data
		entries = append(entries, FileEntry{Path: f.Path, Key: key, Mode: fmt.Sprintf("%04o", uint32(f.Mode))})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, "", fmt.Errorf("encoding the file list: %w", err)
	}
	return data, string(b), nil
}

// DecodeFiles returns the files a Secret carries, in the order of its
// vipvs.io/files annotation. It refuses a relative or unclean path, a mode
// with more than permission bits, a key that is missing, and a path listed
// twice.
func DecodeFiles(s *corev1.Secret) ([]File, error) {
	raw, ok := s.Annotations[AnnotationFiles]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: no %s annotation", s.Namespace, s.Name, AnnotationFiles)
	}
	var entries []FileEntry
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return nil, fmt.Errorf("secret %s/%s: decoding the %s annotation: %w", s.Namespace, s.Name, AnnotationFiles, err)
	}
	var errs []error
	files := make([]File, 0, len(entries))
	paths := map[string]bool{}
	for i, e := range entries {
		if err := checkPath(e.Path); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i, err))
			continue
		}
		if paths[e.Path] {
			errs = append(errs, fmt.Errorf("entry %d: file %s listed twice", i, e.Path))
			continue
		}
		paths[e.Path] = true
		m, err := strconv.ParseUint(e.Mode, 8, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%s): mode %q is not an octal number", i, e.Path, e.Mode))
			continue
		}
		if err := checkMode(e.Path, os.FileMode(m)); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i, err))
			continue
		}
		data, ok := s.Data[e.Key]
		if !ok {
			errs = append(errs, fmt.Errorf("entry %d (%s): no data key %q", i, e.Path, e.Key))
			continue
		}
		files = append(files, File{Path: e.Path, Data: data, Mode: os.FileMode(m)})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("secret %s/%s: %s: %w", s.Namespace, s.Name, AnnotationFiles, errors.Join(errs...))
	}
	return files, nil
}

// checkPath accepts an absolute, clean path below "/".
func checkPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("path %q must be absolute and clean, and name a file", p)
	}
	return nil
}

// checkMode accepts permission bits only.
func checkMode(p string, m os.FileMode) error {
	if m&^os.ModePerm != 0 {
		return fmt.Errorf("%s: mode %04o has more than permission bits", p, uint32(m))
	}
	return nil
}

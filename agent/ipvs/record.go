package ipvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// Record keeps the set of services a Reconciler owns across restarts of
// the process, so that a service dropped from the desired state while the
// process was down is deleted when it starts again. OwnedFile implements
// it.
type Record interface {
	// Load returns the services recorded (only their protocol, VIP and
	// port matter); none when nothing was recorded.
	Load() ([]Service, error)
	// Save replaces the record with owned (protocol, VIP and port of each).
	Save(owned []Service) error
}

// OwnedFile is a Record in the file at its path: JSON, written to a
// temporary file beside it and renamed over it, so that a crash leaves the
// old record or the new one. Saving no service removes the file; a missing
// file records none.
type OwnedFile string

// ownedFileVersion is the version of the file's format.
const ownedFileVersion = 1

type ownedFileJSON struct {
	// Version is ownedFileVersion.
	Version int `json:"version"`
	// Services are the owned services: protocol, VIP, port.
	Services []ownedServiceJSON `json:"services"`
}

type ownedServiceJSON struct {
	Protocol string     `json:"protocol"`
	VIP      netip.Addr `json:"vip"`
	Port     uint16     `json:"port"`
}

// Load reads the record; a missing file records no service.
func (f OwnedFile) Load() ([]Service, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: reading the record of owned services: %w", err)
	}
	var doc ownedFileJSON
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("ipvs: the record of owned services %s: %w", f, err)
	}
	if doc.Version != ownedFileVersion {
		return nil, fmt.Errorf("ipvs: the record of owned services %s: version %d, want %d", f, doc.Version, ownedFileVersion)
	}
	out := make([]Service, 0, len(doc.Services))
	for i, s := range doc.Services {
		p, err := ParseProtocol(s.Protocol)
		if err != nil || !s.VIP.IsValid() || s.Port == 0 {
			return nil, fmt.Errorf("ipvs: the record of owned services %s: services[%d]: not a protocol, VIP and port: %+v", f, i, s)
		}
		out = append(out, Service{Protocol: p, VIP: s.VIP, Port: s.Port})
	}
	return out, nil
}

// Save writes owned as the record, or removes the file when owned is
// empty. The file's directory is created if missing.
func (f OwnedFile) Save(owned []Service) error {
	path := string(f)
	if len(owned) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ipvs: removing the record of owned services: %w", err)
		}
		return nil
	}
	owned = slices.Clone(owned)
	slices.SortFunc(owned, compareServices)
	doc := ownedFileJSON{Version: ownedFileVersion, Services: make([]ownedServiceJSON, len(owned))}
	for i, s := range owned {
		doc.Services[i] = ownedServiceJSON{Protocol: s.Protocol.String(), VIP: s.VIP, Port: s.Port}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("ipvs: encoding the record of owned services: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("ipvs: saving the record of owned services: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("ipvs: saving the record of owned services: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ipvs: saving the record of owned services: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ipvs: saving the record of owned services: %w", err)
	}
	return nil
}

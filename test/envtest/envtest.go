// Package envtest starts a real kube-apiserver and etcd for the operator's
// tests, on top of sigs.k8s.io/controller-runtime/pkg/envtest.
//
// The binaries come from hack/envtest-deps.sh: Debian's etcd and a
// kube-apiserver built from the k8s.io/kubernetes module, linked into one
// directory. It is found, in order, in $KUBEBUILDER_ASSETS, in
// $VIPVS_CACHE/envtest, and in $HOME/.cache/vipvs/envtest. When the binaries
// are missing the test is skipped, unless $CI is set: then it fails.
package envtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Binaries envtest looks up, by these exact names, in the assets directory.
var binaries = []string{"etcd", "kube-apiserver"}

// AssetsDir returns the directory holding etcd and kube-apiserver, or an
// error saying which is missing where.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		cache := os.Getenv("VIPVS_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("envtest binaries: KUBEBUILDER_ASSETS and VIPVS_CACHE unset and no home directory: %w", err)
			}
			cache = filepath.Join(home, ".cache", "vipvs")
		}
		dir = filepath.Join(cache, "envtest")
	}
	var missing []error
	for _, b := range binaries {
		p := filepath.Join(dir, b)
		fi, err := os.Stat(p) // follows the symlinks hack/envtest-deps.sh makes
		switch {
		case err != nil:
			missing = append(missing, err)
		case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
			missing = append(missing, fmt.Errorf("%s: not an executable file", p))
		}
	}
	if len(missing) > 0 {
		return dir, fmt.Errorf("envtest binaries missing (run hack/envtest-deps.sh, or set KUBEBUILDER_ASSETS): %w", errors.Join(missing...))
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver, installs the CRDs found in crdDirs
// (directories or files of YAML; a missing path is an error) and returns a
// client config for a cluster admin, and a function that stops both. Stopping
// is also registered with t.Cleanup, so calling it is optional; it may be
// called more than once.
//
// Without the binaries, Start skips the test, or fails it when $CI is set.
// Starting takes a few seconds: tests of one package should share one
// environment where they can (start it in the first test, or use Env from
// TestMain).
func Start(t testing.TB, crdDirs ...string) (*rest.Config, func()) {
	t.Helper()
	dir, err := AssetsDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	env, cfg, err := start(dir, crdDirs)
	if err != nil {
		t.Fatalf("starting envtest (assets %s): %v", dir, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := env.Stop(); err != nil {
				t.Errorf("stopping envtest: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return cfg, stop
}

// Env is Start for TestMain, where there is no testing.TB: it returns the
// running environment (call Stop on it) and its client config. A missing
// binary is returned as an error that wraps ErrNoBinaries; the caller decides
// whether to skip (see SkipOrFail).
func Env(crdDirs ...string) (*envtest.Environment, *rest.Config, error) {
	dir, err := AssetsDir()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoBinaries, err)
	}
	return start(dir, crdDirs)
}

// ErrNoBinaries is wrapped by Env's error when etcd or kube-apiserver is missing.
var ErrNoBinaries = errors.New("no envtest binaries")

// SkipOrFail reports, for an error from Env, whether the tests should be
// skipped (binaries missing and CI unset) rather than failed.
func SkipOrFail(err error) (skip bool) {
	return errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == ""
}

func start(dir string, crdDirs []string) (*envtest.Environment, *rest.Config, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
	}
	// envtest's default of 20s is tight on a loaded 2-core machine.
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		env.ControlPlaneStartTimeout = time.Minute
	}
	cfg, err := env.Start()
	if err != nil {
		// Start may leave etcd running when kube-apiserver fails.
		_ = env.Stop()
		return nil, nil, err
	}
	return env, cfg, nil
}

package vm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kernel is a bootable kernel image with its module tree.
type Kernel struct {
	// Version is the release string (uname -r), e.g. "6.1.0-56-cloud-amd64".
	Version string
	// Image is the bzImage, e.g. /boot/vmlinuz-6.1.0-56-cloud-amd64.
	Image string
	// Modules is the module tree, e.g. /lib/modules/6.1.0-56-cloud-amd64.
	Modules string
}

// ErrNoKernel means that no cloud kernel with both an image and a module
// tree is installed (hack/vm-deps.sh installs one).
var ErrNoKernel = errors.New("no cloud kernel installed (run hack/vm-deps.sh as root)")

// DefaultModules returns the modules the VM loads when Options.Modules is nil:
// IPVS with the schedulers vipvs offers, nftables with NAT and conntrack
// (NAT-mode SNAT, hairpin, the lab's partitions and loss; ctnetlink for the
// conntrack entries of taken-over NAT connections), veth and bridge
// (the lab), ipip and ip6_tunnel (IPVS tunnel mode), and xfrm_user: a
// netlink.Handle opens a NETLINK_XFRM socket too, which fails with "protocol
// not supported" without it (built in on most hosts). Their dependencies
// (nf_defrag_*, libcrc32c, llc, stp, tunnel4, ip_tunnel, ...) are added from
// modules.dep. Each call returns a new slice, so callers may append to it.
func DefaultModules() []string {
	return []string{
		"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh", "ip_vs_mh",
		"nf_conntrack", "nf_conntrack_netlink", "nf_nat", "nf_tables", "nft_nat", "nft_chain_nat", "nft_ct",
		"nft_masq", "nft_numgen", "nft_reject_inet", "nft_fib_inet",
		"veth", "bridge", "dummy", "ipip", "ip6_tunnel", "xfrm_user",
	}
}

// FindKernel returns the newest kernel whose release contains "cloud" and
// that has both /lib/modules/<release> and /boot/vmlinuz-<release>.
func FindKernel() (Kernel, error) {
	return findKernel("/lib/modules", "/boot")
}

func findKernel(modRoot, boot string) (Kernel, error) {
	dirs, err := filepath.Glob(filepath.Join(modRoot, "*cloud*"))
	if err != nil {
		return Kernel{}, fmt.Errorf("listing %s: %w", modRoot, err)
	}
	var found []Kernel
	for _, d := range dirs {
		ver := filepath.Base(d)
		img := filepath.Join(boot, "vmlinuz-"+ver)
		if _, err := os.Stat(filepath.Join(d, "modules.dep")); err != nil {
			continue
		}
		if _, err := os.Stat(img); err != nil {
			continue
		}
		found = append(found, Kernel{Version: ver, Image: img, Modules: d})
	}
	if len(found) == 0 {
		return Kernel{}, fmt.Errorf("looking in %s and %s: %w", modRoot, boot, ErrNoKernel)
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i].Version, found[j].Version) })
	return found[len(found)-1], nil
}

// versionLess compares release strings numerically where both have digits
// ("6.1.0-10" < "6.1.0-9" is false).
func versionLess(a, b string) bool {
	pa, pb := splitVersion(a), splitVersion(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func splitVersion(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '~' })
}

// module is one loadable module of a kernel.
type module struct {
	name string // normalised: "nf_conntrack"
	rel  string // path in the tree as modules.dep writes it, maybe compressed
}

// moduleName normalises a module file name or path ("kernel/x/nf-foo.ko.xz")
// to the name the kernel uses ("nf_foo").
func moduleName(p string) string {
	n := filepath.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	n = strings.TrimSuffix(n, ".ko")
	return strings.ReplaceAll(n, "-", "_")
}

// moduleTree is the parsed modules.dep and modules.builtin of a kernel.
type moduleTree struct {
	path    map[string]string   // name -> relative path
	deps    map[string][]string // name -> names it depends on
	builtin map[string]bool
}

func readModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("reading module dependencies: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		rel, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := moduleName(rel)
		t.path[name] = strings.TrimSpace(rel)
		for _, d := range strings.Fields(deps) {
			t.deps[name] = append(t.deps[name], moduleName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	// modules.builtin is optional: without it, a built-in module is an error.
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			t.builtin[moduleName(l)] = true
		}
	}
	return t, nil
}

// resolve returns the modules to load for names, each after all of its
// dependencies and each once, in a stable order. Built-in modules are left
// out; an unknown name is an error.
func (t *moduleTree) resolve(names []string) ([]module, error) {
	var (
		out   []module
		state = map[string]int{} // 0 new, 1 visiting, 2 done
		errs  []error
		visit func(n string, chain []string)
	)
	visit = func(n string, chain []string) {
		switch state[n] {
		case 1:
			errs = append(errs, fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(chain, " -> "), n))
			return
		case 2:
			return
		}
		rel, ok := t.path[n]
		if !ok {
			state[n] = 2
			if !t.builtin[n] {
				errs = append(errs, fmt.Errorf("module %s: not in modules.dep nor modules.builtin", n))
			}
			return
		}
		state[n] = 1
		for _, d := range t.deps[n] {
			visit(d, append(chain, n))
		}
		state[n] = 2
		out = append(out, module{name: n, rel: rel})
	}
	for _, n := range names {
		visit(moduleName(n), nil)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

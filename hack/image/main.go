// Command image builds the vipvs container image without a container
// engine (issue #7): from the static vipvs binary it writes an OCI image
// layout directory and/or a `docker save`-style tarball, byte for byte the
// same for the same inputs.
//
//	CGO_ENABLED=0 go build -trimpath -o bin/vipvs .
//	CGO_ENABLED=0 go build -trimpath -o bin/vipvs-agent ./agentd
//	CGO_ENABLED=0 go build -trimpath -o bin/vipvs-bgp-speaker ./agentd/bgpspeaker
//	go run ./hack/image --binary bin/vipvs --agent-binary bin/vipvs-agent \
//	    --speaker-binary bin/vipvs-bgp-speaker --version v0.1.0 \
//	    --out-layout bin/image/layout --out-tar bin/image/vipvs.tar
//
// `make image` does both. Load or push the result with the usual tools:
//
//	docker load -i bin/image/vipvs.tar            # or podman load
//	skopeo copy oci:bin/image/layout:v0.1.0 docker://quay.io/vipvs/vipvs:v0.1.0
//	crane push bin/image/layout quay.io/vipvs/vipvs:v0.1.0
//
// # The image
//
// One layer on nothing (no base image, no shell, no libc):
//
//	/vipvs              the binary, 0755 root:root (must be static: CGO_ENABLED=0)
//	/vipvs-agent        the lean agent (agentd/), 0755 root:root, static too: the
//	                    agent alone, without a Kubernetes client; the static
//	                    pod runs it
//	/vipvs-bgp-speaker  the embedded BGP speaker (agentd/bgpspeaker, GoBGP),
//	                    0755 root:root, static: the agent starts it from
//	                    beside its own binary for routers in mode bgp
//	/etc/passwd         root (0) and nonroot (65532)
//	/etc/group          root (0) and nonroot (65532)
//	/home/nonroot/      0700 65532:65532, nonroot's home
//	/tmp/               1777
//
// Platform linux/amd64; entrypoint ["/vipvs"] (the subcommand is the first
// argument: agent, operator, node, render, ...); working directory /; the
// OCI labels org.opencontainers.image.title, source, version, licenses,
// description and created. Media types are OCI (image manifest, config,
// gzip layer); the layout's index.json also names the image with the
// annotations org.opencontainers.image.ref.name (the tag, e.g. "v0.1.0")
// and io.containerd.image.name (the full --tag).
//
// The default user is 65532:65532 ("nonroot"): the operator, the node
// companion's API side and `vipvs render` need no privilege. The agent does:
// it programs addresses, IPVS and nftables and opens raw sockets, so its
// static pod must run it as root (securityContext runAsUser: 0) with the
// capabilities NET_ADMIN and NET_RAW. Kubernetes grants added capabilities
// to a non-root user's bounding set only, never its effective set, so the
// agent running as 65532 would have neither.
//
// # Reproducibility
//
// Every timestamp (file times in the layer, the config's created, the
// history entry) is SOURCE_DATE_EPOCH when set, else the Unix epoch; the
// layer's entries are written in a fixed order with fixed owners, and it
// is compressed here (gzip, no name, no time), not by the library. Two
// runs with the same binary, version, tag, license and SOURCE_DATE_EPOCH
// give the same image digest and identical files.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed properties.
const (
	// Repository is where the release images live (and the repository of
	// the default --tag).
	Repository = "quay.io/vipvs/vipvs"
	// BinaryPath is the binary in the image, and the entrypoint.
	BinaryPath = "/vipvs"
	// AgentBinaryPath is the lean agent binary (agentd/) in the image: the
	// command of the agent's static pod.
	AgentBinaryPath = "/vipvs-agent"
	// SpeakerBinaryPath is the BGP speaker binary (agentd/bgpspeaker),
	// beside AgentBinaryPath, where the agent looks for it.
	SpeakerBinaryPath = "/vipvs-bgp-speaker"
	// UID and GID of the default user, "nonroot".
	UID, GID = 65532, 65532
	// User is the config's default user.
	User = "65532:65532"
	// OS and Architecture of the image's platform.
	OS, Architecture = "linux", "amd64"

	sourceURL   = "https://github.com/vipvs/vipvs"
	description = "vipvs: VRRP and IPVS load balancer for the API and ingress VIPs of Kubernetes and OpenShift nodes (agent, operator, node companion, render)"
	// noAssertion is SPDX for "the license was not determined": the
	// repository has no LICENSE file yet.
	noAssertion = "NOASSERTION"
)

// Annotations of the layout's index.json entry.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerdRef = "io.containerd.image.name"
)

// options are the command line.
type options struct {
	binary    string
	agent     string
	speaker   string
	version   string
	tag       string
	license   string
	outLayout string
	outTar    string
	created   time.Time // from SOURCE_DATE_EPOCH
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the command: it parses args, builds the image and writes it.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 2
	}
	img, err := build(o)
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	if err := write(img, o); err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	digest, err := img.Digest()
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", o.tag, digest)
	return 0
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binary, "binary", "", "the static vipvs binary (CGO_ENABLED=0, linux/amd64); required")
	fs.StringVar(&o.agent, "agent-binary", "", "the static vipvs-agent binary (./agentd, CGO_ENABLED=0, linux/amd64); required")
	fs.StringVar(&o.speaker, "speaker-binary", "", "the static vipvs-bgp-speaker binary (./agentd/bgpspeaker, CGO_ENABLED=0, linux/amd64); required")
	fs.StringVar(&o.version, "version", "", "the version: label org.opencontainers.image.version and the default tag; required")
	fs.StringVar(&o.tag, "tag", "", "the image reference of the tarball and the layout's annotations (default "+Repository+":<version>)")
	fs.StringVar(&o.license, "license", noAssertion, "SPDX expression for label org.opencontainers.image.licenses")
	fs.StringVar(&o.outLayout, "out-layout", "", "write an OCI image layout into this directory (replacing an earlier layout there)")
	fs.StringVar(&o.outTar, "out-tar", "", "write a `docker save`-style tarball to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: image --binary FILE --agent-binary FILE --speaker-binary FILE --version V [--tag REF] [--license SPDX] --out-layout DIR | --out-tar FILE\n"+
			"Builds the vipvs container image without a container engine; SOURCE_DATE_EPOCH sets every timestamp (default 0).\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if o.binary == "" {
		errs = append(errs, errors.New("--binary is required"))
	}
	if o.agent == "" {
		errs = append(errs, errors.New("--agent-binary is required"))
	}
	if o.speaker == "" {
		errs = append(errs, errors.New("--speaker-binary is required"))
	}
	if o.version == "" {
		errs = append(errs, errors.New("--version is required"))
	}
	if o.outLayout == "" && o.outTar == "" {
		errs = append(errs, errors.New("--out-layout or --out-tar (or both) is required"))
	}
	if o.license == "" {
		errs = append(errs, errors.New("--license must not be empty (NOASSERTION when unknown)"))
	}
	if o.tag == "" && o.version != "" {
		o.tag = Repository + ":" + o.version
	}
	if o.tag != "" {
		if _, err := name.NewTag(o.tag, name.StrictValidation); err != nil {
			errs = append(errs, fmt.Errorf("--tag %q (from --version when not given): %w", o.tag, err))
		}
	}
	created, err := sourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		errs = append(errs, err)
	}
	o.created = created
	return o, errors.Join(errs...)
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH (seconds since the epoch, as in
// https://reproducible-builds.org/specs/source-date-epoch/); empty means 0.
func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: must be a non-negative number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// build returns the image.
func build(o options) (v1.Image, error) {
	bin, err := readBinary(o.binary)
	if err != nil {
		return nil, err
	}
	agentBin, err := readBinary(o.agent)
	if err != nil {
		return nil, err
	}
	speakerBin, err := readBinary(o.speaker)
	if err != nil {
		return nil, err
	}
	layer, err := rootLayer(bin, agentBin, speakerBin, o.created)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: Architecture,
		OS:           OS,
		Created:      v1.Time{Time: o.created},
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			User:       User,
			WorkingDir: "/",
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Labels:     labels(o),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: o.created},
			CreatedBy: "hack/image --version " + o.version,
			Comment:   BinaryPath + ", " + AgentBinaryPath + ", /etc/passwd, /etc/group, /home/nonroot, /tmp",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	return img, nil
}

// labels returns the OCI labels of the image config.
func labels(o options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "vipvs",
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.licenses":    o.license,
		"org.opencontainers.image.created":     o.created.Format(time.RFC3339),
	}
}

// readBinary reads the binary and checks that it can run in the image: a
// static (no program interpreter) x86-64 Linux ELF executable.
func readBinary(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("binary %s: not an ELF executable: %w", p, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || (f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX) {
		return nil, fmt.Errorf("binary %s: built for %s/%s, want %s/%s (GOOS=linux GOARCH=amd64)", p, f.OSABI, f.Machine, OS, Architecture)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("binary %s: ELF type %s, want an executable", p, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("binary %s: dynamically linked, but the image has no libc (build with CGO_ENABLED=0)", p)
		}
	}
	return b, nil
}

// entry is one file of the layer.
type entry struct {
	name     string // relative, "/"-terminated for a directory
	mode     int64
	uid, gid int
	data     []byte
}

// files returns the layer's entries, in the order they are written.
func files(bin, agentBin, speakerBin []byte) []entry {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := "root:x:0:\n" + fmt.Sprintf("nonroot:x:%d:\n", GID)
	return []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID},
		{name: "tmp/", mode: 0o1777},
		{name: BinaryPath[1:], mode: 0o755, data: bin},
		{name: AgentBinaryPath[1:], mode: 0o755, data: agentBin},
		{name: SpeakerBinaryPath[1:], mode: 0o755, data: speakerBin},
	}
}

// rootLayer returns the layer, compressed here with gzip so that its digest
// depends on nothing but its content and the Go version's compress/gzip.
func rootLayer(bin, agentBin, speakerBin []byte, mtime time.Time) (v1.Layer, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, e := range files(bin, agentBin, speakerBin) {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.name[len(e.name)-1] == '/' {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing the layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing the layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}
	gz := gzBuf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making the layer: %w", err)
	}
	return layer, nil
}

// write writes the image where the options say.
func write(img v1.Image, o options) error {
	tag, err := name.NewTag(o.tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("tag %q: %w", o.tag, err)
	}
	if o.outLayout != "" {
		if err := writeLayout(o.outLayout, img, tag); err != nil {
			return err
		}
	}
	if o.outTar != "" {
		if err := writeTar(o.outTar, img, tag); err != nil {
			return err
		}
	}
	return nil
}

// writeLayout writes an OCI image layout holding only img into dir. An
// earlier layout in dir is replaced; a directory that holds something else
// is refused rather than emptied.
func writeLayout(dir string, img v1.Image, tag name.Tag) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("writing the layout: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("writing the layout: %s is neither empty nor an OCI layout; not replacing it", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("writing the layout: removing the earlier one: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the layout %s: %w", dir, err)
	}
	if err := lp.WriteImage(img); err != nil {
		return fmt.Errorf("writing the image into the layout %s: %w", dir, err)
	}
	// The descriptor is built here rather than by AppendImage, which would
	// also set artifactType (meant for artifacts, not images) to the config
	// media type.
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	size, err := img.Size()
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	if err := lp.AppendDescriptor(v1.Descriptor{
		MediaType: mt,
		Size:      size,
		Digest:    digest,
		Platform:  &v1.Platform{OS: OS, Architecture: Architecture},
		Annotations: map[string]string{
			annotationRefName:       tag.TagStr(),
			annotationContainerdRef: tag.String(),
		},
	}); err != nil {
		return fmt.Errorf("writing the layout %s: %w", dir, err)
	}
	return normalizeModes(dir)
}

// normalizeModes sets the modes of the layout's files to 0644 and of its
// directories to 0755: the library writes some with the umask applied to
// 0777 and blobs as 0600.
func normalizeModes(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return fmt.Errorf("writing the layout: setting file modes: %w", err)
	}
	return nil
}

// writeTar writes the `docker save`-style tarball (manifest.json with the
// tag, the config and the gzipped layer) to p, through a temporary file so
// that p is never half written.
func writeTar(p string, img v1.Image, tag name.Tag) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing the tarball: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return fmt.Errorf("writing the tarball: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the tarball %s: %w", p, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the tarball %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the tarball %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("writing the tarball: %w", err)
	}
	return nil
}

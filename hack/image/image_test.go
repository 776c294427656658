package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testBinary builds a small static linux/amd64 program into the test's
// temporary directory and returns its path.
func testBinary(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module imagetest\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"vipvs image test\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "vipvs")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test binary: %v\n%s", err, b)
	}
	return out
}

// runImage runs the command with args and SOURCE_DATE_EPOCH=epoch ("" for
// unset) and returns its exit code, stdout and stderr.
func runImage(args []string, epoch string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return epoch
		}
		return ""
	}
	code := run(args, getenv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustBuild runs the command and fails the test unless it succeeds.
func mustBuild(t *testing.T, args []string, epoch string) string {
	t.Helper()
	code, stdout, stderr := runImage(args, epoch)
	if code != 0 {
		t.Fatalf("image %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return strings.TrimSpace(stdout)
}

// tarEntry is what the test checks of one file in the layer.
type tarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Size     int64
}

// layerFiles returns the entries of the image's only layer and the
// contents of its regular files.
func layerFiles(t *testing.T, img v1.Image) ([]tarEntry, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var entries []tarEntry
	contents := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the layer: %v", err)
		}
		entries = append(entries, tarEntry{Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(), Size: h.Size})
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[h.Name] = b
		}
	}
	return entries, contents
}

// checkImage checks everything the image promises: platform, entrypoint,
// user, labels, timestamps and every file of the layer.
func checkImage(t *testing.T, img v1.Image, bin []byte, version, license string, created time.Time) {
	t.Helper()
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Variant != "" {
		t.Errorf("platform %s/%s/%s, want linux/amd64", cf.OS, cf.Architecture, cf.Variant)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %v, want %v", cf.Created.Time, created)
	}
	wantConfig := v1.Config{
		Entrypoint: []string{"/vipvs"},
		User:       "65532:65532",
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "vipvs",
			"org.opencontainers.image.description": description,
			"org.opencontainers.image.source":      "https://github.com/vipvs/vipvs",
			"org.opencontainers.image.url":         "https://github.com/vipvs/vipvs",
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.licenses":    license,
			"org.opencontainers.image.created":     created.Format(time.RFC3339),
		},
	}
	if diff := cmp.Diff(wantConfig, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if len(cf.History) != 1 || !cf.History[0].Created.Time.Equal(created) || cf.History[0].EmptyLayer {
		t.Errorf("history %+v, want one entry created %v", cf.History, created)
	}

	entries, contents := layerFiles(t, img)
	dir, reg := byte(tar.TypeDir), byte(tar.TypeReg)
	want := []tarEntry{
		{Name: "etc/", Type: dir, Mode: 0o755},
		{Name: "etc/group", Type: reg, Mode: 0o644, Size: int64(len(contents["etc/group"]))},
		{Name: "etc/passwd", Type: reg, Mode: 0o644, Size: int64(len(contents["etc/passwd"]))},
		{Name: "home/", Type: dir, Mode: 0o755},
		{Name: "home/nonroot/", Type: dir, Mode: 0o700, UID: 65532, GID: 65532},
		{Name: "tmp/", Type: dir, Mode: 0o1777},
		{Name: "vipvs", Type: reg, Mode: 0o755, Size: int64(len(bin))},
		{Name: "vipvs-agent", Type: reg, Mode: 0o755, Size: int64(len(bin))},
		{Name: "vipvs-bgp-speaker", Type: reg, Mode: 0o755, Size: int64(len(bin))},
	}
	for i := range want {
		want[i].ModTime = created
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
	if !bytes.Equal(contents["vipvs"], bin) {
		t.Errorf("/vipvs differs from the binary (%d bytes, want %d)", len(contents["vipvs"]), len(bin))
	}
	if !bytes.Equal(contents["vipvs-agent"], bin) {
		t.Errorf("/vipvs-agent differs from the agent binary (%d bytes, want %d)", len(contents["vipvs-agent"]), len(bin))
	}
	for _, tt := range []struct {
		file, line string
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/sbin/nologin"},
		{"etc/passwd", "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"},
		{"etc/group", "root:x:0:"},
		{"etc/group", "nonroot:x:65532:"},
	} {
		if !strings.Contains("\n"+string(contents[tt.file]), "\n"+tt.line+"\n") {
			t.Errorf("/%s lacks the line %q:\n%s", tt.file, tt.line, contents[tt.file])
		}
	}
}

func TestImage(t *testing.T) {
	bin := testBinary(t)
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	layoutDir, tarPath := filepath.Join(out, "layout"), filepath.Join(out, "image", "vipvs.tar")
	const version, tagStr = "v1.2.3", "quay.io/vipvs/vipvs:v1.2.3"
	created := time.Unix(1700000000, 0).UTC()
	got := mustBuild(t, []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", version, "--license", "Apache-2.0", "--out-layout", layoutDir, "--out-tar", tarPath}, "1700000000")
	printedTag, printedDigest, _ := strings.Cut(got, " ")
	if printedTag != tagStr {
		t.Errorf("printed tag %q, want the default %q", printedTag, tagStr)
	}

	// The OCI layout: one image, described for linux/amd64 with its tag.
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("reading the layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	wantDesc := v1.Descriptor{
		MediaType: types.OCIManifestSchema1,
		Size:      desc.Size,
		Digest:    desc.Digest,
		Platform:  &v1.Platform{OS: "linux", Architecture: "amd64"},
		Annotations: map[string]string{
			"org.opencontainers.image.ref.name": "v1.2.3",
			"io.containerd.image.name":          tagStr,
		},
	}
	if diff := cmp.Diff(wantDesc, desc); diff != "" {
		t.Errorf("index.json descriptor (-want +got):\n%s", diff)
	}
	if desc.Digest.String() != printedDigest {
		t.Errorf("layout digest %s, printed %s", desc.Digest, printedDigest)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img, binBytes, version, "Apache-2.0", created)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types: manifest %s, config %s, layers %+v; want OCI", m.MediaType, m.Config.MediaType, m.Layers)
	}
	if err := filepath.WalkDir(layoutDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if want := map[bool]fs.FileMode{true: 0o755, false: 0o644}[d.IsDir()]; info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The docker-save tarball: the same config and layer under the tag.
	tag, err := name.NewTag(tagStr)
	if err != nil {
		t.Fatal(err)
	}
	timg, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatalf("reading the tarball: %v", err)
	}
	checkImage(t, timg, binBytes, version, "Apache-2.0", created)
	for _, f := range []func(v1.Image) (v1.Hash, error){
		v1.Image.ConfigName,
		func(i v1.Image) (v1.Hash, error) {
			ls, err := i.Layers()
			if err != nil {
				return v1.Hash{}, err
			}
			return ls[0].Digest()
		},
	} {
		a, errA := f(img)
		b, errB := f(timg)
		if errA != nil || errB != nil || a != b {
			t.Errorf("layout and tarball differ: %v (%v) vs %v (%v)", a, errA, b, errB)
		}
	}
	mf, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tarPath) })
	if err != nil {
		t.Fatal(err)
	}
	if len(mf) != 1 || !slices.Equal(mf[0].RepoTags, []string{tagStr}) {
		t.Errorf("tarball manifest.json %+v, want one image tagged %s", mf, tagStr)
	}
}

func TestReproducible(t *testing.T) {
	bin := testBinary(t)
	build := func(dir, epoch string) string {
		return mustBuild(t, []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v0.1.0", "--tag", "example.com/vipvs:test",
			"--out-layout", filepath.Join(dir, "layout"), "--out-tar", filepath.Join(dir, "vipvs.tar")}, epoch)
	}
	a, b := t.TempDir(), t.TempDir()
	digestA, digestB := build(a, ""), build(b, "")
	if digestA != digestB {
		t.Errorf("two builds: %s and %s, want the same digest", digestA, digestB)
	}
	if ta, tb := tree(t, a), tree(t, b); !cmp.Equal(ta, tb) {
		t.Errorf("two builds wrote different files (-first +second):\n%s", cmp.Diff(ta, tb))
	}

	// Another SOURCE_DATE_EPOCH is another image; building it into the
	// same layout replaces the first one there.
	digestC := build(a, "1700000000")
	if digestC == digestA {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000 gave the digest of SOURCE_DATE_EPOCH unset: %s", digestC)
	}
	blobs, err := os.ReadDir(filepath.Join(a, "layout", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 {
		t.Errorf("the rewritten layout holds %d blobs, want 3 (manifest, config, layer)", len(blobs))
	}
}

// tree returns every file below dir, relative, with its mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	bin := testBinary(t)
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.tar")
	tests := []struct {
		name     string
		args     []string
		epoch    string
		wantCode int
		wantErr  []string
	}{
		{name: "nothing", args: nil, wantCode: 2, wantErr: []string{"--binary is required", "--agent-binary is required", "--speaker-binary is required", "--version is required", "--out-layout or --out-tar"}},
		{name: "bad tag", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--tag", "Quay.io/UPPER:x y", "--out-tar", out}, wantCode: 2, wantErr: []string{`--tag "Quay.io/UPPER:x y"`}},
		{name: "version not a tag", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "1.0+build", "--out-tar", out}, wantCode: 2, wantErr: []string{`--tag "quay.io/vipvs/vipvs:1.0+build" (from --version when not given)`}},
		{name: "bad SOURCE_DATE_EPOCH", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-tar", out}, epoch: "yesterday", wantCode: 2, wantErr: []string{`SOURCE_DATE_EPOCH "yesterday"`}},
		{name: "empty license", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--license", "", "--out-tar", out}, wantCode: 2, wantErr: []string{"--license must not be empty"}},
		{name: "stray argument", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-tar", out, "extra"}, wantCode: 2, wantErr: []string{`unexpected arguments ["extra"]`}},
		{name: "missing binary", args: []string{"--binary", filepath.Join(t.TempDir(), "nope"), "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-tar", out}, wantCode: 1, wantErr: []string{"reading the binary"}},
		{name: "not an executable", args: []string{"--binary", notELF, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-tar", out}, wantCode: 1, wantErr: []string{"not an ELF executable"}},
		{name: "agent not an executable", args: []string{"--binary", bin, "--agent-binary", notELF, "--speaker-binary", bin, "--version", "v1", "--out-tar", out}, wantCode: 1, wantErr: []string{"binary " + notELF + ": not an ELF executable"}},
		{name: "layout over another directory", args: []string{"--binary", bin, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-layout", notLayout}, wantCode: 1, wantErr: []string{"is neither empty nor an OCI layout; not replacing it"}},
	}
	if sh, err := exec.LookPath("sh"); err == nil && isDynamic(sh) {
		tests = append(tests, struct {
			name     string
			args     []string
			epoch    string
			wantCode int
			wantErr  []string
		}{name: "dynamic binary", args: []string{"--binary", sh, "--agent-binary", bin, "--speaker-binary", bin, "--version", "v1", "--out-tar", out}, wantCode: 1, wantErr: []string{"dynamically linked, but the image has no libc"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runImage(tt.args, tt.epoch)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed run wrote %s", out)
	}
	if entries, _ := os.ReadDir(notLayout); len(entries) != 1 {
		t.Errorf("the refused directory now holds %d entries, want its 1", len(entries))
	}
}

// isDynamic reports whether p is an ELF executable with a program
// interpreter.
func isDynamic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

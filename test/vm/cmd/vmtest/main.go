// Command vmtest runs packages' tests inside the IPVS test VM (see package
// github.com/vipvs/vipvs/test/vm):
//
//	vmtest [flags] PKG [TEST-ARGS...] [--- PKG [TEST-ARGS...]]...
//
// PKG is a package (./test/lab, an import path), built with go test -c and
// CGO_ENABLED=0, or an existing static test binary. TEST-ARGS go to the
// binary as they are (-test.v -test.run TestX). For example:
//
//	go run ./test/vm/cmd/vmtest ./test/lab -test.v --- ./agent/ipvs -test.run IPVS
//
// The console streams to stdout. The exit status is the VM's (the first
// failing binary's status), 124 when the VM timed out and 125 when it could
// not be built or booted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vipvs/vipvs/test/vm"
)

const (
	exitTimeout = 124
	exitError   = 125
)

func main() {
	os.Exit(run())
}

type envFlag []string

func (e *envFlag) String() string     { return strings.Join(*e, ",") }
func (e *envFlag) Set(v string) error { *e = append(*e, v); return nil }

func run() int {
	var (
		opts  vm.Options
		env   envFlag
		mods  string
		quiet bool
	)
	flag.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "limit for the whole VM run, boot included")
	flag.IntVar(&opts.MemoryMiB, "mem", 1024, "VM memory in MiB")
	flag.IntVar(&opts.CPUs, "cpus", 2, "virtual CPUs")
	flag.StringVar(&opts.Accel, "accel", "", `accelerator: "kvm", "tcg" or empty for KVM when usable`)
	flag.StringVar(&opts.ConsoleLog, "log", "", "also write the console to this file")
	flag.StringVar(&opts.Append, "append", "", "extra kernel command-line arguments")
	flag.StringVar(&mods, "modules", "", "comma-separated modules to load instead of the defaults")
	flag.BoolVar(&opts.Uncompressed, "uncompressed", false, "do not gzip the initramfs")
	flag.BoolVar(&quiet, "q", false, "do not stream the console, only print the summary")
	flag.Var(&env, "env", "KEY=VALUE for every binary (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] PKG [TEST-ARGS...] [--- PKG [TEST-ARGS...]]...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	groups := split(flag.Args())
	if len(groups) == 0 {
		flag.Usage()
		return 2
	}
	if mods != "" {
		opts.Modules = strings.Split(mods, ",")
	}
	if !quiet {
		opts.Stdout = os.Stdout
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitError
	}
	defer os.RemoveAll(dir)

	seen := map[string]int{}
	for _, g := range groups {
		bin, name, err := binary(ctx, g[0], dir, seen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmtest:", err)
			return exitError
		}
		opts.Binaries = append(opts.Binaries, vm.Binary{Path: bin, Name: name, Args: g[1:], Env: env})
	}

	res, err := vm.Run(ctx, opts)
	if res.Accel != "" {
		fmt.Fprintf(os.Stderr, "vmtest: accel=%s build=%s boot=%s (guest uptime %s) ready=%s total=%s\n",
			res.Accel, res.Build.Round(time.Millisecond), res.Boot.Round(time.Millisecond),
			res.KernelUptime.Round(time.Millisecond), res.Ready.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	}
	for _, b := range res.Binaries {
		fmt.Fprintf(os.Stderr, "vmtest: %s exited %d\n", b.Name, b.Status)
	}
	switch {
	case errors.Is(err, vm.ErrTimeout):
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitTimeout
	case err != nil:
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitError
	}
	fmt.Fprintf(os.Stderr, "vmtest: exit status %d\n", res.ExitStatus)
	return res.ExitStatus
}

// split cuts the arguments into groups at "---".
func split(args []string) [][]string {
	var groups [][]string
	var cur []string
	for _, a := range args {
		if a == "---" {
			if len(cur) > 0 {
				groups = append(groups, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// binary returns an existing test binary as is, or builds package pkg into
// dir, and a name for it in the VM that is unique among the binaries.
func binary(ctx context.Context, pkg, dir string, seen map[string]int) (bin, name string, err error) {
	st, statErr := os.Stat(pkg)
	existing := statErr == nil && st.Mode().IsRegular()
	if existing {
		name = strings.TrimSuffix(filepath.Base(pkg), ".test")
	} else {
		name = path.Base(filepath.ToSlash(strings.TrimSuffix(pkg, "/...")))
	}
	if name == "." || name == "/" || name == "" {
		name = "pkg"
	}
	seen[name]++
	if n := seen[name]; n > 1 {
		name = fmt.Sprintf("%s%d", name, n)
	}
	name += ".test"
	if existing {
		return pkg, name, nil
	}
	out := filepath.Join(dir, name)
	fmt.Fprintf(os.Stderr, "vmtest: building %s\n", pkg)
	if err := vm.BuildTestBinary(ctx, pkg, out); err != nil {
		return "", "", err
	}
	return out, name, nil
}

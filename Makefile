# vipvs — see README.md. `make demo` and `make test` need nothing but Go and
# root on a Debian machine: they install what is missing first.

GO        ?= go
BIN       := bin/vipvs
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/vipvs/vipvs/agent.Version=$(VERSION)
FUZZTIME  ?= 10s
BENCH_REPS ?= 5
# Packages whose tests need root and network namespaces; they skip without root.
E2E_PKGS  := ./test/...

.PHONY: all build deps test unit e2e fuzz lint vet fmt generate verify-generated demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

## deps: the Debian packages (iproute2, nftables, keepalived, qemu, the cloud
## kernel with IPVS, busybox, etcd) and the kube-apiserver build, each only
## when missing. Without root, missing packages are reported and the tests
## that need them skip.
deps:
	@hack/install-deps.sh
	@hack/vm-deps.sh || [ "$$(id -u)" -ne 0 ]
	@hack/envtest-deps.sh >/dev/null || [ "$$(id -u)" -ne 0 ]

## test: every test: lint, unit tests (with -race), a short fuzz run, the
## end-to-end tests in network namespaces (root) and the demo.
test: deps lint unit fuzz e2e

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/)

## e2e: the namespace labs (VRRP, keepalived interop), the IPVS VM and the
## envtest API server; one package at a time, they share the machine.
e2e: build
	$(GO) test -count=1 -timeout 40m -p 1 $(E2E_PKGS)

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzAdvertDecode$$' -fuzztime=$(FUZZTIME) ./agent/vrrp/packet/
	$(GO) test -run='^$$' -fuzz='^FuzzReceiveChecks$$' -fuzztime=$(FUZZTIME) ./agent/vrrp/packet/
	$(GO) test -run='^$$' -fuzz='^FuzzAgentConfig$$' -fuzztime=$(FUZZTIME) ./agent/config/

lint: vet fmt verify-generated

## generate: deepcopy code and the CRD from the API types (controller-gen).
generate:
	$(GO) generate ./api/...

## verify-generated: fail when the generated files differ from the types.
verify-generated: generate
	@git diff --exit-code -- api/v1alpha1/zz_generated.deepcopy.go manifests/crd || \
	  { echo "generated files are out of date: run 'make generate' and commit them"; exit 1; }

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## demo: three nodes and a client in network namespaces; the master fails.
demo: build
	@hack/install-deps.sh
	$(GO) run ./test/demo -vipvs $(BIN)

bench: build
	@hack/install-deps.sh
	$(GO) run ./test/bench -vipvs $(BIN) -reps $(BENCH_REPS) -out BENCHMARKS.md

clean:
	rm -rf bin

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

.PHONY: all build deps test unit e2e fuzz lint vet fmt demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

deps:
	@hack/install-deps.sh

## test: every test: lint, unit tests (with -race), a short fuzz run, the
## end-to-end tests in network namespaces (root) and the demo.
test: deps lint unit fuzz e2e

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/)

e2e: build
	$(GO) test -count=1 -timeout 20m -p 1 $(E2E_PKGS)

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzAdvertDecode$$' -fuzztime=$(FUZZTIME) ./agent/vrrp/packet/
	$(GO) test -run='^$$' -fuzz='^FuzzReceiveChecks$$' -fuzztime=$(FUZZTIME) ./agent/vrrp/packet/
	$(GO) test -run='^$$' -fuzz='^FuzzAgentConfig$$' -fuzztime=$(FUZZTIME) ./agent/config/

lint: vet fmt

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## demo: three nodes and a client in network namespaces; the master fails.
demo: deps build
	$(GO) run ./test/demo -vipvs $(BIN)

bench: deps build
	$(GO) run ./test/bench -vipvs $(BIN) -reps $(BENCH_REPS) -out BENCHMARKS.md

clean:
	rm -rf bin

# vipvs — see README.md. `make demo` and `make test` need nothing but Go and
# root on a Debian machine: they install what is missing first.

GO        ?= go
BIN       := bin/vipvs
# The lean agent (agentd/): the agent alone, without a Kubernetes client;
# the image ships it beside $(BIN) and the agent's static pod runs it.
AGENT_BIN := bin/vipvs-agent
# The embedded BGP speaker (agentd/bgpspeaker, GoBGP), which the agent starts
# from beside its own binary for routers in mode bgp (docs/bgp.md).
SPEAKER_BIN := bin/vipvs-bgp-speaker
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/vipvs/vipvs/version.Version=$(VERSION)
FUZZTIME  ?= 10s
BENCH_REPS ?= 5
# Packages whose tests need root and network namespaces; they skip without root.
E2E_PKGS  := ./test/...

.PHONY: all build image deps test unit e2e fuzz lint vet fmt tidy staticcheck generate docs verify-generated static-pods verify-static-pods demo bench clean

all: build

## build: the binaries, static: $(BIN) (every command), $(AGENT_BIN)
## (the agent alone) and $(SPEAKER_BIN) (its BGP speaker).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(AGENT_BIN) ./agentd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(SPEAKER_BIN) ./agentd/bgpspeaker

## image: the container image, without a container engine (hack/image): an
## OCI layout in $(IMAGE_DIR)/layout and a `docker save` tarball
## $(IMAGE_DIR)/vipvs.tar, tagged $(IMAGE_TAG). Reproducible: every
## timestamp is SOURCE_DATE_EPOCH, by default the last commit's time.
## Load it with `docker load -i bin/image/vipvs.tar` or push the layout with
## `skopeo copy oci:bin/image/layout:$(VERSION) docker://$(IMAGE_TAG)`.
IMAGE_DIR ?= bin/image
IMAGE_TAG ?= quay.io/vipvs/vipvs:$(VERSION)
IMAGE_LICENSE ?= NOASSERTION
IMAGE_EPOCH ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),0)
image: build
	SOURCE_DATE_EPOCH=$(IMAGE_EPOCH) $(GO) run ./hack/image --binary $(BIN) --agent-binary $(AGENT_BIN) --speaker-binary $(SPEAKER_BIN) --version $(VERSION) --tag $(IMAGE_TAG) \
	  --license $(IMAGE_LICENSE) --out-layout $(IMAGE_DIR)/layout --out-tar $(IMAGE_DIR)/vipvs.tar

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

## lint: every static gate: vet, gofmt, go.mod tidy, staticcheck, and the
## generated files (deepcopy, CRD, reference, static pods) up to date.
lint: vet fmt tidy staticcheck verify-generated verify-static-pods

## generate: deepcopy code and the CRD from the API types (controller-gen),
## and the configuration reference (docs/reference.md).
generate: docs
	$(GO) generate ./api/...

## docs: the configuration reference from the API types.
docs:
	$(GO) run ./hack/apidocs -out docs/reference.md

## verify-generated: fail when the generated files differ from the types.
verify-generated: generate
	@git diff --exit-code -- api/v1alpha1/zz_generated.deepcopy.go manifests/crd docs/reference.md || \
	  { echo "generated files are out of date: run 'make generate' and commit them"; exit 1; }

## static-pods: render the examples in static-pods/ from static-pods/input/
## with `vipvs render` (TestStaticPodsUpToDate in day0 renders
## the same, with the same flags, and fails when they differ).
STATIC_PODS_IMAGE := quay.io/vipvs/vipvs:latest
static-pods:
	rm -rf static-pods/control-plane static-pods/ingress static-pods/ingress-bgp
	$(GO) run . render --config static-pods/input/control-plane.yaml --nodes static-pods/input/nodes.yaml \
	  --image $(STATIC_PODS_IMAGE) --openshift --role master --out static-pods/control-plane
	$(GO) run . render --config static-pods/input/ingress.yaml --nodes static-pods/input/nodes.yaml \
	  --image $(STATIC_PODS_IMAGE) --openshift --role master --out static-pods/ingress
	$(GO) run . render --config static-pods/input/bgp.yaml --nodes static-pods/input/nodes.yaml \
	  --secret-file vipvs/bgp-tor/password=static-pods/input/bgp-md5.key \
	  --image $(STATIC_PODS_IMAGE) --openshift --role master --out static-pods/ingress-bgp

## verify-static-pods: fail when static-pods/ is not what `make static-pods`
## writes.
verify-static-pods:
	$(GO) test -count=1 -run '^TestStaticPodsUpToDate$$' ./day0/

## install: apply manifests/ to the cluster of the current kubeconfig with
## server-side apply, in order (namespace, CRD, RBAC, operator, node
## companion; manifests/monitoring/ when the cluster has the Prometheus
## Operator). INSTALL_FLAGS e.g. --image quay.io/vipvs/vipvs:v0.1.0,
## --monitoring=no, --dry-run. kubectl users: see manifests/README.md.
INSTALL_FLAGS ?=
.PHONY: install bundle verify-bundle
install:
	$(GO) run ./hack/install $(INSTALL_FLAGS)

## bundle: write the OLM bundle (bundle/) from manifests/, the API's
## examples and hack/bundle/icon.svg.
bundle:
	$(GO) run ./hack/bundle --out bundle

## verify-bundle: fail when bundle/ is not what `make bundle` writes, or
## when the operator-framework validators find an error in it.
verify-bundle:
	$(GO) test -count=1 ./hack/bundle/

vet:
	$(GO) vet ./...

## tidy: fail when `go mod tidy` would change go.mod or go.sum.
tidy:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit them"; exit 1; }

## staticcheck: honnef.co/go/tools at the version pinned in hack/tools/go.mod.
staticcheck:
	$(GO) build -C hack/tools -o $(CURDIR)/bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	bin/staticcheck ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## demo: three nodes and a client in network namespaces; the master fails.
demo: build
	@hack/install-deps.sh
	$(GO) run ./test/demo -vipvs $(BIN)

## bench: BENCHMARKS.md: VRRP failover, handover and idle figures of vipvs
## (the lean agent, $(AGENT_BIN), as the static pod runs it; idle CPU and RSS
## at 10 ms and 1 s, one agent with 255 virtual routers at 1 s)
## beside keepalived in network namespaces, then IPVS reconcile times in the
## test VM beside keepalived's (BENCH_IPVS=0 leaves them out; `go run
## ./test/bench -ipvs-only` measures only them and replaces their section).
BENCH_IPVS ?= 1
bench: build
	@hack/install-deps.sh
	@hack/vm-deps.sh || [ "$$(id -u)" -ne 0 ]
	$(GO) run ./test/bench -vipvs $(AGENT_BIN) -reps $(BENCH_REPS) -ipvs=$(BENCH_IPVS) -out BENCHMARKS.md

clean:
	rm -rf bin

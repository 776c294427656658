#!/usr/bin/env bash
# Provides the binaries envtest needs (test/envtest, the operator tests):
#   - etcd: Debian's etcd-server package (installed if `etcd` is missing; its
#     service is stopped and disabled: envtest starts its own etcd).
#   - kube-apiserver: built from the k8s.io/kubernetes Go module pinned in
#     hack/kube-apiserver/go.mod, once per machine, into
#     ${VIPVS_CACHE:-$HOME/.cache/vipvs}/kube-apiserver-<version>/.
# and a directory holding symlinks named exactly `etcd` and `kube-apiserver`,
# to be used as KUBEBUILDER_ASSETS:
#     ${VIPVS_CACHE:-$HOME/.cache/vipvs}/envtest
#
# Idempotent: a second run installs and builds nothing. The build of
# kube-apiserver takes several minutes on 2 cores (and ~2-3 GB of memory).
#
# stdout: only the KUBEBUILDER_ASSETS directory, so that a Makefile can do
#   export KUBEBUILDER_ASSETS := $(shell hack/envtest-deps.sh)
# Progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tools="$repo/hack/kube-apiserver"
cache=${VIPVS_CACHE:-$HOME/.cache/vipvs}
assets="$cache/envtest"

log() { echo "envtest-deps: $*" >&2; }

# ---- etcd -------------------------------------------------------------------

stop_etcd_service() {
	# The package's maintainer scripts enable and may start etcd.service
	# (listening on 127.0.0.1:2379, the port envtest would otherwise race for).
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now etcd.service >/dev/null 2>&1 || true
	else
		[[ ! -x /etc/init.d/etcd ]] || /etc/init.d/etcd stop >/dev/null 2>&1 || true
		command -v update-rc.d >/dev/null && update-rc.d etcd disable >/dev/null 2>&1 || true
	fi
	# Anything still running as the packaged service (user etcd, default data dir).
	local pid
	for pid in $(pgrep -u etcd -x etcd 2>/dev/null || true); do
		log "stopping etcd started by the package (pid $pid)"
		kill "$pid" 2>/dev/null || true
	done
}

if ! command -v etcd >/dev/null; then
	log "installing Debian etcd-server with apt-get (about a minute)"
	etcd_start=$SECONDS
	[[ $(id -u) -eq 0 ]] || { log "etcd is missing and not root: apt-get install etcd-server"; exit 1; }
	# Keep invoke-rc.d from starting the service at install time, when no
	# policy-rc.d exists already (a container's one is left alone).
	policy=/usr/sbin/policy-rc.d
	own_policy=false
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		own_policy=true
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >&2
	if $own_policy; then
		rm -f "$policy"
		trap - EXIT
	fi
	stop_etcd_service
	log "etcd installed in $((SECONDS - etcd_start))s"
fi
etcd=$(command -v etcd)

# Nothing may be left listening on etcd's default client port.
if command -v ss >/dev/null && ss -Hltn 'sport = :2379' | grep -q .; then
	stop_etcd_service
	sleep 1
	if ss -Hltn 'sport = :2379' | grep -q .; then
		log "warning: something still listens on :2379: $(ss -Hltnp 'sport = :2379')"
	fi
fi

# ---- kube-apiserver ---------------------------------------------------------

version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$tools/go.mod")
[[ $version == v1.* ]] || { log "cannot find the k8s.io/kubernetes version in $tools/go.mod"; exit 1; }
bindir="$cache/kube-apiserver-$version"
apiserver="$bindir/kube-apiserver"

works() { [[ -x $1 ]] && "$1" --version >/dev/null 2>&1; }

mkdir -p "$bindir"
if ! works "$apiserver"; then
	# One build per machine even when several runs start at once.
	exec 9>"$bindir/.lock"
	flock 9
	if ! works "$apiserver"; then
		log "building kube-apiserver $version into $bindir: once per machine, about 5 minutes and 2-3 GB of memory on 2 cores (later runs reuse it)"
		minor=${version#v1.}
		minor=${minor%%.*}
		pkg=k8s.io/component-base/version
		ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		start=$SECONDS
		(
			cd "$tools"
			GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
				go build -trimpath -ldflags "$ldflags" -o "$apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
		)
		mv -f "$apiserver.tmp" "$apiserver"
		works "$apiserver" || { log "built $apiserver does not run"; exit 1; }
		log "kube-apiserver built in $((SECONDS - start))s"
	fi
	exec 9>&-
else
	log "kube-apiserver $version: built already ($apiserver)"
fi

# ---- KUBEBUILDER_ASSETS -----------------------------------------------------

mkdir -p "$assets"
ln -sfn "$etcd" "$assets/etcd"
ln -sfn "$apiserver" "$assets/kube-apiserver"
log "etcd: $etcd ($("$etcd" --version 2>/dev/null | head -1))"
log "kube-apiserver: $apiserver ($("$apiserver" --version))"
log "KUBEBUILDER_ASSETS=$assets"
echo "$assets"

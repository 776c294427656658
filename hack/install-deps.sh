#!/usr/bin/env bash
# install-deps.sh installs, when missing, the Debian packages that the tests
# and the demo need. It is idempotent: a machine that has everything is left
# alone and no package index is fetched.
set -euo pipefail

# command (or absolute path of a program outside PATH) -> Debian package.
# frr (zebra, bgpd, bfdd, vtysh) is the upstream router and bird2 the second,
# independent BGP peer of the BGP/ECMP lab (test/bgplab).
declare -A want=(
  [ip]=iproute2
  [nft]=nftables
  [tcpdump]=tcpdump
  [keepalived]=keepalived
  [/usr/lib/frr/bgpd]=frr
  [/usr/lib/frr/bfdd]=frr
  [vtysh]=frr
  [bird]=bird2
  [unshare]=util-linux # the system test's kubelet stand-in (test/system)
)
missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${want[$cmd]}
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: $(printf '%s\n' "${want[@]}" | sort -u | tr '\n' ' ')- installed already" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages ${missing[*]}; run as root to install them (apt-get)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]} with apt-get (about a minute)" >&2
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
# The packages' maintainer scripts must not start their services (keepalived,
# frr, bird): when the machine has no policy-rc.d, one that forbids starting
# anything is in place for the install only.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# vipvs install-deps: no service starts during the install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed in $((SECONDS - start))s" >&2
# The packages enable services; vipvs's tests start keepalived, FRR and BIRD
# by hand, in namespaces, with their own configs.
if command -v systemctl >/dev/null 2>&1; then
  for unit in keepalived frr bird; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
echo "install-deps: installed ${missing[*]}; services keepalived, frr and bird disabled"

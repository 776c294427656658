#!/usr/bin/env bash
# install-deps.sh installs, when missing, the Debian packages that the tests
# and the demo need. It is idempotent: a machine that has everything is left
# alone and no package index is fetched.
set -euo pipefail

# command -> Debian package
declare -A want=(
  [ip]=iproute2
  [nft]=nftables
  [tcpdump]=tcpdump
  [keepalived]=keepalived
  [unshare]=util-linux # the system test's kubelet stand-in (test/system)
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: ${want[*]}: installed already" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages ${missing[*]}; run as root to install them (apt-get)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]} with apt-get (about a minute)" >&2
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed in $((SECONDS - start))s" >&2
# keepalived's package enables a service; vipvs's tests start keepalived by
# hand, in namespaces, with their own configs.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now keepalived >/dev/null 2>&1 || true
fi

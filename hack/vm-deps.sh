#!/usr/bin/env bash
# vm-deps.sh installs, when missing, the Debian packages that test/vm needs to
# boot an IPVS-capable kernel under qemu: qemu itself, Debian's cloud kernel
# (its image goes to /boot and its modules to /lib/modules/<version>; it is
# never booted on the host), a static busybox for the initramfs, and xz/zstd
# to decompress kernel modules at build time. It is idempotent: a machine that
# has everything is left alone and no package index is fetched.
set -euo pipefail

missing=()

# command -> Debian package
declare -A want=(
  [qemu-system-x86_64]=qemu-system-x86
  [xz]=xz-utils
  [zstd]=zstd
)
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done

# A static busybox: the busybox-static package, or any statically linked
# busybox already on PATH (the dynamic "busybox" package does not do).
bb=$(command -v busybox 2>/dev/null || true)
if [ -z "$bb" ] || ! dpkg -s busybox-static >/dev/null 2>&1; then
  if [ -z "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
    missing+=(busybox-static)
  fi
fi

# The kernel: the meta package, or any cloud kernel whose image and modules
# are both present.
have_kernel=0
if dpkg -s linux-image-cloud-amd64 >/dev/null 2>&1; then
  have_kernel=1
else
  for dir in /lib/modules/*cloud*; do
    [ -d "$dir" ] || continue
    if [ -e "/boot/vmlinuz-$(basename "$dir")" ]; then
      have_kernel=1
      break
    fi
  done
fi
[ "$have_kernel" -eq 1 ] || missing+=(linux-image-cloud-amd64)

if [ ${#missing[@]} -eq 0 ]; then
  echo "vm-deps: qemu, busybox and the cloud kernel with IPVS: installed already" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "vm-deps: missing packages ${missing[*]}; run as root to install them (apt-get)" >&2
  exit 1
fi
echo "vm-deps: installing ${missing[*]} with apt-get (one to a few minutes: the kernel and qemu are large)" >&2
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "vm-deps: installed in $((SECONDS - start))s" >&2

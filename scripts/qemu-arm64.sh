#!/usr/bin/env bash
# Runs the arm64 Node.js under qemu user emulation: scripts/qemu-arm64.sh BUNDLE/predict.js photo.jpg
# Env: SLIM_QEMU_CPU = cortex-a72 (Raspberry Pi 4, default) | cortex-a76 (Raspberry Pi 5).
# Run scripts/setup-arm64.sh once first.
set -euo pipefail
dir="${SLIM_ARM64_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/slimkit/arm64}"
cpu="${SLIM_QEMU_CPU:-cortex-a72}"
node="$dir/node-v$(node -p process.versions.node)/bin/node"
if [ ! -x "$node" ] || [ ! -e "$dir/sysroot-$cpu/proc/cpuinfo" ]; then
  echo "qemu-arm64: not set up (or no sysroot for $cpu); run scripts/setup-arm64.sh" >&2
  exit 3
fi
exec qemu-aarch64-static -cpu "$cpu" -L "$dir/sysroot-$cpu" "$node" "$@"

#!/usr/bin/env bash
# One-time (idempotent) setup for a fresh machine: Debian packages, npm packages, the TypeScript build
# and the LibTorch addon. Every entry script (test.sh, demo.sh) runs it first; running it again is cheap.
#   SLIM_SKIP_APT=1      do not touch system packages (training and some tests are then skipped)
#   SLIM_SKIP_NATIVE=1   do not build the training addon
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: LibTorch for training (CPU), PyTorch 1.13 for test oracles and fixtures, ONNX's
# onnx.proto and backend test suite for conformance tests. Deploy tests: qemu user emulation and the
# arm64 C/C++ runtime to run linux-arm64 bundles (scripts/setup-arm64.sh adds an arm64 Node), and
# Chromium for the web bundle (driven by playwright-core). Pillow: the oracle for image resizing and
# grayscale (torchvision reads images with it).
APT_PACKAGES=(libtorch-dev libgloo-dev python3-torch python3-pil libonnx-dev libonnx-testdata
  qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross chromium)
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ] && [ "${SLIM_SKIP_APT:-0}" != 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
    echo "setup: missing Debian packages: ${missing[*]} — install them as root (apt-get install ${missing[*]}); continuing without" >&2
  else
    echo "setup: installing ${missing[*]} (apt-get)" >&2
    $SUDO apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

# npm packages exactly as locked. onnxruntime-node's install script would try to download CUDA
# binaries; the npm package already bundles the CPU runtime for x64 and arm64.
export ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip
stamp=node_modules/.slimkit-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

echo "setup: compiling TypeScript" >&2
npm run --silent build >&2

if [ "${SLIM_SKIP_NATIVE:-0}" != 1 ] && [ -f scripts/build-native.sh ]; then
  bash scripts/build-native.sh >&2 || echo "setup: the training addon did not build; training commands will say how to enable them" >&2
fi

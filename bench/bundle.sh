#!/usr/bin/env bash
# Bundles bench entry points for a bare GPU host (Node staged by gpu-prep, no node_modules): one ESM file
# each, bench/ENTRY.ts → $SLIM_BUNDLE_DIR/ENTRY.mjs (default .gpu/slim). onnxruntime-node stays external
# (a native package, sent as .gpu-ort/onnxruntime.tar.xz); nothing else may need node_modules there, which
# test/gpu-bundles.test.ts checks by loading every bundle in a folder that has only onnxruntime.
#   bench/bundle.sh ENTRY...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${SLIM_BUNDLE_DIR:-.gpu/slim}
mkdir -p "$out"
for entry in "$@"; do
  # The banner gives bundled CommonJS code a require() (esbuild's ESM output has none).
  npx esbuild "bench/$entry.ts" --bundle --platform=node --format=esm --target=node20 \
    --outfile="$out/$entry.mjs" --log-level=warning --external:onnxruntime-node \
    --banner:js="import { createRequire as __slimRequire } from 'node:module'; const require = __slimRequire(import.meta.url);"
done

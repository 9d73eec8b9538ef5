#!/usr/bin/env bash
# Distillation acceptance on a bare CUDA host (PyTorch, python3, g++, no Node, no node_modules), following
# ../shared/tools/gpu-prep (which stages Node, the N-API headers and CIFAR-10 into .gpu*/).
#
#   bench/distill-gpu.sh prepare   here: bundle bench/distill-gpu.ts (esbuild) and node-addon-api's headers
#                                  into .gpu/slim/ (git-ignored; send it along with .gpu)
#   bench/distill-gpu.sh run       on the GPU host, from the project root: build the addon against the
#                                  host's LibTorch (scripts/build-native.sh --direct), train the ResNet34
#                                  teacher, then ResNet18 with and without it for each seed; prints one
#                                  JSON line (teacher_top1, baseline_top1[], distilled_top1[], gain_pt,
#                                  accept.gain_ge_0_3_pt)
# Extra arguments after `run` go to distill-gpu (e.g. --seeds 0,1,2,3 --epochs 40 --save-dir runs/kd).
# Time on one H100 (bf16 autocast, batch 512): about 12 min for the defaults (teacher 40 epochs, 3 seeds
# × 2 students × 30 epochs); --seeds 0 --teacher-epochs 30 --epochs 20 fits in about 5 min.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.gpu/slim
case "${1:-}" in
  prepare)
    mkdir -p "$out/napi"
    grep -qxF '/.gpu*/' .git/info/exclude 2>/dev/null || echo '/.gpu*/' >> .git/info/exclude
    bench/bundle.sh distill-gpu
    cp node_modules/node-addon-api/napi.h node_modules/node-addon-api/napi-inl.h node_modules/node-addon-api/napi-inl.deprecated.h "$out/napi/"
    du -sh "$out"
    ;;
  run)
    shift
    # setup.sh's `cp -n` may exit 1 for files already staged: never let that end the run.
    set +e; [ -f .gpu/setup.sh ] && source .gpu/setup.sh; set -e
    NODE_ADDON_API_INCLUDE="$root/$out/napi" scripts/build-native.sh --direct
    node "$out/distill-gpu.mjs" --device cuda --threads "$(nproc)" "$@"
    ;;
  *)
    echo "usage: bench/distill-gpu.sh prepare | run [distill-gpu options]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# GPU runs of the engine benchmarks on a bare CUDA host (PyTorch, python3, g++, no Node, no node_modules),
# following ../shared/tools/gpu-prep (which stages Node, the N-API headers and CIFAR-10 into .gpu*/).
#
#   bench/cifar-gpu.sh prepare   here: bundle bench/cifar-gpu.ts and bench/train-step.ts (esbuild) and
#                                node-addon-api's headers into .gpu/slim/ (git-ignored; send it along)
#   bench/cifar-gpu.sh run       on the GPU host, from the project root: build the addon against the
#                                host's LibTorch (scripts/build-native.sh --direct), then print the
#                                train-step JSON (batch 512, bf16 + channels_last, vs PyTorch eager; eager
#                                and CUDA-graph replay, with a loss-parity check) and the full-recipe JSON
#                                (time to 94 %, final top-1)
# Extra arguments after `run` go to cifar-gpu (e.g. --epochs 24 --cuda-graphs: use graphs only once the
# train-step line shows graphs_loss_match true and a lower ratio_graphs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.gpu/slim
case "${1:-}" in
  prepare)
    mkdir -p "$out/napi"
    grep -qxF '/.gpu*/' .git/info/exclude 2>/dev/null || echo '/.gpu*/' >> .git/info/exclude
    bench/bundle.sh cifar-gpu train-step
    cp bench/train-step-peer.py "$out/"
    cp node_modules/node-addon-api/napi.h node_modules/node-addon-api/napi-inl.h node_modules/node-addon-api/napi-inl.deprecated.h "$out/napi/"
    du -sh "$out"
    ;;
  run)
    shift
    # setup.sh's `cp -n` may exit 1 for files already staged: never let that end the run.
    set +e; [ -f .gpu/setup.sh ] && source .gpu/setup.sh; set -e
    NODE_ADDON_API_INCLUDE="$root/$out/napi" scripts/build-native.sh --direct
    node "$out/train-step.mjs" --device cuda --batch 512 --precision bf16 --threads "$(nproc)" --steps 30 --warmup 10 --cuda-graphs
    node "$out/cifar-gpu.mjs" "$@"
    ;;
  *)
    echo "usage: bench/cifar-gpu.sh prepare | run [cifar-gpu options]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# QAT acceptance on a bare CUDA host (PyTorch, python3, g++, no Node, no node_modules), following
# ../shared/tools/gpu-prep (which stages Node, the N-API headers and CIFAR-10 into .gpu*/). Calibration and
# the int8 evaluations run ONNX Runtime on the host's CPU, so ONNX Runtime's Node package travels too.
#
#   bench/qat-gpu.sh prepare   here: bundle bench/qat-gpu.ts (esbuild, onnxruntime-node left external) and
#                              node-addon-api's headers into .gpu/slim/, and onnxruntime-node +
#                              onnxruntime-common into .gpu-ort/onnxruntime.tar.xz (~13 MB: send it as one
#                              more transfer, before the last one)
#   bench/qat-gpu.sh run       on the GPU host, from the project root: unpack ONNX Runtime next to the
#                              bundle, build the addon (scripts/build-native.sh --direct), then train the
#                              fp32 ResNet18 (engine recipe, BN folded) unless --model is given, PTQ it,
#                              QAT it on the GPU, and print one JSON line (fp32_top1, ptq_top1, qat_top1,
#                              accept.qat_ge_ptq, accept.qat_ge_fp32_minus_0_05_pt)
# Extra arguments after `run` go to qat-gpu (e.g. --model r18.onnx --epochs 3 --lsq --no-distill).
# Time on one H100: fp32 30 epochs ≈ 1.5 min (bf16), QAT 2 epochs fp32 fake-quant ≈ 1 min, evaluations on
# the host CPU ≈ 1 min.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.gpu/slim
case "${1:-}" in
  prepare)
    mkdir -p "$out/napi" .gpu-ort
    grep -qxF '/.gpu*/' .git/info/exclude 2>/dev/null || echo '/.gpu*/' >> .git/info/exclude
    bench/bundle.sh qat-gpu
    cp node_modules/node-addon-api/napi.h node_modules/node-addon-api/napi-inl.h node_modules/node-addon-api/napi-inl.deprecated.h "$out/napi/"
    tar -C node_modules -cJf .gpu-ort/onnxruntime.tar.xz onnxruntime-node/package.json onnxruntime-node/dist \
      onnxruntime-node/bin/napi-v6/linux/x64 onnxruntime-common
    du -sh "$out" .gpu-ort
    ;;
  run)
    shift
    # setup.sh's `cp -n` may exit 1 for files already staged: never let that end the run.
    set +e; [ -f .gpu/setup.sh ] && source .gpu/setup.sh; set -e
    if [ ! -d "$out/node_modules/onnxruntime-node" ]; then
      # The host has no xz binary: python's tarfile reads .tar.xz.
      python3 -c "import tarfile,sys; tarfile.open('.gpu-ort/onnxruntime.tar.xz').extractall(sys.argv[1])" "$out/node_modules"
    fi
    NODE_ADDON_API_INCLUDE="$root/$out/napi" scripts/build-native.sh --direct
    node "$out/qat-gpu.mjs" --device cuda --threads "$(nproc)" "$@"
    ;;
  *)
    echo "usage: bench/qat-gpu.sh prepare | run [qat-gpu options]" >&2
    exit 2
    ;;
esac

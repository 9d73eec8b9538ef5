#!/usr/bin/env bash
# Every GPU acceptance run, for one short device window (15 min in all, at most 10 min per command,
# a bare CUDA host: PyTorch, python3, g++, no Node, no node_modules). Stages run in priority order;
# each under `timeout`, each printing and saving its JSON, so a stage that fails or runs out of time
# costs only itself.
#
#   here:      ../shared/tools/gpu-prep && bench/gpu-all.sh prepare
#              (send .gpu + .gpu-d1, .gpu-d2, .gpu-d3, .gpu-ort, then .gpu + .gpu-d4 with the run)
#   GPU host:  bench/gpu-all.sh run train-step   # ~1 min: ms/step vs PyTorch eager, bf16, batch 512, CUDA graphs
#              bench/gpu-all.sh run cifar        # ~2 min: time to 94 %, writes .gpu-out/r18.onnx
#              bench/gpu-all.sh run qat          # ~2 min: PTQ vs QAT on that model (ONNX Runtime on the host CPU)
#              bench/gpu-all.sh run distill      # ~5 min: ResNet34 → ResNet18, 2 seeds, shortened recipe
#              bench/gpu-all.sh run prune        # ~4 min: that model pruned to 50 % MACs + distilled fine-tune
#              bench/gpu-all.sh run all          # the first four in that order (needs a 10-min command)
# Extra arguments after the stage go to its script. Results: .gpu-out/<stage>.json, and $OUT/ when the
# device tool provides one. The addon is built once per host (again only when native/src changed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.gpu/slim
results=.gpu-out

prepare() {
  bench/cifar-gpu.sh prepare
  bench/distill-gpu.sh prepare
  bench/qat-gpu.sh prepare
  bench/bundle.sh prune-finetune-gpu
  # What the bundles were built from: `run` prints it, so a stale bundle is seen before it costs a window.
  { git rev-parse HEAD; git status --porcelain | sha1sum | cut -c1-12; date -u +%FT%TZ; } > "$out/STAMP"
  echo "gpu-all: bundles from $(head -1 "$out/STAMP") (dirty hash $(sed -n 2p "$out/STAMP"))"
}

setup() {
  # gpu-setup.sh copies data with `cp -n`, which some coreutils answer with status 1 for files already
  # there: never let that end the run.
  set +e
  [ -f .gpu/setup.sh ] && source .gpu/setup.sh
  set -e
  [ -f "$out/STAMP" ] && echo "gpu-all: bundles from $(head -1 "$out/STAMP"), made $(sed -n 3p "$out/STAMP")"
  mkdir -p "$results"
  local addon=native/build/Release/slimkit_torch.node
  if [ ! -f "$addon" ] || [ -n "$(find native/src -newer "$addon" -print -quit)" ]; then
    NODE_ADDON_API_INCLUDE="$root/$out/napi" scripts/build-native.sh --direct
  fi
  if [ ! -d "$out/node_modules/onnxruntime-node" ] && [ -f .gpu-ort/onnxruntime.tar.xz ]; then
    python3 -c "import tarfile,sys; tarfile.open('.gpu-ort/onnxruntime.tar.xz').extractall(sys.argv[1])" "$out/node_modules"
  fi
}

# stage NAME SECONDS command...: run it under a time limit, keep its last stdout line as NAME.json.
stage() {
  local name=$1 limit=$2
  shift 2
  echo "gpu-all: $name (limit ${limit} s)" >&2
  local log="$results/$name.out"
  if timeout "$limit" "$@" | tee "$log"; then :; else echo "gpu-all: $name failed or timed out (status ${PIPESTATUS[0]})" >&2; fi
  if [ -s "$log" ]; then
    tail -n 1 "$log" > "$results/$name.json"
    [ -n "${OUT:-}" ] && cp "$results/$name.json" "$OUT/"
  fi
  return 0
}

threads=$(nproc)
run_stage() {
  local which=$1
  shift
  case "$which" in
    train-step)
      stage train-step 150 node "$out/train-step.mjs" --device cuda --batch 512 --precision bf16 --threads "$threads" --steps 30 --warmup 10 --cuda-graphs "$@" ;;
    cifar)
      stage cifar 300 node "$out/cifar-gpu.mjs" --epochs 24 --out "$results/r18.onnx" "$@" ;;
    qat)
      local model=()
      [ -f "$results/r18.onnx" ] && model=(--model "$results/r18.onnx")
      stage qat 300 node "$out/qat-gpu.mjs" --device cuda --threads "$threads" "${model[@]}" --epochs 2 "$@" ;;
    distill)
      stage distill 420 node "$out/distill-gpu.mjs" --device cuda --threads "$threads" --seeds 0,1 --teacher-epochs 20 --epochs 15 --save-dir "$results/kd" "$@" ;;
    prune)
      # The trained model comes from the cifar stage; the 92.48 % CPU result used 14 epochs in 2 cuts.
      if [ ! -f "$results/r18.onnx" ]; then echo "gpu-all: prune needs $results/r18.onnx: run the cifar stage first" >&2; return 0; fi
      stage prune 300 node "$out/prune-finetune-gpu.mjs" --device cuda --model "$results/r18.onnx" --target-macs 0.5 --steps 2 \
        --epochs 14 --batch 256 --distill --threads "$threads" --out "$results/r18-pruned.onnx" "$@" ;;
    *)
      echo "gpu-all: unknown stage '$which' (train-step, cifar, qat, distill, prune, all)" >&2
      return 2 ;;
  esac
}

case "${1:-}" in
  prepare)
    prepare ;;
  run)
    shift
    which=${1:-all}
    shift || true
    setup
    if [ "$which" = all ]; then
      for s in train-step cifar qat distill; do run_stage "$s"; done
    else
      run_stage "$which" "$@"
    fi
    echo "gpu-all: results in $results/: $(ls "$results" | tr '\n' ' ')" >&2 ;;
  *)
    echo "usage: bench/gpu-all.sh prepare | run [train-step|cifar|qat|distill|prune|all] [script options]" >&2
    exit 2 ;;
esac

#!/usr/bin/env bash
# Transfer learning on real images, all on CPU: a ResNet18-CIFAR ×0.25 trained on five CIFAR-10 classes
# (airplane, automobile, bird, cat, deer) is given a new head for the other five (dog, frog, horse,
# ship, truck), of which it sees only PER_CLASS training images each. Three ways to get a 5-class
# model from those few images, scored on all 5,000 test images of the five classes:
#   scratch   the same zoo network trained from random weights,
#   probe     `--new-head --freeze-backbone` (only the new Linear trains),
#   finetune  `--new-head` (everything trains, lower learning rate),
#   partial   `--new-head --freeze conv1,layer1` (the stem and first stage keep their weights).
# Prints one JSON line with the four top-1s and seconds. Needs the build (npm run build) and the addon.
#   bench/transfer-cifar.sh [WORK_DIR] [PER_CLASS=200]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-tmp/transfer}
per_class=${2:-200}
shared_data="$(cd .. && pwd)/shared/data/cifar10"
if [ -z "${SLIM_DATA_DIR:-}" ] && [ -d "$shared_data" ]; then export SLIM_DATA_DIR="$shared_data"; fi
mkdir -p "$work"
[ -d "$work/cifar/test" ] || npx tsx bench/cifar-folder.ts "$work/cifar"

# Folders of links: the source task (all its images) and the target task (PER_CLASS training images a class).
rm -rf "$work/source" "$work/target"
for c in airplane automobile bird cat deer; do
  mkdir -p "$work/source/train" "$work/source/test"
  ln -s "$(realpath "$work/cifar/train/$c")" "$work/source/train/$c"
  ln -s "$(realpath "$work/cifar/test/$c")" "$work/source/test/$c"
done
for c in dog frog horse ship truck; do
  mkdir -p "$work/target/train/$c" "$work/target/test"
  ln -s "$(realpath "$work/cifar/test/$c")" "$work/target/test/$c"
  mapfile -t files < <(find "$(realpath "$work/cifar/train/$c")" -name '*.png' | sort)
  ln -s "${files[@]:0:$per_class}" "$work/target/train/$c/"
done

slim() { node bin/slim.js "$@"; }
top1() { node -e 'const d=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(d.onnxruntime_top1 ?? d.test_top1)'; }
seconds() { node -e 'const d=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(d.seconds.toFixed(1))'; }

[ -f "$work/source.onnx" ] || slim train --model resnet18-cifar --width 0.25 --data "$work/source" --epochs 8 --out "$work/source.onnx" --json > "$work/source.json"
slim train --model resnet18-cifar --width 0.25 --data "$work/target" --epochs 30 --batch 64 --out "$work/scratch.onnx" --json > "$work/scratch.json"
slim train --model "$work/source.onnx" --new-head --freeze-backbone --data "$work/target" --epochs 30 --batch 64 --lr 0.05 --out "$work/probe.onnx" --json > "$work/probe.json"
slim train --model "$work/source.onnx" --new-head --data "$work/target" --epochs 30 --batch 64 --lr 0.02 --out "$work/finetune.onnx" --json > "$work/finetune.json"
slim train --model "$work/source.onnx" --new-head --freeze conv1,layer1 --data "$work/target" --epochs 30 --batch 64 --lr 0.02 --out "$work/partial.onnx" --json > "$work/partial.json"

printf '{"per_class":%s,"source_top1":%s,"scratch_top1":%s,"probe_top1":%s,"finetune_top1":%s,"partial_top1":%s,"scratch_s":%s,"probe_s":%s,"finetune_s":%s,"partial_s":%s}\n' \
  "$per_class" "$(top1 < "$work/source.json")" "$(top1 < "$work/scratch.json")" "$(top1 < "$work/probe.json")" "$(top1 < "$work/finetune.json")" "$(top1 < "$work/partial.json")" \
  "$(seconds < "$work/scratch.json")" "$(seconds < "$work/probe.json")" "$(seconds < "$work/finetune.json")" "$(seconds < "$work/partial.json")"

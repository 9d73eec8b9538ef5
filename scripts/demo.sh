#!/usr/bin/env bash
# The main job (README): set up, then run recipes/demo.yaml on CIFAR-10 — train, int8, prune + fine-tune,
# int8 again, benchmark every variant, deploy the smallest, and write the HTML report.
#   SLIM_DATA_DIR / --data-dir: where the CIFAR-10 binary files are (default: ../shared/data/cifar10 when
#   present, else downloaded once into ~/.cache/slimkit). Output goes to runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
setup_start=$(date +%s)
bash scripts/setup.sh
echo "demo: setup took $(( $(date +%s) - setup_start )) s (not part of the demo's own time; apt and npm ci happen once)" >&2
shared_data="$(cd .. && pwd)/shared/data/cifar10"
if [ -z "${SLIM_DATA_DIR:-}" ] && [ -d "$shared_data" ]; then export SLIM_DATA_DIR="$shared_data"; fi
exec node bin/slim.js demo "$@"

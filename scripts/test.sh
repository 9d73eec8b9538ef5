#!/usr/bin/env bash
# The test command (README, .ci/run): sets the machine up, type-checks, then runs every test.
#   extra arguments go to vitest, e.g. scripts/test.sh test/onnx-io.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
shared_data="$(cd .. && pwd)/shared/data/cifar10"
if [ -z "${SLIM_DATA_DIR:-}" ] && [ -d "$shared_data" ]; then export SLIM_DATA_DIR="$shared_data"; fi
echo "test: type-checking" >&2
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"

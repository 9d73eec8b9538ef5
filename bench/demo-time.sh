#!/usr/bin/env bash
# Times `slim demo` from nothing (a fresh run folder, setup excluded): wall time, CPU time and peak
# memory of the whole command, the demo's own per-stage seconds and top-1 of every variant. The load
# average before and after says whether other work shared the CPU (times taken under load are not
# the machine's).
#   bench/demo-time.sh                      # the CPU demo (recipes/demo.yaml)
#   bench/demo-time.sh --full --device cuda # the GPU recipe
# Needs the build (npm run build) and the training addon (npm run build:native).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d "${TMPDIR:-/tmp}/slim-demo-time-XXXXXX")
shared_data="$(cd .. && pwd)/shared/data/cifar10"
if [ -z "${SLIM_DATA_DIR:-}" ] && [ -d "$shared_data" ]; then export SLIM_DATA_DIR="$shared_data"; fi
echo "cores: $(nproc), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v -o "$out/time.txt" node bin/slim.js demo --fresh --run-dir "$out/run" --json "$@" > "$out/demo.json" 2> "$out/stderr.txt" || {
  echo "slim demo failed; its last lines:"; tail -5 "$out/stderr.txt"; exit 1
}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E 'Elapsed \(wall clock\)|User time|System time|Maximum resident' "$out/time.txt"
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`demo wall time (its own clock): ${d.demo_seconds.toFixed(1)} s`);
  for (const s of d.stages) console.log(`  ${s.id.padEnd(14)} ${s.kind.padEnd(9)} ${s.seconds.toFixed(1).padStart(7)} s`);
  for (const v of d.variants) console.log(`  ${v.id.padEnd(14)} top-1 ${(v.top1 * 100).toFixed(2)} %  p50 ${v.latency_ms.p50.toFixed(3)} ms  ${(v.size_bytes / 1024).toFixed(1)} KB`);
  console.log(`report: ${d.report.html}`);
' "$out/demo.json"

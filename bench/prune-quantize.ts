/**
 * Prune (50 % of the MACs) + int8 together: the file must end ≥ 8× smaller than the fp32 original.
 * Prunes with the API, then quantizes with `slim quantize` (static int8, calibrated on CIFAR-10) in a
 * child process, so the check runs against whatever the quantizer does today. With a trained model it
 * also reports top-1 of all three models. One JSON line; {"skipped": …} when `slim quantize` is missing.
 *
 *   npx tsx bench/prune-quantize.ts [--model M.onnx] [--pruned P.onnx] [--target-macs 0.5] [--round-to auto] [--samples 256]
 *        [--eval-limit 10000] [--threads 2]
 *
 * Without --model, the random-weight ResNet18-CIFAR export of the acceptance shape is made with PyTorch
 * (sizes are what this check is about; accuracy needs the trained peer: --model /work/models/r18w025-torch.onnx).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pruneStructured } from '../src/compress/prune/index.js';
import { encodeModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { cifarTest, DATA_DIR, emit, modelOrAcceptanceExport, REPO_ROOT, scratchDir, top1 } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    /** An already pruned (e.g. fine-tuned) version of --model to quantize instead of pruning here. */
    pruned: { type: 'string' },
    'target-macs': { type: 'string', default: '0.5' },
    'round-to': { type: 'string', default: 'auto' },
    samples: { type: 'string', default: '256' },
    'eval-limit': { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
  },
});
if (!existsSync(path.join(REPO_ROOT, 'src/cli/commands/quantize.ts'))) {
  emit({ bench: 'prune-quantize', skipped: '`slim quantize` (src/cli/commands/quantize.ts) does not exist yet' });
  process.exit(0);
}
const dir = scratchDir();
const file = modelOrAcceptanceExport(values.model, dir);
const { graph, facts } = await loadModel(file);
let prunedFile = values.pruned;
if (!prunedFile) {
  const r = await pruneStructured(graph, {
    target: { kind: 'macs', value: Number(values['target-macs']) },
    roundTo: values['round-to'] === 'auto' ? 'auto' : Number(values['round-to']),
  });
  prunedFile = path.join(dir, 'pruned.onnx');
  writeFileSync(prunedFile, encodeModel(r.graph).model);
}
const pruned = await loadModel(prunedFile);
const int8File = path.join(dir, 'pruned.int8.onnx');
const args = [
  '--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), 'quantize', prunedFile, '-o', int8File,
  '--calib', 'cifar10', '--data-dir', DATA_DIR, '--samples', values.samples!, '--threads', values.threads!, '--json',
];
process.stderr.write(`slim ${args.slice(3).join(' ')}\n`);
const quantJson = JSON.parse(execFileSync(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 }).toString()) as Record<string, unknown>;
const sizes = { fp32: statSync(file).size, pruned: statSync(prunedFile).size, pruned_int8: statSync(int8File).size };
const result: Record<string, unknown> = {
  bench: 'prune-quantize',
  model: values.model ?? 'random-weight ResNet18-CIFAR export (scripts/make-torch-fixtures.py --resnet18-cifar)',
  macs_before: facts.totalMacs,
  macs_after: pruned.facts.totalMacs,
  size_bytes_fp32: sizes.fp32,
  size_bytes_pruned: sizes.pruned,
  size_bytes_pruned_int8: sizes.pruned_int8,
  shrink: sizes.fp32 / sizes.pruned_int8,
  pass: sizes.fp32 / sizes.pruned_int8 >= 8,
  quantize: Object.fromEntries(Object.entries(quantJson).filter(([, v]) => typeof v !== 'object')),
};
if (values.model) {
  const set = await cifarTest(Number(values['eval-limit']));
  const threads = Number(values.threads);
  const int8 = await loadModel(int8File);
  result['top1'] = { fp32: await top1(graph, set, threads), pruned: await top1(pruned.graph, set, threads), pruned_int8: await top1(int8.graph, set, threads) };
}
emit(result);

/**
 * The "≤ 0.5 pt top-1 drop at 50 % MACs" recipe, ready for a GPU host: prune a trained ResNet18-CIFAR in
 * steps to the MAC target, fine-tuning with slimkit's LibTorch engine after each step (optionally
 * distilling from the unpruned model), then score both models with ONNX Runtime on the CIFAR-10 test
 * set. Writes the pruned model and prints one JSON line.
 *
 *   npm run build:native   # on the GPU host, against its CUDA LibTorch
 *   npx tsx bench/prune-finetune-gpu.ts --model /work/models/r18w025-torch.onnx --device cuda \
 *        [--target-macs 0.5] [--steps 4] [--epochs 40] [--lr X (default 0.01; 0.005 with --no-reinsert-bn on a BN-folded model)] [--batch 256] [--distill] \
 *        [--importance l2] [--round-to auto] [--no-compensate] [--out pruned-finetuned.onnx] [--train-limit N] [--threads 16]
 *        [--precision auto|fp32|bf16]   (bf16: also on CPUs with AMX, about twice as fast)
 *        [--no-reinsert-bn]   (train a BN-folded model's folded weights directly instead of with BN re-inserted)
 *
 * Defaults follow what recovers pruned ResNets on CIFAR: a few equal cuts (on a log scale of MACs),
 * cosine-decayed SGD at a fine-tuning learning rate, most epochs after the last cut. It runs on the CPU
 * too (--device cpu), slowly; pass --epochs and --train-limit to try it small.
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { engineFineTuner, pruneStructuredIteratively, type ImportanceName } from '../src/compress/prune/index.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { normalizationFor } from '../src/data/model-data.js';
import { encodeModel } from '../src/onnx/io.js';
import { loadModel } from '../src/onnx/validate.js';
import { DATA_DIR, emit, top1, TRAINED_PEER } from './prune-common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: TRAINED_PEER },
    device: { type: 'string', default: 'cuda' },
    'target-macs': { type: 'string', default: '0.5' },
    steps: { type: 'string', default: '4' },
    epochs: { type: 'string', default: '40' },
    lr: { type: 'string' },
    batch: { type: 'string', default: '256' },
    distill: { type: 'boolean', default: false },
    'no-compensate': { type: 'boolean', default: false },
    importance: { type: 'string', default: 'l2' },
    'round-to': { type: 'string', default: 'auto' },
    out: { type: 'string', default: 'pruned-finetuned.onnx' },
    'train-limit': { type: 'string' },
    threads: { type: 'string' },
    precision: { type: 'string', default: 'auto' },
    'no-reinsert-bn': { type: 'boolean', default: false },
  },
});
const device = values.device === 'cpu' ? 'cpu' : 'cuda';
const threads = values.threads ? Number(values.threads) : undefined;
const { graph, facts } = await loadModel(values.model!);
const train = await loadCifar10('train', { dataDir: DATA_DIR });
const test = await loadCifar10('test', { dataDir: DATA_DIR });
const evalThreads = threads ?? 4;
const before = await top1(graph, test, evalThreads);
process.stderr.write(`unpruned top-1 ${(before * 100).toFixed(2)} %\n`);

const tuner = engineFineTuner({
  data: { train, test },
  device,
  ...(values.precision === 'bf16' ? { autocast: 'bf16' as const } : values.precision === 'fp32' ? { autocast: 'none' as const } : {}),
  batch: Number(values.batch),
  // Default: the fine-tuner's (finetuneLr of the graph it trains: 0.01 with BN, re-inserted into a BN-folded export).
  ...(values.lr ? { lr: Number(values.lr) } : {}),
  normalization: normalizationFor(graph, {}),
  ...(threads !== undefined ? { threads } : {}),
  ...(values['train-limit'] ? { trainLimit: Number(values['train-limit']) } : {}),
  ...(values['no-reinsert-bn'] ? { reinsertBatchNorm: false } : {}),
  onProgress: (p) => {
    if (p.phase === 'train' && p.step === p.stepsPerEpoch) process.stderr.write(`  epoch ${p.epoch + 1}/${p.epochs}: loss ${p.loss.toFixed(3)}, train top-1 ${(p.accuracy * 100).toFixed(1)} %\n`);
  },
});
const start = performance.now();
const r = await pruneStructuredIteratively(
  graph,
  {
    target: { kind: 'macs', value: Number(values['target-macs']) },
    importance: values.importance as ImportanceName,
    roundTo: values['round-to'] === 'auto' ? 'auto' : Number(values['round-to']),
    // Removed channels start as their mean activation (folded into the next bias), not as zero.
    ...(values['no-compensate'] ? {} : { calibration: { images: train, normalization: normalizationFor(graph, {}), samples: 512 } }),
  },
  {
    tuner,
    steps: Number(values.steps),
    epochs: Number(values.epochs),
    distill: values.distill,
    onStep: (s) => void process.stderr.write(`step ${s.step}: MACs ${(s.macs / facts.totalMacs).toFixed(3)}, ${s.testAccuracy === undefined ? 'not fine-tuned yet' : `test top-1 ${(s.testAccuracy * 100).toFixed(2)} %`} (${s.seconds.toFixed(0)} s)\n`),
  },
);
const seconds = (performance.now() - start) / 1000;
writeFileSync(values.out!, encodeModel(r.graph).model);
const written = await loadModel(values.out!);
const after = await top1(written.graph, test, evalThreads);
emit({
  bench: 'prune-finetune-gpu',
  model: values.model,
  device,
  out: values.out,
  steps: Number(values.steps),
  epochs: Number(values.epochs),
  distill: values.distill,
  importance: values.importance,
  reinsert_bn: !values['no-reinsert-bn'],
  macs_before: facts.totalMacs,
  macs_after: written.facts.totalMacs,
  macs_reduction: 1 - written.facts.totalMacs / facts.totalMacs,
  top1_before: before,
  top1_after: after,
  drop_pt: (before - after) * 100,
  pass: (before - after) * 100 <= 0.5 && 1 - written.facts.totalMacs / facts.totalMacs >= 0.45,
  seconds,
  per_step: r.steps,
});

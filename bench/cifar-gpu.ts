/**
 * The full CIFAR-10 recipe on CUDA: ResNet18-CIFAR, batch 512, SGD + Nesterov, OneCycle, label smoothing,
 * bf16 autocast + channels_last, augmentation on the GPU, evaluation after every epoch. Prints one JSON
 * line with the training time to 94 % test top-1 and the final accuracy:
 *   {"time_to_94_s":…, "epoch_to_94":…, "final_top1":…, "train_s":…, "ms_per_step":…, …}
 *
 *   npx tsx bench/cifar-gpu.ts                       # on a CUDA host (see bench/cifar-gpu.sh for a bare one)
 *   npx tsx bench/cifar-gpu.ts --device cpu --train-limit 2048 --test-limit 1000 --epochs 1 --width 0.25   # smoke test
 * Options: --epochs (30) --batch (512) --lr (0.4) --label-smoothing (0.1) --weight-decay (5e-4) --width (1)
 * --target (0.94) --data-dir ($SLIM_DATA_DIR) --seed (0) --train-limit --test-limit --threads,
 * --cuda-graphs (replay a captured CUDA graph of the step; the JSON says which way it ran),
 * --out <file.onnx> (write the trained model, BN folded: bench/qat-gpu.ts --model takes it).
 */
import { parseArgs } from 'node:util';
import { loadCifar10 } from '../src/data/cifar10.js';
import { loadNative } from '../src/engine/native.js';
import { trainModel } from '../src/engine/train.js';
import { writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { buildZooModel } from '../src/zoo/index.js';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    epochs: { type: 'string', default: '30' },
    batch: { type: 'string', default: '512' },
    lr: { type: 'string', default: '0.4' },
    'label-smoothing': { type: 'string', default: '0.1' },
    'weight-decay': { type: 'string', default: '5e-4' },
    width: { type: 'string', default: '1' },
    target: { type: 'string', default: '0.94' },
    'data-dir': { type: 'string' },
    seed: { type: 'string', default: '0' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    threads: { type: 'string' },
    'cuda-graphs': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const device = args.device === 'cpu' ? 'cpu' : 'cuda';
const target = Number(args.target);
const dataDir = args['data-dir'] ?? process.env.SLIM_DATA_DIR;
const dir = dataDir ? { dataDir } : {};
const [train, test] = await Promise.all([loadCifar10('train', dir), loadCifar10('test', dir)]);

const started = performance.now();
const result = await trainModel({
  graph: buildZooModel('resnet18-cifar', { width: Number(args.width), seed: Number(args.seed) }),
  data: { train, test },
  device,
  epochs: Number(args.epochs),
  batch: Number(args.batch),
  lr: Number(args.lr),
  schedule: 'onecycle',
  optimizer: 'sgd',
  nesterov: true,
  momentum: 0.9,
  weightDecay: Number(args['weight-decay']),
  labelSmoothing: Number(args['label-smoothing']),
  seed: Number(args.seed),
  evalBatch: 1000,
  ...(args['train-limit'] ? { trainLimit: Number(args['train-limit']) } : {}),
  ...(args['test-limit'] ? { testLimit: Number(args['test-limit']) } : {}),
  ...(args.threads ? { threads: Number(args.threads) } : {}),
  ...(args['cuda-graphs'] ? { cudaGraphs: true } : {}),
  onProgress: (p) => {
    if (p.phase === 'eval') process.stderr.write(`epoch ${p.epoch + 1}/${p.epochs}: train loss ${p.loss.toFixed(3)}, ${p.imagesPerSecond.toFixed(0)} img/s\n`);
  },
});
const wall = (performance.now() - started) / 1000;
if (args.out) await writeModel(foldBatchNorm(result.graph), args.out);

// Time to target counts training steps only (evaluation excluded), as the usual speed-run tables do;
// wall_to_target adds the per-epoch evaluations.
let trainSeconds = 0;
let wallSeconds = 0;
let reached: { epoch: number; train: number; wall: number } | undefined;
for (const e of result.history) {
  trainSeconds += e.trainSeconds;
  wallSeconds += e.seconds;
  process.stderr.write(`epoch ${e.epoch}: test top-1 ${(100 * e.testAccuracy).toFixed(2)} % (${e.trainSeconds.toFixed(2)} s training)\n`);
  if (!reached && e.testAccuracy >= target) reached = { epoch: e.epoch, train: trainSeconds, wall: wallSeconds };
}
const label = `${Math.round(target * 100)}`;
console.log(JSON.stringify({
  [`time_to_${label}_s`]: reached ? Number(reached.train.toFixed(2)) : null,
  [`wall_to_${label}_s`]: reached ? Number(reached.wall.toFixed(2)) : null,
  [`epoch_to_${label}`]: reached?.epoch ?? null,
  final_top1: result.testAccuracy,
  best_top1: Math.max(...result.history.map((e) => e.testAccuracy)),
  epochs: result.history.length,
  train_s: Number(trainSeconds.toFixed(2)),
  ms_per_step: Number(((1000 * trainSeconds) / result.steps).toFixed(2)),
  wall_s: Number(wall.toFixed(2)),
  gpu_seconds: Number(result.gpuSeconds.toFixed(2)),
  estimated_cost: Number(result.estimatedCost.toFixed(4)),
  device,
  batch: Number(args.batch),
  cuda_graphs: args['cuda-graphs'],
  libtorch: loadNative().info().torchVersion,
}));

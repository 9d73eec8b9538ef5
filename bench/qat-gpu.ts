/**
 * QAT acceptance: fp32 → PTQ int8 (slim quantize's defaults: --method auto over the four range methods,
 * bias correction, per-channel int8 weights, uint8 activations, 512 calibration images) → QAT from that
 * QDQ graph (as `slim quantize --qat`) →
 * int8 top-1 of all three with ONNX Runtime on the CIFAR-10 test split. Prints one JSON line:
 *   {"fp32_top1":…, "ptq_top1":…, "qat_top1":…, "accept":{"qat_ge_ptq":…, "qat_ge_fp32_minus_0_05_pt":…}, …}
 *
 *   npx tsx bench/qat-gpu.ts --model r18.onnx             # CUDA host with Node
 *   bench/qat-gpu.sh prepare | run                         # bare GPU host (see the .sh)
 *   npx tsx bench/qat-gpu.ts --device cpu --model /work/models/r18w025-torch.onnx --epochs 1   # CPU, small
 *
 * Options: --model <fp32.onnx> (default: train --fp32-model with the engine for --fp32-epochs, BN folded),
 * --fp32-model (resnet18-cifar), --fp32-width (1), --fp32-epochs (30), --epochs (QAT, 2), --batch (128),
 * --method (auto, or one of minmax|percentile|entropy|mse), --lr (default: QAT's), --optimizer (sgd), --lsq, --no-distill (QAT on the labels alone; default: the fp32 model teaches, as slim quantize --qat), --calib (512),
 * --train-limit, --test-limit, --threads (ORT and CPU training), --seed (0), --data-dir, --save-dir.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { quantizationAwareTraining } from '../src/compress/qat/index.js';
import { calibrateImages, CALIBRATION_METHODS, DEFAULT_STATIC, describeChoice, type CalibrationMethod } from '../src/compress/quantize/index.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { loadNative, type DeviceName } from '../src/engine/native.js';
import { trainModel } from '../src/engine/train.js';
import type { Graph } from '../src/onnx/graph.js';
import { encodeModel, readModel, writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';
import { readPreprocessing } from '../src/zoo/metadata.js';
import { buildZooModel, type ZooName } from '../src/zoo/index.js';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    model: { type: 'string' },
    'fp32-model': { type: 'string', default: 'resnet18-cifar' },
    'fp32-width': { type: 'string', default: '1' },
    'fp32-epochs': { type: 'string', default: '30' },
    epochs: { type: 'string', default: '2' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string' },
    method: { type: 'string', default: 'auto' },
    optimizer: { type: 'string', default: 'sgd' },
    lsq: { type: 'boolean', default: false },
    'no-distill': { type: 'boolean', default: false },
    calib: { type: 'string', default: '512' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    threads: { type: 'string' },
    seed: { type: 'string', default: '0' },
    'data-dir': { type: 'string' },
    'save-dir': { type: 'string' },
  },
});

const device: DeviceName = args.device === 'cpu' ? 'cpu' : 'cuda';
const threads = Number(args.threads ?? availableParallelism());
const besideRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'cifar10');
const dataDir = args['data-dir'] ?? process.env.SLIM_DATA_DIR ?? (existsSync(path.join(besideRepo, 'test_batch.bin')) ? besideRepo : undefined);
const [train, test] = await Promise.all([loadCifar10('train', dataDir ? { dataDir } : {}), loadCifar10('test', dataDir ? { dataDir } : {})]);
const testLimit = args['test-limit'] ? Number(args['test-limit']) : undefined;
const saveDir = args['save-dir'];
if (saveDir) mkdirSync(saveDir, { recursive: true });
const log = (m: string): void => void process.stderr.write(`${m}\n`);
const started = performance.now();

// 1. The fp32 model: given, or trained with the engine's CIFAR recipe (BN folded, as PyTorch exports).
let fp32: Graph;
let fp32Seconds = 0;
if (args.model) {
  fp32 = await readModel(args.model);
} else {
  const r = await trainModel({
    graph: buildZooModel(args['fp32-model'] as ZooName, { width: Number(args['fp32-width']), seed: 7 }),
    data: { train, test },
    device,
    epochs: Number(args['fp32-epochs']),
    batch: 512,
    lr: 0.4,
    schedule: 'onecycle',
    labelSmoothing: 0.1,
    evalBatch: 1000,
    seed: 7,
    ...(args.threads ? { threads } : {}),
    onProgress: (p) => p.phase === 'eval' && log(`fp32: epoch ${p.epoch + 1}/${p.epochs} train loss ${p.loss.toFixed(3)}`),
  });
  fp32 = foldBatchNorm(r.graph);
  fp32Seconds = r.seconds;
}
const normalization = readPreprocessing(fp32).normalization ?? CIFAR10_NORMALIZATION;

async function top1(g: Graph, label: string): Promise<number> {
  const session = await openSession(encodeModel(g).model, { threads, label });
  try {
    return (await evaluate(session, test, { normalization, batchSize: 500, ...(testLimit ? { limit: testLimit } : {}) })).top1;
  } finally {
    await session.close();
  }
}

// 2. PTQ with slim quantize's defaults.
const method = args.method!;
if (method !== 'auto' && !CALIBRATION_METHODS.includes(method as CalibrationMethod)) throw new Error(`--method takes auto or one of ${CALIBRATION_METHODS.join(', ')}`);
const ptqStart = performance.now();
const calibrated = await calibrateImages(fp32, train, method === 'auto' ? DEFAULT_STATIC : { ...DEFAULT_STATIC, calibration: { ...DEFAULT_STATIC.calibration, method: method as CalibrationMethod } }, {
  normalization,
  samples: Number(args.calib),
  seed: Number(args.seed),
  auto: method === 'auto',
  threads,
});
if (calibrated.choice && calibrated.heldOut) log(describeChoice(calibrated.choice, calibrated.heldOut.labels.length));
const ptq = calibrated.result;
const ptqSeconds = (performance.now() - ptqStart) / 1000;

// 3. QAT from PTQ's QDQ graph.
const qat = await quantizationAwareTraining({
  graph: ptq.graph,
  float: ptq.float,
  data: { train, test },
  device,
  epochs: Number(args.epochs),
  batch: Number(args.batch),
  optimizer: args.optimizer === 'adamw' ? 'adamw' : 'sgd',
  learnableScales: args.lsq,
  seed: Number(args.seed),
  ...(args.lr ? { lr: Number(args.lr) } : {}),
  ...(!args['no-distill'] ? { teacher: { graph: ptq.float } } : {}),
  ...(args.threads ? { threads } : {}),
  ...(args['train-limit'] ? { trainLimit: Number(args['train-limit']) } : {}),
  ...(testLimit ? { testLimit } : {}),
  onProgress: (p) => p.phase === 'eval' && log(`qat: epoch ${p.epoch + 1}/${p.epochs} train loss ${p.loss.toFixed(3)}, ${p.imagesPerSecond.toFixed(0)} img/s`),
});
for (const w of qat.warnings) log(`warning: ${w}`);
if (saveDir) {
  await writeModel(fp32, path.join(saveDir, 'fp32.onnx'));
  await writeModel(ptq.graph, path.join(saveDir, 'ptq.int8.onnx'));
  await writeModel(qat.graph, path.join(saveDir, 'qat.int8.onnx'));
}

// 4. All three with ONNX Runtime.
const [fp32Top1, ptqTop1, qatTop1] = [await top1(fp32, 'fp32'), await top1(ptq.graph, 'ptq'), await top1(qat.graph, 'qat')];
const round = (x: number, d = 4): number => Number(x.toFixed(d));
console.log(JSON.stringify({
  model: args.model ?? `${args['fp32-model']} width ${args['fp32-width']}, ${args['fp32-epochs']} epochs (engine)`,
  fp32_top1: round(fp32Top1),
  ptq_top1: round(ptqTop1),
  qat_top1: round(qatTop1),
  qat_engine_top1: round(qat.testAccuracy),
  qat_minus_ptq_pt: round(100 * (qatTop1 - ptqTop1), 3),
  qat_minus_fp32_pt: round(100 * (qatTop1 - fp32Top1), 3),
  // 1e-9: exactly 5 images (0.05 pt) below fp32 must not fail on float rounding.
  accept: { qat_ge_ptq: qatTop1 >= ptqTop1 - 1e-9, qat_ge_fp32_minus_0_05_pt: qatTop1 >= fp32Top1 - 0.0005 - 1e-9 },
  ptq_method: calibrated.options.calibration.method,
  qat: { epochs: Number(args.epochs), batch: Number(args.batch), lr: args.lr ? Number(args.lr) : 'default', optimizer: args.optimizer, lsq: args.lsq, distill: !args['no-distill'], seed: Number(args.seed), train_images: args['train-limit'] ? Number(args['train-limit']) : train.labels.length },
  eval_images: testLimit ?? test.labels.length,
  fp32_train_s: round(fp32Seconds, 1),
  ptq_s: round(ptqSeconds, 1),
  qat_s: round(qat.seconds, 1),
  wall_s: round((performance.now() - started) / 1000, 1),
  device,
  libtorch: loadNative().info().torchVersion,
}));

/**
 * Distillation acceptance: ResNet34-CIFAR teacher → ResNet18-CIFAR student on CIFAR-10, against the
 * same student recipe without a teacher, over several seeds. Prints one JSON line:
 *   {"teacher_top1":…, "baseline_top1":[…], "distilled_top1":[…], "gain_pt":…, "accept":{"gain_ge_0_3_pt":…}, …}
 *
 *   npx tsx bench/distill-gpu.ts                         # CUDA host: trains the teacher, then 3 seeds × 2 students
 *   bench/distill-gpu.sh prepare | run                   # bare GPU host without Node (see the .sh)
 *   npx tsx bench/distill-gpu.ts --device cpu --teacher /work/models/r18w025-torch.onnx --student-width 0.125 \
 *     --epochs 5 --seeds 0 --batch 128 --lr 0.1           # small CPU run
 *
 * Options: --teacher <file.onnx> (default: train --teacher-model for --teacher-epochs), --teacher-model
 * (resnet34-cifar), --teacher-width (1), --teacher-epochs (40), --student (resnet18-cifar), --student-width (1),
 * --epochs (30), --batch (512), --lr (0.4), --schedule (onecycle), --label-smoothing (0), --alpha (0.5),
 * --temperature (4), --seeds (0,1,2), --cache-teacher, --train-limit, --test-limit, --threads, --data-dir,
 * --save-dir (write the teacher and the students as .onnx), --precision (auto: bf16 on CUDA, fp32 on CPU; bf16 also pays on
 * CPUs with AMX).
 * The recipe is the same for both students (epochs, lr, batch, augmentation, label smoothing, seed); only
 * the loss differs. Accuracy is the engine's eval on the test split after the last epoch (the engine's
 * eval-mode forward equals ONNX Runtime's; test/engine-forward.test.ts).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { distill } from '../src/compress/distill/index.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import type { DeviceName } from '../src/engine/native.js';
import { loadNative } from '../src/engine/native.js';
import { trainModel, type TrainOptions, type TrainProgress } from '../src/engine/train.js';
import type { Graph } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { buildZooModel, type ZooName } from '../src/zoo/index.js';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    teacher: { type: 'string' },
    'teacher-model': { type: 'string', default: 'resnet34-cifar' },
    'teacher-width': { type: 'string', default: '1' },
    'teacher-epochs': { type: 'string', default: '40' },
    student: { type: 'string', default: 'resnet18-cifar' },
    'student-width': { type: 'string', default: '1' },
    epochs: { type: 'string', default: '30' },
    batch: { type: 'string', default: '512' },
    lr: { type: 'string', default: '0.4' },
    schedule: { type: 'string', default: 'onecycle' },
    'label-smoothing': { type: 'string', default: '0' },
    alpha: { type: 'string', default: '0.5' },
    temperature: { type: 'string', default: '4' },
    seeds: { type: 'string', default: '0,1,2' },
    'cache-teacher': { type: 'boolean', default: false },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    threads: { type: 'string' },
    precision: { type: 'string', default: 'auto' },
    'data-dir': { type: 'string' },
    'save-dir': { type: 'string' },
  },
});

const device: DeviceName = args.device === 'cpu' ? 'cpu' : 'cuda';
const besideRepo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'cifar10');
const dataDir = args['data-dir'] ?? process.env.SLIM_DATA_DIR ?? (existsSync(path.join(besideRepo, 'test_batch.bin')) ? besideRepo : undefined);
const [train, test] = await Promise.all([loadCifar10('train', dataDir ? { dataDir } : {}), loadCifar10('test', dataDir ? { dataDir } : {})]);
const seeds = args.seeds.split(',').map(Number);
if (!['auto', 'fp32', 'bf16'].includes(args.precision)) throw new Error(`--precision takes auto, fp32 or bf16, got ${args.precision}`);
const recipe: Omit<TrainOptions, 'graph' | 'seed'> = {
  data: { train, test },
  device,
  epochs: Number(args.epochs),
  batch: Number(args.batch),
  lr: Number(args.lr),
  schedule: args.schedule as TrainOptions['schedule'] & string,
  optimizer: 'sgd',
  nesterov: true,
  labelSmoothing: Number(args['label-smoothing']),
  evalBatch: 1000,
  ...(args['train-limit'] ? { trainLimit: Number(args['train-limit']) } : {}),
  ...(args['test-limit'] ? { testLimit: Number(args['test-limit']) } : {}),
  ...(args.threads ? { threads: Number(args.threads) } : {}),
  ...(args.precision === 'bf16' ? { autocast: 'bf16' as const } : args.precision === 'fp32' ? { autocast: 'none' as const } : {}),
};
const saveDir = args['save-dir'];
if (saveDir) mkdirSync(saveDir, { recursive: true });

const log = (m: string): void => void process.stderr.write(`${m}\n`);
const progress = (label: string) => (p: TrainProgress): void => {
  if (p.phase === 'eval') log(`${label}: epoch ${p.epoch + 1}/${p.epochs} train loss ${p.loss.toFixed(3)}, ${p.imagesPerSecond.toFixed(0)} img/s`);
};
const save = async (g: Graph, name: string): Promise<void> => {
  if (saveDir) await writeModel(foldBatchNorm(g), path.join(saveDir, name));
};

const started = performance.now();
let teacher: Graph;
let teacherSeconds = 0;
if (args.teacher) {
  teacher = await readModel(args.teacher);
} else {
  const t = await trainModel({
    ...recipe,
    graph: buildZooModel(args['teacher-model'] as ZooName, { width: Number(args['teacher-width']), seed: 100 }),
    epochs: Number(args['teacher-epochs']),
    seed: 100,
    onProgress: progress('teacher'),
  });
  teacher = t.graph;
  teacherSeconds = t.seconds;
  await save(teacher, 'teacher.onnx');
  log(`teacher ${args['teacher-model']}: test top-1 ${(100 * t.testAccuracy).toFixed(2)} % in ${t.seconds.toFixed(0)} s`);
}

const baseline: number[] = [];
const distilled: number[] = [];
let teacherTop1 = 0;
let baselineSeconds = 0;
let distillSeconds = 0;
for (const seed of seeds) {
  const student = (): Graph => buildZooModel(args.student as ZooName, { width: Number(args['student-width']), seed });
  const plain = await trainModel({ ...recipe, graph: student(), seed, onProgress: progress(`baseline seed ${seed}`) });
  baseline.push(plain.testAccuracy);
  baselineSeconds += plain.seconds;
  await save(plain.graph, `student-baseline-${seed}.onnx`);
  const kd = await distill({
    ...recipe,
    teacher,
    student: student(),
    seed,
    alpha: Number(args.alpha),
    temperature: Number(args.temperature),
    cacheTeacher: args['cache-teacher'],
    ...(args['cache-teacher'] ? { augment: false as const } : {}),
    onProgress: progress(`distilled seed ${seed}`),
  });
  teacherTop1 = kd.teacherAccuracy;
  distilled.push(kd.testAccuracy);
  distillSeconds += kd.seconds;
  await save(kd.graph, `student-distilled-${seed}.onnx`);
  log(`seed ${seed}: baseline ${(100 * plain.testAccuracy).toFixed(2)} %, distilled ${(100 * kd.testAccuracy).toFixed(2)} %`);
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const std = (v: number[]): number => (v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)) : 0);
const gain = 100 * (mean(distilled) - mean(baseline));
const round = (x: number, d = 4): number => Number(x.toFixed(d));
console.log(JSON.stringify({
  teacher: args.teacher ?? `${args['teacher-model']} width ${args['teacher-width']}, ${args['teacher-epochs']} epochs`,
  teacher_top1: round(teacherTop1),
  student: `${args.student} width ${args['student-width']}`,
  baseline_top1: baseline.map((v) => round(v)),
  distilled_top1: distilled.map((v) => round(v)),
  baseline_mean: round(mean(baseline)),
  distilled_mean: round(mean(distilled)),
  baseline_std_pt: round(100 * std(baseline), 3),
  distilled_std_pt: round(100 * std(distilled), 3),
  gain_pt: round(gain, 3),
  // 1e-9: a gain of exactly +0.3 pt (30 images) must not fail on float rounding.
  accept: { gain_ge_0_3_pt: gain >= 0.3 - 1e-9 },
  recipe: { precision: args.precision, epochs: recipe.epochs, batch: recipe.batch, lr: recipe.lr, schedule: recipe.schedule, label_smoothing: recipe.labelSmoothing, alpha: Number(args.alpha), temperature: Number(args.temperature), cache_teacher: args['cache-teacher'], seeds, train_images: args['train-limit'] ? Number(args['train-limit']) : train.labels.length, test_images: args['test-limit'] ? Number(args['test-limit']) : test.labels.length },
  teacher_s: round(teacherSeconds, 1),
  baseline_s: round(baselineSeconds, 1),
  distill_s: round(distillSeconds, 1),
  wall_s: round((performance.now() - started) / 1000, 1),
  device,
  libtorch: loadNative().info().torchVersion,
}));

/**
 * Data-parallel scaling of `slim train`: the same model, data and GLOBAL batch trained by 1 process and
 * by N ranks (`--nproc N`), steps per second taken from the last epoch's training time (the first
 * epoch warms oneDNN / cuDNN up; start-up, evaluation and export are excluded). Prints one JSON line:
 *   {"runs":[{"nproc":1,"steps_per_s":…},{"nproc":2,"steps_per_s":…}],"speedup":…,"efficiency":…, …}
 * efficiency = steps/s with N ranks ÷ (N × steps/s with 1): 1.0 is perfect linear scaling.
 *
 *   npx tsx bench/ddp-scaling.ts                                  # CPU: ResNet18-CIFAR ×0.25, batch 128, 1 vs 2 processes
 *   npx tsx bench/ddp-scaling.ts --device cuda --nproc 1,2,4 --width 1 --batch 512 --train-limit 20480
 * On CPU the ranks share the machine's cores (each gets cores/N threads), so scaling measures the
 * overhead of data parallelism, not added compute: expect ≤ 1× on a 2-core box.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    model: { type: 'string', default: 'resnet18-cifar' },
    width: { type: 'string', default: '0.25' },
    batch: { type: 'string', default: '128' },
    'train-limit': { type: 'string', default: '2048' },
    epochs: { type: 'string', default: '2' },
    nproc: { type: 'string', default: '1,2' },
    'data-dir': { type: 'string', default: process.env.SLIM_DATA_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'cifar10') },
  },
});
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'test', 'helpers', 'slim-entry.ts');

interface Summary {
  steps: number;
  history: { trainSeconds: number; imagesPerSecond: number }[];
}

function slimTrain(nproc: number): Promise<Summary> {
  const out = path.join(tmpdir(), `slim-ddp-scaling-${process.pid}-${nproc}.onnx`);
  const cli = [
    'train', '--model', args.model!, '--width', args.width!, '--data', 'cifar10', '--data-dir', args['data-dir']!,
    '--train-limit', args['train-limit']!, '--test-limit', '256', '--batch', args.batch!, '--epochs', args.epochs!,
    '--device', args.device!, '--out', out, '--no-verify', '--json',
    ...(nproc > 1 ? ['--nproc', String(nproc)] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...cli], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      rmSync(out, { force: true });
      if (code === 0) resolve(JSON.parse(stdout) as Summary);
      else reject(new Error(`slim train with ${nproc} process(es) failed (${code}):\n${stderr}`));
    });
  });
}

const counts = args.nproc!.split(',').map(Number);
const runs = [];
for (const nproc of counts) {
  const summary = await slimTrain(nproc);
  const last = summary.history.at(-1)!;
  const stepsPerEpoch = summary.steps / summary.history.length;
  runs.push({
    nproc,
    threads_per_rank: args.device === 'cpu' ? Math.max(1, Math.floor(availableParallelism() / nproc)) : undefined,
    steps_per_s: Number((stepsPerEpoch / last.trainSeconds).toFixed(3)),
    images_per_s: Math.round(last.imagesPerSecond),
  });
}
const base = runs.find((r) => r.nproc === 1);
const best = runs.at(-1)!;
const speedup = base ? best.steps_per_s / base.steps_per_s : undefined;
process.stdout.write(
  `${JSON.stringify({
    bench: 'ddp-scaling',
    device: args.device,
    model: `${args.model}@${args.width}`,
    global_batch: Number(args.batch),
    train_images: Number(args['train-limit']),
    cores: availableParallelism(),
    load_average_1m: Number(loadavg()[0]!.toFixed(2)),
    runs,
    speedup: speedup !== undefined ? Number(speedup.toFixed(3)) : null,
    efficiency: speedup !== undefined ? Number((speedup / best.nproc).toFixed(3)) : null,
  })}\n`,
);

/**
 * Data-parallel scaling of `slim train`: the same model, data and GLOBAL batch trained by 1 process and
 * by N ranks (`--nproc N`). Steps per second come from the epochs' training time alone (start-up,
 * evaluation and export excluded), skipping the first epoch (oneDNN / cuDNN warm-up); each
 * configuration runs --rounds times in alternating order and keeps its best epoch, which filters out
 * other load on a shared machine. Prints one JSON line:
 *   {"runs":[{"nproc":1,"steps_per_s":…},{"nproc":2,"steps_per_s":…}],"speedup":…,"efficiency":…, …}
 * efficiency = steps/s with N ranks ÷ (N × steps/s with 1): 1.0 is perfect linear scaling.
 *
 *   npx tsx bench/ddp-scaling.ts                                  # CPU: ResNet18-CIFAR ×0.25, batch 128, 1 vs 2 processes
 *   npx tsx bench/ddp-scaling.ts --device cuda --nproc 1,2,4 --width 1 --batch 512 --train-limit 20480
 * On CPU the ranks share the machine's cores (each gets cores/N threads), so scaling measures the
 * overhead of data parallelism, not added compute: expect about 1× on a 2-core box.
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
    epochs: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    nproc: { type: 'string', default: '1,2' },
    'data-dir': { type: 'string', default: process.env.SLIM_DATA_DIR ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'data', 'cifar10') },
  },
});
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'test', 'helpers', 'slim-entry.ts');

interface Summary {
  steps: number;
  history: { trainSeconds: number }[];
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
const best = new Map<number, number>();
for (let round = 0; round < Number(args.rounds); round++) {
  for (const nproc of round % 2 === 0 ? counts : [...counts].reverse()) {
    const summary = await slimTrain(nproc);
    const stepsPerEpoch = summary.steps / summary.history.length;
    const warm = summary.history.length > 1 ? summary.history.slice(1) : summary.history;
    const fastest = Math.max(...warm.map((h) => stepsPerEpoch / h.trainSeconds));
    best.set(nproc, Math.max(best.get(nproc) ?? 0, fastest));
  }
}
const batch = Number(args.batch);
const runs = counts.map((nproc) => ({
  nproc,
  threads_per_rank: args.device === 'cpu' ? Math.max(1, Math.floor(availableParallelism() / nproc)) : undefined,
  steps_per_s: Number(best.get(nproc)!.toFixed(3)),
  images_per_s: Math.round(best.get(nproc)! * batch),
}));
const base = runs.find((r) => r.nproc === 1);
const widest = runs.at(-1)!;
const speedup = base ? widest.steps_per_s / base.steps_per_s : undefined;
process.stdout.write(
  `${JSON.stringify({
    bench: 'ddp-scaling',
    device: args.device,
    model: `${args.model}@${args.width}`,
    global_batch: batch,
    train_images: Number(args['train-limit']),
    cores: availableParallelism(),
    load_average_1m: Number(loadavg()[0]!.toFixed(2)),
    runs,
    speedup: speedup !== undefined ? Number(speedup.toFixed(3)) : null,
    efficiency: speedup !== undefined ? Number((speedup / widest.nproc).toFixed(3)) : null,
    rounds: Number(args.rounds),
  })}\n`,
);

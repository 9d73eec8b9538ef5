/**
 * Training step time of the slimkit engine vs PyTorch eager on the same machine, model, weights, batch,
 * optimizer, threads and precision, in one run. Prints one JSON line:
 *   {"ours_ms":…, "peer_ms":…, "ratio":…, "loss_match":…, …}
 *
 *   npx tsx bench/train-step.ts                                   # CPU: ResNet18-CIFAR, batch 64, 2 threads, fp32
 *   npx tsx bench/train-step.ts --device cuda --batch 512 --precision bf16 [--cuda-graphs]
 * --cuda-graphs also times our step replayed from a captured CUDA graph (ours_graphs_ms, ratio_graphs)
 * and checks that its losses follow the eager engine's step by step (graphs_loss_match).
 * Options: --width W (zoo width), --steps N, --warmup N, --rounds R (run both sides R times, alternating
 * which goes first, and keep each side's best median), --python PATH (a python3
 * with torch; default $PYTHON, else python3 if it imports torch, else /usr/bin/python3).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { loadNative } from '../src/engine/native.js';
import { DeviceImageSet, EnginePlan } from '../src/engine/plan.js';
import { makeTensor } from '../src/onnx/tensor.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';

const { values: args } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    batch: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    precision: { type: 'string', default: 'fp32' },
    width: { type: 'string', default: '1' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    python: { type: 'string' },
    'cuda-graphs': { type: 'boolean', default: false },
    // Default: on for CUDA bf16 (the GPU recipe); on CPU bf16 oneDNN's AMX kernels want it too.
    'channels-last': { type: 'boolean' },
  },
});
const device = args.device === 'cuda' ? 'cuda' : 'cpu';
const batch = Number(args.batch);
const threads = Number(args.threads);
const steps = Number(args.steps);
const warmup = Number(args.warmup);
const precision = args.precision === 'bf16' ? 'bf16' : 'fp32';
const channelsLast = args['channels-last'] ?? precision === 'bf16';
// A small lr keeps both trajectories stable on random labels, so their losses stay comparable step by step.
const optimizer = { lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 5e-4 };

function findPython(): string {
  if (args.python) return args.python;
  if (process.env.PYTHON) return process.env.PYTHON;
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' });
      return candidate;
    } catch {
      /* next */
    }
  }
  throw new Error('no python3 with torch found for the PyTorch peer; pass --python');
}

// The batch: random pixels, normalized the CIFAR way; labels uniform.
const rng = new Random(7);
const pixels = Uint8Array.from({ length: batch * 3 * 32 * 32 }, () => rng.int(256));
const labels = Uint16Array.from({ length: batch }, () => rng.int(10));
const { mean, std, scale } = CIFAR10_NORMALIZATION;
const images = Float32Array.from(pixels, (p, i) => {
  const c = Math.floor(i / 1024) % 3;
  return (p * scale - mean[c]!) / std[c]!;
});

const graph = buildZooModel('resnet18-cifar', { width: Number(args.width), seed: 0 });
const folder = mkdtempSync(path.join(tmpdir(), 'slim-bench-'));
try {
  // Peer inputs: torchvision state_dict names are the zoo's initializer names.
  const tensors = [...graph.initializers].filter(([, t]) => t.dtype === 'float32');
  writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify({
    width: Number(args.width), classes: 10, batch, ...optimizer,
    tensors: tensors.map(([name, t]) => ({ name, dims: t.dims })),
  }));
  writeFileSync(path.join(folder, 'weights.bin'), Buffer.concat(tensors.map(([, t]) => Buffer.from((t.data as Float32Array).buffer))));
  writeFileSync(path.join(folder, 'images.bin'), Buffer.from(images.buffer));
  writeFileSync(path.join(folder, 'labels.bin'), Buffer.from(Int32Array.from(labels).buffer));
  const python = findPython();

  const addon = loadNative();
  addon.setThreads(threads);
  const runOurs = async (cudaGraphs = false): Promise<{ ms: number; losses: number[] }> => {
    const plan = EnginePlan.create(graph, { device, autocast: precision === 'bf16' ? 'bf16' : 'none', channelsLast, cudaGraphs });
    plan.setOptimizer({ kind: 'sgd', momentum: optimizer.momentum, nesterov: optimizer.nesterov, weightDecay: optimizer.weight_decay });
    // CPU: the exact peer batch from host memory; CUDA: the batch lives on the device, as in training.
    const onDevice = device === 'cuda'
      ? DeviceImageSet.upload({ name: 'bench', classes: [], imageShape: [3, 32, 32], pixels, labels }, { device, normalization: CIFAR10_NORMALIZATION, pad: 0 })
      : undefined;
    const indices = Int32Array.from({ length: batch }, (_, i) => i);
    const x = makeTensor('float32', [batch, 3, 32, 32], images);
    const y = Int32Array.from(labels);
    const losses: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      const r = onDevice
        ? await plan.trainStep(onDevice, { indices }, { lr: optimizer.lr })
        : await plan.trainStepOn(x, y, { lr: optimizer.lr });
      if (i >= warmup) times.push(performance.now() - t0);
      losses.push(r.loss);
    }
    return { ms: median(times), losses };
  };
  const runPeer = (): { ms: number; losses: number[]; torch: string } => {
    const out = execFileSync(python, [
      path.join(import.meta.dirname, 'train-step-peer.py'), folder, '--device', device, '--threads', String(threads),
      '--steps', String(steps), '--warmup', String(warmup), '--precision', precision,
      ...(channelsLast ? ['--channels-last'] : []),
    ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { ms_per_step: number; losses: number[]; torch: string };
    return { ms: r.ms_per_step, losses: r.losses, torch: r.torch };
  };

  let ours = Infinity;
  let peer = Infinity;
  let ourLosses: number[] = [];
  let peerLosses: number[] = [];
  let torchVersion = '';
  let graphed = Infinity;
  let graphLosses: number[] = [];
  let graphsError: string | undefined;
  // Same weights, batch and update rule: first losses agree to float rounding in fp32; bf16 autocast
  // rounds logits to 8 bits of mantissa and the two sides may pick other kernels, so allow that.
  const [firstTolerance, lastTolerance] = precision === 'bf16' ? [2e-2, 5e-2] : [1e-4, 1e-2];
  for (let round = 0; round < Number(args.rounds); round++) {
    // Alternate which side goes first, so a drift in the machine's load does not favour one.
    let p: ReturnType<typeof runPeer>;
    let o: Awaited<ReturnType<typeof runOurs>>;
    if (round % 2 === 0) {
      p = runPeer();
      o = await runOurs();
    } else {
      o = await runOurs();
      p = runPeer();
    }
    if (args['cuda-graphs'] && !graphsError) {
      // Never run on a GPU before: a failed capture must not cost the eager numbers.
      try {
        const g = await runOurs(true);
        graphed = Math.min(graphed, g.ms);
        graphLosses = g.losses;
      } catch (e) {
        graphsError = e instanceof Error ? e.message : String(e);
      }
    }
    peer = Math.min(peer, p.ms);
    ours = Math.min(ours, o.ms);
    ourLosses = o.losses;
    peerLosses = p.losses;
    torchVersion = p.torch;
  }
  console.log(JSON.stringify({
    ours_ms: round2(ours),
    peer_ms: round2(peer),
    ratio: Number((ours / peer).toFixed(3)),
    model: `resnet18-cifar${args.width === '1' ? '' : ` width ${args.width}`}`,
    device,
    batch,
    threads,
    precision,
    channels_last: channelsLast,
    steps,
    rounds: Number(args.rounds),
    first_loss: { ours: ourLosses[0], peer: peerLosses[0] },
    loss_match: Math.abs(ourLosses[0]! - peerLosses[0]!) < firstTolerance && Math.abs(ourLosses.at(-1)! - peerLosses.at(-1)!) < lastTolerance,
    losses: { ours: ourLosses.map((l) => Number(l.toFixed(6))), peer: peerLosses.map((l) => Number(l.toFixed(6))) },
    ...(graphsError ? { graphs_error: graphsError } : {}),
    ...(args['cuda-graphs'] && !graphsError ? {
      ours_graphs_ms: round2(graphed),
      ratio_graphs: Number((graphed / peer).toFixed(3)),
      // Same steps, captured: the replayed losses should follow the eager engine's within bf16 noise.
      graphs_loss_match: graphLosses.length === ourLosses.length && graphLosses.every((l, i) => Math.abs(l - ourLosses[i]!) < 2e-2),
      graphs_losses: graphLosses.map((l) => Number(l.toFixed(6))),
    } : {}),
    libtorch: addon.info().torchVersion,
    peer_torch: torchVersion,
  }));
} finally {
  rmSync(folder, { recursive: true, force: true });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

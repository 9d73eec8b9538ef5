import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { batchOf, planEpoch } from '../src/engine/epoch.js';
import { pinGpu, readDistributedEnv, refuseLaunchedRanks } from '../src/engine/distributed-env.js';
import { shardBatch, shardRange, sliceImageSet } from '../src/engine/distributed-shard.js';
import { withSyncBatchNorm } from '../src/engine/distributed-plan.js';
import { launch, withoutNproc } from '../src/engine/launch.js';
import { weightChecksum } from '../src/engine/distributed.js';
import { runGpuSeconds } from '../src/engine/train.js';
import { SlimError } from '../src/errors.js';
import type { CompiledPlan } from '../src/engine/compile.js';
import { runSlim } from './helpers/cli.js';

describe('sharding the deterministic epoch', () => {
  it('cuts counts into contiguous parts that differ by at most one and cover everything once', () => {
    for (const count of [1, 7, 64, 127, 128, 1000]) {
      for (const world of [1, 2, 3, 4, 8]) {
        if (count < world) continue;
        const parts = Array.from({ length: world }, (_, r) => shardRange(count, r, world));
        expect(parts[0]![0]).toBe(0);
        expect(parts.at(-1)![1]).toBe(count);
        for (let r = 1; r < world; r++) expect(parts[r]![0]).toBe(parts[r - 1]![1]);
        const sizes = parts.map(([a, b]) => b - a);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('over an epoch, every image of every global batch is seen by exactly one rank, with its own crop', () => {
    const count = 1000;
    const batch = 96; // 10 full batches; 40 images fall outside any batch, as in one process
    const epoch = planEpoch(count, { seed: 3, epoch: 1, augment: { crop: 4, flip: true } });
    for (const world of [2, 3]) {
      const seen = new Map<number, number[]>();
      for (let b = 0; b < Math.floor(count / batch); b++) {
        const global = batchOf(epoch, b, batch);
        const shards = Array.from({ length: world }, (_, r) => shardBatch(global, r, world));
        // The shards, in rank order, are exactly the global batch: same images, same placements.
        expect(shards.flatMap((s) => [...s.indices])).toEqual([...global.indices]);
        expect(shards.flatMap((s) => [...s.aug!])).toEqual([...global.aug!]);
        shards.forEach((s) => {
          expect(s.aug!.length).toBe(3 * s.indices.length);
          for (const i of s.indices) seen.set(i, [...(seen.get(i) ?? []), b]);
        });
      }
      expect([...seen.values()].every((batches) => batches.length === 1)).toBe(true);
      expect(seen.size).toBe(Math.floor(count / batch) * batch);
    }
  });

  it('slices an image set without copying pixels', () => {
    const pixels = Uint8Array.from({ length: 5 * 3 * 2 * 2 }, (_, i) => i);
    const set = { name: 's', classes: ['a', 'b'], imageShape: [3, 2, 2] as [number, number, number], pixels, labels: Uint16Array.from([0, 1, 0, 1, 1]) };
    const part = sliceImageSet(set, 2, 4);
    expect([...part.labels]).toEqual([0, 1]);
    expect(part.pixels[0]).toBe(24);
    expect(part.pixels.length).toBe(24);
    expect(part.pixels.buffer).toBe(pixels.buffer);
  });
});

describe('rendezvous variables', () => {
  const torchrun = { RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node-0', MASTER_PORT: '29501' };

  it('reads torchrun / PyTorchJob variables', () => {
    expect(readDistributedEnv(torchrun)).toEqual({ rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'node-0', masterPort: 29501, source: 'torch' });
  });

  it('is not distributed without WORLD_SIZE or with one rank', () => {
    expect(readDistributedEnv({})).toBeUndefined();
    expect(readDistributedEnv({ ...torchrun, WORLD_SIZE: '1', RANK: '0' })).toBeUndefined();
  });

  it("falls back to a Slurm job step's task variables; the job's own shell is no step", () => {
    // srun -n 8 in a job of 16 tasks: the step's 8 are the world.
    const env = { SLURM_PROCID: '5', SLURM_NTASKS: '16', SLURM_STEP_NUM_TASKS: '8', SLURM_LOCALID: '1', SLURM_NTASKS_PER_NODE: '4', MASTER_ADDR: 'n1', MASTER_PORT: '29400' };
    expect(readDistributedEnv(env)).toMatchObject({ rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, source: 'slurm' });
    // sbatch's script or an salloc shell: one process, however many tasks the job has (it was refused
    // for want of MASTER_ADDR, or waited for 3 ranks that would never come).
    expect(readDistributedEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '4', SLURM_LOCALID: '0' })).toBeUndefined();
  });

  it('the commands that train in one process refuse to run as ranks of a launcher (each trained the whole job)', async () => {
    expect(() => refuseLaunchedRanks('slim distill', { ...torchrun })).toThrow(/slim distill trains in one process, and this one was started as one of 4 \(WORLD_SIZE=4\)/);
    expect(() => refuseLaunchedRanks('slim distill', { SLURM_STEP_NUM_TASKS: '2', SLURM_PROCID: '1' })).toThrow(/one of 2 \(SLURM_STEP_NUM_TASKS=2\)/);
    expect(() => refuseLaunchedRanks('slim distill', { WORLD_SIZE: '1', SLURM_NTASKS: '4' })).not.toThrow();
    const r = await runSlim(['distill', '--teacher', 't.onnx', '--student', 'resnet18-cifar', '--data', 'cifar10', '--out', 's.onnx'], { env: { WORLD_SIZE: '2', RANK: '1' } });
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/slim distill trains in one process/)]);
  });

  it("GPU-seconds count every rank, and a resumed run adds the checkpoint's total however many ranks made it", () => {
    expect(runGpuSeconds('cuda', 4, { seconds: 0 }, 10)).toBe(40);
    // 2 ranks for 100 s, then resumed on 4 for 10 s: 200 + 40 (the earlier run was counted at 4 ranks: 440).
    expect(runGpuSeconds('cuda', 4, { seconds: 100, gpuSeconds: 200 }, 10)).toBe(240);
    // A checkpoint from before the total was kept: its seconds at this run's ranks.
    expect(runGpuSeconds('cuda', 2, { seconds: 100 }, 10)).toBe(220);
    expect(runGpuSeconds('cpu', 4, { seconds: 100, gpuSeconds: 5 }, 10)).toBe(0);
  });

  it('names the variable that is wrong', () => {
    const bad = (env: Record<string, string>): string => {
      try {
        readDistributedEnv(env);
      } catch (e) {
        expect(e).toBeInstanceOf(SlimError);
        expect((e as SlimError).exitCode).toBe(2);
        return (e as Error).message;
      }
      throw new Error('expected an error');
    };
    expect(bad({ ...torchrun, RANK: '4' })).toMatch(/RANK=4 is not below the world size 4/);
    expect(bad({ ...torchrun, RANK: 'x' })).toMatch(/RANK=x/);
    expect(bad({ WORLD_SIZE: '2', MASTER_ADDR: 'a' })).toMatch(/RANK is not set/);
    expect(bad({ ...torchrun, MASTER_ADDR: '' })).toMatch(/rank 1 of 4 has no MASTER_ADDR/);
    expect(bad({ ...torchrun, MASTER_PORT: '70000' })).toMatch(/MASTER_PORT=70000/);
  });

  it('pins each local rank to its own GPU', () => {
    const env: Record<string, string | undefined> = {};
    expect(pinGpu(1, env)).toBe('1');
    expect(env.CUDA_VISIBLE_DEVICES).toBe('1');
    const listed: Record<string, string | undefined> = { CUDA_VISIBLE_DEVICES: '4,5,6,7' };
    expect(pinGpu(2, listed)).toBe('6');
    expect(listed.CUDA_VISIBLE_DEVICES).toBe('6');
    // Slurm --gpus-per-task=1 already gives each task one card.
    expect(pinGpu(3, { CUDA_VISIBLE_DEVICES: '2' })).toBe('2');
    expect(() => pinGpu(2, { CUDA_VISIBLE_DEVICES: '0,1' })).toThrow(/LOCAL_RANK 2 has no GPU/);
  });
});

describe('launcher and plan helpers', () => {
  it('drops --nproc from the worker command line', () => {
    expect(withoutNproc(['train', '--nproc', '2', '--batch', '64'])).toEqual(['train', '--batch', '64']);
    expect(withoutNproc(['train', '--nproc=4', '--sync-bn'])).toEqual(['train', '--sync-bn']);
  });

  it('the cross-rank weight checksum sees a one-ulp change and a swap', () => {
    const w = new Map([['a', Float32Array.from([0.5, -1.25, 3])], ['b', Float32Array.from([2, 7])]]);
    const base = weightChecksum(w);
    expect(weightChecksum(new Map([['a', Float32Array.from([0.5, -1.25, 3])], ['b', Float32Array.from([2, 7])]]))).toBe(base);
    expect(weightChecksum(new Map([['a', Float32Array.from([0.5, -1.25, 3 + 2 ** -22])], ['b', Float32Array.from([2, 7])]]))).not.toBe(base);
    expect(weightChecksum(new Map([['a', Float32Array.from([-1.25, 0.5, 3])], ['b', Float32Array.from([2, 7])]]))).not.toBe(base);
  });

  it('SyncBatchNorm swaps only batch_norm kernels', () => {
    const step = (kernel: string) => ({ kernel, node: kernel, inputs: [], outputs: [], ints: [], floats: [] });
    const plan = { steps: [step('conv'), step('batch_norm'), step('relu')] } as unknown as CompiledPlan;
    expect(withSyncBatchNorm(plan).steps.map((s) => s.kernel)).toEqual(['conv', 'sync_batch_norm', 'relu']);
    expect(plan.steps[1]!.kernel).toBe('batch_norm');
  });
});

describe('the launcher: what the other ranks said', () => {
  /** A worker script: each rank writes `line` for its RANK to stderr and exits with `code`. */
  const worker = (script: string): string => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'slim-launch-')), 'worker.mjs');
    writeFileSync(file, script);
    return file;
  };
  const launched = async (script: string): Promise<{ code: number; stderr: string }> => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (written.push(String(s)), true));
    try {
      const r = await launch({ nproc: 2, args: [], device: 'cpu', entry: [worker(script)], graceSeconds: 2, log: (l) => written.push(`${l}\n`) });
      return { code: r.code, stderr: written.join('') };
    } finally {
      spy.mockRestore();
    }
  };

  it("keeps a rank's own error when rank 0 fails otherwise after it (the cause is rank 1's)", async () => {
    const r = await launched(`
      if (process.env.RANK === '1') { process.stderr.write('slim: img7.png: cannot decode the image\\n'); process.exit(1); }
      setTimeout(() => { process.stderr.write('slim: rank 0: all-reduce failed: connection closed\\n'); process.exit(1); }, 100);`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[rank 1] slim: img7.png: cannot decode the image');
  });

  it('says a refusal every rank meets (exit 2) once: rank 0 said it', async () => {
    const r = await launched(`process.stderr.write('slim: rank ' + process.env.RANK + ': --lr must be a number\\n'); process.exit(2);`);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('[rank 1] slim:');
  });
});

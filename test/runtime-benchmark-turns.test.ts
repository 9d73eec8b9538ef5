import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { emptyGraph, type Graph } from '../src/onnx/graph.js';
import { encodeModel } from '../src/onnx/io.js';
import type { ModelTimer, PeakRss } from '../src/runtime/benchmark.js';
import { autoRuns, LATENCY_BLOCK, THROUGHPUT_TURNS, timeInTurns, waitUntilIdle } from '../src/runtime/benchmark-turns.js';
import { benchmarkInChildren } from '../src/runtime/benchmark-isolated.js';
import { latencyMeter } from '../src/compress/prune/latency.js';
import { makeTensor } from '../src/onnx/tensor.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const PEAK: PeakRss = { peakRssBytes: 2e6, baselineRssBytes: 1e6, peakRssSource: 'vmhwm' };

/**
 * A model on a virtual machine: each run costs `ms` of the shared clock, twice that while the clock is
 * inside the machine's busy window (another process's load), and records what it was asked.
 */
class VirtualMachine {
  now = 0;
  constructor(private readonly busy: [number, number] = [Infinity, Infinity]) {}
  run(ms: number): number {
    const cost = this.now >= this.busy[0] && this.now < this.busy[1] ? 2 * ms : ms;
    this.now += cost;
    return cost;
  }
}

function fakeTimer(name: string, machine: VirtualMachine, calls: string[], options: { throughputBatch?: number; failOnTurn?: number } = {}): ModelTimer & { finished: boolean; closed: boolean; quiesced: number } {
  let turns = 0;
  const timer = {
    quiesced: 0,
    async quiesce() {
      timer.quiesced++;
    },
    batch: 1,
    throughputBatch: options.throughputBatch ?? 0,
    threads: 1,
    finished: false,
    closed: false,
    async warmup(runs: number) {
      calls.push(`${name} warmup ${runs}`);
      for (let i = 0; i < runs; i++) machine.run(1);
    },
    async timeRuns(runs: number, rewarm: boolean) {
      if (++turns === options.failOnTurn) throw new SlimError({ problem: `${name} failed` }, 'input');
      calls.push(`${name} time ${runs}${rewarm ? ' rewarm' : ''}`);
      if (rewarm) machine.run(1);
      return Array.from({ length: runs }, () => machine.run(1));
    },
    async timeThroughput(seconds: number, rewarm: boolean) {
      calls.push(`${name} throughput ${seconds}${rewarm ? ' rewarm' : ''}`);
      return { runs: 5, seconds: 0.5 };
    },
    async finish() {
      timer.finished = true;
      return PEAK;
    },
    async close() {
      timer.closed = true;
    },
  };
  return timer;
}

describe('timeInTurns', () => {
  it('gives each model its runs in blocks, rotating the order each round, with a re-warm run when others ran between', async () => {
    const calls: string[] = [];
    const machine = new VirtualMachine();
    const timers = ['a', 'b', 'c'].map((n) => fakeTimer(n, machine, calls, { throughputBatch: 8 }));
    const results = await timeInTurns(timers, { warmupRuns: 3, runs: 25, throughputSeconds: 2 });
    expect(LATENCY_BLOCK).toBe(10);
    // The first warm-up run apart: --runs auto sizes itself from the runs after it.
    expect(calls.slice(0, 6)).toEqual(['a warmup 1', 'a warmup 2', 'b warmup 1', 'b warmup 2', 'c warmup 1', 'c warmup 2']);
    expect(calls.slice(6, 15)).toEqual([
      'a time 10 rewarm', 'b time 10 rewarm', 'c time 10 rewarm',
      'b time 10 rewarm', 'c time 10 rewarm', 'a time 10 rewarm',
      'c time 5 rewarm', 'a time 5 rewarm', 'b time 5 rewarm',
    ]);
    const throughput = calls.slice(15);
    expect(throughput).toHaveLength(3 * THROUGHPUT_TURNS);
    expect(throughput.slice(0, 3)).toEqual(['a throughput 0.5 rewarm', 'b throughput 0.5 rewarm', 'c throughput 0.5 rewarm']);
    expect(results).toHaveLength(3);
    for (const r of results) {
      expect(r.samplesMs).toHaveLength(25);
      expect(r.runs).toBe(25);
      // Four slices of 5 runs of batch 8 in 0.5 s each: 20 runs, 160 images in 2 s.
      expect(r.throughputRuns).toBe(5 * THROUGHPUT_TURNS);
      expect(r.throughputIps).toBeCloseTo(80, 6);
      expect(r).toMatchObject(PEAK);
    }
    expect(timers.every((t) => t.finished && t.closed)).toBe(true);
    // After each of its turns (3 latency, 4 throughput) a model waits for its runtime to go idle.
    expect(timers.map((t) => t.quiesced)).toEqual([7, 7, 7]);
  });

  it('one model: no re-warm runs, and no throughput phase for a timer without a throughput batch', async () => {
    const calls: string[] = [];
    const timer = fakeTimer('a', new VirtualMachine(), calls);
    const [result] = await timeInTurns([timer], { warmupRuns: 0, runs: 50, throughputSeconds: 2 });
    expect(calls).toEqual(['a warmup 0', ...Array(5).fill('a time 10')]);
    expect(timer.quiesced).toBe(0); // nobody waits for it
    expect(result!.throughputRuns).toBe(0);
    expect(result!.throughputIps).toBe(0);
  });

  it('load that comes and goes falls on every model alike in turns, but on one model when timed one after another', async () => {
    // Two identical 1 ms models; the machine runs at half speed from 140 ms of its clock on.
    const busy: [number, number] = [140, 400];
    const options = { warmupRuns: 10, runs: 100, throughputSeconds: 0 };
    const sequentialMachine = new VirtualMachine(busy);
    const [a1] = await timeInTurns([fakeTimer('a', sequentialMachine, [])], options);
    const [b1] = await timeInTurns([fakeTimer('b', sequentialMachine, [])], options);
    expect(b1!.latencyMs.p50 / a1!.latencyMs.p50).toBe(2); // "a is 2× faster", and it is not

    const turnsMachine = new VirtualMachine(busy);
    const [a2, b2] = await timeInTurns([fakeTimer('a', turnsMachine, []), fakeTimer('b', turnsMachine, [])], options);
    expect(b2!.latencyMs.p50 / a2!.latencyMs.p50).toBe(1);
    // The load was there: both saw slow runs, in about equal numbers.
    const slow = [a2!, b2!].map((r) => r.samplesMs.filter((ms) => ms === 2).length);
    expect(Math.min(...slow)).toBeGreaterThan(20);
    expect(Math.abs(slow[0]! - slow[1]!)).toBeLessThanOrEqual(LATENCY_BLOCK);
  });

  it('an error in any turn closes every timer and finishes none', async () => {
    const machine = new VirtualMachine();
    const timers = [fakeTimer('a', machine, []), fakeTimer('b', machine, [], { failOnTurn: 3 })];
    await expect(timeInTurns(timers, { warmupRuns: 1, runs: 50, throughputSeconds: 0 })).rejects.toThrow('b failed');
    expect(timers.map((t) => [t.finished, t.closed])).toEqual([[false, true], [false, true]]);
  });
});

describe('--runs auto', () => {
  it('sizes itself from the warm-up runs after the first, which sets ONNX Runtime up', async () => {
    // A first run of 300 ms and free ones after it: from all of them (30 ms a run) auto took 100 runs.
    const machine = new VirtualMachine();
    const timer = fakeTimer('a', machine, []);
    const warmup = timer.warmup.bind(timer);
    let warmups = 0;
    timer.warmup = async (runs: number) => {
      if (warmups++ === 0) await new Promise((resolve) => setTimeout(resolve, 300));
      await warmup(runs);
    };
    const [result] = await timeInTurns([timer], { warmupRuns: 10, runs: 'auto', throughputSeconds: 0 });
    expect(result!.runs).toBe(1000);
  });

  it('times about 2 s of the slowest model, in whole turns, 100 to 1000 runs', () => {
    expect(autoRuns(undefined)).toBe(100); // no warm-up to measure
    expect(autoRuns(0.5)).toBe(1000);
    expect(autoRuns(4)).toBe(500);
    expect(autoRuns(7)).toBe(290);
    expect(autoRuns(50)).toBe(100);
  });
});

describe('waitUntilIdle', () => {
  const wait = { intervalMs: 2, idleBelow: 1, limitMs: 200, fallbackMs: 30 };

  it('returns at the first reading that adds less than idleBelow to the counter', async () => {
    // Spinning threads: 5 units per reading three times, then half a unit (idle).
    const readings = [0, 5, 10, 15, 15.5, 40];
    let k = 0;
    await waitUntilIdle(() => readings[Math.min(k++, readings.length - 1)], wait);
    expect(k).toBe(5);
  });

  it('gives up after limitMs of a counter that never stops, and waits fallbackMs when it cannot be read', async () => {
    let spin = 0;
    let t = performance.now();
    await waitUntilIdle(() => (spin += 10), wait);
    expect(performance.now() - t).toBeGreaterThanOrEqual(199);
    t = performance.now();
    await waitUntilIdle(() => undefined, wait);
    expect(performance.now() - t).toBeGreaterThanOrEqual(29);
    expect(performance.now() - t).toBeLessThan(150);
  });
});

describe('benchmarkInChildren', () => {
  const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const TINY = path.join(REPO, 'test/fixtures/torch-tiny-resnet.onnx');
  const quick = { threads: 1, warmupRuns: 2, runs: 50, throughputSeconds: 0.1 };

  function reluFile(dir: string, batch: number): string {
    const dims = [batch, 3, 8, 8];
    const graph: Graph = {
      ...emptyGraph('relu'),
      inputs: [{ name: 'x', dtype: 'float32', shape: dims }],
      outputs: [{ name: 'y', dtype: 'float32', shape: dims }],
      nodes: [{ name: 'relu', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: {} }],
    };
    const file = path.join(dir, `relu-b${batch}.onnx`);
    writeFileSync(file, encodeModel(graph).model);
    return file;
  }

  it('times several models, each in its own process with its own batch, results in the given order', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'slim-turns-'));
    const phases: string[] = [];
    const results = await benchmarkInChildren(
      [{ file: TINY, options: { throughputBatch: 4 } }, { file: reluFile(dir, 3) }],
      { ...quick, onProgress: (done, total, phase) => phases.push(`${phase} ${done}/${total}`) },
    );
    expect(results.map((r) => [r.batch, r.throughputBatch])).toEqual([[1, 4], [3, 3]]);
    for (const r of results) {
      expect(r.samplesMs).toHaveLength(50);
      expect(r.throughputRuns).toBeGreaterThanOrEqual(THROUGHPUT_TURNS);
      expect(r.peakRssBytes).toBeGreaterThan(10e6);
    }
    // The ResNet takes longer per run than one Relu over 3×3×8×8.
    expect(results[0]!.latencyMs.p50).toBeGreaterThan(results[1]!.latencyMs.p50);
    expect(phases).toContain('warmup 2/2');
    expect(phases).toContain('latency 100/100');
    expect(phases.at(-1)).toBe(`throughput ${2 * THROUGHPUT_TURNS}/${2 * THROUGHPUT_TURNS}`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a model that cannot open fails the whole call with its own error, and the others are stopped', async () => {
    const missing = path.join(REPO, 'no-such-model.onnx');
    const e = await benchmarkInChildren([{ file: TINY }, { file: missing }], quick).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(SlimError);
    expect((e as SlimError).kind).toBe('input');
    expect((e as SlimError).message).toContain('no-such-model.onnx: file not found');
    // The tiny ResNet's process, opened fine, does not outlive the call.
    const ours = (): string[] => execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('benchmark-child'));
    for (let i = 0; i < 50 && ours().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ours()).toEqual([]);
  });
});

describe("pruning's latency meter", () => {
  /** x[1, n] · W[n, n]: latency grows with n². */
  const gemm = (n: number): Graph => ({
    ...emptyGraph(`gemm-${n}`),
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, n] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [1, n] }],
    nodes: [{ name: 'gemm', opType: 'Gemm', domain: '', inputs: ['x', 'w'], outputs: ['y'], attributes: {} }],
    initializers: new Map([['w', makeTensor('float32', [n, n], new Float32Array(n * n).fill(0.001))]]),
  });

  it('gives later graphs on the scale of the first: the reference again ≈ itself, a quarter of the work clearly less', async () => {
    const measure = latencyMeter({ threads: 1 });
    const first = await measure(gemm(1024));
    const again = await measure(gemm(1024));
    const quarter = await measure(gemm(512));
    expect(first).toBeGreaterThan(0);
    expect(again / first).toBeGreaterThan(0.7);
    expect(again / first).toBeLessThan(1.4);
    expect(quarter / first).toBeLessThan(0.6);
  });
});

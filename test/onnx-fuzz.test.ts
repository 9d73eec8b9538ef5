/**
 * 200 seeded corruptions of a PyTorch-exported model through decodeModel + validateGraph. Each must
 * load or throw a one-line SlimError; any other exception is a bug. The cases run in a worker thread
 * so that a hang is caught: the worker is terminated when one case takes longer than CASE_LIMIT_MS.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { afterAll, expect, it } from 'vitest';
import { CORRUPTION_KINDS, corruptions, tryLoad, type LoadOutcome } from '../src/onnx/fuzz.js';

const MODEL = new URL('./fixtures/torch-tiny-resnet.onnx', import.meta.url);
const COUNT = 200;
const SEED = 20240611;
/** Typical cases take a few milliseconds; a slow CI machine gets a wide margin. */
const CASE_LIMIT_MS = 10_000;

// The worker loads the TypeScript source through tsx, the same way `npx tsx` runs the bench.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import('tsx/esm/api')
  .then(({ tsImport }) => tsImport(workerData.fuzz, workerData.parent))
  .then(({ tryLoad }) => {
    parentPort.on('message', ({ index, bytes }) => parentPort.postMessage({ index, result: tryLoad(bytes, 'fuzz.onnx') }));
    parentPort.postMessage({ ready: true });
  })
  .catch((e) => parentPort.postMessage({ fatal: String(e && e.stack || e) }));
`;

class CaseRunner {
  private readonly worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fuzz: new URL('../src/onnx/fuzz.ts', import.meta.url).href, parent: import.meta.url },
  });
  private readonly ready: Promise<void>;
  private pending: { index: number; resolve: (r: LoadOutcome) => void; reject: (e: unknown) => void } | undefined;

  constructor() {
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', (m: { ready?: boolean; fatal?: string }) => (m.ready ? resolve() : reject(new Error(m.fatal))));
      this.worker.on('error', (e) => (this.pending ? this.pending.reject(e) : reject(e)));
    });
    this.worker.on('message', (m: { index?: number; result?: LoadOutcome }) => {
      if (this.pending && m.index === this.pending.index && m.result) this.pending.resolve(m.result);
    });
  }

  /** The outcome, or 'hang' when the case ran past the limit (the worker is then gone). */
  async run(index: number, bytes: Uint8Array): Promise<LoadOutcome | 'hang'> {
    await this.ready;
    try {
      return await new Promise<LoadOutcome | 'hang'>((resolve, reject) => {
        const timer = setTimeout(() => {
          void this.worker.terminate();
          resolve('hang');
        }, CASE_LIMIT_MS);
        const done = (r: LoadOutcome): void => {
          clearTimeout(timer);
          resolve(r);
        };
        this.pending = { index, resolve: done, reject };
        this.worker.postMessage({ index, bytes });
      });
    } finally {
      this.pending = undefined;
    }
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }
}

const runner = new CaseRunner();
afterAll(() => runner.close());

it(`${COUNT} corrupted copies of a model each load or fail with a clear error`, async () => {
  const source = new Uint8Array(readFileSync(MODEL));
  expect(tryLoad(source)).toEqual({ outcome: 'loaded' });

  const counts: Record<string, Record<string, number>> = {};
  const bad: string[] = [];
  let index = 0;
  for (const c of corruptions(source, { seed: SEED, count: COUNT })) {
    const result = await runner.run(index, c.bytes);
    const outcome = result === 'hang' ? 'hang' : result.outcome;
    const byKind = (counts[c.kind] ??= {});
    byKind[outcome] = (byKind[outcome] ?? 0) + 1;
    if (result === 'hang') {
      bad.push(`#${index} ${c.description}: no answer within ${CASE_LIMIT_MS} ms`);
      break; // the worker is gone
    }
    if (result.outcome === 'crash') bad.push(`#${index} ${c.description}: ${result.message}`);
    if (result.outcome === 'error' && (result.message.includes('\n') || !result.message.startsWith('fuzz.onnx'))) {
      bad.push(`#${index} ${c.description}: unclear error ${JSON.stringify(result.message)}`);
    }
    index++;
  }
  const total = (o: string): number => Object.values(counts).reduce((n, k) => n + (k[o] ?? 0), 0);
  console.log(`onnx-fuzz: ${JSON.stringify({ count: index, errors: total('error'), loaded: total('loaded'), crashes: total('crash'), hangs: total('hang'), byKind: counts })}`);
  expect(bad).toEqual([]);
  expect(index).toBe(COUNT);
  expect(Object.keys(counts).sort()).toEqual([...CORRUPTION_KINDS].sort());
  // Both outcomes occur (a flipped bit in a weight leaves a valid model), so the harness sees real results.
  expect(total('error')).toBeGreaterThan(0);
  expect(total('loaded')).toBeGreaterThan(0);
});

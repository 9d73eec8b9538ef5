/**
 * Benchmarks in fresh Node processes, one per model, taking turns (benchmark-turns.ts). Peak RSS then
 * belongs to that model alone: no other model's freed-but-resident pages or pending GC in the numbers,
 * and on systems without a resettable high-water mark (macOS, containers without /proc/self/clear_refs)
 * the whole-process peak is still this model's peak. Each child holds one open session and runs what
 * the parent asks, one request at a time; errors come back over the IPC channel, a SlimError keeping its
 * kind (exit code) and parts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SlimError, type ErrorKind, type ErrorParts } from '../errors.js';
import { timingPlan, type BenchmarkOptions, type BenchmarkResult, type ModelTimer, type PeakRss, type TimerOptions } from './benchmark.js';
import { timeOpening } from './benchmark-turns.js';

/** What the parent asks of a child; each gets exactly one reply. */
export type ChildRequest =
  | { type: 'open'; file: string; options: TimerOptions }
  | { type: 'warmup'; runs: number }
  | { type: 'time'; runs: number; rewarm: boolean }
  | { type: 'throughput'; seconds: number; rewarm: boolean }
  | { type: 'quiesce' }
  | { type: 'finish' };

export type ChildReply =
  | { type: 'opened'; batch: number; throughputBatch: number; threads: number }
  | { type: 'done' }
  | { type: 'samples'; samplesMs: number[] }
  | { type: 'throughput'; runs: number; seconds: number }
  | { type: 'finished'; peak: PeakRss }
  | { type: 'slim-error'; parts: ErrorParts; kind: ErrorKind }
  | { type: 'crash'; message: string; stack?: string };

/** The child entry beside this module: .js in the build, .ts when run from source (tests, tsx). */
function childEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ts = here.endsWith('.ts');
  const file = here.replace(/benchmark-isolated\.(ts|js)$/, `benchmark-child.${ts ? 'ts' : 'js'}`);
  if (!existsSync(file)) throw new Error(`benchmark child entry missing: ${file}`);
  // From source, the child needs a TypeScript loader: tsx, a dev dependency as running from source is.
  // Resolved here, not by the child, whose working directory may be anywhere.
  const execArgv = ts ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
  return { file, execArgv };
}

/** One request at a time to one child; its death fails the request in flight (and every later one). */
class ChildChannel {
  private readonly child: ChildProcess;
  private pending: { resolve(reply: ChildReply): void; reject(error: Error): void } | undefined;
  private ended: Error | undefined;

  constructor(private readonly file: string) {
    const entry = childEntry();
    this.child = fork(entry.file, [], { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child.on('message', (reply: ChildReply) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(reply);
    });
    this.child.on('error', (e) => this.end(e));
    this.child.on('close', (code, signal) =>
      this.end(
        signal === 'SIGKILL'
          ? // The kernel's OOM killer, most often: the model did not fit beside the runtime.
            new SlimError({ file, problem: 'the benchmark process was killed (SIGKILL; out of memory?) before it finished', fix: 'free memory, or benchmark with a smaller --batch' })
          : new Error(`benchmark process for ${file} ended (${signal ?? `exit ${code}`}) without a result`),
      ),
    );
  }

  private end(error: Error): void {
    this.ended ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.ended);
  }

  async ask<T extends ChildReply['type']>(request: ChildRequest, expected: T): Promise<Extract<ChildReply, { type: T }>> {
    if (this.ended) throw this.ended;
    const reply = await new Promise<ChildReply>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send(request);
    });
    if (reply.type === expected) return reply as Extract<ChildReply, { type: T }>;
    if (reply.type === 'slim-error') throw new SlimError(reply.parts, reply.kind);
    if (reply.type === 'crash') {
      // A slimkit bug in the child: its message here, its stack where the CLI prints stacks (--debug).
      const error = new Error(`benchmark of ${this.file} failed in its process: ${reply.message}`);
      if (reply.stack) error.stack = `${error.message}\n${reply.stack}`;
      throw error;
    }
    throw new Error(`benchmark process for ${this.file} answered ${reply.type} to ${request.type}`);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }
}

async function openChildTimer(file: string, options: TimerOptions): Promise<ModelTimer> {
  const channel = new ChildChannel(file);
  try {
    const opened = await channel.ask({ type: 'open', file, options }, 'opened');
    let closed = false;
    return {
      batch: opened.batch,
      throughputBatch: opened.throughputBatch,
      threads: opened.threads,
      warmup: async (runs) => void (await channel.ask({ type: 'warmup', runs }, 'done')),
      timeRuns: async (runs, rewarm) => (await channel.ask({ type: 'time', runs, rewarm }, 'samples')).samplesMs,
      timeThroughput: async (seconds, rewarm) => {
        const reply = await channel.ask({ type: 'throughput', seconds, rewarm }, 'throughput');
        return { runs: reply.runs, seconds: reply.seconds };
      },
      quiesce: async () => void (await channel.ask({ type: 'quiesce' }, 'done')),
      finish: async () => {
        const { peak } = await channel.ask({ type: 'finish' }, 'finished');
        closed = true;
        return peak;
      },
      close: async () => {
        if (!closed) channel.kill();
        closed = true;
      },
    };
  } catch (e) {
    channel.kill();
    throw e;
  }
}

/** A model to time in its own process, with what differs between models. */
export interface IsolatedModel {
  file: string;
  options?: Pick<TimerOptions, 'batch' | 'throughputBatch' | 'inputShapes' | 'label'>;
}

/**
 * Every model in a process of its own, all open at once and timed in turns; results in the given order.
 * The shared options (threads, runs, …) apply to all; progress counts over all models.
 */
export async function benchmarkInChildren(models: readonly IsolatedModel[], options: Omit<BenchmarkOptions, 'batch' | 'throughputBatch' | 'inputShapes' | 'label'> = {}): Promise<BenchmarkResult[]> {
  const plan = timingPlan(options);
  const { onProgress, runs: _runs, warmupRuns: _warmup, throughputSeconds: _seconds, ...shared } = options;
  return timeOpening(models.map((m) => openChildTimer(m.file, { ...shared, ...m.options })), { ...plan, ...(onProgress ? { onProgress } : {}) });
}

/** One model in a process of its own. */
export async function benchmarkInChild(file: string, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const { batch, throughputBatch, inputShapes, label, ...shared } = options;
  const perModel = { ...(batch !== undefined ? { batch } : {}), ...(throughputBatch !== undefined ? { throughputBatch } : {}), ...(inputShapes ? { inputShapes } : {}), ...(label ? { label } : {}) };
  const [result] = await benchmarkInChildren([{ file, options: perModel }], shared);
  return result!;
}

/**
 * `benchmark` in a fresh Node process of its own, one per model. Peak RSS and latency then belong to
 * that model alone: no earlier model's freed-but-resident pages or pending GC in the numbers, and on
 * systems without a resettable high-water mark (macOS, containers without /proc/self/clear_refs) the
 * whole-process peak is still this model's peak. Progress and errors come back over the IPC channel;
 * a SlimError keeps its kind (exit code) and parts.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SlimError, type ErrorKind, type ErrorParts } from '../errors.js';
import type { BenchmarkOptions, BenchmarkPhase, BenchmarkResult } from './benchmark.js';

/** What the parent sends: the model file and every option except the progress callback. */
export interface ChildRequest {
  file: string;
  options: Omit<BenchmarkOptions, 'onProgress'>;
}

export type ChildMessage =
  | { type: 'progress'; done: number; total: number; phase: BenchmarkPhase }
  | { type: 'result'; result: BenchmarkResult }
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

export function benchmarkInChild(file: string, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const { onProgress, ...rest } = options;
  const entry = childEntry();
  const child = fork(entry.file, [], { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      f();
    };
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'progress') onProgress?.(message.done, message.total, message.phase);
      else if (message.type === 'result') settle(() => resolve(message.result));
      else if (message.type === 'slim-error') settle(() => reject(new SlimError(message.parts, message.kind)));
      else {
        // A slimkit bug in the child: its message here, its stack where the CLI prints stacks (--debug).
        const error = new Error(`benchmark of ${file} failed in its process: ${message.message}`);
        if (message.stack) error.stack = `${error.message}\n${message.stack}`;
        settle(() => reject(error));
      }
    });
    child.on('error', (e) => settle(() => reject(e)));
    child.on('close', (code, signal) =>
      settle(() =>
        reject(
          signal === 'SIGKILL'
            ? // The kernel's OOM killer, most often: the model did not fit beside the runtime.
              new SlimError({ file, problem: 'the benchmark process was killed (SIGKILL; out of memory?) before it finished', fix: 'free memory, or benchmark with a smaller --batch' })
            : new Error(`benchmark process for ${file} ended (${signal ?? `exit ${code}`}) without a result`),
        ),
      ),
    );
    child.send({ file, options: rest } satisfies ChildRequest);
  });
}

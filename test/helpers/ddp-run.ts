import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { loadDist } from '../../src/engine/distributed-native.js';
import { nativeAvailable } from '../../src/engine/native.js';
import { loadModel } from '../../src/onnx/validate.js';
import { REPO_ROOT } from './fixtures.js';

/**
 * `slim` in a child process that a test can watch while it runs (worker pids, files appearing) and
 * signal, for the data-parallel fault tests.
 */
export interface SlimRun {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  /** Settles when the process exits. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function startSlim(args: string[], options: { env?: Record<string, string> } = {}): SlimRun {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = {
    child,
    stdout: '',
    stderr: '',
    done: undefined as unknown as SlimRun['done'],
  };
  child.stdout!.on('data', (d: Buffer) => (run.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  run.done = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout: run.stdout, stderr: run.stderr }));
  });
  return run;
}

/** Polls until `check` holds (or throws after `timeoutMs`). */
export async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Worker pids the launcher announced ("pids rank 0=…, rank 1=…"). */
export function workerPids(stderr: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of stderr.matchAll(/rank (\d+)=(\d+)/g)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

export function fileAppears(file: string): () => boolean {
  return () => existsSync(file);
}

/** Largest absolute difference between same-named initializers of two ONNX files, and where. */
export async function weightDiff(a: string, b: string): Promise<{ max: number; name: string; tensors: number }> {
  const [x, y] = await Promise.all([loadModel(a), loadModel(b)]);
  let max = 0;
  let name = '';
  for (const [key, t] of x.graph.initializers) {
    const u = t.data as Float32Array;
    const other = y.graph.initializers.get(key);
    if (!other) throw new Error(`${b} lacks initializer ${key}`);
    const v = other.data as Float32Array;
    if (u.length !== v.length) throw new Error(`${key}: ${u.length} vs ${v.length} elements`);
    for (let i = 0; i < u.length; i++) {
      const d = Math.abs(u[i]! - v[i]!);
      if (!(d <= max)) {
        max = d;
        name = key;
      }
    }
  }
  return { max, name, tensors: x.graph.initializers.size };
}

/** Whether this machine can run the data-parallel tests: the addon, built with c10d's Gloo backend. */
export function glooAvailable(): boolean {
  if (!nativeAvailable()) return false;
  try {
    return loadDist().available().gloo;
  } catch {
    return false;
  }
}

import './helpers/engine-env.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/engine/checkpoint.js';
import { nativeAvailable } from '../src/engine/native.js';

/**
 * Checkpoint → SIGKILL mid-epoch → --resume gives the same weights, bit for bit, as a run that was never
 * interrupted (CPU runs are deterministic: the epoch order, crops and dropout seeds are functions of
 * (seed, epoch, step), and the checkpoint holds weights, BN statistics and optimizer state).
 */

const DATA_DIR = process.env.SLIM_DATA_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar10');
const CHILD = path.join(import.meta.dirname, 'helpers', 'engine-train-child.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'slim-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs the child; `killWhen` sees each output line and returns true to SIGKILL it there. */
function runChild(args: object, killWhen?: (line: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (killWhen?.(line)) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ lines, code, signal }));
  });
}

describe.skipIf(!nativeAvailable())('checkpoint, kill -9, resume', () => {
  it('resumes a killed run to the weights of an uninterrupted one', async () => {
    const epochs = 3;
    const stepsPerEpoch = 1024 / 64;
    const reference = await runChild({ dataDir: DATA_DIR, out: path.join(dir, 'reference.ckpt'), epochs });
    expect(reference.code).toBe(0);

    const checkpointDir = path.join(dir, 'ckpt');
    const ckpt = path.join(checkpointDir, 'last.ckpt');
    // Kill in the middle of epoch 2, once epoch 1's checkpoint is on disk.
    const killed = await runChild({ dataDir: DATA_DIR, checkpointDir, out: path.join(dir, 'killed.ckpt'), epochs }, (line) => {
      const step = /^step (\d+)$/.exec(line);
      return step !== null && Number(step[1]) >= stepsPerEpoch + 5 && existsSync(ckpt);
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(path.join(dir, 'killed.ckpt'))).toBe(false);
    expect(existsSync(ckpt)).toBe(true);

    const resumed = await runChild({ dataDir: DATA_DIR, checkpointDir, resume: true, out: path.join(dir, 'resumed.ckpt'), epochs });
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(resumed.lines.at(-1)!) as { resumedFrom: number; steps: number };
    // At most one epoch of work lost: it restarts at the start of epoch 2.
    expect(summary.resumedFrom).toBe(1);
    expect(summary.steps).toBe(epochs * stepsPerEpoch);
    expect(resumed.lines.find((l) => l.startsWith('step '))).toBe(`step ${stepsPerEpoch + 1}`);

    const a = await readCheckpoint(path.join(dir, 'reference.ckpt'));
    const b = await readCheckpoint(path.join(dir, 'resumed.ckpt'));
    expect([...b.weights.keys()]).toEqual([...a.weights.keys()]);
    for (const [name, w] of a.weights) {
      expect(Buffer.from(b.weights.get(name)!.buffer).equals(Buffer.from(w.buffer)), `'${name}' is bit-identical`).toBe(true);
    }
  }, 240_000);
});

import './helpers/engine-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/engine/checkpoint.js';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { glooAvailable, fileAppears, startSlim, waitFor, workerPids } from './helpers/ddp-run.js';

/**
 * Faults in a 2-rank run: a worker killed with SIGKILL, or frozen with SIGSTOP, mid-epoch. The
 * launcher must exit non-zero within 60 s naming the rank, the last good checkpoint must survive, and
 * `--resume` must complete the run — on 1 rank after the kill (a 2-rank checkpoint resumes on any rank
 * count), on 2 ranks after the freeze.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'slim-ddp-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const canRun = glooAvailable();

/** ResNet18 at width 0.25 on 768 images: 6 steps of 128 per epoch, a few seconds each on two cores. */
function args(checkpointDir: string, out: string, extra: string[]): string[] {
  return [
    'train', '--model', 'resnet18-cifar', '--width', '0.25', '--data', 'cifar10', '--data-dir', CIFAR_DIR,
    '--train-limit', '768', '--test-limit', '128', '--batch', '128', '--epochs', '2', '--lr', '0.05', '--seed', '2',
    '--checkpoint-dir', checkpointDir, '--out', out, '--json', ...extra,
  ];
}

interface Summary {
  epochs: number;
  steps: number;
  resumed_from_epoch?: number;
  test_top1: number;
  onnxruntime_top1: number;
  ranks?: number;
}

/** Starts a 2-rank run, waits for epoch 1's checkpoint and a little into epoch 2, and hits rank `victim` (default 1) with `signal`. */
async function faultMidEpoch(name: string, signal: NodeJS.Signals, extra: string[], victim = 1) {
  const checkpointDir = path.join(dir, name);
  const ckpt = path.join(checkpointDir, 'last.ckpt');
  const run = startSlim(args(checkpointDir, path.join(dir, `${name}.onnx`), ['--nproc', '2', ...extra]));
  await waitFor('epoch 1 checkpoint', fileAppears(ckpt), 120_000);
  await new Promise((r) => setTimeout(r, 500));
  const pid = workerPids(run.stderr).get(victim);
  expect(pid).toBeGreaterThan(0);
  const hit = Date.now();
  process.kill(pid!, signal);
  const exit = await run.done;
  const seconds = (Date.now() - hit) / 1000;
  // The kill landed inside epoch 2: the file on disk is still epoch 1's, intact.
  const saved = await readCheckpoint<{ epoch: number }>(ckpt);
  return { exit, seconds, savedEpoch: saved.meta.epoch, checkpointDir };
}

describe.skipIf(!canRun)('data-parallel faults', () => {
  it('kill -9 of rank 1: the launcher names it within 60 s; the 2-rank checkpoint resumes on 1 rank', async () => {
    const { exit, seconds, savedEpoch, checkpointDir } = await faultMidEpoch('killed', 'SIGKILL', []);
    expect(exit.code).not.toBe(0);
    expect(seconds).toBeLessThan(60);
    expect(exit.stderr).toMatch(/rank 1 \(pid \d+\) was killed by SIGKILL/);
    expect(exit.stderr).toMatch(/slim: rank 1 of 2: .*--resume/);
    expect(savedEpoch).toBe(1);

    const resumed = startSlim(args(checkpointDir, path.join(dir, 'resumed-1.onnx'), ['--resume', '--threads', '2']));
    const done = await resumed.done;
    expect(done.code, done.stderr).toBe(0);
    const summary = JSON.parse(done.stdout) as Summary;
    expect(summary.resumed_from_epoch).toBe(1);
    expect(summary.epochs).toBe(2);
    expect(summary.steps).toBe(12);
    expect(summary.ranks).toBeUndefined();
    expect(summary.onnxruntime_top1).toBe(summary.test_top1);
  }, 240_000);

  it('kill -9 of the launcher: the workers notice and stop, instead of training on unseen', async () => {
    const checkpointDir = path.join(dir, 'orphaned');
    const run = startSlim(args(checkpointDir, path.join(dir, 'orphaned.onnx'), ['--nproc', '2']));
    await waitFor('the workers', () => workerPids(run.stderr).size === 2, 120_000);
    const pids = [...workerPids(run.stderr).values()];
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(run.child.pid!, 'SIGKILL');
    const killed = Date.now();
    await waitFor('the workers to stop', () => pids.every((pid) => !alive(pid)), 60_000);
    expect((Date.now() - killed) / 1000).toBeLessThan(60);
    expect(run.stderr).toMatch(/slim: rank 0: the launcher \(pid \d+\) is gone — stopping this worker/);
  }, 180_000);

  it('a frozen rank (SIGSTOP): the other times out, names it, and --resume on 2 ranks completes', async () => {
    const { exit, seconds, savedEpoch, checkpointDir } = await faultMidEpoch('frozen', 'SIGSTOP', ['--dist-timeout', '10']);
    expect(exit.code).not.toBe(0);
    expect(seconds).toBeLessThan(60);
    // Rank 0's own diagnosis: rank 1's heartbeat stopped.
    expect(exit.stderr).toMatch(/rank 0, step \d+: rank 1 stopped \(no heartbeat/);
    expect(savedEpoch).toBe(1);

    const resumed = startSlim(args(checkpointDir, path.join(dir, 'resumed-2.onnx'), ['--resume', '--nproc', '2']));
    const done = await resumed.done;
    expect(done.code, done.stderr).toBe(0);
    const summary = JSON.parse(done.stdout) as Summary;
    expect(summary.resumed_from_epoch).toBe(1);
    expect(summary.ranks).toBe(2);
    expect(summary.steps).toBe(12);
    expect(summary.onnxruntime_top1).toBe(summary.test_top1);
  }, 240_000);

  it('a frozen rank 0, which hosts the rendezvous store: rank 1 names it instead of waiting on the store for ever', async () => {
    const { exit, seconds, savedEpoch } = await faultMidEpoch('frozen-0', 'SIGSTOP', ['--dist-timeout', '10'], 0);
    expect(exit.code).not.toBe(0);
    expect(seconds).toBeLessThan(60);
    expect(exit.stderr).toMatch(/rank 1, step \d+: rank 0, which hosts the rendezvous store, (accepts connections but does not answer|stopped answering)/);
    expect(savedEpoch).toBe(1);
  }, 240_000);
});

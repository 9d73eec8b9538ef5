import './helpers/engine-env.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/engine/launch.js';
import { loadNative } from '../src/engine/native.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { glooAvailable, startSlim, waitFor, workerPids } from './helpers/ddp-run.js';

/**
 * `slim train --nproc` as a user runs it: ResNet18-CIFAR (width 0.25) on 2 CPU ranks finishes, and
 * ONNX Runtime scores the written model exactly as the engine's own (sharded, summed) evaluation did;
 * only rank 0 writes. Start-up mistakes fail fast with the rank named instead of hanging.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'slim-ddp-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const canRun = glooAvailable();

const DATA = ['--data', 'cifar10', '--data-dir', CIFAR_DIR];

describe.skipIf(!canRun)('slim train --nproc', () => {
  it('trains resnet18-cifar on 2 CPU ranks; ONNX Runtime top-1 equals the engine top-1; one writer', async () => {
    const log = path.join(dir, 'train.jsonl');
    const run = await runSlim([
      'train', '--model', 'resnet18-cifar', '--width', '0.25', ...DATA, '--train-limit', '1280', '--test-limit', '500',
      '--batch', '128', '--epochs', '1', '--lr', '0.05', '--nproc', '2', '--device', 'cpu', '--log', log,
      '--out', path.join(dir, 'r18.onnx'), '--json',
    ], { timeoutMs: 170_000 });
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { ranks: number; backend: string; steps: number; test_top1: number; onnxruntime_top1: number };
    expect(summary).toMatchObject({ ranks: 2, backend: 'gloo', steps: 10 });
    expect(summary.test_top1).toBeGreaterThan(0.1);
    expect(summary.onnxruntime_top1).toBe(summary.test_top1);
    // Both ranks trained, but the log has one start, one epoch and one end record: rank 0's.
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(['start', 'epoch', 'end']);
  }, 240_000);

  it('SIGTERM to the launcher stops every worker', async () => {
    const run = startSlim(['train', '--model', 'resnet18-cifar', ...DATA, '--out', path.join(dir, 'z.onnx'), '--nproc', '2']);
    await waitFor('worker pids', () => workerPids(run.stderr).size === 2, 30_000);
    const pids = [...workerPids(run.stderr).values()];
    run.child.kill('SIGTERM');
    const exit = await run.done;
    // As one process: 143, not a failure's 1, and no advice to fix a cause.
    expect(exit.code).toBe(143);
    expect(exit.stderr).toMatch(/slim train: stopped \(SIGTERM\); all 2 workers were stopped — nothing was saved \(pass --checkpoint-dir to make runs resumable\)/);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 240_000);

  it("--json with --nproc: a worker's refusal gives one JSON document, the launcher's (there were two)", async () => {
    const run = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', ...DATA, '--train-limit', '1', '--nproc', '2', '--json', '--out', path.join(dir, 'j.onnx')], { timeoutMs: 120_000 });
    expect(run.code).toBe(2);
    const doc = JSON.parse(run.stdout) as { error: { kind: string; where: string } };
    expect(doc.error).toMatchObject({ kind: 'usage', where: expect.stringMatching(/^rank \d of 2$/) });
    expect(run.stderr).toMatch(/a global batch of 1 cannot be shared by 2 ranks/);
  }, 240_000);

  it.skipIf(!canRun || loadNative().info().cuda)('--device cuda without CUDA is refused before any worker starts (each said it, then a hint about --checkpoint-dir)', async () => {
    const run = await runSlim(['train', '--model', 'resnet18-cifar', ...DATA, '--device', 'cuda', '--nproc', '2', '--out', path.join(dir, 'cu.onnx')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^slim: device 'cuda' was asked for, but this LibTorch has no CUDA or sees no GPU — train with --device cpu here/m);
    expect(run.stderr).not.toMatch(/started 2 workers|--checkpoint-dir/);
  }, 120_000);

  it('refuses --nproc inside an already launched rank (exit 2)', async () => {
    const run = await runSlim(['train', '--model', 'resnet18-cifar', ...DATA, '--out', path.join(dir, 'x.onnx'), '--nproc', '2'], {
      env: { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29999' },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--nproc starts its own workers, but this process already is rank 0 of 2/);
  }, 240_000);

  it('a rank whose peers never come stops after --dist-timeout, naming itself and the address', async () => {
    const port = await freePort();
    const started = Date.now();
    const run = await runSlim(['train', '--model', 'resnet18-cifar', ...DATA, '--out', path.join(dir, 'y.onnx'), '--dist-timeout', '3'], {
      env: { RANK: '1', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
    });
    expect(run.code).toBe(1);
    expect((Date.now() - started) / 1000).toBeLessThan(30);
    expect(run.stderr).toMatch(new RegExp(`rank 1 of 2: distributed start-up failed: rank 1 could not reach the rendezvous at 127\\.0\\.0\\.1:${port}`));
    // Rank 0 alone names the rank that never came, within --dist-timeout (it waited twice that, and said "Socket Timeout").
    const alone = Date.now();
    const zero = await runSlim(['train', '--model', 'resnet18-cifar', ...DATA, '--out', path.join(dir, 'y.onnx'), '--dist-timeout', '3'], {
      env: { RANK: '0', WORLD_SIZE: '3', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) },
    });
    expect(zero.code).toBe(1);
    expect((Date.now() - alone) / 1000).toBeLessThan(30);
    expect(zero.stderr).toMatch(/rank 0 of 3: distributed start-up failed: ranks 1, 2 of 3 never joined the rendezvous at 127\.0\.0\.1:\d+ within 3 s/);
  }, 240_000);

  it('a resume every rank refuses is said once, without advice to resume', async () => {
    const args = ['train', '--model', 'resnet18-cifar', '--width', '0.125', ...DATA, '--train-limit', '256', '--test-limit', '64', '--epochs', '1', '--batch', '64',
      '--nproc', '2', '--checkpoint-dir', path.join(dir, 'ck'), '--out', path.join(dir, 'c.onnx')];
    expect((await runSlim(args, { timeoutMs: 170_000 })).code).toBe(0);
    const refused = await runSlim([...args, '--seed', '3', '--resume'], { timeoutMs: 170_000 });
    expect(refused.code).toBe(2);
    expect(refused.stderr.match(/the checkpoint was made by a run with other settings \(--seed: 0 then, 3 now\)/g)).toHaveLength(1);
    expect(refused.stderr).not.toMatch(/\[rank 1\] slim:/);
    expect(refused.stderr).toMatch(/exited with code 2, so the other ranks were stopped; the message above says why and what to do\n$/);
  }, 240_000);

  it('ranks started with different settings refuse together', async () => {
    const base = ['train', '--model', 'resnet18-cifar', '--width', '0.125', ...DATA, '--train-limit', '256', '--epochs', '1', '--threads', '1', '--dist-timeout', '60'];
    // Another batch; another --test-limit (each rank scored its own cut of the test split: a wrong top-1);
    // another gradient bucket size (gloo aborted a rank).
    for (const [zero, one] of [[['--batch', '64'], ['--batch', '32']], [['--test-limit', '64'], ['--test-limit', '32']], [['--dist-bucket-mb', '25'], ['--dist-bucket-mb', '0.002']]]) {
      const port = String(await freePort());
      const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port });
      const ranks = [
        startSlim([...base, ...zero!, '--out', path.join(dir, 'a.onnx')], { env: env(0) }),
        startSlim([...base, ...one!, '--out', path.join(dir, 'b.onnx')], { env: env(1) }),
      ];
      const [r0, r1] = await Promise.all(ranks.map((r) => r.done));
      for (const r of [r0!, r1!]) {
        expect(r.code, one!.join(' ')).toBe(2);
        expect(r.stderr).toMatch(/rank 1 started with other training settings than rank 0/);
      }
      // Rank 1 says which.
      expect(r1!.stderr).toMatch(new RegExp(`\\(here: ${one![0]}`));
    }
  }, 360_000);
});

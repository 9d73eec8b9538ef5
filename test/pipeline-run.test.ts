/**
 * `slim run` on a tiny real pipeline (ResNet-18 at 1/8 width, 200 CIFAR-10 images): every stage runs
 * once; a rerun reuses every stage and changes no byte; an edited stage reruns with exactly the
 * stages whose inputs change; a stage that fails is recorded and the run stops there; a run killed
 * in the middle of training resumes at that stage — from the engine's last epoch checkpoint — with
 * the earlier stages reused; a second `slim run` on a busy run folder is refused.
 * Oracles: the manifest and the files themselves (artifact names are the sha256 of their bytes).
 */
import './helpers/engine-env.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { hostInt8Cpu } from '../src/compress/quantize/cpu.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { nativeAvailable } from '../src/engine/native.js';
import type { RunManifest } from '../src/pipeline/manifest.js';
import { benchCommand } from '../src/report/columns.js';
import type { RunReport } from '../src/report/run-report.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, REPO_ROOT } from './helpers/fixtures.js';
import { madeFrom } from '../src/pipeline/run.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { subset } from '../src/data/subsets.js';
import { openSession } from '../src/runtime/ort.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-pipeline-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Knobs {
  target?: number;
  samples?: number;
  ftEpochs?: number;
  perClass?: number;
}

function recipe({ target = 0.5, samples = 32, ftEpochs = 1, perClass = 20 }: Knobs = {}): string {
  return `name: tiny
data:
  train_per_class: ${perClass}
  test_limit: 200
model: { zoo: resnet18-cifar, width: 0.125 }
stages:
  - train: { id: fp32, epochs: 1, batch: 50, eval_limit: 100 }
  - quantize: { id: int8, samples: 32 }
  - prune: { id: pruned, from: fp32, structured: { target_macs: ${target} }, round_to: 4, calib_samples: 32 }
  - finetune: { id: pruned-ft, epochs: ${ftEpochs}, batch: 50, eval_limit: 100 }
  - quantize: { id: pruned-int8, samples: ${samples} }
  - bench: { runs: 50, warmup_runs: 2, batch: 4 }
  - deploy: { variant: pruned-int8, target: linux-x64 }
`;
}

// The deploy stage is named by its target (no id in the recipe).
const ALL = ['fp32', 'int8', 'pruned', 'pruned-ft', 'pruned-int8', 'bench', 'linux-x64'];

interface RunJson {
  run_dir: string;
  ran: string[];
  reused: string[];
}

function writeRecipe(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function args(file: string, runDir: string): string[] {
  return ['run', file, '--run-dir', runDir, '--data-dir', CIFAR_DIR, '--threads', '1', '--json'];
}

async function run(file: string, runDir: string): Promise<RunJson> {
  const r = await runSlim(args(file, runDir), { timeoutMs: 240_000 });
  if (r.code !== 0) throw new Error(`slim run failed (${r.code}): ${r.stderr.split('\n').slice(-5).join('\n')}`);
  return JSON.parse(r.stdout) as RunJson;
}

const manifestOf = (runDir: string): RunManifest => JSON.parse(readFileSync(path.join(runDir, 'manifest.json'), 'utf8')) as RunManifest;
const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe.skipIf(!nativeAvailable())('slim run: stores, skips, resumes', () => {
  const runDir = path.join(dir, 'run');
  let first: RunManifest;

  it('runs every stage once; every model is stored under the hash of its bytes', async () => {
    const out = await run(writeRecipe('a.yaml', recipe()), runDir);
    expect(out.ran).toEqual(ALL);
    expect(out.reused).toEqual([]);
    first = manifestOf(runDir);
    expect(first.complete).toBe(true);
    expect(first.stages.map((s) => [s.id, s.status])).toEqual(ALL.map((id) => [id, 'done']));
    for (const s of first.stages.filter((x) => x.model)) {
      const artifact = path.join(runDir, s.model!.path);
      expect(path.basename(artifact)).toBe(`${sha(artifact)}.onnx`);
      expect(sha(path.join(runDir, 'models', `${s.id}.onnx`))).toBe(s.model!.sha256);
    }
    // On a CPU with AMX the quantize stages measure their Conv layout at the run's thread count (1 here).
    const int8 = first.stages.find((s) => s.id === 'int8')!;
    const layout = int8.kind === 'quantize' ? int8.result?.conv_layout : undefined;
    if (hostInt8Cpu() === 'amx') expect(layout).toMatchObject({ threads: 1 });
    else expect(layout).toBeUndefined();
    // method: auto (the default) scores all four range methods on held-out images and keeps the best.
    const scores = int8.kind === 'quantize' ? int8.result?.method_scores ?? {} : {};
    expect(Object.keys(scores).sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    const chosen = int8.kind === 'quantize' ? int8.result!.method! : '';
    expect(scores[chosen]).toBe(Math.max(...Object.values(scores)));
    expect(existsSync(path.join(runDir, 'deploy', 'linux-x64', 'slim.json'))).toBe(true);
    expect(existsSync(path.join(runDir, 'report', 'report.html'))).toBe(true);
    // The prune stage records what it was asked, as `slim prune` does.
    const pruning = JSON.parse((await readModel(path.join(runDir, 'models', 'pruned.onnx'))).metadata['slimkit.pruning']!) as Record<string, unknown>;
    expect(pruning).toMatchObject({ mode: 'structured', target: { kind: 'macs', value: 0.5 }, importance: 'l2', params_before: expect.any(Number), macs_before: expect.any(Number) });
  });

  it('a rerun reuses every stage and changes no byte', async () => {
    const out = await run(path.join(dir, 'a.yaml'), runDir);
    expect(out.ran).toEqual([]);
    expect(out.reused).toEqual(ALL);
    const again = manifestOf(runDir);
    expect(again.stages.map((s) => [s.key, s.model?.sha256])).toEqual(first.stages.map((s) => [s.key, s.model?.sha256]));
    expect(again.stages.every((s) => s.reused)).toBe(true);
    // Nothing left behind: republishing the same artifact used to leave its temporary hard link.
    expect(readdirSync(path.join(runDir, 'models')).filter((f) => !f.endsWith('.onnx'))).toEqual([]);
    // No --data-dir and none in the cache: the folder's manifest says where its data was (a plan was refused).
    const noFlag = args(path.join(dir, 'a.yaml'), runDir).filter((a, i, all) => a !== '--data-dir' && all[i - 1] !== '--data-dir');
    const emptyCache = mkdtempSync(path.join(tmpdir(), 'slim-no-cache-'));
    try {
      const plan = await runSlim([...noFlag, '--plan'], { env: { SLIM_DATA_DIR: '', SLIM_CACHE_DIR: emptyCache }, timeoutMs: 120_000 });
      expect(plan.code, plan.stderr).toBe(0);
      expect((JSON.parse(plan.stdout) as { stages: { action: string }[] }).stages.every((st) => st.action === 'reuse')).toBe(true);
      expect(plan.stderr).toContain(`data: CIFAR-10 from ${path.resolve(CIFAR_DIR)}, where this folder's last run read it (--data-dir or SLIM_DATA_DIR names another)`);
      // Another run folder knows nothing: the cache is empty and nothing is downloaded for a plan.
      const elsewhere = await runSlim([...noFlag.map((a) => (a === runDir ? path.join(dir, 'fresh-run') : a)), '--plan'], { env: { SLIM_DATA_DIR: '', SLIM_CACHE_DIR: emptyCache }, timeoutMs: 120_000 });
      expect(elsewhere.code).toBe(1);
      expect(elsewhere.stderr).toMatch(/CIFAR-10 is not here, and this command does not download it/);
    } finally {
      rmSync(emptyCache, { recursive: true, force: true });
    }
  });

  it('another test set or eval limit re-scores in the bench stage: nothing trains or quantizes again', async () => {
    const text = recipe().replace('test_limit: 200', 'test_limit: 150').replaceAll('eval_limit: 100', 'eval_limit: 80');
    const r = await runSlim(args(writeRecipe('fewer-tests.yaml', text), runDir), { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as RunJson;
    expect(out.ran).toEqual(['bench']);
    expect(out.reused).toEqual(ALL.filter((id) => id !== 'bench'));
    // The reused training says its own scores are on the test images of then; stages without such scores say nothing.
    const stale = r.stderr.split('\n').filter((l) => l.includes('its own test scores'));
    // fp32 and pruned-ft (both scored 100 images each epoch), not the quantize, prune or deploy stages.
    expect(stale).toEqual(new Array(2).fill('  its own test scores were taken on 100 test images of a run with other test images and are kept as measured (its model does not depend on them); bench stages score the current ones'));
    const m = manifestOf(runDir);
    expect(m.stages.filter((s) => s.model).map((s) => s.model!.sha256)).toEqual(first.stages.filter((s) => s.model).map((s) => s.model!.sha256));
    const bench = m.stages.find((s) => s.id === 'bench')!;
    expect(bench.kind === 'bench' && bench.result!.variants.every((v) => v.eval_images === 150)).toBe(true);
    // Only eval_limit changed: nothing runs (the bench of these test images is stored), and the training says so.
    const onlyLimit = await runSlim(args(writeRecipe('other-limit.yaml', recipe().replaceAll('eval_limit: 100', 'eval_limit: 80')), runDir), { timeoutMs: 240_000 });
    expect(onlyLimit.code, onlyLimit.stderr).toBe(0);
    expect((JSON.parse(onlyLimit.stdout) as RunJson).ran).toEqual([]);
    expect(onlyLimit.stderr).toContain('its own test scores were taken on 100 test images of a run with another eval_limit (now 80)');
  });

  it('a bundle or artifact changed on disk is redone, not trusted — and then reused again', async () => {
    // Another bundle written over deploy/linux-x64 (a recipe that deployed another variant there).
    const config = path.join(runDir, 'deploy', 'linux-x64', 'slim.json');
    const json = JSON.parse(readFileSync(config, 'utf8')) as { model: { sha256: string } };
    json.model.sha256 = '0'.repeat(64);
    writeFileSync(config, JSON.stringify(json));
    // The plan says why: the bundle is not called damaged (another recipe's deploy stage may have written it).
    const planOf = async (): Promise<{ id: string; action: string; reason: string }[]> => (JSON.parse((await runSlim([...args(path.join(dir, 'a.yaml'), runDir), '--plan'])).stdout) as { stages: { id: string; action: string; reason: string }[] }).stages;
    expect((await planOf()).find((s) => s.id === 'linux-x64')).toMatchObject({ action: 'run', reason: "its bundle (deploy/linux-x64) is not the one it made: changed or removed since, or written by another recipe's deploy stage of that id" });
    // One flipped bit in a stored model (through its hard link in models/, as an in-place edit would).
    const int8 = first.stages.find((s) => s.id === 'pruned-int8')!;
    const bytes = readFileSync(path.join(runDir, 'models', 'pruned-int8.onnx'));
    bytes[bytes.length >> 1]! ^= 1;
    writeFileSync(path.join(runDir, 'models', 'pruned-int8.onnx'), bytes);
    expect((await planOf()).find((s) => s.id === 'pruned-int8')).toMatchObject({ action: 'run', reason: 'its stored output is damaged or gone' });
    const redone = await run(path.join(dir, 'a.yaml'), runDir);
    // bench reruns too when the requantized bytes differ (on AMX CPUs the Conv layout is chosen by timing).
    const remade = manifestOf(runDir).stages.find((s) => s.id === 'pruned-int8')!.model!;
    expect(redone.ran).toEqual(remade.sha256 === int8.model!.sha256 ? ['pruned-int8', 'linux-x64'] : ['pruned-int8', 'bench', 'linux-x64']);
    expect(sha(path.join(runDir, remade.path))).toBe(remade.sha256);
    expect(sha(path.join(runDir, 'models', 'pruned-int8.onnx'))).toBe(remade.sha256);
    expect((await run(path.join(dir, 'a.yaml'), runDir)).ran).toEqual([]);
  });

  it('slim recommend picks from the run folder, and says so when nothing fits', async () => {
    const pick = await runSlim(['recommend', runDir, '--max-size', '10MB', '--json']);
    expect(pick.code).toBe(0);
    const chosen = JSON.parse(pick.stdout) as { choice: string | null };
    // Without a top-1 floor, the smallest-latency/size trade-off is a benchmarked variant of this run.
    expect(['fp32', 'int8', 'pruned', 'pruned-ft', 'pruned-int8']).toContain(chosen.choice);
    const none = await runSlim(['recommend', runDir, '--max-size', '1KB']);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/No variant of \d+ meets the limit/);
    expect(none.stdout).toMatch(/Closest: /);
    // A run that cannot be judged is not "nothing fits": exit 2, as for a wrong folder.
    const noWeb = await runSlim(['recommend', runDir, '--max-size', '10MB', '--target', 'web']);
    expect(noWeb.code).toBe(2);
    expect(noWeb.stderr).toMatch(/the run has no bench stage timed on web/);
  });

  it('an edited stage reruns, with the stages whose inputs change — nothing else', async () => {
    // --plan says so first, running and writing nothing.
    const manifestBefore = readFileSync(path.join(runDir, 'manifest.json'), 'utf8');
    const planned = await runSlim([...args(writeRecipe('b.yaml', recipe({ samples: 16 })), runDir), '--plan'], { timeoutMs: 120_000 });
    expect(planned.code, planned.stderr).toBe(0);
    const plan = JSON.parse(planned.stdout) as { stages: { id: string; action: string; reason: string; last_seconds?: number }[] };
    expect(plan.stages.map((st) => [st.id, st.action])).toEqual([['fp32', 'reuse'], ['int8', 'reuse'], ['pruned', 'reuse'], ['pruned-ft', 'reuse'], ['pruned-int8', 'run'], ['bench', 'run'], ['linux-x64', 'run']]);
    // Named in the recipe's words: the key that changed, then and now.
    expect(plan.stages[4]!.reason).toBe('the recipe changed since it last ran: quantize.samples: 32 → 16');
    expect(plan.stages[4]!.last_seconds).toBeGreaterThan(0);
    expect(plan.stages[5]!.reason).toBe("it reads 'pruned-int8', which runs again (reused after all if that makes the same bytes)");
    // A stage whose input runs again and whose own keys changed too says both.
    const both = await runSlim([...args(writeRecipe('c2.yaml', recipe({ target: 0.6, ftEpochs: 2 })), runDir), '--plan', '--json'], { timeoutMs: 120_000 });
    const ft = (JSON.parse(both.stdout) as typeof plan).stages.find((st) => st.id === 'pruned-ft')!;
    expect(ft.reason).toBe("it reads 'pruned', which runs again; and its own recipe keys changed: finetune.epochs: 1 → 2");
    // A setting of the command line, not the recipe: named too (it said "its options, its input or the data changed").
    const twoThreads = args(path.join(dir, 'a.yaml'), runDir);
    twoThreads[twoThreads.indexOf('--threads') + 1] = '2';
    const threaded = JSON.parse((await runSlim([...twoThreads, '--plan'], { timeoutMs: 120_000 })).stdout) as typeof plan;
    expect(threaded.stages.find((st) => st.id === 'bench')).toMatchObject({ action: 'run', reason: 'the command line changed since it last ran: threads: 1 → 2' });
    expect(readFileSync(path.join(runDir, 'manifest.json'), 'utf8')).toBe(manifestBefore);

    const out = await run(writeRecipe('b.yaml', recipe({ samples: 16 })), runDir);
    // New calibration → new int8 bytes → new bench and deploy inputs; train, prune, fine-tune untouched.
    expect(out.ran).toEqual(['pruned-int8', 'bench', 'linux-x64']);
    expect(out.reused).toEqual(['fp32', 'int8', 'pruned', 'pruned-ft']);
    const m = manifestOf(runDir);
    const byId = (x: RunManifest, id: string) => x.stages.find((s) => s.id === id)!;
    expect(byId(m, 'pruned-int8').model!.sha256).not.toBe(byId(first, 'pruned-int8').model!.sha256);
    expect(byId(m, 'pruned-ft').model!.sha256).toBe(byId(first, 'pruned-ft').model!.sha256);
    // Going back to the first recipe needs no training or quantizing: its stages are still in the store.
    // The bundle is rewritten: b.yaml's run wrote its own model into deploy/linux-x64 since.
    const back = await run(path.join(dir, 'a.yaml'), runDir);
    expect(back.ran).toEqual(['linux-x64']);
  });

  it('a failing stage is recorded; the run stops there with a one-line error', async () => {
    const r = await runSlim(args(writeRecipe('c.yaml', recipe({ target: 0.02 })), runDir), { timeoutMs: 120_000 });
    expect(r.code).toBe(2);
    // Placed at the stage's line of the recipe, in the recipe's words (max_ratio, not --max-ratio).
    const line = recipe().split('\n').findIndex((l) => l.includes('prune:')) + 1;
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('slim:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^slim: .*c\\.yaml:${line}: stage 'pruned' \\(prune\\): MAC target 0\\.02 is out of reach.*prune\\.max_ratio`));
    const m = manifestOf(runDir);
    expect(m.complete).toBe(false);
    expect(m.stages.map((s) => [s.id, s.status])).toEqual([['fp32', 'done'], ['int8', 'done'], ['pruned', 'failed']]);
    // The earlier run's pruned model is not left in models/ as if this stage had made it.
    expect(existsSync(path.join(runDir, 'models', 'pruned.onnx'))).toBe(false);
    expect(existsSync(path.join(runDir, 'models', 'int8.onnx'))).toBe(true);
    // Nor the bundle deployed from a model made from it, nor the last run's report (a trial shipped such a
    // bundle, and read such a report, after an interrupted rerun).
    expect(existsSync(path.join(runDir, 'deploy', 'linux-x64'))).toBe(false);
    expect(existsSync(path.join(runDir, 'report', 'report.html'))).toBe(false);
    expect(r.stderr).toContain("(the last run's report is withdrawn until this run finishes; slim report writes one of the finished stages any time)");
    expect(m.stages[2]!.error).toMatch(/out of reach/);
    // Recorded (and reported) in the same words as the terminal: the recipe's key, not the CLI flag.
    expect(m.stages[2]!.error).toMatch(/max_ratio/);
    expect(m.stages[2]!.error).not.toMatch(/--max-ratio/);
  });

  it('a stage whose model cannot be stored keeps its checkpoints: the rerun resumes it after its last epoch', async () => {
    const storeDir = path.join(dir, 'store-fails');
    mkdirSync(storeDir);
    // A file where the model store's folder goes: the trained model cannot be stored.
    writeFileSync(path.join(storeDir, 'artifacts'), 'in the way');
    const file = writeRecipe('s.yaml', `name: tiny\ndata:\n  train_per_class: 10\n  test_limit: 100\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 2, batch: 50, eval_limit: 50 }\n`);
    const failed = await runSlim(args(file, storeDir), { timeoutMs: 120_000 });
    expect(failed.code).toBe(1);
    const errors = failed.stderr.split('\n').filter((l) => l.startsWith('slim:'));
    expect(errors).toHaveLength(1);
    // It was an internal error, and the epoch checkpoints were already deleted: the rerun trained again from epoch 1.
    expect(errors[0]).toMatch(/artifacts.* run the same command again: the stage's checkpoints in .*work.* are kept, so it resumes from its last epoch/);
    expect(errors[0]).not.toMatch(/internal error/);
    rmSync(path.join(storeDir, 'artifacts'));
    const out = await run(file, storeDir);
    expect(out.ran).toEqual(['fp32']);
    const fp32 = manifestOf(storeDir).stages[0]!;
    expect(fp32.kind === 'train' && fp32.result!.resumed_from_epoch).toBe(2);
    expect(fp32.kind === 'train' && fp32.result!.history).toHaveLength(2);
    // Stored now: the checkpoints are gone.
    expect(existsSync(path.join(storeDir, 'work'))).toBe(false);
  });

  it('killed while training, a rerun resumes at that stage from its last epoch; a busy run folder is refused', async () => {
    const crashDir = path.join(dir, 'crash');
    const file = writeRecipe('d.yaml', recipe({ ftEpochs: 6, perClass: 40 }));
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args(file, crashDir)], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
      // The running stage's time is saved every 200 ms (30 s by default), so the killed run's report has it.
      env: { ...process.env, SLIM_RUN_SAVE_MS: '200' },
    });
    try {
      // Wait until the fine-tuning stage has checkpointed its first epoch (and has more to go).
      await until(() => {
        const m = existsSync(path.join(crashDir, 'manifest.json')) ? manifestOf(crashDir) : undefined;
        const ft = m?.stages.find((s) => s.id === 'pruned-ft');
        const work = path.join(crashDir, 'work');
        return ft?.status === 'running' && existsSync(work) && readdirSync(work).some((d) => existsSync(path.join(work, d, 'last.ckpt')));
      }, 150_000);
      const busy = await runSlim(args(file, crashDir), { timeoutMs: 60_000 });
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(new RegExp(`another slim run \\(pid ${child.pid}\\) is using this run folder`));
    } finally {
      await kill(child);
    }
    const killed = manifestOf(crashDir);
    expect(killed.stages.map((s) => s.status)).toEqual(['done', 'done', 'done', 'running']);
    // The report of the dead run does not show it live: the stage was interrupted, and a rerun resumes it.
    const dead = await runSlim(['report', crashDir, '--json']);
    expect(dead.code, dead.stderr).toBe(0);
    const row = (JSON.parse(dead.stdout) as RunReport).stages.find((s) => s.id === 'pruned-ft')!;
    expect(row.status).toBe('interrupted');
    // slim recommend on it says to finish the run (it said to add a bench stage, which the recipe has).
    const early = await runSlim(['recommend', crashDir, '--max-size', '1MB']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/the run did not finish \(it stopped at stage 'pruned-ft', interrupted\), and nothing is benchmarked yet — run it again \(slim run .*d\.yaml --run-dir .*crash\): the finished stages are reused/);
    expect(row.summary).toMatch(/resumes it/);
    // Its time so far, not the 0 s it started with; the run's wall time as last recorded, said so.
    expect(killed.stages[3]!.seconds).toBeGreaterThan(0);
    expect(row.summary).toMatch(/^interrupted after [\d.]+ s or more/);
    expect(readFileSync(path.join(crashDir, 'report', 'report.md'), 'utf8')).toMatch(/Wall time of this invocation: [\d.]+ s as last recorded \(it did not finish\)/);

    const rerun = await runSlim(args(file, crashDir), { timeoutMs: 240_000 });
    expect(rerun.code, rerun.stderr).toBe(0);
    const out = JSON.parse(rerun.stdout) as RunJson;
    expect(out.reused).toEqual(['fp32', 'int8', 'pruned']);
    expect(out.ran).toEqual(['pruned-ft', 'pruned-int8', 'bench', 'linux-x64']);
    const m = manifestOf(crashDir);
    const ft = m.stages.find((s) => s.id === 'pruned-ft')!;
    expect(ft.kind === 'finetune' && ft.result!.resumed_from_epoch).toBeGreaterThanOrEqual(1);
    expect(ft.kind === 'finetune' && ft.result!.history).toHaveLength(6);
    // Its time is the killed run's and this one's (it was this run's part alone).
    expect(rerun.stderr).toContain(`(${killed.stages[3]!.seconds.toFixed(1)} s of it in the interrupted run)`);
    expect(ft.seconds).toBeGreaterThan(killed.stages[3]!.seconds);
    expect(m.stages.slice(0, 3).map((s) => s.model!.sha256)).toEqual(killed.stages.slice(0, 3).map((s) => s.model!.sha256));
    expect(m.complete).toBe(true);
  });
});

/** The run's descendants (its `slim bench` and the children that bench times in), by the process tree. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      // "pid (comm) state ppid …": comm may hold spaces, so read after its closing parenthesis.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const found: number[] = [];
  const walk = (p: number): void => {
    for (const [pid, ppid] of parent) {
      if (ppid !== p) continue;
      found.push(pid);
      walk(pid);
    }
  };
  walk(root);
  return found;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie has ended
  } catch {
    return false;
  }
}

/** The processes of a run's bench stage (other test files run benchmarks of their own meanwhile). */
function benchProcessesOf(run: number, runDir: string): number[] {
  return descendants(run).filter((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes(`${runDir}/models`) || cmd.includes('benchmark-child');
    } catch {
      return false;
    }
  });
}

describe.skipIf(!nativeAvailable())('slim run stopped while it benchmarks', () => {
  it('takes its `slim bench` (and the processes that time) down with it', async () => {
    const runDir = path.join(dir, 'stopped-bench');
    const file = writeRecipe('b.yaml', 'name: tiny\ndata:\n  train_per_class: 5\n  test_limit: 50\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 25 }\n  - bench: { runs: 200000, warmup_runs: 2, batch: 1 }\n');
    const start = () => spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args(file, runDir)], { cwd: REPO_ROOT, stdio: 'ignore' });
    let child = start();
    const benchProcesses = (): number[] => benchProcessesOf(child.pid!, runDir);
    try {
      // SIGTERM runs the run's exit handlers; kill -9 runs none: the benchmark's IPC channel closing stops it then.
      for (const [signal, code] of [['SIGTERM', 143], ['SIGKILL', null]] as const) {
        if (signal === 'SIGKILL') child = start();
        await until(() => benchProcesses().length >= 2, 150_000, 'the benchmark to start');
        const started = benchProcesses();
        const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
        child.kill(signal);
        expect(await exited, signal).toBe(code);
        // The stage stopped keeps its time so far (saved every 30 s while it runs: 0 s in its first half minute).
        if (signal === 'SIGTERM') expect(manifestOf(runDir).stages.find((st) => st.id === 'bench')).toMatchObject({ status: 'running', seconds: expect.toSatisfy((x: number) => x > 0) });
        // Left running, it went on measuring (an orphan of pid 1) until a write to the closed pipe failed, 5–8 s here.
        await until(() => !started.some(alive), 4_000, `the benchmark processes to end after ${signal}`);
      }
    } finally {
      await kill(child);
    }
  });

  it('a --rerun of the bench stopped midway leaves the earlier figures in the manifest and the report, and says so', async () => {
    const runDir = path.join(dir, 'rerun-bench');
    const file = writeRecipe('rb.yaml', 'name: tiny\ndata:\n  train_per_class: 5\n  test_limit: 50\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 25 }\n  - quantize: { id: int8, samples: 16 }\n  - bench: { runs: 3000, warmup_runs: 2, batch: 1 }\n');
    await run(file, runDir);
    const before = manifestOf(runDir).stages.find((st) => st.id === 'bench')!;
    expect(before.status).toBe('done');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args(file, runDir), '--rerun', 'bench'], { cwd: REPO_ROOT, stdio: 'ignore' });
    try {
      await until(() => benchProcessesOf(child.pid!, runDir).length >= 2, 150_000, 'the rerun of the benchmark to start');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
    } finally {
      await kill(child);
    }
    // The manifest still holds the finished bench, marked as rerun and stopped.
    const stopped = manifestOf(runDir).stages.find((st) => st.id === 'bench')!;
    expect(stopped).toMatchObject({ status: 'done', key: before.key, result: before.result, rerun: { seconds: expect.any(Number) } });
    const report = await runSlim(['report', runDir, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const json = JSON.parse(readFileSync(path.join(runDir, 'report', 'report.json'), 'utf8')) as RunReport;
    expect(json.variants.map((v) => v.id).sort()).toEqual(['fp32', 'int8']);
    expect(json.stages.find((st) => st.id === 'bench')!.summary).toMatch(/ — a --rerun was interrupted( after [\d.]+ s or more)?: these are the earlier figures$/);
    const recommend = await runSlim(['recommend', runDir, '--max-size', '100MB']);
    expect(recommend.code, recommend.stderr).toBe(0);
    // Run again without --rerun: the stored bench is reused and the note goes.
    await run(file, runDir);
    expect(manifestOf(runDir).stages.find((st) => st.id === 'bench')).not.toHaveProperty('rerun');
  }, 400_000);
});

describe.skipIf(!nativeAvailable())('a prune stage that fine-tunes', () => {
  it("draws its fine-tunings' epochs in the report's curves beside the training stages' (a trial saw only fp32's), as one line that drops at each cut", async () => {
    const runDir = path.join(dir, 'prune-ft');
    const file = writeRecipe('pf.yaml', 'name: tiny\ndata:\n  train_per_class: 5\n  test_limit: 50\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 25 }\n  - finetune: { id: tuned, from: fp32, epochs: 1, batch: 25 }\n  - prune: { id: pruned, from: tuned, structured: { target_macs: 0.6 }, round_to: 4, calib_samples: 16, finetune: { epochs: 2, steps: 2, batch: 25 } }\n');
    await run(file, runDir);
    const stages = manifestOf(runDir).stages;
    const pruned = stages.find((st) => st.id === 'pruned')!;
    expect(pruned.result).toMatchObject({ finetune_epochs: 2, finetune_eval_images: 50 });
    const result = pruned.result as { finetune_history: { epoch: number; test_top1: number }[][]; finetune_start_top1: number[]; test_top1: number; steps: { test_top1: number }[] };
    // Two cuts, each fine-tuned one epoch, each scored before its first step.
    expect(result.finetune_history.map((h) => h.map((e) => e.epoch))).toEqual([[1], [1]]);
    expect(result.finetune_start_top1).toHaveLength(2);
    // Its last epoch's score is the stage's own.
    expect(result.finetune_history[1]!.at(-1)!.test_top1).toBe(result.test_top1);
    // A model trained further is scored before its first step; one trained from scratch is not.
    expect(stages.find((st) => st.id === 'tuned')!.result).toHaveProperty('start_top1');
    expect(stages.find((st) => st.id === 'fp32')!.result).not.toHaveProperty('start_top1');
    const report = JSON.parse(readFileSync(path.join(runDir, 'report', 'report.json'), 'utf8')) as RunReport;
    expect(report.training.map((t) => [t.stage, t.kind, t.history.map((e) => e.epoch)])).toEqual([['fp32', 'train', [1]], ['tuned', 'finetune', [1]], ['pruned (fine-tune)', 'finetune', [1, 2]]]);
    const line = report.training[2]!;
    // Epoch 0: the first cut before fine-tuning; the second cut drawn at epoch 1, after that epoch's own point.
    expect(line.start).toEqual({ test_top1: result.finetune_start_top1[0], test_loss: null });
    expect(line.cuts).toEqual([{ epoch: 1, test_top1: result.finetune_start_top1[1], test_loss: null }]);
    expect(report.prune[0]).not.toHaveProperty('finetune_history');
    expect(report.prune[0]).not.toHaveProperty('finetune_start_top1');
    expect(readFileSync(path.join(runDir, 'report', 'charts', 'accuracy-curves.svg'), 'utf8')).toContain('pruned (fine-tune)');
  }, 300_000);
});

describe.skipIf(!nativeAvailable())('what a stage says about its result', () => {
  it("is said as the command says it, recorded, and repeated in the report's stage row (a trial saw none of slim distill's notes in a recipe)", async () => {
    const runDir = path.join(dir, 'said');
    const file = writeRecipe('said.yaml', 'name: said\ndata:\n  train_per_class: 5\n  test_limit: 50\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 25 }\n  - distill: { id: labels, teacher: fp32, student: { zoo: resnet18-cifar, width: 0.125 }, alpha: 1, epochs: 1, batch: 25 }\n  - distill: { id: taught, teacher: fp32, student: { zoo: resnet18-cifar, width: 0.125 }, epochs: 1, batch: 25 }\n');
    const r = await runSlim(args(file, runDir), { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    // The distilled stage's training loss is named the KD loss, as slim distill names it; alpha 1's is cross-entropy.
    expect(r.stderr.match(/^  test top-1 .*, train (KD )?loss/gm)!.map((l) => l.includes('KD'))).toEqual([false, false, true]);
    expect(r.stderr).toContain('  train KD loss is the distillation loss');
    const note = "note: alpha: 1 trains on the labels alone: the teacher 'fp32' is left out of training — lower alpha to distill";
    expect(r.stderr).toContain(`  ${note}`);
    expect(manifestOf(runDir).stages.find((st) => st.id === 'labels')!.result).toMatchObject({ notes: [note] });
    const report = JSON.parse(readFileSync(path.join(runDir, 'report', 'report.json'), 'utf8')) as RunReport;
    expect(report.stages.find((st) => st.id === 'labels')!.summary).toMatch(new RegExp(` — ${note.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    // The teacher is scored before the first step, as slim distill scores it (only where it teaches: not at alpha 1).
    const scored = [...r.stderr.matchAll(/^  teacher 'fp32': test top-1 ([\d.]+) % \(engine, 50 images\)$/gm)];
    expect(scored).toHaveLength(1);
    const nearChance = Number(scored[0]![1]) < 15;
    const warning = `warning: the teacher scores ${scored[0]![1]} % on cifar10/test, near chance: check that it was trained on this data with the student's preprocessing`;
    expect(r.stderr.includes(`  ${warning}`)).toBe(nearChance);
    const taught = manifestOf(runDir).stages.find((st) => st.id === 'taught')!.result as { notes?: string[] };
    expect(taught.notes ?? []).toEqual(nearChance ? [warning] : []);
  }, 300_000);
});

/** train/ and test/ of CIFAR-10 PNGs (100 and 40), written once for the tests that read a folder. */
let imageFolder: Promise<string> | undefined;
function cifarImageFolder(): Promise<string> {
  imageFolder ??= (async () => {
    const images = path.join(dir, 'images');
    const [train, test] = await Promise.all([loadCifar10('train', { dataDir: CIFAR_DIR, limit: 100 }), loadCifar10('test', { dataDir: CIFAR_DIR, limit: 40 })]);
    for (const [split, set] of [['train', train], ['test', test]] as const) {
      for (let i = 0; i < set.labels.length; i++) {
        const folder = path.join(images, split, set.classes[set.labels[i]!]!);
        mkdirSync(folder, { recursive: true });
        const planar = set.pixels.subarray(i * 3072, (i + 1) * 3072);
        const rgb = Buffer.alloc(3072);
        for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = planar[c * 1024 + p]!;
        await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(folder, `${i}.png`));
      }
    }
    return images;
  })();
  return imageFolder;
}

describe('slim run from a PyTorch-exported model file', () => {
  it('makes the file the first variant, quantizes and benchmarks it on an image folder resized to its input', async () => {
    // The fixture takes 16×16 images: an image folder of CIFAR-10 PNGs, which the run resizes.
    const images = await cifarImageFolder();
    const file = writeRecipe('torch.yaml', `name: from-torch
data: { dataset: ${images}, test_limit: 30 }
model: { file: ${path.join(REPO_ROOT, 'test/fixtures/torch-tiny-resnet.onnx')}, id: torch }
stages:
  - quantize: { id: torch-int8, samples: 32 }
  - bench: { runs: 50, warmup_runs: 2, batch: 4 }
`);
    const runDir = path.join(dir, 'torch');
    const out = await run(file, runDir);
    expect(out.ran).toEqual(['torch-int8', 'bench']);
    const m = manifestOf(runDir);
    expect(m.stages.map((s) => [s.id, s.kind, s.status])).toEqual([['torch', 'source', 'done'], ['torch-int8', 'quantize', 'done'], ['bench', 'bench', 'done']]);
    // The source variant is the file's bytes, stored by hash.
    expect(m.stages[0]!.model!.sha256).toBe(sha(path.join(REPO_ROOT, 'test/fixtures/torch-tiny-resnet.onnx')));
    const bench = m.stages[2]!;
    expect(bench.kind === 'bench' && bench.result!.variants.map((v) => [v.id, v.kind, v.from ?? null, v.eval_images])).toEqual([['torch', 'source', null, 30], ['torch-int8', 'quantize', 'torch', 30]]);
    expect(m.data).toMatchObject({ name: images, train_images: 100, test_images: 30 });
    // test_limit takes images across the classes (test/ lists them class by class: its first 30 would
    // leave the last classes out), as `slim bench --limit` does — so the report's command re-measures them.
    const classesInTest = readdirSync(path.join(images, 'test')).length;
    const variant = bench.kind === 'bench' ? bench.result!.variants[0]! : undefined;
    expect(variant!.per_class.filter((c) => c.total > 0).length).toBe(classesInTest);
    const report = JSON.parse(readFileSync(path.join(runDir, 'report', 'report.json'), 'utf8')) as RunReport;
    const command = benchCommand(report);
    expect(command).toContain(`--warmup 2 --data ${images} --limit 30`);
    const again = await runSlim([...command.split(' ').slice(1), '--json'], { timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    const fresh = (JSON.parse(again.stdout) as { models: { top1: number; eval_images: number }[] }).models;
    expect(fresh.map((f) => [f.top1, f.eval_images])).toEqual(bench.kind === 'bench' ? bench.result!.variants.map((v) => [v.top1, v.eval_images]) : []);
    expect((await run(file, runDir)).reused).toEqual(['torch-int8', 'bench']);

    // A zoo model with image_size is built for it, and the folder's images are resized to it.
    if (!nativeAvailable()) return;
    const sized = writeRecipe('sized.yaml', `name: sized\ndata: { dataset: ${images}, test_limit: 30 }\nmodel: { zoo: resnet18-cifar, width: 0.125, image_size: [40, 48] }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 50 }\n`);
    const sizedDir = path.join(dir, 'sized');
    expect((await run(sized, sizedDir)).ran).toEqual(['fp32']);
    const built = await readModel(path.join(sizedDir, 'models', 'fp32.onnx'));
    expect(built.inputs[0]!.shape).toEqual(['batch', 3, 40, 48]);
  });

  it('a file with a free height and width is used at model.image_size (else 32×32, said), recorded in every model, so its deploy stage runs (a trial\'s failed at the end)', async () => {
    const images = await cifarImageFolder();
    const free = path.join(REPO_ROOT, 'test/fixtures/torch-tiny-senet-free.onnx');
    const file = writeRecipe('free.yaml', `name: free\ndata: { dataset: ${images}, test_limit: 20 }\nmodel: { file: ${free}, image_size: [24, 24] }\nstages:\n  - quantize: { id: int8, samples: 16 }\n  - deploy: { target: linux-x64 }\n`);
    const runDir = path.join(dir, 'free');
    const out = await run(file, runDir);
    expect(out.ran).toEqual(['int8', 'linux-x64']);
    expect(JSON.parse((await readModel(path.join(runDir, 'models', 'int8.onnx'))).metadata['slimkit.input_size']!)).toEqual([3, 24, 24]);
    expect(JSON.parse(readFileSync(path.join(runDir, 'deploy', 'linux-x64', 'slim.json'), 'utf8')).preprocess.size).toEqual([24, 24]);
    // Without image_size: CIFAR-10's 32×32, said, and recorded too.
    const unsized = writeRecipe('unsized.yaml', `name: unsized\ndata: { dataset: ${images}, test_limit: 20 }\nmodel: { file: ${free} }\nstages:\n  - quantize: { id: int8, samples: 16 }\n`);
    const r = await runSlim(['run', unsized, '--run-dir', path.join(dir, 'unsized'), '--threads', '1'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("height and width are free and it records no size: the run trains and uses it at 32×32 (CIFAR-10's) — set model.image_size [H, W] for another");
    expect(JSON.parse((await readModel(path.join(dir, 'unsized', 'models', 'int8.onnx'))).metadata['slimkit.input_size']!)).toEqual([3, 32, 32]);
    // data.resize: how the folder is read, recorded in what the run trains (the default too), as slim train records it.
    if (nativeAvailable()) {
      for (const [name, resize, recorded] of [['resized', '\n  resize: stretch', '"stretch"'], ['default-resize', '', '"shorter-side"']] as const) {
        const recipe = writeRecipe(`${name}.yaml`, `name: ${name}\ndata:\n  dataset: ${images}\n  test_limit: 20${resize}\nmodel: { zoo: resnet18-cifar, width: 0.0625 }\nstages:\n  - train: { id: fp32, epochs: 1, batch: 50 }\n`);
        expect((await run(recipe, path.join(dir, name))).ran).toEqual(['fp32']);
        expect((await readModel(path.join(dir, name, 'models', 'fp32.onnx'))).metadata['slimkit.resize']).toBe(recorded);
      }
    }
    // A file of fixed size keeps it: another image_size is refused, before any data is read.
    const fixed = writeRecipe('fixed.yaml', `name: fixed\ndata: { dataset: ${path.join(dir, 'no-such-folder')} }\nmodel: { file: ${path.join(REPO_ROOT, 'test/fixtures/torch-tiny-resnet.onnx')}, image_size: [24, 24] }\nstages:\n  - quantize: { id: int8 }\n`);
    const refused = await runSlim(['run', fixed, '--run-dir', path.join(dir, 'fixed')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/fixed\.yaml: model\.image_size: .*torch-tiny-resnet\.onnx takes 16×16 images \(its input is fixed\) — drop model\.image_size/);
  });

  it('a file with an op slimkit has no definition for: quantize stages leave it float; a stage that trains it is refused before any data is read', async () => {
    const images = await cifarImageFolder();
    const shuffle = path.join(REPO_ROOT, 'test/fixtures/torch-tiny-pixelshuffle.onnx');
    const file = writeRecipe('shuffle.yaml', `name: shuffle\ndata: { dataset: ${images}, test_limit: 20 }\nmodel: { file: ${shuffle} }\nstages:\n  - quantize: { id: int8, samples: 16 }\n`);
    const r = await runSlim(['run', file, '--run-dir', path.join(dir, 'shuffle'), '--threads', '1'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: slimkit has no definition for DepthToSpace (1 node of');
    const int8 = await readModel(path.join(dir, 'shuffle', 'models', 'int8.onnx'));
    expect(int8.nodes.filter((n) => n.opType === 'DepthToSpace')).toHaveLength(1);
    expect(int8.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(0);
    const trains = writeRecipe('shuffle-train.yaml', `name: shuffle-train\ndata: { dataset: ${path.join(dir, 'no-such-folder')} }\nmodel: { file: ${shuffle} }\nstages:\n  - quantize: { id: int8 }\n  - finetune: { id: tuned, epochs: 1 }\n`);
    const refused = await runSlim(['run', trains, '--run-dir', path.join(dir, 'shuffle-train')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/shuffle-train\.yaml: stage 'tuned' \(finetune\): trains .*torch-tiny-pixelshuffle\.onnx in slimkit's engine, which has no definition for DepthToSpace — export the model without those ops; quantize \(without qat\), bench and deploy stages take it as it is/);
  });
});

async function until(done: () => boolean, timeoutMs: number, what = 'the run to reach the fine-tuning stage'): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('a stage that runs again', () => {
  it('takes away the models made from its old output last time, through every stage between', () => {
    // fp32 → int8, fp32 → pruned → pruned-int8; bench reads no model.
    const manifest = { stages: [{ id: 'fp32' }, { id: 'int8', from: 'fp32' }, { id: 'pruned', from: 'fp32' }, { id: 'pruned-int8', from: 'pruned' }, { id: 'bench' }] };
    expect(madeFrom(manifest, 'pruned')).toEqual(['pruned-int8']);
    expect(madeFrom(manifest, 'fp32')).toEqual(['int8', 'pruned', 'pruned-int8']);
    expect(madeFrom(manifest, 'int8')).toEqual([]);
    expect(madeFrom(undefined, 'fp32')).toEqual([]);
    // A student distilled from a stage's model is made from it too.
    const distilled = { stages: [{ id: 'teacher' }, { id: 'student', result: { teacher: 'teacher' } }, { id: 'student-int8', from: 'student' }] };
    expect(madeFrom(distilled, 'teacher')).toEqual(['student', 'student-int8']);
  });
});

describe('max_drop in a recipe', () => {
  it('chooses on every other test image and records the drop on the others, as ONNX Runtime scores the stored models there', async () => {
    const source = path.join(dir, 'untrained.onnx');
    // Untrained, seed 2 calls every image class 6: 4 of the 15 images the choice leaves out (2 of the 16 it is made on).
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125, seed: 2 }), source);
    const file = writeRecipe('max-drop.yaml', `name: max-drop\ndata: { train_per_class: 10, test_limit: 31 }\nmodel: { file: ${source}, id: fp32 }\nstages:\n  - quantize: { id: mixed, samples: 32, per_tensor: true, max_drop: 0.01 }\n  - bench: { runs: 50, warmup_runs: 1 }\n`);
    const runDir = path.join(dir, 'max-drop');
    expect((await run(file, runDir)).ran).toEqual(['mixed', 'bench']);
    const stage = manifestOf(runDir).stages[1]!;
    const mixed = stage.kind === 'quantize' ? stage.result!.mixed_precision! : undefined;
    expect(mixed).toMatchObject({ chosen_on_images: 16, held_out: { images: 15 } });
    // The oracle: both stored models scored on the 2nd, 4th, … of CIFAR-10's first 31 test images.
    const test = await loadCifar10('test', { dataDir: CIFAR_DIR, limit: 31 });
    const others = subset(test, Array.from({ length: 15 }, (_, k) => 2 * k + 1));
    const scored = async (model: string): Promise<number> => {
      const session = await openSession(readFileSync(model), { threads: 1 });
      try {
        return (await evaluate(session, others, { normalization: CIFAR10_NORMALIZATION })).top1;
      } finally {
        await session.close();
      }
    };
    expect(mixed!.held_out!.baseline_top1).toBe(await scored(source));
    expect(mixed!.held_out!.top1).toBe(await scored(path.join(runDir, 'models', 'mixed.onnx')));
    const report = readFileSync(path.join(runDir, 'report', 'report.md'), 'utf8');
    expect(report).toContain(`on the 15 test images it did not choose on)`);
    // The bench scores all 31, the 16 it chose on among them: its table's top-1 is said to be partly theirs.
    const heldPct = (v: number): string => `${(v * 100).toFixed(2)} %`;
    expect(report).toContain(`> **Note:** mixed chose the ${mixed!.float_layers.length} layer(s) it keeps float on 16 test images (every other one), so its top-1 here is partly on images it chose on; on the 15 it did not choose on it scored ${heldPct(mixed!.held_out!.top1)} against ${heldPct(mixed!.held_out!.baseline_top1)}`);
  });
});

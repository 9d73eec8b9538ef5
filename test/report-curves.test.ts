// Training logs read back as runs of epochs, and `slim curves` drawing them: appended runs apart, a resume
// and a QAT's second phase continued, an epoch logged twice counted once, a torn line skipped; a real
// `slim train --log` log drawn as the numbers it holds.
import './helpers/engine-env.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { readTrainingLog } from '../src/report/training-log.js';
import { curvesSpec, renderSvg } from '../src/report/charts.js';
import { writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR } from './helpers/fixtures.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'slim-curves-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const epoch = (n: number, top1: number, loss: number | null = 2 - n / 10) =>
  JSON.stringify({ time: 't', event: 'epoch', epoch: n, train_loss: loss, train_top1: 0.5, test_loss: 1, test_top1: top1, lr: 0.1, seconds: 2, train_seconds: 1.5, images_per_second: 100 });
const event = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ time: 't', event: name, ...extra });

function writeLog(name: string, lines: string[]): string {
  const file = path.join(scratch, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('readTrainingLog', () => {
  it('splits appended runs, continues a resume and a later phase, keeps the last record of an epoch, skips a torn line', async () => {
    const file = writeLog('mixed.jsonl', [
      event('start', { epoch: 0, graph: 'resnet18-cifar' }), epoch(1, 0.3), epoch(2, 0.4),
      '{"time":"t","event":"epoch","epoch":3,"train_lo', // a crash cut this record off
      event('resume', { epoch: 2 }), epoch(3, 0.45), epoch(3, 0.5), event('end'),
      event('start', { epoch: 0, phase: 'bn-live' }), epoch(1, 0.6), event('phase_end'),
      event('start', { epoch: 1, phase: 'bn-folded' }), epoch(2, 0.7), epoch(3, 0.65, null), event('diverged', { epoch: 3 }),
    ]);
    const log = await readTrainingLog(file);
    expect(log.tornLines).toBe(1);
    expect(log.runs.map((r) => [r.name, r.model, r.epochs.map((e) => [e.epoch, e.test_top1]), r.finished, r.divergedAt])).toEqual([
      ['mixed (run 1)', 'resnet18-cifar', [[1, 0.3], [2, 0.4], [3, 0.5]], true, undefined],
      ['mixed (run 2)', undefined, [[1, 0.6], [2, 0.7], [3, 0.65]], false, 3],
    ]);
  });

  it("takes the epoch a resume carries, which a kill kept out of the log", async () => {
    // Killed after writing epoch 2's checkpoint, before logging it: the resume record holds it.
    const carried = JSON.parse(epoch(2, 0.42)) as Record<string, unknown>;
    delete carried['event'];
    delete carried['time'];
    const log = await readTrainingLog(writeLog('gap.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.3), event('resume', { epoch: 2, last_epoch: carried }), epoch(3, 0.5), event('end')]));
    expect(log.runs.map((r) => r.epochs.map((e) => [e.epoch, e.test_top1]))).toEqual([[[1, 0.3], [2, 0.42], [3, 0.5]]]);
    // Logged as well: the epoch's own record stands.
    const both = await readTrainingLog(writeLog('both.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.3), epoch(2, 0.4), event('resume', { epoch: 2, last_epoch: carried }), event('end')]));
    expect(both.runs[0]!.epochs.map((e) => e.test_top1)).toEqual([0.3, 0.4]);
  });

  it("takes a fine-tune's starting score ('start_eval') as its run's epoch 0: in the test panels, not the training loss", async () => {
    const file = writeLog('tuned.jsonl', [event('start', { epoch: 0 }), event('start_eval', { epoch: 0, test_loss: 2.5, test_top1: 0.12 }), epoch(1, 0.6), event('end'), event('start', { epoch: 0 }), epoch(1, 0.3)]);
    const { runs } = await readTrainingLog(file);
    expect(runs.map((r) => r.start)).toEqual([{ test_top1: 0.12, test_loss: 2.5 }, undefined]);
    const series = runs.map((r) => ({ stage: r.name, history: r.epochs, ...(r.start ? { start: r.start } : {}) }));
    const valuesOf = (metric: 'test_top1' | 'train_loss' | 'test_loss') => ((curvesSpec(series, metric) as unknown as { data: { values: { stage: string; epoch: number; value: number }[] } }).data.values).map((v) => [v.stage, v.epoch, Number(v.value.toFixed(4))]);
    expect(valuesOf('test_top1')).toEqual([['tuned (run 1)', 0, 12], ['tuned (run 1)', 1, 60], ['tuned (run 2)', 1, 30]]);
    expect(valuesOf('test_loss')).toEqual([['tuned (run 1)', 0, 2.5], ['tuned (run 1)', 1, 1], ['tuned (run 2)', 1, 1]]);
    expect(valuesOf('train_loss').map((v) => v[1])).toEqual([1, 1]);
    const r = await runSlim(['curves', file, '-o', path.join(scratch, 'tuned.svg')]);
    expect(r.stdout).toMatch(/tuned \(run 1\)\s+1\s+60\.00 % \(epoch 1\)\s+60\.00 % \(from 12\.00 %\)/);
  });

  it("draws an iterative prune's later cuts after their epoch's point: the line drops where the next cut was made", async () => {
    // Two steps of one epoch each: cut 1 scored 12 %, tuned to 60 %; cut 2 scored 41 % at epoch 1, tuned to 55 %.
    const file = writeLog('steps.jsonl', [
      event('start', { epoch: 0, phase: 'finetune-1' }), event('start_eval', { epoch: 0, test_loss: 2.5, test_top1: 0.12 }), epoch(1, 0.6), event('phase_end'),
      event('start', { epoch: 1, phase: 'finetune-2' }), event('start_eval', { epoch: 1, test_loss: 1.9, test_top1: 0.41 }), epoch(2, 0.55), event('end'),
    ]);
    const { runs } = await readTrainingLog(file);
    expect(runs).toHaveLength(1);
    expect([runs[0]!.start, runs[0]!.cuts]).toEqual([{ test_top1: 0.12, test_loss: 2.5 }, [{ epoch: 1, test_top1: 0.41, test_loss: 1.9 }]]);
    const spec = curvesSpec([{ stage: 'steps', history: runs[0]!.epochs, start: runs[0]!.start!, cuts: runs[0]!.cuts! }], 'test_top1') as unknown as { data: { values: { epoch: number; value: number; order: number }[] }; encoding: { order?: { field: string } } };
    // Drawn in this order (vega-lite sorts a line by x unless told): 12 → 60 → 41 → 55.
    expect(spec.encoding.order).toEqual({ field: 'order', type: 'quantitative' });
    const drawn = [...spec.data.values].sort((a, b) => a.order - b.order).map((v) => [v.epoch, Number(v.value.toFixed(4))]);
    expect(drawn).toEqual([[0, 12], [1, 60], [1, 41], [2, 55]]);
    // Its best top-1 is the written model's, after the last cut: 60 % was a wider model's (a trial read it as the result).
    const r = await runSlim(['curves', file, '-o', path.join(scratch, 'steps.svg'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { runs: { best_top1: number; best_epoch: number; after_cut: number }[] }).runs[0]).toMatchObject({ best_top1: 0.55, best_epoch: 2, after_cut: 1 });
    const text = await runSlim(['curves', file, '-o', path.join(scratch, 'steps.svg')]);
    expect(text.stdout).toContain('55.00 % (epoch 2, after the last cut)');
  });

  it('draws losses decades apart on a log axis with short ticks (a blown-up run flattened the others at 0, its ticks cut to "5,000,000,000,000,…")', async () => {
    const epoch = (e: number, loss: number) => ({ epoch: e, train_loss: loss, train_top1: 0.1, test_loss: loss, test_top1: 0.1, lr: 0.1, seconds: 1, train_seconds: 1, images_per_second: 100 });
    const calm = { stage: 'calm', history: [epoch(1, 2.1), epoch(2, 1.8)] };
    const blown = { stage: 'blown', history: [epoch(1, 2.7e19), epoch(2, 1.6e4)] };
    type Y = { encoding: { y: { title: string; scale: { type?: string; zero?: boolean }; axis?: { format?: string } } } };
    const y = (series: Parameters<typeof curvesSpec>[0]) => (curvesSpec(series, 'test_loss') as unknown as Y).encoding.y;
    expect(y([calm, blown])).toMatchObject({ title: 'loss (log scale)', scale: { type: 'log' }, axis: { format: '.3~g' } });
    expect(y([calm])).toMatchObject({ title: 'loss', scale: { zero: false } });
    const svg = await renderSvg(curvesSpec([calm, blown], 'test_loss'), 'log-loss');
    expect(svg).toMatch(/>1e\+\d+</);
    expect(svg).not.toMatch(/000,000,000/);
  });

  it('refuses a file that is not a training log, naming the line', async () => {
    await expect(readTrainingLog(writeLog('other.jsonl', [event('start'), JSON.stringify({ hello: 1 })]))).rejects.toThrow(/other\.jsonl: line 2: is not a record of a slimkit training log/);
    await expect(readTrainingLog(writeLog('blank.jsonl', [event('start'), '', JSON.stringify({ hello: 1 })]))).rejects.toThrow(/blank\.jsonl: line 3: is not a record/);
    await expect(readTrainingLog(writeLog('empty.jsonl', ['']))).rejects.toThrow(/holds no training log records — give the file a training command wrote with --log/);
    await expect(readTrainingLog(path.join(scratch, 'missing.jsonl'))).rejects.toThrow(/missing\.jsonl: does not exist/);
    // A model given for the log (a trial's `slim curves tiny.onnx` was told of its "line 22").
    const model = path.join(scratch, 'tiny.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.0625 }), model);
    await expect(readTrainingLog(model)).rejects.toThrow(/tiny\.onnx: is an ONNX model, not a training log — give the JSON-lines file a training command wrote with --log/);
    writeFileSync(path.join(scratch, 'noise.bin'), Buffer.from([1, 0, 2, 0, 3]));
    await expect(readTrainingLog(path.join(scratch, 'noise.bin'))).rejects.toThrow(/noise\.bin: is a binary file, not a training log/);
  });
});

describe('slim curves', () => {
  it('draws several logs in one SVG and summarizes each run', async () => {
    const a = writeLog('a/train.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.2), epoch(2, 0.35), event('end')]);
    const b = writeLog('b/train.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.25), epoch(2, 0.3)]);
    const out = path.join(scratch, 'both.svg');
    const r = await runSlim(['curves', a, b, '-o', out, '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { output: string; runs: { name: string; epochs: number; best_top1: number; best_epoch: number; last_top1: number; finished: boolean; seconds: number }[] };
    expect(json.output).toBe(out);
    // Same file name in two folders: each run is named by its path.
    const names = json.runs.map((x) => x.name);
    expect(names[0]).toMatch(/a\/train$/);
    expect(names[1]).toMatch(/b\/train$/);
    expect(json.runs.map((x) => [x.epochs, x.best_top1, x.best_epoch, x.last_top1, x.finished, x.seconds])).toEqual([[2, 0.35, 2, 0.35, true, 4], [2, 0.3, 2, 0.3, false, 4]]);
    // Two runs appended to one of them: each named by its path and run; a log named twice is drawn once.
    const c = writeLog('c$&/train.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.1), event('start', { epoch: 0 }), epoch(1, 0.15)]);
    const three = await runSlim(['curves', a, c, a, '-o', path.join(scratch, 'three.svg'), '--json']);
    expect(three.code).toBe(0);
    expect(three.stderr).toMatch(/a\/train\.jsonl is named twice: drawn once/);
    // Named from the scratch folder on (whose random name may end in 'a/' or 'c/' itself: a pattern cut there once).
    const below = (name: string): string => name.slice(name.indexOf(`${path.basename(scratch)}/`) + path.basename(scratch).length + 1);
    expect((JSON.parse(three.stdout) as { runs: { name: string }[] }).runs.map((x) => below(x.name))).toEqual(['a/train', 'c$&/train (run 1)', 'c$&/train (run 2)']);
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['Test top-1 per epoch', 'Training loss per epoch', names[0]!, names[1]!]) expect(svg).toContain(text);
  });

  it('lists the runs in the order given, and draws test loss where distilled runs meet plain ones', async () => {
    // A trial's KD run (combined loss 0.98) sat below plain cross-entropy (1.63) with the lower top-1.
    const plain = writeLog('mix/plain.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.4, 1.63), event('end')]);
    const kd = writeLog('mix/kd.jsonl', [event('start', { epoch: 0, teacher: { temperature: 4, alpha: 0.5 } }), epoch(1, 0.38, 0.98), event('end')]);
    expect((await readTrainingLog(kd)).runs[0]!.distilled).toBe(true);
    expect((await readTrainingLog(plain)).runs[0]!.distilled).toBe(false);
    const out = path.join(scratch, 'mix.svg');
    const r = await runSlim(['curves', plain, kd, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("note: kd distilled: their training loss (α·CE + (1−α)·T²·KL) is not the others' cross-entropy, so the right panel draws test loss (cross-entropy on the test images) for every run");
    const svg = readFileSync(out, 'utf8');
    expect(svg).toContain('Test loss per epoch');
    expect(svg).not.toContain('Training loss per epoch');
    // The table marks the distillation loss (a trial read 1.051 beside 1.783 as the better fit).
    expect(r.stdout).toMatch(/^kd .* 0\.980 \(KD\) /m);
    expect(r.stdout).toMatch(/^plain .* 1\.630 /m);
    expect(r.stdout).toContain('(KD): the distillation loss α·CE + (1−α)·T²·KL, not cross-entropy');
    // The legend in argument order ('plain' before 'kd'), not alphabetical.
    expect(svg.indexOf('>plain<')).toBeGreaterThan(-1);
    expect(svg.indexOf('>plain<')).toBeLessThan(svg.indexOf('>kd<'));
    // Distilled runs alone keep their training loss: one function on one axis.
    const alone = await runSlim(['curves', kd, '-o', path.join(scratch, 'kd.svg')]);
    expect(alone.stderr).not.toMatch(/test loss/);
    expect(readFileSync(path.join(scratch, 'kd.svg'), 'utf8')).toContain('Training loss per epoch');
  });

  it("a slim run folder is pointed to its report's curves, or told it has none (a trial was sent to charts that did not exist)", async () => {
    const run = path.join(scratch, 'a-run');
    mkdirSync(run);
    writeFileSync(path.join(run, 'manifest.json'), JSON.stringify({ stages: [{ kind: 'quantize' }, { kind: 'bench' }] }));
    const none = await runSlim(['curves', run]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`${run} is a slim run folder whose stages train nothing: it has no training curves`);
    writeFileSync(path.join(run, 'manifest.json'), JSON.stringify({ stages: [{ kind: 'train' }, { kind: 'bench' }] }));
    expect((await runSlim(['curves', run])).stderr).toContain(`${run} is a slim run folder whose report has no training curves yet — slim report ${run} draws them`);
    mkdirSync(path.join(run, 'report', 'charts'), { recursive: true });
    writeFileSync(path.join(run, 'report', 'charts', 'accuracy-curves.svg'), '<svg/>');
    const r = await runSlim(['curves', run]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${run} is a slim run folder: its training curves are drawn in its report (${path.join(run, 'report', 'charts', 'accuracy-curves.svg')} and loss-curves.svg`);
  });

  it('writes beside the first log by default and refuses an -o that is not an SVG', async () => {
    const log = writeLog('solo.jsonl', [event('start', { epoch: 0 }), epoch(1, 0.2)]);
    const r = await runSlim(['curves', log]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${path.join(scratch, 'solo.svg')}`);
    expect(r.stdout).toMatch(/solo \(did not finish\)\s+1\s+20\.00 % \(epoch 1\)\s+20\.00 %\s+1\.900\s+2 s/);
    expect(existsSync(path.join(scratch, 'solo.svg'))).toBe(true);
    const bad = await runSlim(['curves', log, '-o', path.join(scratch, 'x.png')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("-o writes an SVG file, got '");
    const nothing = await runSlim(['curves', writeLog('started.jsonl', [event('start', { epoch: 0 })])]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/started\.jsonl: no run in this log finished an epoch: there is nothing to draw — draw the log again after the first epoch/);
    const diverged = await runSlim(['curves', writeLog('diverged.jsonl', [event('start', { epoch: 0 }), event('diverged', { epoch: 1 })])]);
    expect(diverged.code).toBe(1);
    expect(diverged.stderr).toMatch(/the run diverged in its first epoch: train again with a lower --lr/);
  });

  it.skipIf(!nativeAvailable() || !existsSync(path.join(CIFAR_DIR, 'test_batch.bin')))('draws the log slim train writes, with its numbers', async () => {
    const log = path.join(scratch, 'real.jsonl');
    const t = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', 'cifar10', '--data-dir', CIFAR_DIR!, '--epochs', '2', '--train-limit', '128', '--test-limit', '64', '--batch', '32', '--threads', '2', '--log', log, '--out', path.join(scratch, 'real.onnx'), '--json'], { timeoutMs: 180_000 });
    expect(t.code).toBe(0);
    const epochs = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; test_top1: number }).filter((e) => e.event === 'epoch');
    const r = await runSlim(['curves', log, '--json']);
    expect(r.code).toBe(0);
    const run = (JSON.parse(r.stdout) as { runs: { epochs: number; last_top1: number; finished: boolean; name: string }[] }).runs[0]!;
    expect(run).toMatchObject({ name: 'real', epochs: 2, last_top1: epochs[1]!.test_top1, finished: true });
    // Training the written model further scores it first, on the same test images: what ONNX Runtime gave it.
    const tunedLog = path.join(scratch, 'real-tuned.jsonl');
    const trained = JSON.parse(t.stdout) as { onnxruntime_top1?: number };
    const tuned = await runSlim(['train', '--model', path.join(scratch, 'real.onnx'), '--data', 'cifar10', '--data-dir', CIFAR_DIR!, '--epochs', '1', '--train-limit', '128', '--test-limit', '64', '--batch', '32', '--threads', '2', '--log', tunedLog, '--out', path.join(scratch, 'real-tuned.onnx'), '--json'], { timeoutMs: 180_000 });
    expect(tuned.code, tuned.stderr).toBe(0);
    const start = (JSON.parse(tuned.stdout) as { start_top1: number }).start_top1;
    expect(Math.abs(start - trained.onnxruntime_top1!)).toBeLessThanOrEqual(1 / 64);
    const curves = JSON.parse((await runSlim(['curves', tunedLog, '--json'])).stdout) as { runs: { start_top1: number }[] };
    expect(curves.runs[0]!.start_top1).toBe(start);
  }, 240_000);
});

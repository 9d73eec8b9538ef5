/**
 * The statistics a model's images are normalized with. A plain torch.onnx export records none: the
 * commands that feed it images say which they use (CIFAR-10's), take --mean and --std as a pair, and
 * the commands that write a model record the pair they were given — quantize, prune, distill and a
 * recipe's `model: { file, mean, std }` as train does — and never the default as if it were known.
 */
import './helpers/engine-env.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { parseRecipe } from '../src/pipeline/parse.js';
import { pixelStatistics } from '../src/data/types.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, fixturePath } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-normalization-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A ResNet18-CIFAR ×0.125 as torch.onnx writes one: no slimkit metadata at all. */
const PLAIN = path.join(dir, 'plain.onnx');
const IMAGENET = ['--mean', '0.485,0.456,0.406', '--std', '0.229,0.224,0.225'];

beforeAll(async () => {
  const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 });
  await writeModel({ ...graph, metadata: {} }, PLAIN);
});

const recorded = async (file: string): Promise<{ mean?: number[]; std?: number[] }> => {
  const { metadata } = await readModel(file);
  return {
    ...(metadata['slimkit.mean'] ? { mean: JSON.parse(metadata['slimkit.mean']) as number[] } : {}),
    ...(metadata['slimkit.std'] ? { std: JSON.parse(metadata['slimkit.std']) as number[] } : {}),
  };
};

describe('pixelStatistics', () => {
  it("gives each channel's mean and standard deviation in [0, 1] units, over every image", () => {
    // Two 1×2 images, 2 channels: channel 0 holds 0, 255, 255, 255 (mean 0.75, std √0.1875); channel 1 all 51 (0.2, 0).
    const set = { name: 's', classes: ['a'], imageShape: [2, 1, 2] as [number, number, number], pixels: Uint8Array.of(0, 255, 51, 51, 255, 255, 51, 51), labels: Uint16Array.of(0, 0) };
    const { mean, std } = pixelStatistics(set);
    expect(mean[0]).toBeCloseTo(0.75, 12);
    expect(std[0]).toBeCloseTo(Math.sqrt(0.1875), 12);
    expect(mean[1]).toBeCloseTo(0.2, 12);
    expect(std[1]).toBeCloseTo(0, 6);
  });
});

describe('a model that records no mean/std', () => {
  it('eval says it uses CIFAR-10\'s statistics, once, naming the file', async () => {
    const r = await runSlim(['eval', PLAIN, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '50']);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stderr.split('\n').filter((l) => l.includes('records no mean/std'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`note: ${PLAIN} records no mean/std (slimkit.mean, slimkit.std): its images are normalized with CIFAR-10's (mean 0.4914,0.4822,0.4465, std 0.247,0.2435,0.2616)`);
    // Given the statistics, nothing is said.
    const given = await runSlim(['eval', PLAIN, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '50', ...IMAGENET]);
    expect(given.stderr).not.toMatch(/records no mean\/std/);
  });

  it('bench of several such models says it in one note naming them all', async () => {
    const other = path.join(dir, 'plain-copy.onnx');
    await writeModel(await readModel(PLAIN), other);
    const r = await runSlim(['bench', PLAIN, other, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '20', '--runs', '50', '--warmup', '1', '--batch', '4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stderr.split('\n').filter((l) => l.includes('no mean/std'));
    expect(notes).toEqual([`note: ${PLAIN}, ${other} record no mean/std (slimkit.mean, slimkit.std): their images are normalized with CIFAR-10's (mean 0.4914,0.4822,0.4465, std 0.247,0.2435,0.2616) — if they were trained with others, pass --mean and --std (in a recipe: model.mean and model.std; torchvision's ImageNet models: 0.485,0.456,0.406 and 0.229,0.224,0.225)`]);
  });

  it('half a pair is refused: --mean without --std would mix the given mean with another std', async () => {
    const r = await runSlim(['eval', PLAIN, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--mean', '0.485,0.456,0.406']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--mean without --std — pass both/);
    const s = await runSlim(['quantize', PLAIN, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--std', '0.2']);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--std without --mean/);
  });

  it('deploy takes the pair too; a model recording half a pair is refused until both are given', async () => {
    const d = await runSlim(['deploy', PLAIN, '--target', 'linux-x64', '--out', path.join(dir, 'b'), '--mean', '0.5,0.5,0.5']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/--mean without --std/);
    const half = path.join(dir, 'half.onnx');
    const graph = await readModel(PLAIN);
    await writeModel({ ...graph, metadata: { 'slimkit.mean': '[0.5,0.5,0.5]' } }, half);
    const e = await runSlim(['eval', half, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '20']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/metadata 'slimkit\.mean': is recorded without 'slimkit\.std' — pass --mean and --std/);
    const given = await runSlim(['eval', half, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '20', ...IMAGENET]);
    expect(given.code, given.stderr).toBe(0);
  });

  it('quantize records the --mean/--std it calibrated with', async () => {
    const out = path.join(dir, 'q.onnx');
    const r = await runSlim(['quantize', PLAIN, '-o', out, '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '32', ...IMAGENET]);
    expect(r.code, r.stderr).toBe(0);
    expect(await recorded(out)).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    // Without them the default is used (and said) but not written down as if it were known.
    const plainOut = path.join(dir, 'q-default.onnx');
    const d = await runSlim(['quantize', PLAIN, '-o', plainOut, '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '32']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/records no mean\/std/);
    expect(await recorded(plainOut)).toEqual({});
  });

  it('prune takes --mean/--std for its mean replacement and records them', async () => {
    const out = path.join(dir, 'p.onnx');
    const r = await runSlim(['prune', PLAIN, '-o', out, '--structured', '--ratio', '0.25', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--calib-samples', '32', ...IMAGENET]);
    expect(r.code, r.stderr).toBe(0);
    expect(await recorded(out)).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  it.skipIf(!nativeAvailable())('distill without statistics trains with the default and does not record it; --mean/--std are recorded', async () => {
    const common = ['distill', '--teacher', PLAIN, '--student', PLAIN, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--epochs', '1', '--batch', '50', '--train-limit', '100', '--test-limit', '50', '--threads', '1'];
    const bare = path.join(dir, 'kd.onnx');
    const r = await runSlim([...common, '--out', bare]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/records no mean\/std/);
    expect(await recorded(bare)).toEqual({});
    const given = path.join(dir, 'kd-given.onnx');
    const g = await runSlim([...common, '--out', given, ...IMAGENET]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stderr).not.toMatch(/no mean\/std \(slimkit.mean, slimkit.std\)/);
    // The teacher records none either: it is fed them too, and that is said (a trial's teacher lost half its top-1 unnoticed).
    expect(g.stderr).toContain(`note: ${PLAIN} records no mean/std, so it is fed --mean/--std as the student is: if it was trained with other statistics its soft targets are off`);
    expect(r.stderr).not.toMatch(/so it is fed --mean\/--std/);
    expect(await recorded(given)).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });
});

describe('a model that records its statistics', () => {
  it('--mean/--std that replace them are noted, naming both pairs (eval once, deploy as a warning); the same ones are not', async () => {
    const cifar = path.join(dir, 'cifar-stats.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 }), cifar); // the zoo records CIFAR-10's
    const e = await runSlim(['eval', cifar, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '20', ...IMAGENET]);
    expect(e.code, e.stderr).toBe(0);
    const notes = e.stderr.split('\n').filter((l) => l.includes('replace them'));
    expect(notes).toEqual([`note: ${cifar} records mean 0.4914,0.4822,0.4465 and std 0.247,0.2435,0.2616; --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 replace them`]);
    const same = await runSlim(['eval', cifar, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '20', '--mean', '0.4914,0.4822,0.4465', '--std', '0.247,0.2435,0.2616']);
    expect(same.stderr).not.toMatch(/replace them|records no mean/);
    const d = await runSlim(['deploy', cifar, '--target', 'linux-x64', '--out', path.join(dir, 'b-override'), ...IMAGENET]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toContain(`deploy: warning: ${cifar} records mean 0.4914,0.4822,0.4465 and std 0.247,0.2435,0.2616; --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 replace them`);
  });
});

describe('a recipe names the statistics of its model file', () => {
  it('model.mean and model.std come together, and only for a model file', () => {
    const issues = (model: string): string => {
      try {
        parseRecipe(`name: t\nmodel: ${model}\nstages:\n  - quantize: { id: q }\n`, 'r.yaml');
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(issues('{ file: m.onnx, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }')).toBe('');
    expect(issues('{ file: m.onnx, mean: [0.485, 0.456, 0.406] }')).toMatch(/model\.mean: give mean and std together/);
    expect(issues('{ zoo: resnet18-cifar, mean: [0.5], std: [0.5] }')).toMatch(/model\.mean: mean and std describe a model file/);
  });

  it('a model that normalizes its raw pixels itself takes none', async () => {
    const recipe = path.join(dir, 'raw.yaml');
    writeFileSync(recipe, `name: raw\nmodel: { file: ${fixturePath('torch-tiny-resnet-pixels.onnx')}, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }\nstages:\n  - quantize: { id: q }\n`);
    const r = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'raw-run'), '--data-dir', CIFAR_DIR, '--plan']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.mean: .*normalizes them itself — drop model\.mean and model\.std/);
  });

  it('slim run records them in the source variant, so every stage and model uses them', async () => {
    const recipe = path.join(dir, 'r.yaml');
    writeFileSync(recipe, `name: stats\ndata: { train_per_class: 10, test_limit: 50 }\nmodel: { file: plain.onnx, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }\nstages:\n  - quantize: { id: int8, samples: 32 }\n`);
    const runDir = path.join(dir, 'run');
    const r = await runSlim(['run', recipe, '--run-dir', runDir, '--data-dir', CIFAR_DIR, '--threads', '1', '--no-report'], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/records no mean\/std/);
    // Without them, the run says what it uses.
    writeFileSync(recipe, `name: stats\ndata: { train_per_class: 10, test_limit: 50 }\nmodel: { file: plain.onnx }\nstages:\n  - quantize: { id: int8, samples: 32 }\n`);
    const plan = await runSlim(['run', recipe, '--run-dir', runDir, '--data-dir', CIFAR_DIR, '--plan']);
    expect(plan.stderr).toMatch(/note: plain\.onnx records no mean\/std .*in a recipe: model\.mean and model\.std/);
    for (const id of ['input', 'int8']) expect(await recorded(path.join(runDir, 'models', `${id}.onnx`))).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });
});

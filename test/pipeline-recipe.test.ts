/**
 * Recipe validation: every problem is reported at its line and column (oracle: the position of the
 * offending text in the recipe, found independently), says what is wrong and what to do. The shipped
 * recipes parse. `slim run` prints the error on one line and exits 1.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRecipe, parseRecipe, RecipeError, type RecipeIssue } from '../src/pipeline/parse.js';
import { SlimError } from '../src/errors.js';
import { inputOf, inStage, onlyNewHeadReads, stageKey, storedStage } from '../src/pipeline/run.js';
import { changedSince, planPipeline } from '../src/pipeline/plan.js';
import { publishModel, putBytes, unpublishOthers, verifyArtifact } from '../src/pipeline/store.js';
import { failureLine } from '../src/pipeline/stages/bench.js';
import { dataLimitsNote } from '../src/pipeline/data.js';
import { lockRun, readStageRecord, writeStageRecord, type StageRecord } from '../src/pipeline/manifest.js';
import { processStartTime } from '../src/util/process.js';
import type { RunData } from '../src/pipeline/data.js';
import type { ImageSet } from '../src/data/types.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, fixturePath, REPO_ROOT } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-recipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 1-based line and column of the n-th occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string, nth = 1): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`'${needle}' not in the recipe`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}

function issuesOf(text: string): RecipeIssue[] {
  try {
    parseRecipe(text, 'r.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(RecipeError);
    return (e as RecipeError).issues;
  }
  throw new Error('the recipe was accepted');
}

const GOOD = `name: t
model: { zoo: resnet18-cifar, width: 0.25 }
stages:
  - train: { id: fp32, epochs: 2 }
  - quantize: { id: int8 }
  - bench: {}
`;

describe('recipe validation', () => {
  it('accepts the shipped recipes and fills defaults', async () => {
    for (const name of ['demo.yaml', 'full-gpu.yaml', 'transfer.yaml']) {
      const r = await loadRecipe(path.join(REPO_ROOT, 'recipes', name));
      expect(r.stages.length).toBeGreaterThanOrEqual(5);
      expect(r.stages.some((s) => s.kind === 'bench')).toBe(true);
    }
    const r = parseRecipe(GOOD, 'r.yaml');
    expect(r.stages.map((s) => [s.kind, s.id])).toEqual([['train', 'fp32'], ['quantize', 'int8'], ['bench', 'bench']]);
    const train = r.stages[0]!;
    expect(train.kind === 'train' && train.spec.batch).toBe(128);
    expect(r.data.dataset).toBe('cifar10');
  });

  it("a train stage's augment: true, false, 'crop' or 'resized-crop'", () => {
    const augmentOf = (value: string) => {
      const stage = parseRecipe(GOOD.replace('epochs: 2', `epochs: 2, augment: ${value}`), 'r.yaml').stages[0]!;
      return stage.kind === 'train' ? stage.spec.augment : undefined;
    };
    expect(augmentOf('resized-crop')).toBe('resized-crop');
    expect(augmentOf('false')).toBe(false);
    expect(issuesOf(GOOD.replace('epochs: 2', 'epochs: 2, augment: mixup'))[0]).toMatchObject({ path: 'stages[0].train.augment' });
  });

  it("a stage's error is placed in the recipe and says how a run resumes (slim run has no --resume)", () => {
    const r = parseRecipe(GOOD, 'r.yaml');
    const disk = new SlimError({ file: 'work/last.ckpt', problem: 'cannot be written: the disk is full', fix: 'it still holds epoch 2, untouched: free space, then run the same command with --resume' }, 'input');
    const placed = inStage(disk, r, r.stages[0]!) as SlimError;
    expect(placed.message).toMatch(/^r\.yaml:\d+: stage 'fp32' \(train\): work\/last\.ckpt: cannot be written: the disk is full — it still holds epoch 2, untouched: free space, then rerun the same `slim run` command \(the stage resumes\)$/);
  });

  it('points at a wrong value: line, column, what it expected and what it means', () => {
    const text = GOOD.replace('epochs: 2', 'epochs: eight');
    const [issue, ...rest] = issuesOf(text);
    expect(rest).toEqual([]);
    expect(issue).toMatchObject({ ...positionOf(text, 'eight'), path: 'stages[0].train.epochs' });
    expect(issue!.problem).toBe("expected a number, got 'eight'");
    expect(issue!.fix).toMatch(/whole number ≥ 1/);
  });

  it('names the allowed range of a number that is out of range', () => {
    const text = GOOD.replace("  - quantize: { id: int8 }\n", '  - prune:\n      structured:\n        target_macs: 1.5\n');
    const [issue] = issuesOf(text);
    expect(issue).toMatchObject({ ...positionOf(text, '1.5'), path: 'stages[1].prune.structured.target_macs', problem: 'must be ≤ 1, got 1.5' });
    expect(issue!.fix).toMatch(/fraction of MACs to keep/);
  });

  it("names a deploy stage by its target unless it has an id: its bundle is deploy/linux-arm64, not deploy/deploy, and two targets need no ids", () => {
    const r = parseRecipe(GOOD.replace('  - bench: {}\n', '  - deploy: { target: linux-arm64 }\n  - deploy: { target: web }\n  - deploy: { id: pi5, target: linux-arm64 }\n'), 'r.yaml');
    expect(r.stages.filter((st) => st.kind === 'deploy').map((st) => st.id)).toEqual(['linux-arm64', 'web', 'pi5']);
  });

  it('data.resize takes a mode or a shorter side, as --resize does', async () => {
    const { recipeResize } = await import('../src/pipeline/recipe.js');
    expect(recipeResize(parseRecipe(GOOD.replace('model:', 'data: { dataset: photos, resize: 256 }\nmodel:'), 'r.yaml').data)).toEqual({ shorterSide: 256 });
    expect(recipeResize(parseRecipe(GOOD.replace('model:', 'data: { dataset: photos, resize: stretch }\nmodel:'), 'r.yaml').data)).toBe('stretch');
    expect(issuesOf(GOOD.replace('model:', 'data: { dataset: photos, resize: squash }\nmodel:')).map((i) => i.path)).toEqual(['data.resize']);
  });

  it('refuses more prune steps than fine-tuning epochs: some cuts would follow each other untrained', () => {
    const text = GOOD.replace("  - quantize: { id: int8 }\n", '  - prune: { structured: { target_macs: 0.5 }, finetune: { epochs: 2, steps: 3 } }\n');
    const [issue, ...rest] = issuesOf(text);
    expect(rest).toEqual([]);
    expect(issue).toMatchObject({ path: 'stages[1].prune.finetune.steps', problem: '3 steps over 2 epoch(s) would cut 1 time(s) with no fine-tuning after: give epochs ≥ steps' });
  });

  it('suggests the key that was meant, at the misspelt key', () => {
    const text = GOOD.replace('epochs: 2', 'epocs: 2');
    const issues = issuesOf(text);
    const unknown = issues.find((i) => i.problem === "unknown key 'epocs'");
    expect(unknown).toMatchObject({ ...positionOf(text, 'epocs'), fix: "did you mean 'epochs'?" });
    // …and the required key it replaced is reported missing.
    expect(issues.find((i) => i.path === 'stages[0].train.epochs')?.problem).toBe('is missing');
  });

  it("names what a key that is not the recipe's means where spelling does not: the CLI's --lsq, a model file as student", () => {
    const text = `name: t
model: { zoo: resnet18-cifar }
stages:
  - train: { id: a, epochs: 1 }
  - quantize: { id: q, qat: { epochs: 1, lsq: true } }
  - distill: { id: s, teacher: a, student: { file: t.onnx }, epochs: 1 }
`;
    expect(issuesOf(text).map((i) => [i.path, i.problem, i.fix])).toEqual([
      ['stages[1].quantize.qat.lsq', "unknown key 'lsq'", "did you mean 'learnable_scales'? (the CLI's --lsq)"],
      // A required choice left out is missing (it read "nothing is not allowed").
      ['stages[2].distill.student.zoo', 'is missing', expect.stringMatching(/^add it: one of resnet18-cifar, resnet34-cifar, /)],
      ['stages[2].distill.student.file', "unknown key 'file'", "a recipe's student is a zoo model ({ zoo: NAME, width: W }); to distill into a model file, leave student out and give the stage `from:` the stage that makes it (the recipe's model: { file } is one)"],
    ]);
  });

  it('suggests the stage kind that was meant', () => {
    const text = GOOD.replace('  - quantize: { id: int8 }', '  - quantise: { id: int8 }');
    const [issue] = issuesOf(text);
    expect(issue).toMatchObject({ ...positionOf(text, 'quantise'), problem: "unknown stage 'quantise'" });
    expect(issue!.fix).toMatch(/^did you mean 'quantize'\?/);
  });

  it('checks that from / teacher / variants name an earlier model', () => {
    const text = `name: t
model: { zoo: resnet18-cifar }
stages:
  - quantize: { id: early, from: fp32 }
  - train: { id: fp32, epochs: 1 }
  - distill: { id: small, teacher: big, epochs: 1 }
  - bench: { variants: [fp32, nope] }
  - deploy: { variant: bench, target: web }
`;
    const issues = issuesOf(text);
    expect(issues.map((i) => [i.path, i.problem, i.line, i.col])).toEqual([
      ['stages[0].quantize.from', "no earlier stage has id 'fp32'", ...Object.values(positionOf(text, 'fp32 }'))],
      ['stages[2].distill.teacher', "no earlier stage has id 'big'", ...Object.values(positionOf(text, 'big'))],
      ['stages[3].bench.variants[1]', "no earlier stage has id 'nope'", ...Object.values(positionOf(text, 'nope'))],
      ['stages[4].deploy.variant', "stage 'bench' does not make a model", ...Object.values(positionOf(text, 'bench, target'))],
    ]);
    expect(issues[1]!.fix).toBe('use one of: early, fp32');
  });

  it('a distill stage with a zoo student reads no earlier model: it is made from nothing but its teacher, and a `from` beside it is refused', () => {
    const text = `name: t
model: { zoo: resnet18-cifar }
stages:
  - train: { id: big, epochs: 1 }
  - distill: { id: kd, teacher: big, student: { zoo: resnet18-cifar, width: 0.25 }, epochs: 1 }
  - distill: { id: again, teacher: big, student: { zoo: resnet18-cifar, width: 0.25 }, alpha: 1, epochs: 1 }
  - distill: { id: further, teacher: big, epochs: 1 }
`;
    const recipe = parseRecipe(text, 't.yaml');
    const variants = new Map<string, never>();
    // A trial saw 'again' rerun whenever 'kd' did, and its report say it was made from 'kd'.
    expect(inputOf(recipe.stages[2]!, 'kd', variants)).toEqual({});
    expect(inputOf(recipe.stages[3]!, 'again', variants)).toEqual({ from: 'again' });
    const both = issuesOf(text.replace("id: kd, teacher: big,", "id: kd, from: big, teacher: big,"));
    expect(both.map((i) => [i.path, i.problem])).toEqual([['stages[1].distill.from', 'is not read when the stage has a zoo `student` (it starts from its own weights): drop `from`, or drop `student` to train the model of `from` further']]);
  });

  it('refuses two stages with the same id and says how to name the second', () => {
    const text = GOOD.replace('  - bench: {}', '  - quantize: { from: fp32 }\n  - quantize: { from: fp32, samples: 64 }\n  - bench: {}');
    const issues = issuesOf(text);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ line: positionOf(text, '{ from: fp32, samples').line, problem: "two stages are called 'quantize'" });
    expect(issues[0]!.fix).toMatch(/id: quantize-2/);
    // A later reference to an unknown stage lists each id once (a trial read "teacher, student, student").
    const twice = issuesOf(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: a, epochs: 1 }\n  - train: { id: a, epochs: 1 }\n  - quantize: { from: nope }\n`);
    expect(twice.at(-1)!.fix).toBe('use one of: a');
  });

  it('enforces one-of rules with a clear sentence', () => {
    const text = GOOD.replace("  - quantize: { id: int8 }\n", '  - prune: { structured: { target_macs: 0.5, ratio: 0.3 } }\n');
    const [issue] = issuesOf(text);
    expect(issue).toMatchObject({ path: 'stages[1].prune.structured', problem: 'give exactly one of target_macs or ratio' });
    const noMode = issuesOf(GOOD.replace("  - quantize: { id: int8 }\n", '  - prune: { importance: l1 }\n'));
    expect(noMode[0]!.problem).toMatch(/exactly one of `structured/);
  });

  it('refuses options the quantize mode would ignore (they did nothing, silently)', () => {
    const fp16 = issuesOf(GOOD.replace('  - quantize: { id: int8 }\n', '  - quantize: { id: half, mode: fp16, method: entropy, samples: 64 }\n'));
    expect(fp16.map((i) => [i.path, i.problem])).toEqual([
      ['stages[1].quantize.method', 'method applies to mode: static (calibrated int8), not fp16: drop it'],
      ['stages[1].quantize.samples', 'samples applies to mode: static (calibrated int8), not fp16: drop it'],
    ]);
    const dynamic = issuesOf(GOOD.replace('  - quantize: { id: int8 }\n', '  - quantize: { id: dyn, mode: dynamic, per_tensor: true, equalize: true }\n'));
    expect(dynamic.map((i) => i.problem)).toEqual(['equalize applies to mode: static (calibrated int8), not dynamic (which takes per_tensor, reduce_range, cpu, exclude): drop it']);
    expect(() => parseRecipe(GOOD.replace('  - quantize: { id: int8 }\n', '  - quantize: { id: dyn, mode: dynamic, per_tensor: true }\n'), 'r.yaml')).not.toThrow();
    // A typo in a quantize stage still gets its suggestion (the raw-key check sits in front of the schema).
    const typo = issuesOf(GOOD.replace('  - quantize: { id: int8 }\n', '  - quantize: { id: int8, methd: mse }\n'));
    expect(typo[0]).toMatchObject({ problem: "unknown key 'methd'", fix: "did you mean 'method'?" });
  });

  it('reports YAML syntax errors at their line', () => {
    const text = 'name: t\nmodel: { zoo: resnet18-cifar\nstages: []\n';
    const [issue] = issuesOf(text);
    expect(issue!.problem).toMatch(/^YAML syntax/);
    expect(issue!.line).toBeGreaterThanOrEqual(2);
  });

  it('lists every problem at once, in one line per the CLI rules', () => {
    const text = GOOD.replace('epochs: 2', 'epochs: 0').replace('name: t', 'name: t\nseeed: 1');
    let error: RecipeError | undefined;
    try {
      parseRecipe(text, 'my.yaml');
    } catch (e) {
      error = e as RecipeError;
    }
    expect(error!.issues).toHaveLength(2);
    expect(error!.message).not.toMatch(/\n/);
    const { line, col } = positionOf(text, 'seeed');
    expect(error!.message).toContain(`my.yaml:${line}:${col}: seeed: unknown key 'seeed' — did you mean 'seed'?`);
    expect(error!.message).toContain('stages[0].train.epochs: must be ≥ 1, got 0');
  });

  it('`slim run` on a bad recipe: one line on stderr naming file:line:col, exit 1, nothing on stdout', async () => {
    const file = path.join(dir, 'bad.yaml');
    const text = GOOD.replace('width: 0.25', 'width: -1');
    writeFileSync(file, text);
    const run = await runSlim(['run', file, '--run-dir', path.join(dir, 'run')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const { line, col } = positionOf(text, '-1');
    expect(run.stderr.trim()).toBe(`slim: ${file}:${line}:${col}: model.width: must be > 0, got -1 — channel width multiplier, a number > 0 (0.25 = a quarter of the channels)`);
    const missing = await runSlim(['run', path.join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.yaml: the recipe does not exist/);
  });

  it('a model given instead of a recipe is named as such; a text of many problems lists the first five', async () => {
    const model = await runSlim(['run', fixturePath('torch-tiny-resnet.onnx')]);
    // A wrong file is bad input (exit 1), as a missing one is and as other commands say of an image.
    expect(model.code).toBe(1);
    expect(model.stderr.trim()).toMatch(/torch-tiny-resnet\.onnx: is an ONNX model, not a YAML recipe — slim run takes a recipe/);
    expect(model.stderr.length).toBeLessThan(400);
    const folder = await runSlim(['run', dir]);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/is a folder, not a recipe/);
    let error: RecipeError | undefined;
    try {
      parseRecipe(Array.from({ length: 40 }, (_, i) => `  bad: [${i}`).join('\n'), 'junk.txt');
    } catch (e) {
      error = e as RecipeError;
    }
    expect(error!.issues.length).toBeGreaterThan(5);
    expect(error!.message.match(/junk\.txt:\d+:\d+/g)).toHaveLength(5);
    expect(error!.message).toMatch(new RegExp(`; … and ${error!.issues.length - 5} more$`));
  });
});

describe('stage keys', () => {
  const set: ImageSet = { name: 'x', classes: ['a', 'b'], imageShape: [3, 32, 32], pixels: new Uint8Array(3072 * 2), labels: Uint16Array.of(0, 1) };
  const data: RunData = { train: set, test: set, name: 'x', sha256: 'd'.repeat(64), trainSha256: 'e'.repeat(64) };
  const keyOfFirstStage = (model: string): string => {
    const recipe = parseRecipe(`name: t\nmodel: ${model}\nstages:\n  - train: { id: fp32, epochs: 1 }\n`, 'r.yaml');
    return stageKey(recipe.stages[0]!, { device: 'cpu', data, variants: new Map(), input: {}, seed: 0, model: recipe.model, recipeName: recipe.name });
  };

  it("augment: crop keys as the default (true, or left out); resized-crop and false key apart", () => {
    const keyOf = (augment: string) => {
      const recipe = parseRecipe(`name: t\nmodel: { zoo: resnet18-cifar, width: 0.25 }\nstages:\n  - train: { id: fp32, epochs: 1${augment} }\n`, 'r.yaml');
      return stageKey(recipe.stages[0]!, { device: 'cpu', data, variants: new Map(), input: {}, seed: 0, model: recipe.model, recipeName: recipe.name });
    };
    expect(keyOf(', augment: crop')).toBe(keyOf(''));
    expect(keyOf(', augment: true')).toBe(keyOf(''));
    expect(new Set([keyOf(''), keyOf(', augment: resized-crop'), keyOf(', augment: false')]).size).toBe(3);
  });

  it("a train stage's key follows the recipe's model (architecture, width, classes, seed)", () => {
    const keys = [
      '{ zoo: resnet18-cifar, width: 0.25 }',
      '{ zoo: resnet34-cifar, width: 0.25 }',
      '{ zoo: resnet18-cifar, width: 0.5 }',
      '{ zoo: resnet18-cifar, width: 0.25, classes: 2 }',
      '{ zoo: resnet18-cifar, width: 0.25, seed: 7 }',
    ].map(keyOfFirstStage);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keyOfFirstStage('{ zoo: resnet18-cifar, width: 0.25 }')).toBe(keys[0]);
  });

  it("a bench stage written with its default target keys as one without it; target: web keys apart", () => {
    const benchKey = (stage: string): string => {
      const recipe = parseRecipe(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - ${stage}\n`, 'r.yaml');
      const variants = new Map([['fp32', { model: { sha256: 'a'.repeat(64) } } as never]]);
      return stageKey(recipe.stages[1]!, { device: 'cpu', data, variants, input: { ids: ['fp32'] }, seed: 0, model: recipe.model, recipeName: recipe.name, threads: 1 });
    };
    expect(benchKey('bench: { runs: 60 }')).toBe(benchKey('bench: { runs: 60, target: host }'));
    expect(benchKey('bench: { runs: 60, target: web }')).not.toBe(benchKey('bench: { runs: 60 }'));
  });

  it("a deploy stage keys its bundle's name (the recipe's, unless the stage names one); a prune stage its round_to: auto multiple", () => {
    const keyOf = (recipeName: string, stage: string): string => {
      const recipe = parseRecipe(`name: ${recipeName}\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - ${stage}\n`, 'r.yaml');
      const variants = new Map([['fp32', { model: { sha256: 'a'.repeat(64) } } as never]]);
      return stageKey(recipe.stages[1]!, { device: 'cpu', data, variants, input: { from: 'fp32' }, seed: 0, model: recipe.model, recipeName: recipe.name, threads: 1 });
    };
    // A renamed recipe reused the bundle named after the old name (package.json, unit, README).
    expect(keyOf('a', 'deploy: { target: linux-x64 }')).not.toBe(keyOf('b', 'deploy: { target: linux-x64 }'));
    expect(keyOf('a', 'deploy: { target: linux-x64, name: pi }')).toBe(keyOf('b', 'deploy: { target: linux-x64, name: pi }'));
    // 'auto' is 8 or 16 by the CPU: as a fixed round_to of that multiple, not as another value.
    const auto = keyOf('a', 'prune: { id: p, structured: { ratio: 0.5 } }');
    expect(auto).not.toBe(keyOf('a', 'prune: { id: p, structured: { ratio: 0.5 }, round_to: 4 }'));
    expect(auto).toBe(keyOf('a', 'prune: { id: p, structured: { ratio: 0.5 }, round_to: auto }'));
  });

  describe('the test images key only the stages whose output reads them', () => {
    const keyOf = (stage: string, d: RunData, o: { legacy?: boolean } = {}): string => {
      const recipe = parseRecipe(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - ${stage}\n`, 'r.yaml');
      const variants = new Map([['fp32', { model: { sha256: 'a'.repeat(64) } } as never]]);
      const s = recipe.stages[1]!;
      return stageKey(s, { device: 'cpu', data: d, variants, input: s.kind === 'bench' ? { ids: ['fp32'] } : { from: 'fp32' }, seed: 0, model: recipe.model, recipeName: recipe.name, threads: 1 }, o);
    };
    const otherTest: RunData = { ...data, sha256: 'f'.repeat(64) }; // the same training images, other test images
    const otherTrain: RunData = { ...data, sha256: 'f'.repeat(64), trainSha256: '0'.repeat(64) };

    it.each([
      ['finetune', 'finetune: { id: ft, epochs: 1', 'eval_limit: 50'],
      ['prune', 'prune: { id: p, structured: { ratio: 0.5 }, finetune: { epochs: 1 }', 'round_to: auto'],
      ['quantize', 'quantize: { id: q, samples: 32', 'eval_limit: 50'],
      ['sensitivity scan (training images)', 'quantize: { id: q, sensitivity: true', 'eval_limit: 50'],
    ])('%s: keyed on the training images, not the test images or its eval limit', (_what, head, evalOption) => {
      const key = keyOf(`${head} }`, data);
      expect(keyOf(`${head} }`, otherTest)).toBe(key);
      expect(keyOf(`${head}, ${evalOption} }`, data)).toBe(key);
      expect(keyOf(`${head} }`, otherTrain)).not.toBe(key);
    });

    it('QAT (its model records no test top-1): keyed on the training images, not the test images or its eval_limit', () => {
      const key = keyOf('quantize: { id: q, qat: { epochs: 1 } }', data);
      expect(keyOf('quantize: { id: q, qat: { epochs: 1 } }', otherTest)).toBe(key);
      expect(keyOf('quantize: { id: q, qat: { epochs: 1, eval_limit: 50 } }', data)).toBe(key);
      expect(keyOf('quantize: { id: q, qat: { epochs: 1 } }', otherTrain)).not.toBe(key);
      expect(keyOf('quantize: { id: q, qat: { epochs: 2 } }', data)).not.toBe(key);
      // Run folders from before keep their record: the legacy key is the one with the test images.
      expect(keyOf('quantize: { id: q, qat: { epochs: 1 } }', otherTest, { legacy: true })).not.toBe(keyOf('quantize: { id: q, qat: { epochs: 1 } }', data, { legacy: true }));
    });

    it.each([
      ['max_drop (layers chosen by test top-1)', 'quantize: { id: q, max_drop: 0.5 }'],
      ['bench', 'bench: { runs: 60 }'],
    ])('%s: keyed on the test images too', (_what, stage) => {
      expect(keyOf(stage, otherTest)).not.toBe(keyOf(stage, data));
    });

    it("an earlier version's record (test images and eval limit in every key) is found and moved to the current key", async () => {
      const runDir = mkdtempSync(path.join(dir, 'legacy-'));
      const stage = 'finetune: { id: ft, epochs: 1, eval_limit: 50 }';
      const legacyKey = keyOf(stage, data, { legacy: true });
      const key = keyOf(stage, data);
      expect(legacyKey).not.toBe(key);
      const record = { id: 'ft', kind: 'finetune', key: legacyKey, status: 'done', seconds: 12, gpu_seconds: 0, cost: 0, device: 'cpu' } as StageRecord;
      await writeStageRecord(runDir, record);
      const recipe = parseRecipe(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - ${stage}\n`, 'r.yaml');
      const c = { device: 'cpu', data, variants: new Map([['fp32', { model: { sha256: 'a'.repeat(64) } } as never]]), input: { from: 'fp32' }, seed: 0, model: recipe.model, recipeName: recipe.name, threads: 1 };
      const found = await storedStage(runDir, recipe.stages[1]!, c, { move: true });
      expect(found.key).toBe(key);
      // The old key held the full data hash: its scores are on the current test images, and it says so.
      expect(found.stored).toMatchObject({ id: 'ft', key, seconds: 12, data_sha256: data.sha256 });
      expect((await readStageRecord(runDir, key))?.seconds).toBe(12);
      // Another test set still finds it, under the current key.
      expect((await storedStage(runDir, recipe.stages[1]!, { ...c, data: otherTest })).stored?.key).toBe(key);
    });

    it("the checkpoints of a stage that crashed under an earlier version's key are continued from, not started over", async () => {
      const runDir = mkdtempSync(path.join(dir, 'legacy-work-'));
      const stage = 'finetune: { id: ft, epochs: 2, eval_limit: 50 }';
      const [legacyKey, key] = [keyOf(stage, data, { legacy: true }), keyOf(stage, data)];
      const work = (k: string): string => path.join(runDir, 'work', k.slice(0, 16));
      mkdirSync(work(legacyKey), { recursive: true });
      writeFileSync(path.join(work(legacyKey), 'last.ckpt'), 'epoch 1 of 2');
      const recipe = parseRecipe(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - ${stage}\n`, 'r.yaml');
      const c = { device: 'cpu', data, variants: new Map([['fp32', { model: { sha256: 'a'.repeat(64) } } as never]]), input: { from: 'fp32' }, seed: 0, model: recipe.model, recipeName: recipe.name, threads: 1 };
      // Looking without moving leaves it where it is.
      expect(await storedStage(runDir, recipe.stages[1]!, c)).toEqual({ key });
      expect(existsSync(work(key))).toBe(false);
      // The run's lookup moves it to the folder the stage now trains in (ctx.workDir).
      expect(await storedStage(runDir, recipe.stages[1]!, c, { move: true })).toEqual({ key });
      expect(readFileSync(path.join(work(key), 'last.ckpt'), 'utf8')).toBe('epoch 1 of 2');
      expect(existsSync(work(legacyKey))).toBe(false);
      // A crash under this version is the newer one: an old folder beside it does not replace it.
      mkdirSync(work(legacyKey));
      writeFileSync(path.join(work(legacyKey), 'last.ckpt'), 'older');
      await storedStage(runDir, recipe.stages[1]!, c, { move: true });
      expect(readFileSync(path.join(work(key), 'last.ckpt'), 'utf8')).toBe('epoch 1 of 2');
    });
  });

  it("a source's class names stop labelling the data only when every stage that reads it gives it a new head", () => {
    const reads = (stages: string): boolean => onlyNewHeadReads(parseRecipe(`name: t\nmodel: { file: m.onnx }\nstages:\n${stages}`, 'r.yaml'), 'input');
    expect(reads('  - train: { id: t, epochs: 1, new_head: true }\n  - bench: {}\n')).toBe(true);
    expect(reads('  - train: { id: t, epochs: 1, new_head: true }\n  - quantize: { id: q, from: input }\n')).toBe(false);
    expect(reads('  - train: { id: t, epochs: 1, new_head: true }\n  - bench: { variants: [input, t] }\n')).toBe(false);
    expect(reads('  - train: { id: t, epochs: 1 }\n')).toBe(false);
    expect(reads('  - train: { id: t, from: input, epochs: 1, new_head: true }\n  - train: { id: u, from: input, epochs: 1, new_head: true, freeze_backbone: true }\n')).toBe(true);
  });

  it('image_size sizes a zoo model, and a model file whose height and width are free (checked when the file is read)', () => {
    expect(parseRecipe('name: t\nmodel: { zoo: resnet18-cifar, image_size: [64, 48] }\nstages:\n  - train: { id: a, epochs: 1 }\n', 'r.yaml').model.image_size).toEqual([64, 48]);
    // A trial's free-size export could not be given a size: it trained at 32×32 unsaid, and its deploy stage failed.
    expect(parseRecipe('name: t\nmodel: { file: m.onnx, image_size: [64, 64] }\nstages:\n  - quantize: { id: q }\n', 'r.yaml').model.image_size).toEqual([64, 64]);
    expect(issuesOf('name: t\nmodel: { file: m.onnx, width: 0.5 }\nstages:\n  - quantize: { id: q }\n').map((i) => `${i.path}: ${i.problem}`).join(' ')).toMatch(/model\.width: .*applies to zoo models/);
  });

  it('a value from a fixed list gets the did-you-mean the command line gives', () => {
    const fixes = issuesOf('name: t\ndevice: gpu\nmodel: { zoo: resnet18cifar }\nstages:\n  - prnue: { id: p }\n  - deploy: { target: linux-amd64 }\n').map((i) => i.fix ?? '');
    expect(fixes).toEqual(expect.arrayContaining([
      expect.stringMatching(/^did you mean 'cuda'\? use one of cpu, cuda$/),
      expect.stringMatching(/^did you mean 'resnet18-cifar'\? /),
      expect.stringMatching(/^did you mean 'prune'\?/),
      expect.stringMatching(/^did you mean 'linux-x64'\? /),
    ]));
  });

  it('autocast fp16 is refused when the recipe is read, not when its stage starts', () => {
    const issues = issuesOf(`name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1, autocast: fp16 }\n`);
    expect(issues.map((i) => `${i.path}: ${i.problem} ${i.fix ?? ''}`).join(' ')).toMatch(/autocast: 'fp16' is not allowed.*none, bf16/);
  });

  it('a quantize or prune stage reading a model a quantize stage made is refused when the recipe is read (it failed deep inside its stage)', () => {
    const base = `name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { id: fp32, epochs: 1 }\n  - quantize: { id: int8 }\n`;
    const issues = issuesOf(`${base}  - quantize: { id: half, mode: fp16 }\n`);
    expect(issues.map((i) => `${i.path}: ${i.problem} — ${i.fix ?? ''}`).join(' ')).toMatch(/quantizes 'int8', which stage 'int8' quantized already \(`from` left out: the stage before\) — give it `from: fp32`, the float model/);
    expect(issuesOf(`${base}  - prune: { id: p, from: int8, structured: { ratio: 0.3 } }\n`).map((i) => i.problem).join(' ')).toMatch(/prunes 'int8', which stage 'int8' quantized already/);
    expect(() => parseRecipe(`${base}  - quantize: { id: half, from: fp32, mode: fp16 }\n`, 'r.yaml')).not.toThrow();
  });

  it("an alpha out of range says what alpha weighs as slim distill's --alpha does: the labels (a trial's error said the distillation loss, backwards)", () => {
    const issues = issuesOf(`name: t
model: { zoo: resnet18-cifar }
stages:
  - train: { id: big, epochs: 1 }
  - distill: { id: s, teacher: big, student: { zoo: resnet18-cifar, width: 0.25 }, alpha: 2, epochs: 1 }
`);
    const said = issues.map((i) => `${i.path}: ${i.problem} — ${i.fix ?? ''}`).join(' ');
    expect(said).toMatch(/alpha: .* — weight of the labels' cross-entropy, in \[0, 1\] \(1 − alpha weighs the teacher's soft targets; 1 trains on the labels alone\)/);
  });
});

describe('artifact store', () => {
  it('replaces a damaged artifact when the same bytes are stored again', async () => {
    const runDir = mkdtempSync(path.join(dir, 'store-'));
    const bytes = new Uint8Array(4096).map((_, i) => i % 251);
    const ref = await putBytes(runDir, bytes, 'onnx');
    const damaged = readFileSync(path.join(runDir, ref.path));
    damaged[100]! ^= 1;
    writeFileSync(path.join(runDir, ref.path), damaged);
    expect(await verifyArtifact(runDir, ref)).toBe(false);
    await putBytes(runDir, bytes, 'onnx');
    expect(await verifyArtifact(runDir, ref)).toBe(true);
  });

  it('a run that fails midway has already taken away the models of stages its recipe no longer has', async () => {
    const runDir = path.join(dir, 'failed-midway');
    mkdirSync(path.join(runDir, 'models'), { recursive: true });
    writeFileSync(path.join(runDir, 'models', 'old-name.onnx'), 'a model an earlier recipe made');
    const model = path.join(dir, 'failed-midway.onnx');
    expect((await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '-o', model])).code).toBe(0);
    const recipe = path.join(dir, 'failed-midway.yaml');
    writeFileSync(recipe, `name: t\ndata: { train_per_class: 2, test_limit: 10 }\nmodel: { file: ${model} }\nstages:\n  - prune: { id: p, structured: { target_macs: 0.001 }, calib_samples: 8 }\n`);
    const r = await runSlim(['run', recipe, '--run-dir', runDir, '--data-dir', CIFAR_DIR, '--threads', '1', '--no-report']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/out of reach/);
    // It stayed in models/ beside this recipe's until a run completed.
    expect(r.stderr).toContain('removed models/old-name.onnx: no stage of this recipe makes it (any more)');
    expect(existsSync(path.join(runDir, 'models', 'old-name.onnx'))).toBe(false);
  });

  it('models/ keeps only the stages of the current recipe; the store keeps every model', async () => {
    const runDir = path.join(dir, 'published');
    const ref = await putBytes(runDir, new TextEncoder().encode('a model'), 'onnx');
    for (const name of ['fp32', 'int8', 'old-name']) await publishModel(runDir, ref, name);
    expect(await unpublishOthers(runDir, new Set(['fp32', 'int8']))).toEqual(['old-name']);
    expect(readdirSync(path.join(runDir, 'models')).sort()).toEqual(['fp32.onnx', 'int8.onnx']);
    expect(await verifyArtifact(runDir, ref)).toBe(true);
  });
});

describe('slim run --fresh', () => {
  it('does not delete a run folder another slim run holds', async () => {
    const runDir = path.join(dir, 'busy-run');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, 'manifest.json'), '{}');
    writeFileSync(path.join(runDir, '.lock'), String(process.pid)); // this (live) test process holds it
    const recipe = path.join(dir, 'fresh.yaml');
    writeFileSync(recipe, GOOD);
    const r = await runSlim(['run', recipe, '--run-dir', runDir, '--fresh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`another slim run \\(pid ${process.pid}\\) is using this run folder`));
    expect(existsSync(path.join(runDir, 'manifest.json'))).toBe(true);
  });

  it("refuses a folder of one's own files as a run folder; --fresh clears only what a run wrote (a trial lost its notes)", async () => {
    const recipe = path.join(dir, 'own-files.yaml');
    writeFileSync(recipe, GOOD);
    const own = path.join(dir, 'own-files');
    mkdirSync(own, { recursive: true });
    writeFileSync(path.join(own, 'notes.txt'), 'my notes');
    writeFileSync(path.join(own, '.DS_Store'), '');
    // --plan says so too (it said 5 stages would run there).
    for (const args of [[], ['--fresh'], ['--plan']]) {
      const r = await runSlim(['run', recipe, '--run-dir', own, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/own-files: holds files that are not a slimkit run's \(notes\.txt\): a run writes its models, stages and report there, mixed with them — pass a new or empty --run-dir/);
    }
    expect(readdirSync(own).sort()).toEqual(['.DS_Store', 'notes.txt']);
    // A run folder someone put a file into: --fresh clears the run's entries and keeps the file, saying so.
    const run = path.join(dir, 'run-with-notes');
    mkdirSync(path.join(run, 'models'), { recursive: true });
    writeFileSync(path.join(run, 'manifest.json'), '{}');
    writeFileSync(path.join(run, 'models', 'fp32.onnx'), 'x');
    writeFileSync(path.join(run, 'notes.txt'), 'my notes');
    // Data that is not there stops the run right after the clearing.
    const r = await runSlim(['run', recipe, '--run-dir', run, '--fresh', '--data-dir', path.join(dir, 'no-cifar')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--fresh: kept notes\.txt in .*run-with-notes \(not written by slim run\)/);
    expect(readdirSync(run).filter((e) => e !== '.lock').sort()).toEqual(expect.arrayContaining(['notes.txt']));
    expect(existsSync(path.join(run, 'models', 'fp32.onnx'))).toBe(false);
    expect(readFileSync(path.join(run, 'notes.txt'), 'utf8')).toBe('my notes');
  });

  it('takes over a lock whose pid now names another process (pids are reused, start times are not)', async () => {
    const runDir = path.join(dir, 'reused-pid');
    mkdirSync(runDir, { recursive: true });
    // This live process's pid, with a start time it never had: the lock of a killed run whose pid came back.
    writeFileSync(path.join(runDir, '.lock'), `${process.pid} ${Number(processStartTime(process.pid) ?? 0) + 1}`);
    const release = await lockRun(runDir);
    expect(readFileSync(path.join(runDir, '.lock'), 'utf8')).toBe(`${process.pid} ${processStartTime(process.pid)}`);
    await release();
    // With its real start time it is a live run: refused, naming the way out should it be stale after all.
    writeFileSync(path.join(runDir, '.lock'), `${process.pid} ${processStartTime(process.pid)}`);
    const recipe = path.join(dir, 'reused-pid.yaml');
    writeFileSync(recipe, GOOD);
    const r = await runSlim(['run', recipe, '--run-dir', runDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/another slim run \(pid \d+\) is using this run folder.*if no slim run is using it, delete .*reused-pid\/\.lock/);
  });
});

describe('the run lock under runs that start together', () => {
  it('is held by one run at a time, and leaves no file of its own behind', async () => {
    // Each child waits for a common start instant, takes the lock, holds it until 3 s past that instant (a
    // child slow to start under load must still find it held) and says whether it got it.
    const child = path.join(dir, 'lock-child.mts');
    writeFileSync(child, [
      `import { lockRun } from ${JSON.stringify(path.join(REPO_ROOT, 'src/pipeline/manifest.ts'))};`,
      'const [runDir, at] = [process.argv[2], Number(process.argv[3])];',
      'while (Date.now() < at) { /* the start line */ }',
      "try { const release = await lockRun(runDir); console.log('GOT'); await new Promise((r) => setTimeout(r, Math.max(0, at + 3000 - Date.now()))); await release(); } catch { console.log('REFUSED'); }",
    ].join('\n'));
    const start = (runDir: string, at: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', child, runDir, String(at)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('error', reject);
        p.on('close', () => resolve(out.trim()));
      });
    // Taken as an empty file and written after, the three often all held it (the others read it empty: a dead run's).
    for (let trial = 0; trial < 6; trial++) {
      const runDir = path.join(dir, `lock-race-${trial}`);
      mkdirSync(runDir);
      const at = Date.now() + 2500;
      const answers = await Promise.all([start(runDir, at), start(runDir, at), start(runDir, at)]);
      expect(answers.filter((a) => a === 'GOT'), answers.join(',')).toHaveLength(1);
      expect(answers.filter((a) => a === 'REFUSED')).toHaveLength(2);
      expect(readdirSync(runDir)).toEqual([]);
    }
  }, 120_000);

  it.skipIf(!existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin')))('--plan of a folder another run holds says so (the plan is of the folder as it is now)', async () => {
    const runDir = path.join(dir, 'planned-while-held');
    mkdirSync(runDir);
    const release = await lockRun(runDir);
    try {
      const lines: string[] = [];
      const plan = await planPipeline({ recipe: parseRecipe(GOOD.replace('name: t', 'name: t\ndata: { train_per_class: 2, test_limit: 10 }'), 'r.yaml'), runDir, dataDir: CIFAR_DIR, log: (l) => lines.push(l) });
      expect(plan.stages.map((st) => st.action)).toEqual(['run', 'run', 'run']);
      expect(lines).toContain(`note: another slim run is using ${runDir} now: this plan is of the folder as it is, and a run started before that one ends is refused`);
    } finally {
      await release();
    }
  }, 120_000);
});

describe('slim run checks the model against the data first', () => {
  it("a recipe's data.dir without CIFAR-10 is named as the recipe's, not as --data-dir", async () => {
    const recipe = path.join(dir, 'no-data.yaml');
    writeFileSync(recipe, `name: t\ndata: { dataset: cifar10, dir: ${path.join(dir, 'nowhere')} }\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1 }\n`);
    const r = await runSlim(['run', recipe, '--run-dir', path.join(dir, 'no-data-run')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nowhere: the recipe's data\.dir: does not exist — point the recipe's data\.dir at the folder/);
    expect(r.stderr).not.toMatch(/--data-dir/);
  });

  it("a data.dataset folder that is not there, or not laid out in splits, is bad input naming the folder it resolved to", async () => {
    const missing = path.join(dir, 'no-folder.yaml');
    writeFileSync(missing, 'name: t\ndata: { dataset: photoz }\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1 }\n');
    const r = await runSlim(['run', missing, '--run-dir', path.join(dir, 'no-folder-run'), '--plan']);
    // It was a usage error (exit 2) that did not say the folder was missing, nor where it was looked for.
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(dir, 'photoz')}: does not exist (the recipe's data.dataset takes 'cifar10' or a folder) — fix data.dataset 'photoz' (a path is relative to the recipe's folder)`);
    mkdirSync(path.join(dir, 'flat', 'cat'), { recursive: true });
    writeFileSync(missing, 'name: t\ndata: { dataset: flat }\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1 }\n');
    const flat = await runSlim(['run', missing, '--run-dir', path.join(dir, 'no-folder-run'), '--plan']);
    expect(flat.code).toBe(1);
    expect(flat.stderr).toMatch(/flat: \(the recipe's data\.dataset 'flat'\) has no train\/ beside a test\/ or val\/ subfolder: it holds class folders \(cat\) — run slim split flat -o flat-split \(it holds out a fifth of each class\) and set data\.dataset: flat-split/);
    mkdirSync(path.join(dir, 'empty-data'), { recursive: true });
    writeFileSync(missing, 'name: t\ndata: { dataset: empty-data }\nmodel: { zoo: resnet18-cifar, width: 0.125 }\nstages:\n  - train: { id: fp32, epochs: 1 }\n');
    const empty = await runSlim(['run', missing, '--run-dir', path.join(dir, 'no-folder-run'), '--plan']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/empty-data: \(the recipe's data\.dataset 'empty-data'\) has no train\/ beside a test\/ or val\/ subfolder — give it train\/<class>\/… and test\/<class>\/…/);
  });

  it('a class count that differs from the data is an error before any stage runs', async () => {
    const recipe = path.join(dir, 'classes.yaml');
    writeFileSync(recipe, 'name: t\ndata: { train_per_class: 2, test_limit: 10 }\nmodel: { zoo: resnet18-cifar, width: 0.125, classes: 3 }\nstages:\n  - train: { id: fp32, epochs: 1 }\n');
    const runDir = path.join(dir, 'classes-run');
    const r = await runSlim(['run', recipe, '--run-dir', runDir, '--data-dir', CIFAR_DIR]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/classes\.yaml: model\.classes: the model has 3 classes but the data has 10 \(airplane, automobile, .*\) — set model\.classes to 10/);
    expect(existsSync(path.join(runDir, 'manifest.json'))).toBe(false); // no stage ran
  });
});

describe('slim run --plan: why a stage runs again', () => {
  it('names what the recipe changed, then and now, for the stage and the settings it depends on', () => {
    const before = parseRecipe(GOOD, 'r.yaml');
    const trainOf = (r: ReturnType<typeof parseRecipe>) => r.stages.find((s) => s.id === 'fp32')!;
    const epochs = parseRecipe(GOOD.replace('epochs: 2', 'epochs: 3'), 'r.yaml');
    expect(changedSince(before, epochs, trainOf(epochs))).toBe('the recipe changed since it last ran: train.epochs: 2 → 3');
    const data = parseRecipe(`${GOOD}data: { dataset: cifar10, train_per_class: 52 }\nseed: 4\n`, 'r.yaml');
    expect(changedSince(before, data, trainOf(data))).toMatch(/^the recipe changed since it last ran: data\.train_per_class: unset → 52, seed: 0 → 4$/);
    // Nothing the recipe shows (the input model's bytes, another slimkit): the general reason.
    expect(changedSince(before, before, trainOf(before))).toBe('its options, its input or the data changed since it last ran');
    expect(changedSince(undefined, before, trainOf(before))).toBe('its options, its input or the data changed since it last ran');
  });
});

describe("a bench stage's failed slim bench", () => {
  it("is said by its error line, not by Node's version line that ends an uncaught error's stack", () => {
    const crash = ['file:///x/bench.js:10', '    throw new TypeError("x is undefined");', '    ^', '', 'TypeError: x is undefined', '    at run (file:///x/bench.js:10:11)', '', 'Node.js v20.20.2', ''].join('\n');
    expect(failureLine(crash)).toBe('TypeError: x is undefined');
    expect(failureLine('bench 2 models in turns: 10/100 %\nslim: m.onnx: not a valid ONNX model — check the file\n')).toBe('m.onnx: not a valid ONNX model — check the file');
    expect(failureLine('something\nelse went wrong\n')).toBe('else went wrong');
  });
});

describe('data limits past what the data has', () => {
  const set = (labels: number[]): ImageSet => ({ name: 'd', classes: ['a', 'b'], imageShape: [3, 1, 1], pixels: new Uint8Array(labels.length * 3), labels: Uint16Array.from(labels) });
  it('are said, with what was taken; limits within the data are not', () => {
    const train = set([0, 0, 0, 1, 1]);
    const test = set([0, 1]);
    expect(dataLimitsNote({ train_per_class: 4, test_limit: 5 }, train, test)).toBe('train_per_class: 4 is more than the largest class has (3): every one of the 5 training images is used; test_limit: 5 is more than the 2 test images there are: all are used');
    expect(dataLimitsNote({ train_per_class: 3, test_limit: 2 }, train, test)).toBeUndefined();
    expect(dataLimitsNote({}, train, test)).toBeUndefined();
  });
});

/**
 * The images a run uses, as the recipe's `data:` names them: CIFAR-10 (a seeded, class-balanced subset
 * of the training split; the first N test images) or an image folder with train/ and test/. The test
 * set is always a prefix, so `slim bench --data cifar10 --limit N` scores exactly the same images.
 * The hash of the pixels and labels is part of every stage key that reads them: of the training set
 * alone where only a stage's scores read the test set (stageKey).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { inputError, usageError } from '../errors.js';
import { holdsCifar10, isCifar10, loadCifar10 } from '../data/cifar10.js';
import { slimCacheDir } from '../data/cache.js';
import { folderLayout, isSplitFolder, loadTrainTestFolders, outsideClassesNote, passedOverNote, type ImageChannels } from '../data/image-folder.js';
import { listedByClass, stratifiedSubset, takeAcrossClasses } from '../data/subsets.js';
import type { ImageSet } from '../data/types.js';
import type { DataSpec } from './recipe.js';
import { labelledForModel, requireDataFolder, type ModelClasses } from '../data/model-data.js';
import { resizeSourceOf, type ModelResize } from '../data/model-resize.js';

export interface RunData {
  train: ImageSet;
  test: ImageSet;
  /** 'cifar10' or the folder. */
  name: string;
  /** The CIFAR-10 folder when one was named (recipe, --data-dir or $SLIM_DATA_DIR); else the cache. */
  dir?: string;
  /** Of the training and the test images (and labels): what a stage that scores reads. */
  sha256: string;
  /** Of the training images alone: what a stage's model depends on when only its scores read the test set. */
  trainSha256: string;
}

export interface DataLoadOptions {
  /** Folder the recipe's relative paths start from. */
  baseDir: string;
  /** --data-dir; the recipe's `data.dir` wins. */
  dataDir?: string;
  seed: number;
  /** [H, W] the run's model takes: folder images are resized to it; CIFAR-10 must match it. */
  inputSize?: [number, number];
  /** How folder images are brought to inputSize: what the run's model file records (slimkit.resize). */
  recordedResize?: ModelResize | undefined;
  /** 1 when the run's model takes grayscale images: folder images are read as one luma plane. */
  channels?: ImageChannels;
  /** The class names the run's model file records: the images are labelled by them (labelledForModel). */
  classes?: ModelClasses | undefined;
  /** Where a note on the labelling goes. */
  log?: (line: string) => void;
  /** false: CIFAR-10 missing from the cache is an error, not a download (`slim run --plan`). */
  download?: false;
}

/**
 * The CIFAR-10 folder a run reads when none is named (the recipe's data.dir, --data-dir, SLIM_DATA_DIR)
 * and the cache lacks it: the one the run folder's last run read (its manifest's data.dir), so a rerun
 * or a --plan of a run made with --data-dir needs the flag no more than it needs a download. The
 * stages' keys hold the data's hash: other files there would not be taken for the same data.
 */
export function recordedCifar10Dir(spec: DataSpec, recorded: string | undefined): string | undefined {
  if (!isCifar10(spec.dataset) || spec.dir || process.env['SLIM_DATA_DIR'] || !recorded) return undefined;
  if (holdsCifar10(path.join(slimCacheDir(), 'cifar10'))) return undefined;
  return holdsCifar10(recorded) ? recorded : undefined;
}

export async function loadRunData(spec: DataSpec, o: DataLoadOptions): Promise<RunData> {
  let train: ImageSet;
  let test: ImageSet;
  let name: string;
  let named: string | undefined;
  if (isCifar10(spec.dataset)) {
    if (o.channels === 1) {
      throw usageError("the model takes grayscale (1-channel) images but CIFAR-10's are RGB", 'use an image folder as data.dataset (its images are read as grayscale for this model)');
    }
    const dir = spec.dir ? path.resolve(o.baseDir, spec.dir) : o.dataDir;
    named = dir ?? process.env['SLIM_DATA_DIR'];
    const options = { ...(dir ? { dataDir: dir, dataDirSource: spec.dir ? "the recipe's data.dir" : '--data-dir' } : {}), ...(o.download === false ? { download: false as const } : {}) };
    [train, test] = await Promise.all([loadCifar10('train', options), loadCifar10('test', { ...options, ...(spec.test_limit ? { limit: spec.test_limit } : {}) })]);
    name = 'cifar10';
    const [h, w] = o.inputSize ?? [32, 32];
    if (h !== 32 || w !== 32) {
      throw usageError(`the model takes ${h}×${w} images but CIFAR-10's are 32×32`, 'use an image folder as data.dataset (its images are resized to the model), or a model for 32×32 input');
    }
  } else {
    const folder = path.resolve(o.baseDir, spec.dataset);
    // Bad input, as on the command line (exit 1), naming the folder the recipe's path resolved to.
    await requireDataFolder(folder, "the recipe's data.dataset", `fix data.dataset '${spec.dataset}' (a path is relative to the recipe's folder), or use cifar10`);
    if (!(await isSplitFolder(folder).catch(() => false))) {
      // A folder of class folders (how photos are collected): slim split makes train/ and test/ of it.
      const layout = await folderLayout(folder).catch(() => undefined);
      const split = `${spec.dataset.replace(/[\\/]+$/, '')}-split`;
      throw inputError({
        file: folder,
        problem: `(the recipe's data.dataset '${spec.dataset}') has no train/ beside a test/ or val/ subfolder${layout?.kind === 'classes' && layout.classes.length > 0 ? `: it holds class folders (${layout.classes.slice(0, 3).join(', ')}${layout.classes.length > 3 ? ', …' : ''})` : ''}`,
        fix: layout?.kind === 'classes' && layout.classes.length > 0
          ? `run slim split ${spec.dataset} -o ${split} (it holds out a fifth of each class) and set data.dataset: ${split}`
          : 'give it train/<class>/… and test/<class>/… (or val/<class>/…) images, or use cifar10',
      });
    }
    // A limit takes images round-robin over the classes (as `slim bench --limit` does), not the first classes.
    const sets = await loadTrainTestFolders(folder, { ...(o.inputSize ? { size: o.inputSize } : {}), ...(o.recordedResize ? { resize: o.recordedResize.mode, ...resizeSourceOf(undefined, o.recordedResize) } : {}), channels: o.channels ?? 3, ...(spec.test_limit ? { testLimit: spec.test_limit } : {}) });
    ({ train, test } = sets);
    for (const note of [passedOverNote([sets.train, sets.test]), outsideClassesNote([sets.train, sets.test])]) if (note) o.log?.(`  note: ${note}`);
    name = folder;
  }
  train = labelledForModel(train, o.classes, { ...(o.log ? { note: o.log } : {}) });
  test = labelledForModel(test, o.classes, { quiet: true });
  const limitsNote = dataLimitsNote(spec, train, test);
  if (limitsNote) o.log?.(`  note: ${limitsNote}`);
  if (spec.train_per_class) train = stratifiedSubset(train, spec.train_per_class, o.seed);
  return { train, test, name, ...(named ? { dir: path.resolve(named) } : {}), ...hashSets(train, test) };
}

/**
 * Limits past what the data has are no limits: `train_per_class: 6000` on CIFAR-10 (5,000 a class)
 * trained on all 50,000 images, a long run where a short one was meant. Said, with what was taken.
 */
export function dataLimitsNote(spec: Pick<DataSpec, 'train_per_class' | 'test_limit'>, train: ImageSet, test: ImageSet): string | undefined {
  const counts = new Map<number, number>();
  for (const label of train.labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  const largest = Math.max(0, ...counts.values());
  const parts = [
    spec.train_per_class !== undefined && spec.train_per_class > largest ? `train_per_class: ${spec.train_per_class} is more than the largest class has (${largest.toLocaleString('en')}): every one of the ${train.labels.length.toLocaleString('en')} training images is used` : undefined,
    spec.test_limit !== undefined && spec.test_limit > test.labels.length ? `test_limit: ${spec.test_limit} is more than the ${test.labels.length.toLocaleString('en')} test images there are: all are used` : undefined,
  ].filter((p): p is string => p !== undefined);
  return parts.length ? parts.join('; ') : undefined;
}

/** How many test images a stage with `eval_limit` scores (what its record says as eval_images). */
export function evalImageCount(data: RunData, limit: number | undefined): number {
  return Math.min(limit ?? Infinity, data.test.labels.length);
}

/**
 * The test images a stage scores with `eval_limit`: a set listed class by class (an image folder's, also
 * renumbered to a model's classes) gives N taken across the classes; a shuffled one (CIFAR-10's) its first
 * N (testLimit) — the rule slim prune's before/after top-1 follows (listedByClass).
 */
export function evalSlice(data: RunData, limit: number | undefined): { test: ImageSet; testLimit?: number } {
  if (limit === undefined) return { test: data.test };
  return listedByClass(data.test) ? { test: takeAcrossClasses(data.test, limit) } : { test: data.test, testLimit: limit };
}

/** One pass over the pixels: the training set's hash is taken on the way to both sets'. */
function hashSets(train: ImageSet, test: ImageSet): { sha256: string; trainSha256: string } {
  const h = createHash('sha256');
  let trainSha256 = '';
  for (const [i, s] of [train, test].entries()) {
    h.update(JSON.stringify({ classes: s.classes, shape: s.imageShape, n: s.labels.length }));
    h.update(s.pixels);
    h.update(s.labels);
    if (i === 0) trainSha256 = h.copy().digest('hex');
  }
  return { sha256: h.digest('hex'), trainSha256 };
}

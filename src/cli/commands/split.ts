import type { Command } from 'commander';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { inputError, usageError } from '../../errors.js';
import { decodeListing, folderLayout, listImageFolder, outsideClassesNote, passedOverNote, unreadableImages } from '../../data/image-folder.js';
import { checkTestFraction, planSplit, writeSplit } from '../../data/split-folder.js';
import { formatCount, table } from '../../report/format.js';
import { lazyProgress, log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { nonNegativeInt, withJson } from '../options.js';
import { checkOutputDir } from '../paths.js';

interface SplitOptions extends CommonOptions {
  output?: string;
  testFraction: number;
  seed: number;
  copy?: boolean;
  /** --no-check: false. */
  check?: boolean;
}

/** Decoding at a tiny size reads every byte of a file (a truncated JPEG fails) for little memory. */
const CHECK_SIZE: [number, number] = [8, 8];

/** Classes listed one per row up to this many; a folder of 1,000 classes gets the totals. */
const ROWS_SHOWN = 20;

/** A share of each class to hold out, checked as planSplit checks it. */
function testFractionArg(value: string): number {
  const n = Number(value);
  checkTestFraction(n, `'${value}'`);
  return n;
}

export function registerSplit(program: Command): void {
  withJson(
    program
      .command('split')
      .description('make a folder of class folders into train/ + test/ (a seeded share of each class held out), as train, distill and QAT need')
      .argument('<folder>', 'a folder with one subfolder of images per class')
      .option('-o, --output <folder>', 'where to write <folder>/train/<class>/… and <folder>/test/<class>/… (a new or empty folder)')
      .option('--test-fraction <f>', 'share of each class held out for testing', testFractionArg, 0.2)
      .option('--seed <n>', 'seed of the shuffle that picks the held-out images', nonNegativeInt('--seed'), 0)
      .option('--no-check', 'do not decode every image first (by default an unreadable file is named before anything is written)')
      .option('--copy', 'copy the images (default: hard links, which take no extra space but are the same files: an image edited in place changes in both folders; copies where links cannot be made)'),
  )
    .addHelpText('after', [
      '',
      'Each class keeps its share: round(n × fraction) of its images go to test/ (at least one, never all).',
      'The same folder, fraction and seed always give the same split.',
      '',
      'Examples:',
      '  slim split flower_photos -o flowers',
      '  slim split flower_photos -o flowers --test-fraction 0.1 --seed 1',
      '  slim train --model resnet18-cifar --data flowers --image-size 64 --out flowers.onnx',
    ].join('\n'))
    .action(async (source: string, options: SplitOptions) => {
      const info = await stat(source).catch(() => undefined);
      if (!info?.isDirectory()) throw inputError({ file: source, problem: info ? 'is a file; slim split takes a folder of class folders' : 'does not exist', fix: 'pass a folder with one subfolder of images per class' });
      if (!options.output) throw usageError('no output folder given', `pass -o ${path.basename(path.resolve(source))}-split`);
      const out = options.output;
      checkOutputDir(out, '-o', { parents: true });
      if (path.resolve(out) === path.resolve(source) || path.resolve(out).startsWith(path.resolve(source) + path.sep)) {
        throw usageError(`-o ${out} is inside ${source}: its train/ and test/ would be read as two more classes`, `give a folder beside it, e.g. -o ${path.resolve(source)}-split`);
      }
      const existing = await readdir(out).catch(() => []);
      if (existing.length > 0) throw usageError(`-o ${out} is not empty (${existing.length} entr${existing.length === 1 ? 'y' : 'ies'})`, 'give a new or empty folder: a split is written whole, never mixed into another');
      const layout = await folderLayout(source);
      if (layout.kind === 'splits') {
        throw inputError({ file: source, problem: `is split already (it holds ${layout.splits.map((s) => `${s}/`).join(', ')})`, fix: `pass it to --data as it is${layout.splits.includes('train') ? '' : ', or split a folder of class folders'}` });
      }
      const listing = await listImageFolder(source);
      // What train would refuse, said before any file is written (a trial split one class, then was refused).
      if (listing.classes.length < 2) {
        throw inputError({ file: source, problem: `has ${listing.classes.length === 1 ? `one class folder (${listing.classes[0]})` : 'no class folders'}: a classifier needs two classes or more`, fix: 'give the folder that holds a folder of images per class' });
      }
      const classes = planSplit(listing, options.testFraction, options.seed);
      // No test image at all: the split would be a train/ that training refuses (a trial's exited 0).
      if (classes.every((c) => c.test.length === 0)) {
        throw inputError({ file: source, problem: 'has one image per class: a split keeps it for training and leaves none to test on', fix: 'add images: two or more per class (a fifth of each is held out)' });
      }
      // Split once, read by every later command: a file that cannot be read is named here, in the folder
      // it lives in (found by train, it was named under the split's train/ or test/: a hard link).
      if (options.check !== false) {
        const check = lazyProgress('check', 'img');
        const { skipped } = await decodeListing(listing, { size: CHECK_SIZE, skipBad: true, onProgress: check.update }).finally(() => check.stop());
        if (skipped.length > 0) throw unreadableImages(listing.name, skipped, `, then split again (--no-check skips this decoding of every image: train and eval would find ${skipped.length === 1 ? 'it' : 'them'})`);
      }
      const bar = lazyProgress(options.copy ? 'copy' : 'link', 'img');
      const written = await writeSplit(listing.name, classes, out, { ...(options.copy ? { copy: true } : {}), onProgress: bar.update }).finally(() => bar.stop());
      const sizeFlag = await imageSizeFlag(listing.files[0]?.file);
      const [trainCount, testCount] = [classes.reduce((n, c) => n + c.train.length, 0), classes.reduce((n, c) => n + c.test.length, 0)];
      const alone = classes.filter((c) => c.test.length === 0).map((c) => c.name);
      const how = written.copied === 0 ? 'hard links, no extra space' : written.linked === 0 ? 'copies' : `${formatCount(written.linked)} hard links, then copies (links could not be made there)`;
      printResult(options, {
        source: listing.name,
        out,
        test_fraction: options.testFraction,
        seed: options.seed,
        train_images: trainCount,
        test_images: testCount,
        linked: written.linked,
        copied: written.copied,
        classes: classes.map((c) => ({ name: c.name, train: c.train.length, test: c.test.length })),
      }, () => [
        `split ${source}: ${classes.length} classes, ${formatCount(trainCount + testCount)} images → ${path.join(out, 'train')} ${formatCount(trainCount)}, ${path.join(out, 'test')} ${formatCount(testCount)} (${Math.round(options.testFraction * 100)} % of each class, seed ${options.seed}; ${how})`,
        table(['class', 'train', 'test'], [
          ...classes.slice(0, ROWS_SHOWN).map((c) => [c.name, c.train.length, c.test.length]),
          ...(classes.length > ROWS_SHOWN ? [[`… ${classes.length - ROWS_SHOWN} more`, '', '']] : []),
        ]),
        `next: slim train --model resnet18-cifar --data ${out}${sizeFlag} --out model.onnx (or a model file of your own: --model m.onnx)`,
      ].join('\n'));
      const notes = [
        alone.length ? `note: ${alone.length === 1 ? 'class' : 'classes'} ${alone.slice(0, 10).join(', ')}${alone.length > 10 ? ', …' : ''} ${alone.length === 1 ? 'has' : 'have'} one image: kept in train/, none to test ${alone.length === 1 ? 'it' : 'them'} on — add images to score ${alone.length === 1 ? 'that class' : 'those classes'}` : undefined,
        passedOverNote([listing]),
        outsideClassesNote([listing]),
      ];
      for (const note of notes) if (note) log(note);
    });
}

/**
 * The --image-size the suggested training wants: none for images of CIFAR's size or smaller (the zoo
 * model's 32×32), else 64 — a cheap size that keeps detail (it suggested 64 for 32×32 images too).
 */
async function imageSizeFlag(file: string | undefined): Promise<string> {
  if (!file) return '';
  const { width, height } = await sharp(file).metadata().catch(() => ({ width: undefined, height: undefined }));
  return width !== undefined && height !== undefined && Math.min(width, height) <= 40 ? '' : ' --image-size 64';
}

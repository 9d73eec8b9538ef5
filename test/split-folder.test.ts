/**
 * `slim split`: a folder of class folders made into train/ + test/. The oracle for the layout is the
 * loader every training command uses (loadTrainTest), and for the files their inodes (hard links).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planSplit, writeSplit } from '../src/data/split-folder.js';
import { loadTrainTest } from '../src/data/model-data.js';
import { removeTempDirs, tempDir } from './data-fixtures.js';
import { runSlim } from './helpers/cli.js';

afterAll(removeTempDirs);

/** A listing of `counts[c]` files per class, as listImageFolder gives one (grouped by class, sorted). */
const listing = (counts: Record<string, number>): { classes: string[]; files: { file: string; label: number }[] } => {
  const classes = Object.keys(counts).sort();
  return { classes, files: classes.flatMap((c, label) => Array.from({ length: counts[c]! }, (_, i) => ({ file: `/p/${c}/${String(i).padStart(3, '0')}.png`, label }))) };
};

/** A folder of class folders of tiny PNGs (each file distinct, so a mix-up would show). */
async function classFolder(root: string, counts: Record<string, number>): Promise<void> {
  const sharp = (await import('sharp')).default;
  for (const [name, n] of Object.entries(counts)) {
    fs.mkdirSync(path.join(root, name), { recursive: true });
    for (let i = 0; i < n; i++) {
      await sharp(Buffer.alloc(4 * 4 * 3, (i * 37) % 256), { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path.join(root, name, `${String(i).padStart(2, '0')}.png`));
    }
  }
}

describe('planSplit', () => {
  it("holds out round(n × fraction) of each class (at least one, never all), the same for the same seed, each class's own", () => {
    const plan = planSplit(listing({ cat: 10, dog: 7, emu: 2, owl: 1 }), 0.2, 0);
    expect(plan.map((c) => [c.name, c.train.length, c.test.length])).toEqual([['cat', 8, 2], ['dog', 6, 1], ['emu', 1, 1], ['owl', 1, 0]]);
    for (const c of plan) {
      // Every file once, in one split, each split in sorted order.
      expect([...c.train, ...c.test].sort()).toEqual(listing({ [c.name]: c.train.length + c.test.length }).files.map((f) => f.file));
      expect(c.train).toEqual([...c.train].sort());
    }
    expect(planSplit(listing({ cat: 10, dog: 7, emu: 2, owl: 1 }), 0.2, 0)).toEqual(plan);
    // Another seed draws other images; a class added leaves the others' draws as they were.
    const cats = (p: ReturnType<typeof planSplit>): string[] => p.find((c) => c.name === 'cat')!.test;
    const reseeded = [1, 2, 3, 4].map((seed) => cats(planSplit(listing({ cat: 10 }), 0.2, seed)));
    expect(reseeded.some((t) => JSON.stringify(t) !== JSON.stringify(cats(plan)))).toBe(true);
    expect(cats(planSplit(listing({ ant: 5, cat: 10, dog: 7 }), 0.2, 0))).toEqual(cats(plan));
    // Over many images the share is the one asked for.
    const big = planSplit(listing({ a: 1000, b: 333 }), 0.15, 7);
    expect(big.map((c) => c.test.length)).toEqual([150, 50]);
    expect(() => planSplit(listing({ a: 3 }), 1, 0)).toThrow(/--test-fraction must be between 0 and 1, got 1/);
  });
});

describe('slim split', () => {
  it('refuses a folder of one image per class, before writing anything: nothing would be left to test on (a trial\'s exited 0)', async () => {
    const root = tempDir('split-ones');
    const source = path.join(root, 'photos');
    await classFolder(source, { daisy: 1, rose: 1 });
    const out = path.join(root, 'out');
    const r = await runSlim(['split', source, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/photos: has one image per class: a split keeps it for training and leaves none to test on — add images: two or more per class/);
    expect(fs.existsSync(path.join(out, 'train'))).toBe(false);
  });

  it('names every file it cannot decode, where it lives, before writing anything (train found them later, naming a hard link); --no-check skips that', async () => {
    const root = tempDir('split-bad');
    const source = path.join(root, 'photos');
    await classFolder(source, { daisy: 3, rose: 3 });
    const png = fs.readFileSync(path.join(source, 'rose', '00.png'));
    fs.writeFileSync(path.join(source, 'daisy', 'cut.png'), png.subarray(0, png.length - 20));
    fs.writeFileSync(path.join(source, 'rose', 'notes.jpg'), 'not an image\n');
    const out = path.join(root, 'out');
    const r = await runSlim(['split', source, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/photos: 2 images cannot be read — daisy\/cut\.png: .*; rose\/notes\.jpg: cannot read image \(Input file contains unsupported image format\) — replace or delete those files, then split again \(--no-check skips this decoding of every image: train and eval would find them\)/);
    expect(fs.existsSync(out)).toBe(false);
    const unchecked = await runSlim(['split', source, '-o', out, '--no-check', '--json']);
    expect(unchecked.code, unchecked.stderr).toBe(0);
    expect(JSON.parse(unchecked.stdout)).toMatchObject({ train_images: 6, test_images: 2 });
  });

  it('writes train/ and test/ of hard links that the training loader reads, and says what it did', async () => {
    const root = tempDir('split-src');
    const source = path.join(root, 'photos');
    await classFolder(source, { daisy: 10, rose: 5, tulip: 1 });
    fs.writeFileSync(path.join(source, 'rose', 'notes.txt'), 'not an image');
    const out = path.join(root, 'photos-split');
    const r = await runSlim(['split', source, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { train_images: number; test_images: number; linked: number; copied: number; classes: { name: string; train: number; test: number }[] };
    expect(json).toMatchObject({ train_images: 13, test_images: 3, linked: 16, copied: 0 });
    expect(json.classes).toEqual([{ name: 'daisy', train: 8, test: 2 }, { name: 'rose', train: 4, test: 1 }, { name: 'tulip', train: 1, test: 0 }]);
    expect(r.stderr).toMatch(/note: class tulip has one image: kept in train\/, none to test it on/);
    expect(r.stderr).toMatch(/passed over 1 file .*\.txt ×1/);
    // The training loader reads it: the same classes in both splits, the counts above.
    const data = await loadTrainTest(out, { size: [4, 4] }).catch((e: unknown) => e as Error);
    // tulip has no test images: the loader takes train/'s classes for test/'s labels.
    expect(data).not.toBeInstanceOf(Error);
    const { train, test } = data as Awaited<ReturnType<typeof loadTrainTest>>;
    expect(train.classes).toEqual(['daisy', 'rose', 'tulip']);
    expect([train.labels.length, test.labels.length]).toEqual([13, 3]);
    // Hard links: the very files of the source, no copy.
    const linked = path.join(out, 'test', 'rose', fs.readdirSync(path.join(out, 'test', 'rose'))[0]!);
    expect(fs.statSync(linked).ino).toBe(fs.statSync(path.join(source, 'rose', path.basename(linked))).ino);
    // The same command again gives the same split (into another folder); --copy makes copies.
    const again = await runSlim(['split', source, '-o', path.join(root, 'again'), '--copy', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as typeof json).classes).toEqual(json.classes);
    expect(fs.readdirSync(path.join(root, 'again', 'test', 'daisy'))).toEqual(fs.readdirSync(path.join(out, 'test', 'daisy')));
    expect(fs.statSync(path.join(root, 'again', 'test', 'rose', path.basename(linked))).ino).not.toBe(fs.statSync(linked).ino);
    // The text form: one line, a table of classes, the next step.
    const text = await runSlim(['split', source, '-o', path.join(root, 'text')]);
    expect(text.stdout).toMatch(/^split .*photos: 3 classes, 16 images → .*text\/train 13, .*text\/test 3 \(20 % of each class, seed 0; hard links, no extra space\)/);
    expect(text.stdout).toMatch(/daisy\s+8\s+2/);
    expect(text.stdout).toMatch(/next: slim train --model resnet18-cifar --data .*text /);
    // Images of CIFAR's size or smaller train at the zoo model's 32×32: no --image-size 64 (it was suggested for any).
    expect(text.stdout).not.toMatch(/--image-size/);
    // No staging folder is left beside the output.
    expect(fs.readdirSync(root).filter((f) => f.includes('partial'))).toEqual([]);
  }, 120_000);

  it('refuses what it cannot split well, before writing anything', async () => {
    const root = tempDir('split-refuse');
    const source = path.join(root, 'photos');
    await classFolder(source, { cat: 3, dog: 3 });
    const full = path.join(root, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'keep.txt'), 'x');
    const cases: [string[], RegExp][] = [
      [['-o', full], /-o .*full is not empty \(1 entry\) — give a new or empty folder/],
      [['-o', path.join(source, 'split')], /-o .*photos\/split is inside .*photos: its train\/ and test\/ would be read as two more classes — give a folder beside it/],
      [['-o', path.join(root, 'x'), '--test-fraction', '0'], /--test-fraction must be between 0 and 1, got '0'/],
      [[], /no output folder given — pass -o photos-split/],
    ];
    for (const [args, message] of cases) {
      const r = await runSlim(['split', source, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    // A folder split already, and one that is not there.
    const split = await runSlim(['split', source, '-o', path.join(root, 'done')]);
    expect(split.code, split.stderr).toBe(0);
    const twice = await runSlim(['split', path.join(root, 'done'), '-o', path.join(root, 'twice')]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/done: is split already \(it holds train\/, test\/\) — pass it to --data as it is/);
    // One class: what train would refuse, refused before anything is written.
    await classFolder(path.join(root, 'oneclass'), { cat: 5 });
    const one = await runSlim(['split', path.join(root, 'oneclass'), '-o', path.join(root, 'one-split')]);
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/oneclass: has one class folder \(cat\): a classifier needs two classes or more — give the folder that holds a folder of images per class/);
    expect(fs.existsSync(path.join(root, 'one-split'))).toBe(false);
    const missing = await runSlim(['split', path.join(root, 'nope'), '-o', path.join(root, 'y')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope: does not exist/);
    // An empty output folder is used; nothing was written for the refusals.
    fs.mkdirSync(path.join(root, 'empty'));
    expect((await runSlim(['split', source, '-o', path.join(root, 'empty')])).code).toBe(0);
    expect(fs.readdirSync(path.join(root, 'empty')).sort()).toEqual(['test', 'train']);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
  }, 120_000);
});

describe('writeSplit', () => {
  it('leaves no output folder when it fails part way', async () => {
    const root = tempDir('split-fail');
    const out = path.join(root, 'out');
    const plan = [{ name: 'cat', train: [path.join(root, 'missing.png')], test: [] }];
    await expect(writeSplit(root, plan, out)).rejects.toThrow(/ENOENT/);
    expect(fs.readdirSync(root)).toEqual([]);
  });
});

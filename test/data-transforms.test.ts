import { describe, expect, it } from 'vitest';
import { batchCount, batches, epochOrder } from '../src/data/batches.js';
import { stratifiedSubset, subset, take, takeAcrossClasses } from '../src/data/subsets.js';
import { evalSlice, type RunData } from '../src/pipeline/data.js';
import { cropWithPadding, flipHorizontal, normalizeInto, randomCropWithPadding, randomHorizontalFlip } from '../src/data/transforms.js';
import { CIFAR10_NORMALIZATION, type ImageSet, type Normalization } from '../src/data/types.js';
import { Random } from '../src/util/random.js';

/** A set of n random C×H×W images with labels i % classes. */
function randomSet(n: number, shape: [number, number, number] = [3, 8, 8], classes = 4, seed = 1): ImageSet {
  const rng = new Random(seed);
  const size = shape[0] * shape[1] * shape[2];
  return {
    name: 'random',
    classes: Array.from({ length: classes }, (_, i) => `c${i}`),
    imageShape: shape,
    pixels: Uint8Array.from({ length: n * size }, () => rng.int(256)),
    labels: Uint16Array.from({ length: n }, (_, i) => i % classes),
  };
}

const IDENTITY: Normalization = { scale: 1, mean: [0, 0, 0], std: [1, 1, 1] };
const image4x4 = Uint8Array.from({ length: 16 }, (_, i) => i + 1); // Rows 1-4, 5-8, 9-12, 13-16.

describe('normalizeInto', () => {
  it('matches (p·scale − mean)/std computed by hand, per channel, at offsets', () => {
    const norm: Normalization = { scale: 1 / 255, mean: [0.5, 0.25], std: [0.5, 0.25] };
    const out = new Float32Array(6).fill(99);
    normalizeInto(out, 2, Uint8Array.from([7, 0, 255, 51, 102]), 1, [2, 1, 2], norm);
    expect(out[0]).toBe(99);
    expect(out[1]).toBe(99);
    const expected = [-1, 1, -0.2, 0.6]; // (0−.5)/.5, (1−.5)/.5, (.2−.25)/.25, (.4−.25)/.25
    expected.forEach((v, i) => expect(out[2 + i]).toBeCloseTo(v, 6));
  });

  it('CIFAR-10 statistics: pixel 128 in each channel', () => {
    const out = new Float32Array(3);
    normalizeInto(out, 0, Uint8Array.from([128, 128, 128]), 0, [3, 1, 1], CIFAR10_NORMALIZATION);
    expect(out[0]).toBeCloseTo((128 / 255 - 0.4914) / 0.247, 5);
    expect(out[1]).toBeCloseTo((128 / 255 - 0.4822) / 0.2435, 5);
    expect(out[2]).toBeCloseTo((128 / 255 - 0.4465) / 0.2616, 5);
  });
});

describe('crop with padding and flip', () => {
  const crop = (placement: { top: number; left: number; flip: boolean }) => {
    const out = new Uint8Array(16).fill(255);
    cropWithPadding({ src: image4x4, out, shape: [1, 4, 4], pad: 1, placement });
    return [...out];
  };

  it('a 4×4 image with pad 1 gives the hand-computed windows (torchvision RandomCrop(4, padding=1))', () => {
    expect(crop({ top: 0, left: 0, flip: false })).toEqual([0, 0, 0, 0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11]);
    expect(crop({ top: 2, left: 2, flip: false })).toEqual([6, 7, 8, 0, 10, 11, 12, 0, 14, 15, 16, 0, 0, 0, 0, 0]);
    expect(crop({ top: 1, left: 1, flip: false })).toEqual([...image4x4]);
    expect(crop({ top: 1, left: 0, flip: true })).toEqual([3, 2, 1, 0, 7, 6, 5, 0, 11, 10, 9, 0, 15, 14, 13, 0]);
    expect(crop({ top: 0, left: 2, flip: true })).toEqual([0, 0, 0, 0, 0, 4, 3, 2, 0, 8, 7, 6, 0, 12, 11, 10]);
  });

  it('a pad larger than the image gives all zeros outside, never writing past the row', () => {
    const out = new Uint8Array(18).fill(255);
    cropWithPadding({ src: image4x4, out, outOffset: 1, shape: [1, 4, 4], pad: 5, placement: { top: 5, left: 0, flip: false } });
    expect([...out]).toEqual([255, ...new Array(16).fill(0), 255]);
  });

  it('crop+flip in one pass equals crop, then flip, for every placement of a 3-channel image', () => {
    const set = randomSet(1, [3, 5, 7]);
    const a = new Uint8Array(105);
    const b = new Uint8Array(105);
    for (let top = 0; top <= 4; top++) {
      for (let left = 0; left <= 4; left++) {
        cropWithPadding({ src: set.pixels, out: a, shape: [3, 5, 7], pad: 2, placement: { top, left, flip: true } });
        cropWithPadding({ src: set.pixels, out: b, shape: [3, 5, 7], pad: 2, placement: { top, left, flip: false } });
        flipHorizontal({ src: b, out: b, shape: [3, 5, 7] });
        expect(a).toEqual(b);
      }
    }
  });

  it('flip twice is the identity; flip mirrors each row', () => {
    const set = randomSet(1, [3, 4, 5]);
    const once = new Uint8Array(60);
    flipHorizontal({ src: set.pixels, out: once, shape: [3, 4, 5] });
    expect(once[0]).toBe(set.pixels[4]);
    expect(once[59]).toBe(set.pixels[55]);
    const twice = Uint8Array.from(once);
    flipHorizontal({ src: twice, out: twice, shape: [3, 4, 5] }); // In place.
    expect(twice).toEqual(set.pixels);
  });

  it('random crop and flip are deterministic for a seed and cover every offset', () => {
    const run = (seed: number) => {
      const rng = new Random(seed);
      const seen: string[] = [];
      const out = new Uint8Array(16);
      for (let i = 0; i < 200; i++) {
        const p = randomCropWithPadding({ src: image4x4, out, shape: [1, 4, 4], pad: 1, rng, flip: true });
        expect([...out]).toEqual(crop(p));
        seen.push(`${p.top},${p.left},${p.flip}`);
      }
      return seen;
    };
    const a = run(5);
    expect(run(5)).toEqual(a);
    expect(run(6)).not.toEqual(a);
    expect(new Set(a).size).toBe(18); // 3 tops × 3 lefts × 2 flips.
    const rng = new Random(3);
    const flips = Array.from({ length: 100 }, () => randomHorizontalFlip({ src: image4x4, out: new Uint8Array(16), shape: [1, 4, 4], rng }));
    expect(flips.filter(Boolean).length).toBeGreaterThan(30);
    expect(flips.filter(Boolean).length).toBeLessThan(70);
  });
});

describe('batches', () => {
  const set = randomSet(10);

  it('in order by default: dims, labels, indices and values, with a short last batch', () => {
    const all = [...batches(set, { batchSize: 4, normalization: IDENTITY })];
    expect(all.map((b) => b.dims)).toEqual([
      [4, 3, 8, 8],
      [4, 3, 8, 8],
      [2, 3, 8, 8],
    ]);
    expect(all.flatMap((b) => [...b.indices])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(all.flatMap((b) => [...b.labels])).toEqual([...set.labels]);
    expect(all[2]!.images.length).toBe(2 * 192);
    expect([...all[1]!.images.subarray(192, 384)]).toEqual([...set.pixels.subarray(5 * 192, 6 * 192)]);
    expect(batchCount(set, { batchSize: 4 })).toBe(3);
    expect([...batches(set, { batchSize: 4, normalization: IDENTITY, dropLast: true })]).toHaveLength(2);
    expect(batchCount(set, { batchSize: 4, dropLast: true })).toBe(2);
    expect([...batches(set, { batchSize: 4, normalization: IDENTITY, limit: 5 })].map((b) => b.dims[0])).toEqual([4, 1]);
  });

  it('shuffle is a permutation, fixed by seed+epoch, different across epochs', () => {
    const order = (seed: number | undefined, epoch: number) =>
      [...batches(set, { batchSize: 3, normalization: IDENTITY, ...(seed === undefined ? {} : { shuffleSeed: seed }), epoch })].flatMap((b) => [...b.indices]);
    const e0 = order(7, 0);
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e0).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order(7, 0)).toEqual(e0);
    expect(order(7, 1)).not.toEqual(e0);
    expect(order(8, 0)).not.toEqual(e0);
    expect(order(undefined, 3)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const big = epochOrder(1000, { shuffleSeed: 1, epoch: 2 });
    expect(new Set(big).size).toBe(1000);
  });

  it('augmented images are each one of the padded crops (+flips) of their source, deterministically', () => {
    const options = { batchSize: 4, normalization: IDENTITY, shuffleSeed: 3, augment: { crop: 2, flip: true, seed: 9 } };
    const run = [...batches(set, options)];
    expect([...batches(set, options)]).toEqual(run);
    expect([...batches(set, { ...options, epoch: 1 })].map((b) => b.images)).not.toEqual(run.map((b) => b.images));
    const candidate = new Uint8Array(192);
    const placements = new Set<string>();
    for (const batch of run) {
      batch.indices.forEach((index, i) => {
        const got = [...batch.images.subarray(i * 192, (i + 1) * 192)];
        const source = set.pixels.subarray(index * 192, (index + 1) * 192);
        let match: string | undefined;
        for (let top = 0; top <= 4 && !match; top++) {
          for (let left = 0; left <= 4 && !match; left++) {
            for (const flip of [false, true]) {
              cropWithPadding({ src: source, out: candidate, shape: [3, 8, 8], pad: 2, placement: { top, left, flip } });
              if (got.every((v, k) => v === candidate[k])) match = `${top},${left},${flip}`;
            }
          }
        }
        expect(match).toBeDefined();
        placements.add(match!);
      });
    }
    expect(placements.size).toBeGreaterThan(3);
  });

  it('normalizes with the given statistics', () => {
    const [first] = [...batches(set, { batchSize: 1, normalization: CIFAR10_NORMALIZATION })];
    const p = set.pixels[64]!; // Channel 1, first pixel.
    expect(first!.images[64]).toBeCloseTo((p / 255 - 0.4822) / 0.2435, 5);
  });

  it('rejects a bad batch size as a usage error', () => {
    expect(() => [...batches(set, { batchSize: 0, normalization: IDENTITY })]).toThrow(/batch size must be a whole number ≥ 1, got 0/);
  });
});

describe('subsets', () => {
  const set = randomSet(40, [3, 2, 2], 4);

  it('subset copies the chosen images and labels in order; take keeps the first n', () => {
    const s = subset(set, [5, 0, 5]);
    expect([...s.labels]).toEqual([1, 0, 1]);
    expect([...s.pixels.subarray(0, 12)]).toEqual([...set.pixels.subarray(60, 72)]);
    expect([...s.pixels.subarray(24, 36)]).toEqual([...set.pixels.subarray(60, 72)]);
    s.pixels[0] = s.pixels[0]! ^ 1;
    expect(s.pixels[0]).not.toBe(set.pixels[60]); // A copy, not a view.
    expect(take(set, 3).labels).toEqual(set.labels.subarray(0, 3));
    expect(take(set, 100).labels.length).toBe(40);
    expect(() => subset(set, [40])).toThrow(/subset index 40 is outside random/);
  });

  it('takeAcrossClasses takes the first of each class in turn (as an image folder --limit does), in set order', () => {
    const sorted = subset(set, Array.from(set.labels.keys()).sort((a, b) => set.labels[a]! - set.labels[b]! || a - b));
    const firstOf = (c: number, k: number): number => sorted.labels.indexOf(c) + k;
    const s = takeAcrossClasses(sorted, 6);
    // 4 classes × 10: round 0 takes one of each, round 1 the second of classes 0 and 1.
    expect([...s.labels]).toEqual([0, 0, 1, 1, 2, 3]);
    expect([...s.pixels.subarray(12, 24)]).toEqual([...sorted.pixels.subarray(firstOf(0, 1) * 12, firstOf(0, 1) * 12 + 12)]);
    expect(takeAcrossClasses(sorted, 100).labels.length).toBe(40);
    expect(takeAcrossClasses(sorted, 0).labels.length).toBe(0);
    expect([...take(sorted, 6).labels]).toEqual([0, 0, 0, 0, 0, 0]); // what the first n of a folder would be
  });

  it('a pipeline stage scores eval_limit images: a shuffled set (CIFAR-10) the first N (testLimit), one listed class by class (a folder) N across its classes', () => {
    const sorted = subset(set, Array.from(set.labels.keys()).sort((a, b) => set.labels[a]! - set.labels[b]! || a - b));
    const run = (test: ImageSet, name: string): RunData => ({ train: test, test, name, sha256: '', trainSha256: '' });
    expect(evalSlice(run(set, 'cifar10'), 6)).toEqual({ test: set, testLimit: 6 });
    for (const name of ['/data/photos', 'cifar10']) {
      // By the order of its labels, not its name: a folder of CIFAR-10 images, renumbered, is listed by class too.
      const folder = evalSlice(run(sorted, name), 6);
      expect(folder.testLimit).toBeUndefined();
      expect([...folder.test.labels]).toEqual([0, 0, 1, 1, 2, 3]);
    }
    expect(evalSlice(run(sorted, '/data/photos'), undefined)).toEqual({ test: sorted });
  });

  it('stratifiedSubset takes perClass of each class, seeded, in original order', () => {
    const s = stratifiedSubset(set, 3, 1);
    expect(s.labels.length).toBe(12);
    for (let c = 0; c < 4; c++) expect(s.labels.filter((l) => l === c).length).toBe(3);
    expect(stratifiedSubset(set, 3, 1)).toEqual(s);
    expect(stratifiedSubset(set, 3, 2).pixels).not.toEqual(s.pixels);
    expect(stratifiedSubset(set, 50, 1).labels.length).toBe(40); // Classes hold 10 each: all of them.
  });
});

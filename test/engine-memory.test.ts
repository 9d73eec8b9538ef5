import './helpers/engine-env.js';
import { describe, expect, it } from 'vitest';
import { CIFAR10_NORMALIZATION, type ImageSet } from '../src/data/types.js';
import { batchOf, planEpoch } from '../src/engine/epoch.js';
import { loadNative, nativeAvailable } from '../src/engine/native.js';
import { DeviceImageSet, EnginePlan } from '../src/engine/plan.js';
import { Random } from '../src/util/random.js';
import { smallCnn } from './helpers/engine-nets.js';

/**
 * Tensor lifetimes never depend on the JS garbage collector: a step leaves no native tensor behind
 * (counted by the addon's wrapper around LibTorch's CPU allocator) and the process does not grow over
 * 1,000 steps.
 */

function randomSet(n: number, seed: number): ImageSet {
  const rng = new Random(seed);
  return {
    name: 'random',
    classes: Array.from({ length: 10 }, (_, k) => String(k)),
    imageShape: [3, 32, 32],
    pixels: Uint8Array.from({ length: n * 3072 }, () => rng.int(256)),
    labels: Uint16Array.from({ length: n }, () => rng.int(10)),
  };
}

describe.skipIf(!nativeAvailable())('engine memory', () => {
  it('a training step, an evaluation and a forward leave no live tensor behind', async () => {
    const addon = loadNative();
    expect(addon.startAllocationCounting()).toBe(true);
    const plan = EnginePlan.create(smallCnn({ widths: [8, 16, 16] }), { threads: 2 });
    plan.setOptimizer({ kind: 'adamw', weightDecay: 0.01 });
    const data = DeviceImageSet.upload(randomSet(256, 1), { normalization: CIFAR10_NORMALIZATION });
    const epoch = planEpoch(256, { seed: 1, epoch: 0, augment: { crop: 4, flip: true } });
    await plan.trainStep(data, batchOf(epoch, 0, 32), { lr: 0.01 }); // warm-up: lazily created state
    const before = addon.allocationStats();
    for (let b = 1; b < 8; b++) await plan.trainStep(data, batchOf(epoch, b, 32), { lr: 0.01 });
    await plan.evaluate(data, { batch: 100 });
    plan.weights();
    const after = addon.allocationStats();
    expect(after.total - before.total).toBeGreaterThan(100); // the steps did allocate (the counter works)
    expect(after.live).toBe(before.live);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

  it('1,000 steps grow the resident set by at most 5 %', async () => {
    const plan = EnginePlan.create(smallCnn({ widths: [8, 16, 16] }), { threads: 2 });
    plan.setOptimizer({ kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    const data = DeviceImageSet.upload(randomSet(512, 2), { normalization: CIFAR10_NORMALIZATION });
    const perEpoch = 512 / 32;
    const run = async (from: number, steps: number): Promise<void> => {
      for (let s = from; s < from + steps; s++) {
        const epoch = planEpoch(512, { seed: 3, epoch: Math.floor(s / perEpoch), augment: { crop: 4, flip: true } });
        await plan.trainStep(data, batchOf(epoch, s % perEpoch, 32), { lr: 0.02, labelSmoothing: 0.1 });
      }
    };
    await run(0, 100);
    const rssBefore = process.memoryUsage().rss;
    await run(100, 1000);
    const rssAfter = process.memoryUsage().rss;
    console.log(`RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB → ${(rssAfter / 2 ** 20).toFixed(1)} MiB over 1,000 steps`);
    expect(rssAfter / rssBefore).toBeLessThanOrEqual(1.05);
  }, 300_000);
});

describe.skipIf(!nativeAvailable())('engine evaluation in chunks', () => {
  it('scores the same images with the same result as one pass, reporting progress after each chunk', async () => {
    const plan = EnginePlan.create(smallCnn({ widths: [8, 16, 16] }), { threads: 2 });
    const data = DeviceImageSet.upload(randomSet(300, 4), { normalization: CIFAR10_NORMALIZATION });
    const whole = await plan.evaluate(data, { batch: 32 });
    const seen: number[] = [];
    const chunked = await plan.evaluateInChunks(data, 32, (done, total) => seen.push(done / total), 2);
    expect(chunked.count).toBe(300);
    expect(chunked.correct).toBe(whole.correct);
    expect(chunked.loss).toBeCloseTo(whole.loss, 6);
    expect(seen).toEqual([64, 128, 192, 256, 300].map((d) => d / 300));
    // start … limit: images 100 to 149, the same as the first 150 minus the first 100.
    const first150 = await plan.evaluate(data, { batch: 32, limit: 150 });
    const first100 = await plan.evaluate(data, { batch: 32, limit: 100 });
    const middle = await plan.evaluate(data, { batch: 32, start: 100, limit: 150 });
    expect(middle.count).toBe(50);
    expect(middle.correct).toBe(first150.correct - first100.correct);
  });
});

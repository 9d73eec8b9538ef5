/**
 * Test top-1 of one recipe trained three ways — no augmentation, the padded crop (default) and the
 * random resized crop (--augment resized-crop) — from the same initial weights and image order, on a
 * CIFAR-10 subset where augmentation matters (few images, many epochs). Each seed is one run per mode.
 *
 *   SLIM_DATA_DIR=../shared/data/cifar10 npx tsx bench/augment-compare.ts [--images 5000] [--epochs 30] [--width 0.25] [--seeds 1] [--threads N]
 *
 * Prints one JSON line per run ({mode, seed, test_top1, seconds}) and a last one with the mean per mode.
 * CIFAR-10 is 32×32 and centred: this measures the regularizer, not the scale invariance photos need.
 */
import { parseArgs } from 'node:util';
import { loadCifar10 } from '../src/data/cifar10.js';
import { RESIZED_CROP, type EpochAugment } from '../src/engine/epoch.js';
import { trainModel } from '../src/engine/train.js';
import { buildZooModel } from '../src/zoo/index.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '5000' }, epochs: { type: 'string', default: '30' }, width: { type: 'string', default: '0.25' }, seeds: { type: 'string', default: '1' }, threads: { type: 'string' } } });
const data = { train: await loadCifar10('train', { limit: Number(values.images) }), test: await loadCifar10('test') };
const modes: [string, EpochAugment | false][] = [['none', false], ['crop', { crop: 4, flip: true }], ['resized-crop', RESIZED_CROP]];
const results = new Map<string, number[]>();
for (let seed = 0; seed < Number(values.seeds); seed++) {
  for (const [mode, augment] of modes) {
    const started = performance.now();
    const r = await trainModel({
      graph: buildZooModel('resnet18-cifar', { width: Number(values.width), seed }),
      data, epochs: Number(values.epochs), batch: 128, seed, augment,
      ...(values.threads ? { threads: Number(values.threads) } : {}),
    });
    results.set(mode, [...(results.get(mode) ?? []), r.testAccuracy]);
    console.log(JSON.stringify({ mode, seed, test_top1: r.testAccuracy, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) }));
  }
}
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
console.log(JSON.stringify({ images: Number(values.images), epochs: Number(values.epochs), width: Number(values.width), mean_top1: Object.fromEntries([...results].map(([m, v]) => [m, Number(mean(v).toFixed(4))])) }));

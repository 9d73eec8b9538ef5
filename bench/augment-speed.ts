/**
 * Time the training device takes to cut one augmented batch — the padded crop (default) and the
 * resized crop (--augment resized-crop) — through the addon's batch hook, CPU LibTorch, same images.
 *
 *   npx tsx bench/augment-speed.ts [--batch 128] [--size 224] [--runs 5]
 *
 * Prints one JSON line: {batch, size, crop_ms, resized_crop_ms, ratio}. The hook also copies the batch
 * out to JS, which both modes pay alike.
 */
import { parseArgs } from 'node:util';
import { batchOf, planEpoch, RESIZED_CROP, type EpochAugment } from '../src/engine/epoch.js';
import { DeviceImageSet } from '../src/engine/plan.js';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '128' }, size: { type: 'string', default: '224' }, runs: { type: 'string', default: '5' } } });
const [n, side, runs] = [Number(values.batch), Number(values.size), Number(values.runs)];
const set = { name: 'synthetic', classes: ['a'], imageShape: [3, side, side] as [number, number, number], pixels: new Uint8Array(n * 3 * side * side).map((_, i) => i % 251), labels: new Uint16Array(n) };
const normalization = { scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };

function msPerBatch(augment: EpochAugment): number {
  const device = DeviceImageSet.upload(set, { normalization, pad: augment.crop });
  const batch = batchOf(planEpoch(n, { seed: 1, epoch: 0, augment, imageSize: [side, side] }), 0, n);
  device.native.batch(batch.indices, batch.aug ?? null); // warm-up
  const started = performance.now();
  for (let k = 0; k < runs; k++) device.native.batch(batch.indices, batch.aug ?? null);
  return (performance.now() - started) / runs;
}

const crop = msPerBatch({ crop: 4, flip: true });
const resized = msPerBatch(RESIZED_CROP);
console.log(JSON.stringify({ batch: n, size: side, crop_ms: Number(crop.toFixed(1)), resized_crop_ms: Number(resized.toFixed(1)), ratio: Number((resized / crop).toFixed(2)) }));

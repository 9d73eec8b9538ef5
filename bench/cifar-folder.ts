/**
 * CIFAR-10 written as an image folder — train/<class>/*.png and test/<class>/*.png, the RGB images as they
 * are — so the image-folder path (decoding, class numbering, grayscale luma for 1-channel models) can be
 * measured on real data. 60,000 PNGs, about 240 MB, half a minute on 2 cores.
 *
 *   npx tsx bench/cifar-folder.ts OUT [--data-dir D]   (default $SLIM_DATA_DIR, else ../shared/data/cifar10)
 *
 * The grayscale figure in the README: slim train --model resnet18-cifar --width 0.25 --channels 1
 * --data OUT --epochs 4, then slim quantize M -o Q --calib OUT --eval OUT.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { loadCifar10 } from '../src/data/cifar10.js';
import { toChannelsLast } from '../src/data/transforms.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'data-dir': { type: 'string', default: process.env.SLIM_DATA_DIR ?? path.resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'cifar10') },
  },
});
const out = positionals[0];
if (!out) {
  console.error('usage: npx tsx bench/cifar-folder.ts OUT [--data-dir D]');
  process.exit(2);
}

for (const split of ['train', 'test'] as const) {
  const set = await loadCifar10(split, { dataDir: values['data-dir'] });
  for (const name of set.classes) mkdirSync(path.join(out, split, name), { recursive: true });
  const [channels, height, width] = set.imageShape;
  const size = channels * height * width;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < set.labels.length; i++) {
    // PNG stores pixels interleaved (H×W×C).
    const interleaved = toChannelsLast(set.pixels.subarray(i * size, (i + 1) * size), set.imageShape);
    pending.push(sharp(interleaved, { raw: { width, height, channels: channels as 3 } }).png().toFile(path.join(out, split, set.classes[set.labels[i]!]!, `${i}.png`)));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  console.log(`${split}: ${set.labels.length} images → ${path.join(out, split)}`);
}

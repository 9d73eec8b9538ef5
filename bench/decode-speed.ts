/**
 * How fast an image folder is read at a model's input size: decoded and resized on the main thread (as
 * before the pool) against the pool of decoding threads (src/data/decode-pool.ts), on the same listing,
 * in one run. Without a folder it makes one: JPEG "photos" of the given size in 4 classes.
 *
 *   npx tsx bench/decode-speed.ts [--folder DIR] [--images 240] [--photo 1600x1200] [--size 224]
 *
 * Prints one JSON line: {images, source, size, cores, main_thread_img_s, pool_img_s, ratio}. The main
 * thread's run decodes 31 images at a time (the pool takes 32 or more), which is how every folder was read
 * before; its resize runs on one core whatever the machine has, so the ratio grows with the cores.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeListing, listImageFolder } from '../src/data/image-folder.js';
import { usableCores } from '../src/util/cpu-quota.js';
import { Random } from '../src/util/random.js';

const { values } = parseArgs({ options: { folder: { type: 'string' }, images: { type: 'string', default: '240' }, photo: { type: 'string', default: '1600x1200' }, size: { type: 'string', default: '224' } } });
const count = Number(values.images);
const [photoW, photoH] = values.photo.split('x').map(Number) as [number, number];
const side = Number(values.size);
const size: [number, number] = [side, side];

let folder = values.folder;
const made = folder ? undefined : mkdtempSync(path.join(tmpdir(), 'slim-decode-speed-'));
if (made) {
  folder = made;
  const rng = new Random(0);
  for (let i = 0; i < count; i++) {
    // Smooth colour fields enlarged from 32×24: JPEG-compressible like photos, not noise.
    const small = Buffer.from(Array.from({ length: 32 * 24 * 3 }, () => rng.int(256)));
    const dir = path.join(folder, `c${i % 4}`);
    mkdirSync(dir, { recursive: true });
    await sharp(small, { raw: { width: 32, height: 24, channels: 3 } }).resize(photoW, photoH, { kernel: 'linear' }).jpeg({ quality: 88 }).toFile(path.join(dir, `${i}.jpg`));
  }
}

try {
  const listing = await listImageFolder(folder!, { limit: count });
  const n = listing.files.length;
  const timed = async (run: () => Promise<unknown>): Promise<number> => {
    const start = performance.now();
    await run();
    return (performance.now() - start) / 1000;
  };
  // Warm both paths (sharp's first load, the threads' start) on a few images first.
  await decodeListing(listing, { size }, { to: 8 });
  await decodeListing(listing, { size }, { to: 32 });
  const single = await timed(async () => {
    for (let from = 0; from < n; from += 31) await decodeListing(listing, { size }, { from, to: Math.min(n, from + 31) });
  });
  const pooled = await timed(() => decodeListing(listing, { size }));
  const line = {
    images: n, source: made ? `${photoW}x${photoH} JPEG` : folder, size: side, cores: usableCores(),
    main_thread_img_s: Math.round(n / single), pool_img_s: Math.round(n / pooled), ratio: Number((single / pooled).toFixed(2)),
  };
  console.log(JSON.stringify(line));
} finally {
  if (made) rmSync(made, { recursive: true, force: true });
}

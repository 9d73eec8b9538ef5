/**
 * What Pillow-exact resizing (src/data/resample.ts, what image folders, the bundle server and the web
 * page use) costs against libvips's own resize (sharp, `kernel: 'linear'`), on decoded RGB pixels: a phone
 * photo, a 1024×768 image, ImageNet's typical 500×375 and a CIFAR-sized image at its size, each to the
 * model's input with a shorter-side resize and a centre crop.
 *
 *   npx tsx bench/resize-speed.ts [--rounds 5]
 *
 * Prints one JSON line per case: {source, target, ours_ms, sharp_ms, ratio}; each time is the mean of
 * `rounds` runs after one warm-up, one thread (sharp's concurrency set to 1).
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { coverBox } from '../src/data/image-folder.js';
import { resizeCropToPlanar } from '../src/data/resample.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
sharp.concurrency(1);

const CASES: [number, number, number][] = [[4000, 3000, 224], [1024, 768, 224], [500, 375, 224], [640, 480, 32], [32, 32, 32]];

async function meanMs(run: () => unknown): Promise<number> {
  await run();
  const start = performance.now();
  for (let k = 0; k < rounds; k++) await run();
  return (performance.now() - start) / rounds;
}

for (const [w, h, size] of CASES) {
  const pixels = new Uint8Array(w * h * 3).map((_, i) => (i * 31 + (i >> 7)) & 255);
  const box = coverBox({ srcW: w, srcH: h, width: size, height: size });
  const ours = await meanMs(() => resizeCropToPlanar(pixels, w, h, 3, box, size, size));
  const viaSharp = await meanMs(() =>
    sharp(Buffer.from(pixels.buffer), { raw: { width: w, height: h, channels: 3 } })
      .resize(box.resizedW, box.resizedH, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
      .extract({ left: box.left, top: box.top, width: size, height: size })
      .raw()
      .toBuffer(),
  );
  console.log(JSON.stringify({ source: `${w}x${h}`, target: `${size}x${size}`, ours_ms: Number(ours.toFixed(2)), sharp_ms: Number(viaSharp.toFixed(2)), ratio: Number((ours / viaSharp).toFixed(2)) }));
}

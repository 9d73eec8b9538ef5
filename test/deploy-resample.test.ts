/**
 * The web page's resize (no sharp in a browser) against sharp's, which `slim eval` and the bundle
 * server use: the same image must give the model the same pixels, enlarged or shrunk.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { coverBox, loadImageFile } from '../src/data/image-folder.js';
import { resizeCropToPlanar } from '../src/deploy/web/resample.js';
import { Random } from '../src/util/random.js';

/** A smooth colour field with some detail: gradients plus a few random blobs. */
async function testImage(w: number, h: number, seed: number): Promise<{ png: Buffer; rgba: Uint8Array }> {
  const random = new Random(seed);
  const rgb = Buffer.alloc(w * h * 3);
  const blobs = Array.from({ length: 6 }, () => ({ x: random.int(w), y: random.int(h), r: 2 + random.int(Math.max(3, w >> 2)), c: random.int(3) }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = Math.round((255 * x) / Math.max(1, w - 1));
      rgb[o + 1] = Math.round((255 * y) / Math.max(1, h - 1));
      rgb[o + 2] = 128;
      for (const b of blobs) if ((x - b.x) ** 2 + (y - b.y) ** 2 < b.r ** 2) rgb[o + b.c] = 255 - rgb[o + b.c]!;
    }
  }
  const raw = { raw: { width: w, height: h, channels: 3 as const } };
  const png = await sharp(rgb, raw).png().toBuffer();
  const rgba = new Uint8Array((await sharp(png).ensureAlpha().raw().toBuffer()).buffer.slice(0));
  return { png, rgba };
}

describe('web resample vs sharp', () => {
  // Enlarging was half a source pixel off before (up to 102 levels at edges); shrinking by a
  // non-integer factor differs from libvips' reduce by a few levels at hard edges.
  for (const [w, h, out, seed, limit] of [
    [180, 120, 224, 1, 2],
    [28, 24, 32, 2, 2],
    [20, 33, 32, 3, 2],
    [400, 300, 224, 4, 8],
    [64, 48, 32, 5, 2],
  ] as const) {
    it(`${w}×${h} → ${out}×${out}: every channel value within ${limit} levels of sharp's`, async () => {
      const { png, rgba } = await testImage(w, h, seed);
      const reference = (await loadImageFile(png, { size: [out, out] })).pixels;
      const page = resizeCropToPlanar(rgba, w, h, coverBox({ srcW: w, srcH: h, width: out, height: out }), out, out);
      let max = 0;
      for (let i = 0; i < reference.length; i++) max = Math.max(max, Math.abs(reference[i]! - page[i]!));
      expect(max).toBeLessThanOrEqual(limit);
    });
  }
});

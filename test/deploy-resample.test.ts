/**
 * Resizing as Pillow computes it (src/data/resample.ts): what torchvision's Resize does to the PIL
 * images its loader reads. Oracle: Pillow itself (Debian python3-pil), byte for byte — through
 * `loadImageFile`, which eval, training, calibration and the bundle server use, and through the web
 * page's path (canvas RGBA), which runs the same function.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { coverBox, loadImageFile } from '../src/data/image-folder.js';
import { resizeCropToPlanar } from '../src/data/resample.js';
import { Random } from '../src/util/random.js';

const hasPil = ((): boolean => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import PIL'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A colour field with hard edges and noise: gradients, random blobs, a few random pixels. */
async function testImage(w: number, h: number, seed: number): Promise<{ png: Buffer; rgba: Uint8Array }> {
  const random = new Random(seed);
  const rgb = Buffer.alloc(w * h * 3);
  const blobs = Array.from({ length: 6 }, () => ({ x: random.int(w), y: random.int(h), r: 2 + random.int(Math.max(3, w >> 2)), c: random.int(3) }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = Math.round((255 * x) / Math.max(1, w - 1));
      rgb[o + 1] = Math.round((255 * y) / Math.max(1, h - 1));
      rgb[o + 2] = random.int(8) === 0 ? random.int(256) : 128;
      for (const b of blobs) if ((x - b.x) ** 2 + (y - b.y) ** 2 < b.r ** 2) rgb[o + b.c] = 255 - rgb[o + b.c]!;
    }
  }
  const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  const rgba = new Uint8Array((await sharp(png).ensureAlpha().raw().toBuffer()).buffer.slice(0));
  return { png, rgba };
}

/** Pillow's torchvision-style resize of a PNG, as planar RGB. */
function pillow(file: string, box: { resizedW: number; resizedH: number; left: number; top: number }, outW: number, outH: number): Uint8Array {
  const script = [
    'from PIL import Image; import sys',
    `im = Image.open(${JSON.stringify(file)}).convert('RGB').resize((${box.resizedW}, ${box.resizedH}), Image.BILINEAR)`,
    `im = im.crop((${box.left}, ${box.top}, ${box.left + outW}, ${box.top + outH}))`,
    "sys.stdout.buffer.write(b''.join(band.tobytes() for band in im.split()))",
  ].join('\n');
  return new Uint8Array(execFileSync('/usr/bin/python3', ['-c', script]));
}

describe('image resizing', () => {
  it("enlarges as torchvision does: a row [0, 100, 200, 40] doubled is [0, 25, 75, 125, 175, 160, 80, 40]", () => {
    const row = Uint8Array.from([0, 100, 200, 40]);
    // libvips's enlargement (sharp, used before) gave [0, 0, 50, 100, 150, 200, 120, 40]: half a source pixel off.
    expect([...resizeCropToPlanar(row, 4, 1, 1, { resizedW: 8, resizedH: 1, left: 0, top: 0 }, 8, 1)]).toEqual([0, 25, 75, 125, 175, 160, 80, 40]);
  });

  it('an image at the size passes through unchanged, and a crop without a resize only crops', () => {
    const pixels = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 37) % 256);
    const same = resizeCropToPlanar(pixels, 5, 4, 3, { resizedW: 5, resizedH: 4, left: 0, top: 0 }, 5, 4);
    const cropped = resizeCropToPlanar(pixels, 5, 4, 3, { resizedW: 5, resizedH: 4, left: 1, top: 0 }, 3, 4);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 5; x++) for (let c = 0; c < 3; c++) expect(same[c * 20 + y * 5 + x]).toBe(pixels[(y * 5 + x) * 3 + c]);
      for (let x = 0; x < 3; x++) for (let c = 0; c < 3; c++) expect(cropped[c * 12 + y * 3 + x]).toBe(pixels[(y * 5 + x + 1) * 3 + c]);
    }
  });

  // Enlarged, shrunk by whole and odd factors, one side up and one down, a 1-pixel source, thin strips.
  const cases = [
    [180, 120, 224, 224, 'shorter-side'], [28, 24, 32, 32, 'shorter-side'], [20, 33, 32, 32, 'shorter-side'],
    [400, 300, 224, 224, 'shorter-side'], [64, 48, 32, 32, 'shorter-side'], [7, 5, 32, 40, 'stretch'],
    [33, 17, 16, 16, 'stretch'], [1, 1, 4, 4, 'shorter-side'], [3, 200, 32, 32, 'shorter-side'], [50, 20, 24, 40, 'stretch'],
  ] as const;
  const dir = mkdtempSync(path.join(tmpdir(), 'slim-resample-'));
  for (const [w, h, outW, outH, resize] of cases) {
    it.skipIf(!hasPil)(`${w}×${h} → ${outW}×${outH} (${resize}): slim eval's pixels and the web page's equal Pillow's, byte for byte`, async () => {
      const { png, rgba } = await testImage(w, h, w * 1000 + h);
      const file = path.join(dir, `${w}x${h}.png`);
      writeFileSync(file, png);
      const box = resize === 'stretch' ? { resizedW: outW, resizedH: outH, left: 0, top: 0 } : coverBox({ srcW: w, srcH: h, width: outW, height: outH });
      const reference = pillow(file, box, outW, outH);
      const node = (await loadImageFile(file, { size: [outH, outW], resize })).pixels;
      const page = resizeCropToPlanar(rgba, w, h, 4, box, outW, outH);
      expect(Buffer.from(node).equals(Buffer.from(reference))).toBe(true);
      expect(Buffer.from(page).equals(Buffer.from(reference))).toBe(true);
    });
  }

  // torchvision's ImageNet evaluation transform, written out as torchvision computes it: Resize(256) scales
  // the shorter side to 256 and the longer to int(256 · long / short); CenterCrop(224) starts at
  // int(round((side − 224) / 2)). The box is Python's here, not slimkit's.
  for (const [w, h, side, crop] of [[500, 375, 256, 224], [375, 500, 256, 224], [301, 300, 256, 224], [64, 48, 40, 32], [33, 65, 36, 32]] as const) {
    it.skipIf(!hasPil)(`${w}×${h}, Resize(${side}) + CenterCrop(${crop}) (--resize ${side}): equal to Pillow with torchvision's arithmetic`, async () => {
      const { png } = await testImage(w, h, w * 7 + h);
      const file = path.join(dir, `${w}x${h}-r${side}.png`);
      writeFileSync(file, png);
      const script = [
        'from PIL import Image; import sys',
        `im = Image.open(${JSON.stringify(file)}).convert('RGB')`,
        `w, h = im.size; s = ${side}`,
        'nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)',
        'im = im.resize((nw, nh), Image.BILINEAR)',
        `left, top = int(round((nw - ${crop}) / 2.0)), int(round((nh - ${crop}) / 2.0))`,
        `im = im.crop((left, top, left + ${crop}, top + ${crop}))`,
        "sys.stdout.buffer.write(b''.join(band.tobytes() for band in im.split()))",
      ].join('\n');
      const reference = new Uint8Array(execFileSync('/usr/bin/python3', ['-c', script]));
      const ours = (await loadImageFile(file, { size: [crop, crop], resize: { shorterSide: side } })).pixels;
      expect(Buffer.from(ours).equals(Buffer.from(reference))).toBe(true);
    });
  }

  it('refuses a shorter side smaller than the input: the crop would run past the image', async () => {
    const { png } = await testImage(40, 30, 1);
    await expect(loadImageFile(png, { size: [32, 32], resize: { shorterSide: 24 } })).rejects.toThrow(/resize 24 is smaller than the model's 32×32 input: the centre crop would run past the image — resize to at least 32/);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { byCodePoint, coverBox, loadImageFile, loadImageFolder, loadTrainTestFolders, outsideClassesNote, passedOverNote } from '../src/data/image-folder.js';
import { SlimError } from '../src/errors.js';
import { checkDataDir, loadDataset, loadTrainTest } from '../src/data/model-data.js';
import { removeTempDirs, tempDir } from './data-fixtures.js';
import { CIFAR_DIR } from './helpers/fixtures.js';
import { runSlim } from './helpers/cli.js';
import { writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';

afterAll(removeTempDirs);

type RGB = [number, number, number];

/** A w×h RGB image made of vertical (or horizontal) bands: [colour, length] pairs. */
function bands(w: number, h: number, parts: [RGB, number][], vertical = true): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let pos = vertical ? x : y;
      let colour = parts[0]![0];
      for (const [c, len] of parts) {
        colour = c;
        if (pos < len) break;
        pos -= len;
      }
      data.set(colour, (y * w + x) * 3);
    }
  }
  return data;
}

const RED: RGB = [255, 0, 0];
const GREEN: RGB = [0, 200, 0];
const BLUE: RGB = [0, 0, 255];
const solid = (w: number, h: number, c: RGB) => bands(w, h, [[c, w]]);

/** Pixel (c, y, x) of image i in a planar N×3×H×W buffer. */
const px = (pixels: Uint8Array, [h, w]: [number, number], i: number, y: number, x: number): RGB =>
  [0, 1, 2].map((c) => pixels[i * 3 * h * w + c * h * w + y * w + x]!) as RGB;

describe('loadImageFolder', () => {
  const root = tempDir('folder');

  beforeAll(async () => {
    const cat = path.join(root, 'cat');
    const dog = path.join(root, 'dog');
    fs.mkdirSync(path.join(dog, 'more'), { recursive: true });
    fs.mkdirSync(cat);
    fs.mkdirSync(path.join(root, '.hidden'));
    const raw = (w: number, h: number, channels: 1 | 3 | 4 = 3) => ({ raw: { width: w, height: h, channels } });
    await sharp(solid(40, 40, RED), raw(40, 40)).png().toFile(path.join(cat, 'a-red.png'));
    await sharp(Buffer.alloc(32 * 32, 100), raw(32, 32, 1)).png().toFile(path.join(cat, 'b-gray.png'));
    const rgba = Buffer.alloc(32 * 32 * 4);
    for (let i = 0; i < 32 * 32; i++) rgba.set([0, 0, 255, 128], i * 4);
    await sharp(rgba, raw(32, 32, 4)).png().toFile(path.join(cat, 'c-alpha.png'));
    fs.writeFileSync(path.join(cat, 'notes.txt'), 'not an image, not listed');
    // Wide 64×32: 16 red | 32 green | 16 blue → the centre crop is all green.
    await sharp(bands(64, 32, [[RED, 16], [GREEN, 32], [BLUE, 16]]), raw(64, 32)).png().toFile(path.join(dog, 'a-wide.png'));
    await sharp(solid(32, 32, GREEN), raw(32, 32)).jpeg({ quality: 95 }).toFile(path.join(dog, 'b-green.jpg'));
    // Tall 32×96, lossless WebP: 32 red / 32 blue / 32 green rows → the centre crop is all blue.
    await sharp(bands(32, 96, [[RED, 32], [BLUE, 32], [GREEN, 32]], false), raw(32, 96)).webp({ lossless: true }).toFile(path.join(dog, 'more', 'c-tall.webp'));
  });

  it('reads a JPEG with a decoder warning (extraneous bytes before a marker) as Pillow does, and refuses one cut short', async () => {
    const dir = tempDir('jpeg-warning');
    const jpeg = await sharp(bands(32, 32, [[RED, 10], [GREEN, 12], [BLUE, 10]]), { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
    const warned = Buffer.concat([jpeg.subarray(0, sos), Buffer.from([0, 0, 0]), jpeg.subarray(sos)]);
    const clean = await loadImageFile(jpeg, { size: [32, 32] });
    expect(Buffer.from((await loadImageFile(warned, { size: [32, 32] })).pixels).equals(Buffer.from(clean.pixels))).toBe(true);
    const cut = path.join(dir, 'cut.jpg');
    fs.writeFileSync(cut, jpeg.subarray(0, jpeg.length >> 1));
    await expect(loadImageFile(cut, { size: [32, 32] })).rejects.toThrow(/cannot read image \(.*premature end of JPEG image\)/);
  });

  it('counts decoded images to its caller, and refuses a set past 4 GiB before decoding any', async () => {
    const seen: [number, number][] = [];
    await loadImageFolder(root, { concurrency: 1, onProgress: (done, total) => seen.push([done, total]) });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6].map((n) => [n, 6]));
    // 6 images of 3×16384×16384 are 4.5 GiB; 5 fit.
    const start = performance.now();
    const error = await loadImageFolder(root, { size: [16384, 16384] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SlimError);
    expect((error as Error).message).toBe(`${root}: 6 images of 3×16384×16384 are 4.5 GiB decoded, more than one set can hold (4 GiB: 5 images of this size) — read at most 5 of them: --train-limit and --test-limit (train, distill, prune, quantize --qat); or a smaller --image-size (slim eval, slim bench and slim quantize --eval read any number, a chunk at a time)`);
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('labels from sorted subfolders, RGB from PNG/JPEG/WebP, gray expanded, alpha composited onto black, centre crops', async () => {
    const set = await loadImageFolder(root);
    expect(set.classes).toEqual(['cat', 'dog']);
    expect(set.imageShape).toEqual([3, 32, 32]);
    expect([...set.labels]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(set.pixels.length).toBe(6 * 3072);
    expect(set.skipped).toEqual([]);
    const at = (i: number, y: number, x: number) => px(set.pixels, [32, 32], i, y, x);
    // 40×40 red resized to 32×32 stays red.
    expect(at(0, 0, 0)).toEqual(RED);
    expect(at(0, 31, 31)).toEqual(RED);
    expect(at(1, 10, 10)).toEqual([100, 100, 100]);
    // Blue at half opacity over black.
    const [r, g, b] = at(2, 5, 5);
    expect([r, g]).toEqual([0, 0]);
    expect(Math.abs(b - 128)).toBeLessThanOrEqual(1);
    // Wide image: every pixel of the 32×32 centre is green (no red or blue band left).
    for (let y = 0; y < 32; y++) for (const x of [0, 15, 31]) expect(at(3, y, x)).toEqual(GREEN);
    for (const [y, x] of [[0, 0], [16, 16], [31, 31]] as const) at(4, y, x).forEach((v, c) => expect(Math.abs(v - GREEN[c]!)).toBeLessThanOrEqual(4));
    for (const y of [0, 31]) for (const x of [0, 31]) expect(at(5, y, x)).toEqual(BLUE);
  });

  it('downscales the shorter side, then crops the centre, at a non-square size', async () => {
    const dir = tempDir('folder-scale');
    fs.mkdirSync(path.join(dir, 'only'));
    // 128×64: 32 red | 64 green | 32 blue. Shorter side 64 → 16 (×¼): 32×16, centre 16×16 = the green band.
    await sharp(bands(128, 64, [[RED, 32], [GREEN, 64], [BLUE, 32]]), { raw: { width: 128, height: 64, channels: 3 } })
      .png()
      .toFile(path.join(dir, 'only', 'x.png'));
    const set = await loadImageFolder(dir, { size: [16, 16] });
    for (let y = 0; y < 16; y++) for (let x = 1; x < 15; x++) expect(px(set.pixels, [16, 16], 0, y, x)).toEqual(GREEN);
    // Edge columns touch the band borders: mostly green after the linear filter.
    expect(px(set.pixels, [16, 16], 0, 8, 0)[1]).toBeGreaterThan(150);
    // A 12×20 (h×w) output: the height fixes the scale, 128×64 → 24×12; columns 2..21 are kept, so the
    // red band (resized columns 0..5) is still in view at the left.
    const wide = await loadImageFolder(dir, { size: [12, 20] });
    expect(wide.imageShape).toEqual([3, 12, 20]);
    expect(px(wide.pixels, [12, 20], 0, 6, 10)).toEqual(GREEN);
    expect(px(wide.pixels, [12, 20], 0, 6, 0)[0]).toBeGreaterThan(200); // The red band is still in view.
  });

  it('coverBox follows torchvision Resize(int) + CenterCrop arithmetic', () => {
    expect(coverBox({ srcW: 64, srcH: 32, width: 32, height: 32 })).toEqual({ resizedW: 64, resizedH: 32, left: 16, top: 0 });
    expect(coverBox({ srcW: 100, srcH: 30, width: 32, height: 32 })).toEqual({ resizedW: 106, resizedH: 32, left: 37, top: 0 });
    // Offsets round half to even like Python: (33−32)/2 = 0.5 → 0, (35−32)/2 = 1.5 → 2.
    expect(coverBox({ srcW: 33, srcH: 32, width: 32, height: 32 }).left).toBe(0);
    expect(coverBox({ srcW: 35, srcH: 32, width: 32, height: 32 }).left).toBe(2);
    expect(coverBox({ srcW: 30, srcH: 100, width: 32, height: 32 })).toEqual({ resizedW: 32, resizedH: 106, left: 0, top: 37 });
  });

  it('a fixed class order sets the labels; limit takes images round-robin over classes', async () => {
    const set = await loadImageFolder(root, { classes: ['dog', 'cat'] });
    expect([...set.labels]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(px(set.pixels, [32, 32], 3, 0, 0)).toEqual(RED); // cat/a-red.png now comes after the dogs.
    const limited = await loadImageFolder(root, { limit: 3 });
    expect([...limited.labels]).toEqual([0, 0, 1]);
    await expect(loadImageFolder(root, { classes: ['cat', 'cow'] })).rejects.toThrow(/has no folder for class "cow" \(found: cat, dog\)/);
  });

  it('with a sample seed, limit draws each class\'s images at random (calibration), the same ones for the same seed', async () => {
    const dir = tempDir('folder-sample');
    for (const c of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, c));
      for (let i = 0; i < 8; i++) await sharp(solid(8, 8, [i * 30, c === 'a' ? 0 : 255, 0]), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(dir, c, `${i}.png`));
    }
    // Image i of a class is red level 30·i: which files were read shows in the red plane.
    const reds = async (o: { sampleSeed?: number }) => {
      const set = await loadImageFolder(dir, { size: [8, 8], limit: 6, ...o });
      return Array.from({ length: 6 }, (_, k) => set.pixels[k * 192]! / 30);
    };
    expect(await reds({})).toEqual([0, 1, 2, 0, 1, 2]);
    const drawn = await reds({ sampleSeed: 1 });
    expect(drawn).not.toEqual([0, 1, 2, 0, 1, 2]);
    expect(await reds({ sampleSeed: 1 })).toEqual(drawn);
    expect(await reds({ sampleSeed: 2 })).not.toEqual(drawn);
    for (const half of [drawn.slice(0, 3), drawn.slice(3)]) expect([...half].sort((x, y) => x - y)).toEqual(half);
  });

  it('with a sample seed, fewer images than classes come from classes drawn at random, not the first ones', async () => {
    const dir = tempDir('folder-classes');
    for (let c = 0; c < 40; c++) {
      fs.mkdirSync(path.join(dir, `c${String(c).padStart(2, '0')}`));
      await sharp(solid(4, 4, [c, 0, 0]), { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(path.join(dir, `c${String(c).padStart(2, '0')}`, '0.png'));
    }
    const labels = async (o: { sampleSeed?: number }) => [...(await loadImageFolder(dir, { size: [4, 4], limit: 10, ...o })).labels];
    expect(await labels({})).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const drawn = await labels({ sampleSeed: 0 });
    expect(drawn).toHaveLength(10);
    expect(Math.max(...drawn)).toBeGreaterThan(9);
    expect(new Set(drawn).size).toBe(10);
    expect(await labels({ sampleSeed: 0 })).toEqual(drawn);
  });

  it('corrupt images are one error naming every one (not one per run); skipBad collects them instead', async () => {
    const dir = tempDir('folder-bad');
    fs.cpSync(root, dir, { recursive: true });
    const bad = path.join(dir, 'cat', 'b-broken.png');
    fs.writeFileSync(bad, 'this is not a png');
    const truncated = path.join(dir, 'dog', 'b-green.jpg');
    const jpeg = fs.readFileSync(truncated);
    fs.writeFileSync(truncated, jpeg.subarray(0, jpeg.length >> 1));
    const err = await loadImageFolder(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlimError);
    expect((err as SlimError).parts.file).toBe(dir);
    expect((err as Error).message).toMatch(/: 2 images cannot be read — cat\/b-broken\.png: cannot read image \(.+\); dog\/b-green\.jpg: cannot read image \(.+\) — replace or delete those files$/);
    // One bad image is named as the error's file; an empty one says it is empty.
    fs.writeFileSync(truncated, jpeg);
    fs.writeFileSync(bad, '');
    const one = await loadImageFolder(dir).catch((e: unknown) => e);
    expect((one as SlimError).parts.file).toBe(bad);
    expect((one as Error).message).toMatch(/b-broken\.png: cannot read image: the file is empty \(0 bytes\) — replace or delete the file/);
    fs.writeFileSync(bad, 'this is not a png');
    fs.writeFileSync(truncated, jpeg.subarray(0, jpeg.length >> 1));
    const set = await loadImageFolder(dir, { skipBad: true });
    expect(set.skipped.map((s) => s.file)).toEqual([bad, truncated]);
    expect([...set.labels]).toEqual([0, 0, 0, 1, 1]);
    expect(px(set.pixels, [32, 32], 3, 0, 0)).toEqual(GREEN); // dog/a-wide.png
    expect(px(set.pixels, [32, 32], 4, 0, 0)).toEqual(BLUE); // dog/more/c-tall.webp, moved up past the skipped JPEG.
  });

  it('files of other formats are listed as passed over, counted by extension in one note', async () => {
    const dir = tempDir('folder-formats');
    fs.cpSync(root, dir, { recursive: true });
    // BMP and PPM: formats sharp (so slimkit, serve and the bundles) cannot decode.
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]);
    for (const name of ['x.bmp', 'y.BMP']) fs.writeFileSync(path.join(dir, 'dog', 'more', name), bmp);
    fs.writeFileSync(path.join(dir, 'cat', 'z.ppm'), 'P6 1 1 255\n\0\0\0');
    fs.writeFileSync(path.join(dir, 'cat', 'Thumbs.db'), 'a Windows thumbnail cache: not counted');
    const set = await loadImageFolder(dir);
    expect([...set.labels]).toEqual([0, 0, 0, 1, 1, 1]);
    expect(set.passedOver.map((f) => path.relative(dir, f))).toEqual(['cat/notes.txt', 'cat/z.ppm', 'dog/more/x.bmp', 'dog/more/y.BMP']);
    expect(passedOverNote([set])).toBe(`passed over 4 files in the class folders that are not .png/.jpg/.jpeg/.webp/.gif/.tif/.tiff/.avif (.bmp ×2, .txt ×1, .ppm ×1; e.g. ${path.join(dir, 'cat/notes.txt')}) — images in other formats (.bmp, .heic, …) are used once converted to PNG or JPEG`);
    expect(passedOverNote([{ passedOver: [] }])).toBeUndefined();
    // A class folder of only such files names them in its error.
    fs.mkdirSync(path.join(dir, 'emu'));
    fs.writeFileSync(path.join(dir, 'emu', 'e.bmp'), bmp);
    await expect(loadImageFolder(dir)).rejects.toThrow(/emu: class folder has no images .*; it holds 1 file of other formats \(\.bmp\)/);
    // The commands say it: eval of the folder notes the four files on stderr.
    fs.rmSync(path.join(dir, 'emu'), { recursive: true });
    const model = path.join(dir, 'two-class.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125, classes: 2, seed: 1 }), model);
    const run = await runSlim(['eval', model, '--data', dir]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/note: passed over 4 files .*\(\.bmp ×2, \.txt ×1, \.ppm ×1/);
  });

  it('a folder with no class subfolders, or an empty class, says what layout is expected', async () => {
    const empty = tempDir('folder-empty');
    await expect(loadImageFolder(empty)).rejects.toThrow(/has no class subfolders — put images in one subfolder per class/);
    fs.mkdirSync(path.join(empty, 'a'));
    await expect(loadImageFolder(empty)).rejects.toThrow(/a: class folder has no images/);
    await expect(loadImageFolder(path.join(empty, 'missing'))).rejects.toThrow(/cannot read folder \(ENOENT\)/);
  });

  it('a folder of train/ and val/ is refused as the splits it is, not read as two classes', async () => {
    const photos = tempDir('folder-splits');
    for (const split of ['train', 'val']) fs.mkdirSync(path.join(photos, split, 'cat'), { recursive: true });
    await expect(loadImageFolder(photos)).rejects.toThrow(new RegExp(`holds train/ and val/, the splits of a data set, not class folders — read each split's class folders: ${path.join(photos, 'train')}, ${path.join(photos, 'val')}`));
    // Classes that are given (a model's recorded ones) are read as named.
    await expect(loadImageFolder(photos, { classes: ['train', 'val'] })).rejects.toThrow(/train: class folder has no images/);
  });

  it('reads GIF, TIFF and AVIF as slim serve does; a format sharp cannot read is named in the empty-class error', async () => {
    const root = tempDir('formats');
    fs.mkdirSync(path.join(root, 'a'));
    const raw = { raw: { width: 8, height: 8, channels: 3 as const } };
    await sharp(solid(8, 8, RED), raw).gif().toFile(path.join(root, 'a', '1.gif'));
    await sharp(solid(8, 8, GREEN), raw).tiff().toFile(path.join(root, 'a', '2.tif'));
    await sharp(solid(8, 8, BLUE), raw).avif({ lossless: true }).toFile(path.join(root, 'a', '3.avif'));
    const set = await loadImageFolder(root, { size: [8, 8] });
    expect(set.labels.length).toBe(3);
    expect(px(set.pixels, [8, 8], 0, 4, 4)).toEqual(RED);
    expect(px(set.pixels, [8, 8], 1, 4, 4)).toEqual(GREEN);
    fs.mkdirSync(path.join(root, 'b'));
    fs.writeFileSync(path.join(root, 'b', 'x.bmp'), 'BM');
    await expect(loadImageFolder(root, { size: [8, 8] })).rejects.toThrow(/b: class folder has no images .* — add images to it \(other formats, such as \.bmp, need converting\)/);
  });
});

describe('class order', () => {
  it("is code-point order, as Python's sorted() and so torchvision ImageFolder number them (not UTF-16 order)", async () => {
    const root = tempDir('unicode');
    // U+1F600 sorts after U+FB00 by code point; as UTF-16 its surrogates (U+D83D…) come first.
    for (const name of ['😀', 'ﬀ', 'Zebra', 'apple']) {
      fs.mkdirSync(path.join(root, name));
      await sharp(solid(8, 8, RED), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(root, name, 'a.png'));
    }
    expect((await loadImageFolder(root, { size: [8, 8] })).classes).toEqual(['Zebra', 'apple', 'ﬀ', '😀']);
    expect(['😀b', '😀', 'ﬀ', '😀a'].sort(byCodePoint)).toEqual(['ﬀ', '😀', '😀a', '😀b']);
  });
});

describe('loadImageFile', () => {
  it('scales 16-bit images down to bytes and composites grey + alpha onto black, resized or not', async () => {
    const raw = Buffer.alloc(4 * 4 * 3);
    for (let i = 0; i < 16; i++) raw.set([128, 64, 200], i * 3);
    const png16 = await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    for (const size of [[4, 4], [8, 8]] as [number, number][]) {
      const { pixels } = await loadImageFile(png16, { size });
      const plane = size[0] * size[1];
      expect([pixels[0], pixels[plane], pixels[2 * plane]]).toEqual([128, 64, 200]);
    }
    const greyAlpha = await sharp(Buffer.alloc(4 * 4 * 2).map((_, i) => (i % 2 ? 128 : 200)), { raw: { width: 4, height: 4, channels: 2 } }).png().toBuffer();
    expect((await loadImageFile(greyAlpha, { size: [4, 4] })).pixels[0]).toBe(100); // 200 at half opacity over black
    expect((await loadImageFile(greyAlpha, { size: [4, 4], channels: 1 })).pixels[0]).toBe(100);
  });

  it('decodes a path or a Buffer to 3×H×W with the original size', async () => {
    const png = await sharp(bands(64, 32, [[RED, 16], [GREEN, 32], [BLUE, 16]]), { raw: { width: 64, height: 32, channels: 3 } }).png().toBuffer();
    const image = await loadImageFile(png, { size: [8, 8] });
    expect(image.imageShape).toEqual([3, 8, 8]);
    expect(image.original).toEqual({ width: 64, height: 32 });
    expect(px(image.pixels, [8, 8], 0, 4, 4)).toEqual(GREEN);
    const stretched = await loadImageFile(png, { size: [8, 16], resize: 'stretch' });
    expect(px(stretched.pixels, [8, 16], 0, 4, 0)).toEqual(RED);
    expect(px(stretched.pixels, [8, 16], 0, 4, 15)).toEqual(BLUE);
    await expect(loadImageFile(Buffer.from('nope'))).rejects.toThrow(/^\(image bytes\): cannot read image/);
    await expect(loadImageFile(png, { size: [0, 4] })).rejects.toThrow(/image size must be two whole numbers/);
  });
});

describe('transparency', () => {
  it('is composited onto black (as the web page does), not dropped to reveal the colour under it', async () => {
    // 4×1 RGBA: red fully transparent, red opaque, green half transparent, blue opaque.
    const rgba = Buffer.from([255, 0, 0, 0, 255, 0, 0, 255, 0, 200, 0, 128, 0, 0, 255, 255]);
    const png = await sharp(rgba, { raw: { width: 4, height: 1, channels: 4 } }).png().toBuffer();
    const img = await loadImageFile(png, { size: [1, 4], resize: 'stretch' });
    expect(px(img.pixels, [1, 4], 0, 0, 0)).toEqual([0, 0, 0]);
    expect(px(img.pixels, [1, 4], 0, 0, 1)).toEqual(RED);
    expect(px(img.pixels, [1, 4], 0, 0, 2)[1]).toBeGreaterThan(95);
    expect(px(img.pixels, [1, 4], 0, 0, 2)[1]).toBeLessThan(105);
    expect(px(img.pixels, [1, 4], 0, 0, 3)).toEqual(BLUE);
  });
});

describe('loadTrainTest (image folders)', () => {
  async function writeSplit(root: string, classes: Record<string, RGB>, files = ['a.png']): Promise<void> {
    for (const [name, colour] of Object.entries(classes)) {
      fs.mkdirSync(path.join(root, name), { recursive: true });
      for (const file of files) await sharp(solid(8, 8, colour), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(root, name, file));
    }
  }

  it("unreadable images of train/ and test/ are named in one error (a bad test image surfaced only on the run after)", async () => {
    const root = tempDir('split-bad');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN }, ['a.png', 'b.png']);
    await writeSplit(path.join(root, 'val'), { cat: RED, dog: GREEN });
    fs.writeFileSync(path.join(root, 'train', 'dog', 'b.png'), 'not an image');
    fs.writeFileSync(path.join(root, 'val', 'cat', 'a.png'), '');
    const err = await loadTrainTest(root, { size: [8, 8] }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/: 2 images cannot be read — train\/dog\/b\.png: cannot read image \(.+\); val\/cat\/a\.png: cannot read image: the file is empty \(0 bytes\) — replace or delete those files$/);
  });

  it('refuses to train on one class (it would answer that class for every image and score 100 %)', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED });
    await writeSplit(path.join(root, 'test'), { cat: RED });
    await expect(loadTrainTest(root, { size: [8, 8] })).rejects.toThrow(/train: has one class folder \(cat\): a classifier needs two classes or more — .* — add a folder of images for each other class beside it/);
  });

  it('a test limit takes test images across the classes (a folder lists them class by class); CIFAR-10 keeps its first N', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN, frog: BLUE });
    await writeSplit(path.join(root, 'test'), { cat: RED, dog: GREEN, frog: BLUE }, ['a.png', 'b.png', 'c.png']);
    const { train, test } = await loadTrainTest(root, { size: [8, 8], testLimit: 3 });
    expect(train.labels.length).toBe(3);
    expect([...test.labels]).toEqual([0, 1, 2]); // the first three would be three cats
    if (fs.existsSync(path.join(CIFAR_DIR, 'test_batch.bin'))) {
      const [limited, full] = [await loadTrainTest('cifar10', { dataDir: CIFAR_DIR, testLimit: 7 }), await loadTrainTest('cifar10', { dataDir: CIFAR_DIR })];
      expect([...limited.test.labels]).toEqual([...full.test.labels.subarray(0, 7)]);
      expect(limited.train.labels.length).toBe(50_000);
    }
  });

  it('an image beside the class folders (in no class) is named in a note, not read', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN });
    await writeSplit(path.join(root, 'test'), { cat: RED, dog: GREEN });
    await sharp(solid(8, 8, BLUE), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(root, 'test', 'stray.png'));
    fs.writeFileSync(path.join(root, 'test', 'README.txt'), 'not an image: no note');
    const { test } = await loadTrainTestFolders(root, { size: [8, 8] });
    expect(test.labels.length).toBe(2);
    expect(outsideClassesNote([test])).toBe(`1 image lies beside the class folders, in no class, and is not read (e.g. ${path.join(root, 'test', 'stray.png')}) — move it into the folder of its class`);
    expect(outsideClassesNote([(await loadTrainTestFolders(root, { size: [8, 8] })).train])).toBeUndefined();
  });

  it('a train limit takes training images across the classes too (--train-limit: the first N would be one class)', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN, frog: BLUE }, ['a.png', 'b.png', 'c.png', 'd.png']);
    await writeSplit(path.join(root, 'test'), { cat: RED, dog: GREEN, frog: BLUE });
    const { train, test } = await loadTrainTest(root, { size: [8, 8], trainLimit: 5 });
    expect([...train.labels]).toEqual([0, 0, 1, 1, 2]);
    expect(test.labels.length).toBe(3);
    // CIFAR-10's training set comes shuffled: loaded whole, training takes its first N.
    if (fs.existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'))) expect((await loadTrainTest('cifar10', { dataDir: CIFAR_DIR, trainLimit: 7 })).train.labels.length).toBe(50_000);
  });

  it("numbers test/ by train/'s classes when test/ lacks one", async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN, frog: BLUE });
    await writeSplit(path.join(root, 'test'), { cat: RED, frog: BLUE });
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => (written.push(String(text)), true));
    const { train, test } = await loadTrainTest(root, { size: [8, 8] }).finally(() => spy.mockRestore());
    expect(train.classes).toEqual(['cat', 'dog', 'frog']);
    expect(test.classes).toEqual(['cat', 'dog', 'frog']);
    expect([...test.labels]).toEqual([0, 2]); // frog stays 2, not 1
    // Said: dog trains, but nothing measures it (it trained silently and showed "0 of 0").
    expect(written.join('')).toMatch(/note: .*split-\w+'s test images include none of class dog: it trains, but no accuracy is measured on it — add test images of it/);
    expect(px(test.pixels, [8, 8], 1, 0, 0)).toEqual(BLUE);
  });

  it("a model's recorded resize (slimkit.resize) brings a folder's images to it for training and scoring alike; --resize replaces it, noted", async () => {
    const root = tempDir('resize');
    // 16×8: red, green, blue bands. A centre crop to 8×8 keeps the green; a stretch keeps all three.
    const wide = bands(16, 8, [[RED, 4], [GREEN, 8], [BLUE, 4]]);
    for (const split of ['train', 'test']) {
      for (const name of ['cat', 'dog']) {
        fs.mkdirSync(path.join(root, split, name), { recursive: true });
        await sharp(wide, { raw: { width: 16, height: 8, channels: 3 } }).png().toFile(path.join(root, split, name, 'a.png'));
      }
    }
    const stretched = await loadTrainTestFolders(root, { size: [8, 8], resize: 'stretch' });
    const cropped = await loadTrainTestFolders(root, { size: [8, 8] });
    expect(px(stretched.test.pixels, [8, 8], 0, 0, 0)).toEqual(RED);
    expect(px(cropped.test.pixels, [8, 8], 0, 0, 0)).toEqual(GREEN);
    const recordedResize = { file: 'm.onnx', mode: 'stretch' as const };
    const { train, test } = await loadTrainTest(root, { size: [8, 8], recordedResize });
    expect(train.pixels).toEqual(stretched.train.pixels);
    expect(test.pixels).toEqual(stretched.test.pixels);
    expect((await loadDataset({ data: root, recordedResize }, [8, 8])).pixels).toEqual(stretched.test.pixels);
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => (written.push(String(text)), true));
    const given = await loadDataset({ data: root, recordedResize, resize: 'shorter-side' }, [8, 8]).finally(() => spy.mockRestore());
    expect(given.pixels).toEqual(cropped.test.pixels);
    expect(written.join('')).toContain("note: --resize shorter-side replaces the resize stretch that m.onnx records (slimkit.resize)");
    // A recorded shorter side below the input is the model's to fix, not a --resize nobody gave.
    const small = { file: 'm.onnx', mode: { shorterSide: 4 } };
    await expect(loadDataset({ data: root, recordedResize: small }, [8, 8])).rejects.toThrow(/^m\.onnx's slimkit\.resize 4 is smaller than the model's 8×8 input: the centre crop would run past the image — pass (--)?resize 8 or more \(or shorter-side\), or fix m\.onnx's slimkit\.resize$/);
    await expect(loadTrainTest(root, { size: [8, 8], recordedResize: small })).rejects.toThrow(/^m\.onnx's slimkit\.resize 4 is smaller/);
  });

  it('slim eval / bench read a train/ + test/ folder by --split (default test), numbered by train/', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN, frog: BLUE });
    await writeSplit(path.join(root, 'test'), { cat: RED, frog: BLUE });
    const test = await loadDataset({ data: root }, [8, 8]);
    expect(test.classes).toEqual(['cat', 'dog', 'frog']); // not ['test', 'train'] as two classes
    expect([...test.labels]).toEqual([0, 2]);
    const train = await loadDataset({ data: root, split: 'train' }, [8, 8]);
    expect([...train.labels]).toEqual([0, 1, 2]);
    // --split on a plain folder of class folders is refused, not ignored; callers choosing a split
    // for themselves (calibration prefers train/) get the whole folder.
    const flat = path.join(root, 'train');
    await expect(loadDataset({ data: flat, split: 'train' }, [8, 8])).rejects.toThrow(/--split train needs a folder with train\/ and test\/ subfolders/);
    expect((await loadDataset({ data: flat, split: 'train', splitOptional: true }, [8, 8])).labels.length).toBe(3);
    expect(() => checkDataDir({ data: root, dataDir: '/somewhere' })).toThrow(/--data-dir names the folder of CIFAR-10's files.*drop --data-dir/);
    expect(() => checkDataDir({ data: 'cifar10', dataDir: '/somewhere' })).not.toThrow();
  });

  it('calibration images come from any split: a folder holding val/ alone serves where train/ is wished for', async () => {
    const root = tempDir('val-only');
    await writeSplit(path.join(root, 'val'), { cat: RED, frog: BLUE });
    // ImageNet's validation layout was refused ("has no train/ subfolder") though calibration needs no labels.
    const calib = await loadDataset({ data: root, split: 'train', splitOptional: true, unlabelled: true }, [8, 8]);
    expect(calib.labels.length).toBe(2);
    expect(px(calib.pixels, [8, 8], 1, 0, 0)).toEqual(BLUE);
    // Labelled data keeps its split: training images are not evaluation images.
    await expect(loadDataset({ data: root, split: 'train', splitOptional: true }, [8, 8])).rejects.toThrow(/has no train\/ subfolder \(it holds val\/\)/);
  });

  it('a train/ + val/ folder (ImageNet layout) reads val/ as the test split, also by --split val, and trains on train/ against val/', async () => {
    const root = tempDir('val');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN, frog: BLUE });
    await writeSplit(path.join(root, 'val'), { cat: RED, frog: BLUE });
    const test = await loadDataset({ data: root }, [8, 8]);
    expect(test.classes).toEqual(['cat', 'dog', 'frog']); // not ['train', 'val'] as two classes
    expect([...test.labels]).toEqual([0, 2]);
    expect(px(test.pixels, [8, 8], 1, 0, 0)).toEqual(BLUE);
    expect([...(await loadDataset({ data: root, split: 'val' }, [8, 8])).labels]).toEqual([0, 2]);
    const { train, test: held } = await loadTrainTest(root, { size: [8, 8] });
    expect([...train.labels]).toEqual([0, 1, 2]);
    expect([...held.labels]).toEqual([0, 2]);
    // With a test/ beside it, test/ is the test split and val/ is read by --split val.
    await writeSplit(path.join(root, 'test'), { dog: GREEN });
    expect([...(await loadDataset({ data: root }, [8, 8])).labels]).toEqual([1]);
    expect([...(await loadDataset({ data: root, split: 'val' }, [8, 8])).labels]).toEqual([0, 2]);
    await expect(loadDataset({ data: 'cifar10', split: 'val' })).rejects.toThrow(/CIFAR-10 has a train and a test split, no val — pass --split test/);
  });

  it('a folder holding only test/ is read as that split, not as a set of one class', async () => {
    const root = tempDir('only-test');
    await writeSplit(path.join(root, 'test'), { cat: RED, dog: GREEN });
    const set = await loadDataset({ data: root }, [8, 8]);
    expect(set.classes).toEqual(['cat', 'dog']);
    expect([...set.labels]).toEqual([0, 1]);
    await expect(loadDataset({ data: root, split: 'train', splitFlag: true }, [8, 8])).rejects.toThrow(/only-test.*: has no train\/ subfolder \(it holds test\/\) — add a train\/ folder of class folders, or read --split test$/);
    // Only train/: eval's default split names the one that is there — to commands that take --split
    // (quantize --eval has none, and its calibration must not be pointed at test images).
    const onlyTrain = tempDir('only-train');
    await writeSplit(path.join(onlyTrain, 'train'), { cat: RED, dog: GREEN });
    await expect(loadDataset({ data: onlyTrain, splitFlag: true }, [8, 8])).rejects.toThrow(/has no test\/ or val\/ subfolder \(it holds train\/\) — add a test\/ \(or val\/\) folder of class folders, or read --split train$/);
    await expect(loadDataset({ data: onlyTrain }, [8, 8])).rejects.toThrow(/has no test\/ or val\/ subfolder \(it holds train\/\) — add a test\/ \(or val\/\) folder of class folders$/);
  });

  it('training on a folder of class folders says which layout it needs', async () => {
    const root = tempDir('flat');
    await writeSplit(root, { cat: RED, dog: GREEN });
    const needs = `: holds class folders (cat, dog) but training needs train/ and test/ subfolders — run slim split ${root} -o ${root}-split (it holds out a fifth of each class) and pass --data ${root}-split, or put the images in ${root}/train/<class>/… and ${root}/test/<class>/… (or val/ for test/)`;
    await expect(loadTrainTest(root, { size: [8, 8] })).rejects.toThrow(needs);
    const train = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', root, '--out', path.join(root, 'x.onnx')]);
    expect(train.code).toBe(1);
    expect(train.stderr).toContain(needs);
    // The train/ split itself given (a trial was told to make photos/train/train/): the folder above it.
    const split = tempDir('split');
    await writeSplit(path.join(split, 'train'), { cat: RED, dog: GREEN });
    await writeSplit(path.join(split, 'test'), { cat: RED, dog: GREEN });
    await expect(loadTrainTest(path.join(split, 'train'), { size: [8, 8] })).rejects.toThrow(`${path.join(split, 'train')}: is the train/ split of ${split}, which holds train/ and test/ — pass the folder above it: --data ${split}`);
  }, 60_000);

  it('a class only test/ has is an error that names it', async () => {
    const root = tempDir('split');
    await writeSplit(path.join(root, 'train'), { cat: RED, dog: GREEN });
    await writeSplit(path.join(root, 'test'), { cat: RED, dgo: GREEN });
    const e = await loadTrainTest(root, { size: [8, 8] }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(SlimError);
    expect((e as SlimError).message).toMatch(/test: has class folder dgo that train\/ does not \(train\/ has cat, dog\)/);
    // A name that differs in case only is called that (a trial's test/Ship against train/ship).
    const cased = tempDir('split');
    await writeSplit(path.join(cased, 'train'), { cat: RED, ship: GREEN });
    await writeSplit(path.join(cased, 'test'), { cat: RED, Ship: GREEN });
    await expect(loadTrainTest(cased, { size: [8, 8] })).rejects.toThrow(/test: has class folder Ship that train\/ does not \(train\/ has cat, ship\): Ship is train\/'s ship in another case — rename it to match train\/ \(class names are compared exactly, case included\)$/);
  });

  it('a link inside a class folder back to the root does not pull in the other classes', async () => {
    const root = tempDir('loop');
    await writeSplit(root, { cat: RED, dog: GREEN });
    fs.symlinkSync(root, path.join(root, 'cat', 'up'));
    fs.symlinkSync(path.join(root, 'cat'), path.join(root, 'cat', 'self'));
    const set = await loadImageFolder(root, { size: [8, 8] });
    expect([...set.labels]).toEqual([0, 1]);
  });
});

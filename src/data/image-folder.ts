import { constants as bufferConstants } from 'node:buffer';
import { existsSync, type Dirent } from 'node:fs';
import { CIFAR10_ARCHIVE_FOLDER, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES } from './cifar10-files.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { inputError, option, SlimError, usageError } from '../errors.js';
import { resizeCropToPlanar } from './resample.js';
import { toGrayscale } from './transforms.js';
import { Random } from '../util/random.js';
import type { ImageSet } from './types.js';

/**
 * 'shorter-side': scale so the image covers the target, then take the centre (torchvision
 * Resize(size) + CenterCrop(size)). { shorterSide: N }: the shorter side scaled to N, then the centre
 * cropped to the target — torchvision's Resize(256) + CenterCrop(224), how ImageNet models are scored.
 * 'stretch': scale each axis to the target.
 */
export type ResizeMode = 'shorter-side' | 'stretch' | { shorterSide: number };

/** What a folder's images get when neither --resize nor the model says: torchvision's Resize + CenterCrop. */
export const DEFAULT_RESIZE: ResizeMode = 'shorter-side';

/** A resize mode as flags and notes write it: 'shorter-side', 'stretch' or the shorter side's size. */
export function describeResize(mode: ResizeMode): string {
  return typeof mode === 'string' ? mode : String(mode.shorterSide);
}

/**
 * A shorter side that leaves the crop nothing to take is refused (torchvision would pad with black):
 * `size` is [height, width] of the model's input; `source` names where the mode came from.
 */
export function checkResize(mode: ResizeMode, [height, width]: [number, number], source?: string): void {
  if (typeof mode === 'string') return;
  if (!(Number.isInteger(mode.shorterSide) && mode.shorterSide >= Math.max(height, width))) {
    const least = Math.max(height, width);
    throw usageError(`${source ?? option('--resize')} ${String(mode.shorterSide)} is smaller than the model's ${height}×${width} input: the centre crop would run past the image`,
      source ? `pass ${option('--resize')} ${least} or more (or shorter-side), or fix ${source}` : `resize to at least ${least} (ImageNet models: 256 for a 224×224 input)`);
  }
}

export interface ImageSizeOptions {
  /** [height, width] of the output (default [32, 32]). */
  size?: [number, number];
  resize?: ResizeMode;
  /** Where `resize` came from, for its refusal (default: the --resize flag), e.g. "m.onnx's slimkit.resize". */
  resizeSource?: string;
  /** 3: RGB planes (default); 1: grayscale, as PIL's convert('L') (torchvision's Grayscale) makes it. */
  channels?: ImageChannels;
}

/** Colour images are read as RGB, or as one luma plane for models that take grayscale. */
export type ImageChannels = 1 | 3;

/** Listings of at least this many images are decoded by the pool of threads (decode-pool.ts); fewer are not worth starting it. */
const POOLED_FROM = 32;

/** How a listing's images are decoded (decodeListing). */
export interface DecodeOptions extends ImageSizeOptions {
  /** Skip unreadable images (listed in `skipped`) instead of failing on the first. */
  skipBad?: boolean;
  /** Images decoded at once (default: what the pool of decoding threads takes, or 8 without it). */
  concurrency?: number;
  /** Images decoded so far, of how many (a folder of 20,000 takes minutes). */
  onProgress?(done: number, total: number): void;
  /** True once the images are no longer wanted (a stream's reader stopped): no further file is started. */
  cancelled?(): boolean;
}

export interface LoadImageFolderOptions extends DecodeOptions {
  /** Class names in label order; default: the subfolder names, sorted. Folders not listed are ignored. */
  classes?: string[];
  /** Load at most this many images, taken round-robin across classes so every class is represented. */
  limit?: number;
  /**
   * With `limit`: each class's images are drawn at random with this seed (calibration samples), not its
   * first ones in sorted order — those may be one photo session, or near-copies.
   */
  sampleSeed?: number;
  /**
   * The caller reads images, not labels (calibration): a folder of images without class folders is one
   * class, and an empty class folder is passed over instead of refused.
   */
  unlabelled?: boolean;
}

export interface SkippedImage {
  file: string;
  reason: string;
}

export interface ImageFolderSet extends ImageSet {
  /** Images that could not be read (only with skipBad). */
  skipped: SkippedImage[];
  /** Files in the class folders that are not of a format slimkit reads (.bmp, .txt, …), sorted. */
  passedOver: string[];
  /** Images beside the class folders, in no class: not read (torchvision's ImageFolder skips them too). */
  outsideClasses?: string[];
}

export interface LoadedImage {
  /** C×H×W bytes: RGB planes, or one grayscale plane. */
  pixels: Uint8Array;
  imageShape: [number, number, number];
  /** Size of the image as stored, after EXIF orientation. */
  original: { width: number; height: number };
}

/** Files operating systems leave in image folders (thumbnail caches, folder settings): not worth a note. */
const SYSTEM_FILES = new Set(['thumbs.db', 'desktop.ini', 'ehthumbs.db']);

/** What sharp decodes — the formats `slim serve` and the bundles accept too (GIF: its first frame). */
const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/**
 * The images a folder load reads, listed but not decoded: which files, with which labels, under which
 * class names. A split of 50,000 photos is decoded a chunk at a time from one listing (data/stream.ts).
 */
export interface FolderListing {
  /** The folder, resolved. */
  name: string;
  classes: string[];
  /** The chosen images, grouped by class, sorted (a limit's round-robin or seeded draw already applied). */
  files: { file: string; label: number }[];
  /** Files in the class folders not of a format slimkit reads, sorted. */
  passedOver: string[];
  /** Images beside the class folders (undefined for a folder of images without class folders). */
  outsideClasses?: string[];
}

/**
 * Loads `dir/<class>/…/<image>` (torchvision ImageFolder's layout) as raw RGB bytes of one size.
 * Files are visited in sorted order, so labels and order are stable across machines.
 */
export async function loadImageFolder(dir: string, options: LoadImageFolderOptions = {}): Promise<ImageFolderSet> {
  return decodeListing(await listImageFolder(dir, options), options);
}

/** What loadImageFolder would read: the folder listed and checked, nothing decoded. */
export async function listImageFolder(dir: string, options: Pick<LoadImageFolderOptions, 'classes' | 'limit' | 'sampleSeed' | 'unlabelled'> = {}): Promise<FolderListing> {
  const root = path.resolve(dir);
  const plain = options.unlabelled && !options.classes && (await classFolders(root)).length === 0;
  const classes = plain ? ['.'] : await listClasses(root, options.classes);
  // Folders reached through links are skipped when they are the root, a class folder or already seen:
  // a link back up would otherwise count other classes' images as this class's (or loop).
  const known = await Promise.all([root, ...classes.map((name) => path.join(root, name))].map((p) => fs.realpath(p).catch(() => p)));
  const listed = await Promise.all(classes.map((name) => listImages(path.join(root, name), new Set(known))));
  const perClass = listed.map((l) => l.images);
  for (const [label, files] of perClass.entries()) {
    if (files.length === 0 && !(options.unlabelled && perClass.some((f) => f.length > 0))) {
      const others = listed[label]!.others.length;
      throw inputError({
        file: path.join(root, classes[label]!),
        problem: `class folder has no images (${[...IMAGE_EXTENSIONS].join(', ')})${others ? `; it holds ${others} file${others > 1 ? 's' : ''} of other formats (${[...new Set(listed[label]!.others.map((f) => path.extname(f).toLowerCase() || 'no extension'))].join(', ')})` : ''}`,
        fix: 'add images to it (other formats, such as .bmp, need converting), or remove the empty folder',
      });
    }
  }
  return {
    name: root,
    classes,
    files: chooseFiles(perClass, options.limit, options.sampleSeed),
    passedOver: listed.flatMap((l) => l.others).sort(byCodePoint),
    ...(plain ? {} : { outsideClasses: await looseImages(root) }),
  };
}

/**
 * Decodes a listing's images `from`..`to` (default: all of them, which must fit in one set) at one size.
 * Unreadable images fail the load, all named at once, unless `skipBad` (then listed in `skipped`).
 */
export async function decodeListing(listing: FolderListing, options: DecodeOptions = {}, range: { from?: number; to?: number } = {}): Promise<ImageFolderSet> {
  const size = checkSize(options.size);
  checkResize(options.resize ?? DEFAULT_RESIZE, size, options.resizeSource);
  const chosen = listing.files.slice(range.from ?? 0, range.to ?? listing.files.length);
  const channels = options.channels ?? 3;
  const imageSize = channels * size[0] * size[1];
  checkFitsInMemory(listing.name, chosen.length, [channels, size[0], size[1]]);
  const pixels = new Uint8Array(chosen.length * imageSize);
  const ok = new Uint8Array(chosen.length);
  const skipped: SkippedImage[] = [];
  let done = 0;
  const mode = options.resize ?? DEFAULT_RESIZE;
  // Loaded here, not at the top: the web page bundles this module (resizeBox) and has no worker threads.
  const pool = chosen.length >= POOLED_FROM ? (await import('./decode-pool.js')).decodePool() : undefined;
  const decodeOne = pool ? (file: string) => pool.decode(file, size, mode, channels) : async (file: string) => (await decodeImage(file, size, mode, channels)).pixels;
  await forEachLimited(chosen.length, options.concurrency ?? pool?.concurrency ?? 8, async (i) => {
    const { file } = chosen[i]!;
    try {
      pixels.set(await decodeOne(file), i * imageSize);
      ok[i] = 1;
    } catch (e) {
      // Not a bad image: a decoder that cannot load stops the load at once.
      if (!(e instanceof SlimError) || e.parts.file !== file) throw e;
      skipped.push({ file, reason: e.parts.problem });
    }
    options.onProgress?.(++done, chosen.length);
  }, options.cancelled);
  // Every unreadable file at once: fixing them one run at a time costs a load per file.
  if (skipped.length > 0 && !options.skipBad) throw unreadableImages(listing.name, skipped);

  // Compact away skipped images, keeping the sorted order.
  const kept = chosen.flatMap((entry, i) => (ok[i] ? [{ ...entry, at: i }] : []));
  const out = kept.length === chosen.length ? pixels : new Uint8Array(kept.length * imageSize);
  if (out !== pixels) kept.forEach((k, j) => out.set(pixels.subarray(k.at * imageSize, (k.at + 1) * imageSize), j * imageSize));
  skipped.sort((a, b) => byCodePoint(a.file, b.file));
  return {
    name: listing.name,
    classes: listing.classes,
    imageShape: [channels, size[0], size[1]],
    pixels: out,
    labels: Uint16Array.from(kept, (k) => k.label),
    skipped,
    passedOver: listing.passedOver,
    ...(listing.outsideClasses ? { outsideClasses: listing.outsideClasses } : {}),
  };
}

/**
 * A set is one byte array (N×C×H×W), and Node's arrays stop at 4 GiB: 28,532 images at 224×224 (RGB).
 * Said before any decoding, with how many fit, instead of an internal error after listing.
 */
function checkFitsInMemory(root: string, count: number, shape: readonly [number, number, number]): void {
  const perImage = shape[0] * shape[1] * shape[2];
  const maxBytes = maxSetBytes();
  if (count * perImage <= maxBytes) return;
  const fit = Math.floor(maxBytes / perImage);
  throw inputError({
    file: root,
    problem: `${count} images of ${shape.join('×')} are ${(count * perImage / 2 ** 30).toFixed(1)} GiB decoded, more than one set can hold (${Math.round(maxBytes / 2 ** 30)} GiB: ${fit} images of this size)`,
    fix: `read at most ${fit} of them: --train-limit and --test-limit (train, distill, prune, quantize --qat); or a smaller --image-size (slim eval, slim bench and slim quantize --eval read any number, a chunk at a time)`,
  });
}

/** The most decoded pixel bytes one set holds (Node's largest array). */
export function maxSetBytes(): number {
  // Read here, not at load: the web page bundles this module for resizeBox, and has no node:buffer.
  return bufferConstants.MAX_LENGTH;
}

/** Image files directly in `root`, beside its class folders. */
async function looseImages(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { withFileTypes: true }).catch(() => [] as Dirent[]);
  return entries.filter((e) => e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())).map((e) => path.join(root, e.name)).sort(byCodePoint);
}

/** The error for a folder's unreadable images: how many, and the first few by name with the reason. */
export function unreadableImages(root: string, bad: SkippedImage[], then = ''): SlimError {
  if (bad.length === 1) return inputError({ file: bad[0]!.file, problem: bad[0]!.reason, fix: `replace or delete the file${then}` });
  const sorted = [...bad].sort((a, b) => byCodePoint(a.file, b.file));
  const shown = sorted.slice(0, 10).map((b) => `${path.relative(root, b.file)}: ${b.reason}`);
  return inputError({
    file: root,
    problem: `${bad.length} images cannot be read — ${shown.join('; ')}${bad.length > shown.length ? `; and ${bad.length - shown.length} more` : ''}`,
    fix: `replace or delete those files${then}`,
  });
}

/**
 * One line on the files a folder load passed over for their format, by extension, or undefined when
 * there were none: a folder of .bmp photos must not quietly shrink to its .jpg ones.
 */
export function passedOverNote(sets: readonly { passedOver?: readonly string[] }[]): string | undefined {
  const files = sets.flatMap((s) => s.passedOver ?? []);
  if (files.length === 0) return undefined;
  const byExtension = new Map<string, number>();
  for (const f of files) {
    const ext = path.extname(f).toLowerCase() || '(no extension)';
    byExtension.set(ext, (byExtension.get(ext) ?? 0) + 1);
  }
  const counts = [...byExtension].sort((a, b) => b[1] - a[1]).map(([ext, n]) => `${ext} ×${n}`);
  return `passed over ${files.length} file${files.length > 1 ? 's' : ''} in the class folders that ${files.length > 1 ? 'are' : 'is'} not ${[...IMAGE_EXTENSIONS].join('/')} (${counts.join(', ')}; e.g. ${files[0]}) — images in other formats (.bmp, .heic, …) are used once converted to PNG or JPEG`;
}

/** One line on images that lie beside the class folders (in no class, so unread), or undefined. */
export function outsideClassesNote(sets: readonly { outsideClasses?: readonly string[] }[]): string | undefined {
  const files = sets.flatMap((s) => s.outsideClasses ?? []);
  if (files.length === 0) return undefined;
  return `${files.length} image${files.length > 1 ? 's lie' : ' lies'} beside the class folders, in no class, and ${files.length > 1 ? 'are' : 'is'} not read (e.g. ${files[0]}) — move ${files.length > 1 ? 'them' : 'it'} into the folder of ${files.length > 1 ? 'their' : 'its'} class`;
}

/** One image (a path or encoded bytes) as C×H×W bytes (RGB, or grayscale) — for predict / deploy. */
export async function loadImageFile(input: string | Buffer, options: ImageSizeOptions = {}): Promise<LoadedImage> {
  const size = checkSize(options.size);
  checkResize(options.resize ?? DEFAULT_RESIZE, size);
  return decodeImage(input, size, options.resize ?? DEFAULT_RESIZE, options.channels ?? 3);
}

/**
 * sharp, loaded on the first decode: its native image library is then needed only by work that reads
 * image files, not by CIFAR-10 training or the bundles run on a bare GPU host (bench/bundle.sh).
 */
let sharpModule: Promise<typeof import('sharp')> | undefined;

/** One image as C×H×W bytes at `[height, width]`; an unreadable one is a SlimError naming the file. */
export async function decodeImage(input: string | Buffer, [height, width]: [number, number], mode: ResizeMode, channels: ImageChannels): Promise<LoadedImage> {
  const name = typeof input === 'string' ? input : '(image bytes)';
  // Outside the try: a sharp that cannot load is not a bad image, and its own message says what to install.
  const sharp = (await (sharpModule ??= import('sharp'))).default;
  try {
    // autoOrient: photos from phones are stored sideways with an EXIF rotation. failOn 'error', as Pillow
    // reads: a cut-short image is refused, a decoder warning such as "3 extraneous bytes before marker"
    // (common in real photo folders) is not — the same pixels as Pillow's.
    const oriented = sharp(input, { failOn: 'error' }).autoOrient();
    const meta = await oriented.metadata();
    const srcW = meta.autoOrient?.width ?? meta.width;
    const srcH = meta.autoOrient?.height ?? meta.height;
    if (!srcW || !srcH) throw new Error('image has no size');
    // Transparency composited onto black, as the web page's canvas does: the colour stored under a
    // transparent pixel is not what anyone sees, and removeAlpha() would feed it to the model. Resized
    // here, as Pillow resizes (resample.ts), not by libvips, which enlarges with another alignment.
    const { data, info } = await oriented.flatten({ background: { r: 0, g: 0, b: 0 } }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 1 && info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 1 or 3`);
    const box = resizeBox(mode, { srcW: info.width, srcH: info.height, width, height });
    const resized = resizeCropToPlanar(data, info.width, info.height, info.channels, box, width, height);
    const rgb = info.channels === 1 ? grayToRgb(resized) : resized;
    return { pixels: channels === 1 ? toGrayscale(rgb, width * height) : rgb, imageShape: [channels, height, width], original: { width: srcW, height: srcH } };
  } catch (e) {
    if (e instanceof SlimError) throw e;
    // sharp calls an empty file an unsupported format.
    const empty = typeof input === 'string' ? await fs.stat(input).then((st) => st.size === 0, () => false) : input.length === 0;
    const said = (e as Error).message.split('\n')[0] ?? '';
    // libvips stops at its first error (failOn): for an image, that is damaged or cut-short data.
    const reason = /failOn/.test(said) ? 'its data is damaged or cut short' : said;
    throw inputError({
      file: name,
      problem: empty ? 'cannot read image: the file is empty (0 bytes)' : `cannot read image (${reason})`,
      fix: 'replace or delete the file',
    });
  }
}

/**
 * The resize and crop a mode asks for: stretched to the size, coverBox's shorter side + centre crop, or
 * the shorter side to a given size (torchvision's Resize(N)) and the centre of that.
 */
export function resizeBox(mode: ResizeMode, a: { srcW: number; srcH: number; width: number; height: number }): ReturnType<typeof coverBox> {
  if (mode === 'stretch') return { resizedW: a.width, resizedH: a.height, left: 0, top: 0 };
  if (mode === 'shorter-side') return coverBox(a);
  const side = mode.shorterSide;
  const box = coverBox({ srcW: a.srcW, srcH: a.srcH, width: side, height: side });
  return { resizedW: box.resizedW, resizedH: box.resizedH, left: roundHalfEven((box.resizedW - a.width) / 2), top: roundHalfEven((box.resizedH - a.height) / 2) };
}

/**
 * torchvision's Resize(shorter side) + CenterCrop arithmetic: the side that fixes the scale is set
 * exactly, the other is truncated like `int(size * long / short)`, and the crop offset rounds half
 * to even like Python's round().
 */
export function coverBox(a: { srcW: number; srcH: number; width: number; height: number }): {
  resizedW: number;
  resizedH: number;
  left: number;
  top: number;
} {
  const byHeight = a.height / a.srcH >= a.width / a.srcW;
  const resizedH = byHeight ? a.height : Math.max(a.height, Math.floor((a.width * a.srcH) / a.srcW + 1e-9));
  const resizedW = byHeight ? Math.max(a.width, Math.floor((a.height * a.srcW) / a.srcH + 1e-9)) : a.width;
  return { resizedW, resizedH, left: roundHalfEven((resizedW - a.width) / 2), top: roundHalfEven((resizedH - a.height) / 2) };
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One gray plane → three equal RGB planes. */
function grayToRgb(gray: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 * gray.length);
  for (let c = 0; c < 3; c++) out.set(gray, c * gray.length);
  return out;
}

function checkSize(size: [number, number] | undefined): [number, number] {
  const [h, w] = size ?? [32, 32];
  if (![h, w].every((v) => Number.isInteger(v) && v >= 1)) {
    throw usageError(`image size must be two whole numbers ≥ 1 (height, width), got ${JSON.stringify(size)}`, 'e.g. --image-size 32');
  }
  return [h, w];
}

/** The most classes a data set may have (ImageNet's 1,000, or 21,841 for ImageNet-21k, fit). */
export const MAX_CLASSES = 65_535;

/** Subfolder names that mark a split of a data set, not a class. */
export const SPLIT_NAMES = ['train', 'test', 'val'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/**
 * How a data folder is laid out — the one place that decides it:
 * - 'splits': train/ beside test/ or val/ (other folders are ignored), or folders that are all split
 *   names (test/ alone, train/ + val/, …): torchvision ImageFolder's and ImageNet's layouts;
 * - 'classes': one subfolder per class.
 * `splits` lists the split folders present.
 */
export type FolderLayout = { kind: 'classes'; classes: string[] } | { kind: 'splits'; splits: SplitName[] };

export async function folderLayout(root: string): Promise<FolderLayout> {
  const folders = await classFolders(root);
  const splits = SPLIT_NAMES.filter((s) => folders.includes(s));
  const onlySplits = splits.length > 0 && splits.length === folders.length;
  const trainAndHeldOut = splits.includes('train') && (splits.includes('test') || splits.includes('val'));
  return onlySplits || trainAndHeldOut ? { kind: 'splits', splits } : { kind: 'classes', classes: folders };
}

/** Does `root` hold images to train on and to test on: train/ beside test/ or val/? */
export async function isSplitFolder(root: string): Promise<boolean> {
  const layout = await folderLayout(root);
  return layout.kind === 'splits' && layout.splits.includes('train') && heldOutFolder(layout.splits) !== undefined;
}

/** The folder the test split is read from: test/, else val/ (ImageNet's layout has no test/). */
function heldOutFolder(splits: readonly SplitName[]): SplitName | undefined {
  return splits.includes('test') ? 'test' : splits.includes('val') ? 'val' : undefined;
}

/**
 * The train/ subfolder of `root` and its test/ (or val/), each a folder of class folders. Test labels use
 * train/'s class numbering, so a class folder missing from test/ cannot shift the others. A limit reads
 * that many images taken round-robin over the classes (the first of each class, then the second, …).
 */
export async function loadTrainTestFolders(
  root: string,
  options: ImageSizeOptions & { trainLimit?: number; testLimit?: number; onProgress?: (split: 'train' | 'test', done: number, total: number) => void } = {},
): Promise<{ train: ImageFolderSet; test: ImageFolderSet }> {
  const { trainLimit, testLimit, onProgress, ...size } = options;
  const progressOf = (split: 'train' | 'test') => (onProgress ? { onProgress: (done: number, total: number) => onProgress(split, done, total) } : {});
  const layout = await folderLayout(root);
  const splits = layout.kind === 'splits' ? layout.splits : [];
  if (!splits.includes('train') || heldOutFolder(splits) === undefined) {
    // The train/ (or test/) folder itself given: its parent is the one to pass.
    const parent = path.dirname(path.resolve(root));
    if (['train', 'test', 'val'].includes(path.basename(path.resolve(root))) && existsSync(path.join(parent, 'train')) && (existsSync(path.join(parent, 'test')) || existsSync(path.join(parent, 'val')))) {
      throw inputError({ file: root, problem: `is the ${path.basename(path.resolve(root))}/ split of ${path.dirname(root)}, which holds train/ and ${existsSync(path.join(parent, 'test')) ? 'test' : 'val'}/`, fix: `pass the folder above it: --data ${path.dirname(root)}` });
    }
    // A folder of class folders (how photos are collected): slim split holds out a share of each class.
    const splitFolder = `${root.replace(/[\\/]+$/, '')}-split`;
    const split = layout.kind === 'classes' && layout.classes.length > 0 ? `run slim split ${root} -o ${splitFolder} (it holds out a fifth of each class) and pass --data ${splitFolder}, or ` : '';
    throw inputError({
      file: root,
      problem: `holds ${layoutText(layout, ' and ')} but training needs train/ and test/ subfolders`,
      fix: `${split}put the images in ${path.join(root, 'train')}/<class>/… and ${path.join(root, 'test')}/<class>/… (or val/ for test/)`,
    });
  }
  // Both listed before either is decoded (a class only test/ has fails at once), and the unreadable images of
  // both named in one error: a bad test image was found only on the run after the train images were fixed.
  const trainListing = await listImageFolder(path.join(root, 'train'), trainLimit !== undefined ? { limit: trainLimit } : {});
  const testListing = await listSplitFolder(root, 'test', testLimit !== undefined ? { limit: testLimit } : {}, layout);
  const train = await decodeListing(trainListing, { ...size, ...progressOf('train'), skipBad: true });
  const test = await decodeListing(testListing, { ...size, ...progressOf('test'), skipBad: true });
  const bad = [...train.skipped, ...test.skipped];
  if (bad.length > 0) throw unreadableImages(root, bad);
  return { train, test };
}

/**
 * One split of a split folder (folderLayout): 'test' reads test/, else val/. A held-out split is labelled
 * with train/'s class numbering when there is a train/ (a class only it has is an error: the model never
 * saw it); a folder without train/ is numbered by its own class folders. `otherSplitsHint`: the caller
 * takes --split, so a missing split's error offers the ones there are.
 */
export async function loadSplitFolder(root: string, split: SplitName, options: LoadImageFolderOptions = {}, known?: FolderLayout, o: { otherSplitsHint?: boolean } = {}): Promise<ImageFolderSet> {
  return decodeListing(await listSplitFolder(root, split, options, known, o), options);
}

/** What a folder holds, in an error: its splits, its class folders, or no subfolders (a trial's 'class folders ()'). */
function layoutText(layout: FolderLayout, join: string): string {
  if (layout.kind === 'splits') return layout.splits.map((s) => `${s}/`).join(join);
  return layout.classes.length ? `class folders (${listNames(layout.classes)})` : 'no subfolders';
}

/** What loadSplitFolder would read: the split listed, labelled and checked, nothing decoded. */
export async function listSplitFolder(root: string, split: SplitName, options: Pick<LoadImageFolderOptions, 'classes' | 'limit' | 'sampleSeed' | 'unlabelled'> = {}, known?: FolderLayout, o: { otherSplitsHint?: boolean } = {}): Promise<FolderListing> {
  const layout = known ?? (await folderLayout(root));
  const splits = layout.kind === 'splits' ? layout.splits : [];
  const folder = split === 'test' ? heldOutFolder(splits) : splits.includes(split) ? split : undefined;
  if (!folder) {
    throw inputError({
      file: root,
      problem: `has no ${split === 'test' ? 'test/ or val/' : `${split}/`} subfolder (it holds ${layoutText(layout, ', ')})`,
      fix: `add ${split === 'test' ? 'a test/ (or val/)' : `a ${split}/`} folder of class folders${o.otherSplitsHint && splits.length ? `, or read ${splits.map((s) => `--split ${s}`).join(' or ')}` : ''}`,
    });
  }
  const dir = path.join(root, folder);
  if (folder === 'train' || !splits.includes('train')) return listImageFolder(dir, options);
  const trainDir = path.join(root, 'train');
  const trainClasses = options.classes ?? (await classFolders(trainDir));
  const present = await classFolders(dir);
  // Sets and a map, not searches: 21,841 classes searched in each other are 477 M comparisons.
  const trainIndex = new Map(trainClasses.map((c, i) => [c, i]));
  const presentSet = new Set(present);
  const unknown = present.filter((c) => !trainIndex.has(c));
  if (unknown.length > 0) {
    // Ship against ship: named as a case difference (names are compared exactly), not as a class train/ lacks.
    const byLower = new Map(trainClasses.map((c) => [c.toLowerCase(), c]));
    const cased = unknown.filter((c) => byLower.has(c.toLowerCase())).map((c) => `${c} is train/'s ${byLower.get(c.toLowerCase())!} in another case`);
    const listed = trainClasses.length > 20 ? `${trainClasses.slice(0, 20).join(', ')}, … (${trainClasses.length} in all)` : trainClasses.join(', ');
    throw inputError({
      file: dir,
      problem: `has class folder${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} that train/ does not (train/ has ${listed})${cased.length ? `: ${cased.join('; ')}` : ''}`,
      fix: cased.length ? `rename ${cased.length > 1 ? 'them' : 'it'} to match train/ (class names are compared exactly, case included)` : `give train/ and ${folder}/ the same class folders`,
    });
  }
  const test = await listImageFolder(dir, { ...options, classes: trainClasses.filter((c) => presentSet.has(c)) });
  const toTrain = test.classes.map((c) => trainIndex.get(c)!);
  return { ...test, classes: trainClasses, files: test.files.map((f) => ({ file: f.file, label: toTrain[f.label]! })) };
}

/** Up to 12 names, then how many more (for messages). */
export function listNames(names: readonly string[]): string {
  return names.length > 12 ? `${names.slice(0, 12).join(', ')}, … ${names.length - 12} more` : names.join(', ');
}

/** The class subfolders of `root` (not hidden; symlinks to folders count), in code-point order. */
export async function classFolders(root: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (e) {
    throw inputError({
      file: root,
      problem: `cannot read folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      fix: 'pass a folder with one subfolder per class',
    });
  }
  const folders: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await isDirectory(path.join(root, entry.name), entry))) folders.push(entry.name);
  }
  return folders.sort(byCodePoint);
}

async function listClasses(root: string, given: string[] | undefined): Promise<string[]> {
  const folders = await classFolders(root);
  const classes = given ?? folders;
  // train/ beside val/ would be read as two classes, 'train' and 'val': the folder above the classes was meant.
  const splits = SPLIT_NAMES.filter((name) => folders.includes(name));
  if (!given && splits.length > 0 && splits.length === folders.length) {
    throw inputError({
      file: root,
      problem: `holds ${splits.map((name) => `${name}/`).join(' and ')}, the splits of a data set, not class folders`,
      fix: `read each split's class folders: ${splits.map((name) => path.join(root, name)).join(', ')}`,
    });
  }
  if (classes.length === 0) {
    // CIFAR-10's binary files given as an image folder: the data set is named cifar10, the folder --data-dir.
    const cifar = [...CIFAR10_TEST_FILES, ...CIFAR10_TRAIN_FILES].some((f) => existsSync(path.join(root, f)) || existsSync(path.join(root, CIFAR10_ARCHIVE_FOLDER, f)));
    throw inputError({
      file: root,
      problem: cifar ? "holds CIFAR-10's binary files, not class subfolders of images" : 'has no class subfolders',
      fix: cifar ? `pass --data cifar10 --data-dir ${root}` : 'put images in one subfolder per class, e.g. DIR/cat/1.png, DIR/dog/2.jpg',
    });
  }
  // Labels are 16-bit, and 0xffff marks an image scored NaN (runtime/evaluate.ts NO_PREDICTION).
  if (classes.length > MAX_CLASSES) throw inputError({ file: root, problem: `has ${classes.length} class folders; at most ${MAX_CLASSES} classes are supported`, fix: 'point at the folder whose subfolders are the classes' });
  const seen = new Set<string>();
  const present = new Set(folders);
  for (const name of classes) {
    if (seen.has(name)) throw usageError(`class "${name}" is listed twice`, 'list each class once');
    seen.add(name);
    if (!present.has(name)) {
      throw inputError({
        file: root,
        problem: `has no folder for class "${name}" (found: ${listNames(folders) || 'none'})`,
        fix: 'create it or fix the class list',
      });
    }
  }
  return classes;
}

/**
 * Image files under a class folder, recursively, in sorted order, and the other (not hidden) files;
 * folders whose real path is in `seen` are skipped.
 */
async function listImages(folder: string, seen: Set<string>): Promise<{ images: string[]; others: string[] }> {
  const images: string[] = [];
  const others: string[] = [];
  const entries = (await fs.readdir(folder, { withFileTypes: true })).sort((a, b) => byCodePoint(a.name, b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(folder, entry.name);
    if (await isDirectory(full, entry)) {
      const real = await fs.realpath(full).catch(() => full);
      if (seen.has(real)) continue;
      seen.add(real);
      const inner = await listImages(full, seen);
      images.push(...inner.images);
      others.push(...inner.others);
    } else if (IMAGE_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) images.push(full);
    else if (!SYSTEM_FILES.has(entry.name.toLowerCase())) others.push(full);
  }
  return { images, others };
}

async function isDirectory(full: string, entry: Dirent): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  return (await fs.stat(full).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * All files, or `limit` of them taken round-robin over classes; returned grouped by class, sorted. With a
 * seed the round-robin visits the classes in a seeded order: 768 calibration images of ImageNet's 1,000
 * classes came from its first 768 classes alone.
 */
function chooseFiles(perClass: string[][], limit: number | undefined, seed?: number): { file: string; label: number }[] {
  const counts = perClass.map((files) => files.length);
  const rng = seed !== undefined ? new Random(seed) : undefined;
  if (limit !== undefined) {
    if (!(Number.isInteger(limit) && limit >= 0)) throw usageError(`limit must be a whole number ≥ 0, got ${limit}`);
    counts.fill(0);
    const order = rng ? Array.from(rng.permutation(perClass.length)) : perClass.map((_, c) => c);
    let left = Math.min(limit, perClass.reduce((s, f) => s + f.length, 0));
    for (let round = 0; left > 0; round++) {
      for (let k = 0; k < order.length && left > 0; k++) {
        const c = order[k]!;
        if (perClass[c]!.length > round) {
          counts[c]!++;
          left--;
        }
      }
    }
  }
  // A seeded draw keeps the files in sorted order: only which ones changes.
  const pick = (files: string[], n: number): string[] => (rng && n < files.length ? Array.from(rng.permutation(files.length).subarray(0, n)).sort((a, b) => a - b).map((i) => files[i]!) : files.slice(0, n));
  return perClass.flatMap((files, label) => pick(files, counts[label]!).map((file) => ({ file, label })));
}

/**
 * Code-point order: Python's sorted(), so torchvision ImageFolder's class numbering. JavaScript's `<`
 * compares UTF-16 units, which puts a character above U+FFFF (an emoji: surrogates from U+D800) before
 * one from U+E000 to U+FFFF (ﬀ, fullwidth forms) and would swap the labels of such classes.
 */
export function byCodePoint(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // the same pair of surrogates on both sides
  }
  return a.length - b.length;
}

async function forEachLimited(count: number, concurrency: number, work: (i: number) => Promise<void>, cancelled?: () => boolean): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < count && !failed && !cancelled?.()) {
      try {
        await work(next++);
      } catch (e) {
        failed = true; // Stop the other workers: the first error is the answer.
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}


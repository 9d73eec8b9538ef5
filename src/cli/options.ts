import { InvalidArgumentError, type Command } from 'commander';
import { didYouMean } from '../util/suggest.js';
import type { ResizeMode } from '../data/image-folder.js';

/** Parsers and shared option sets for commands; bad values are usage errors (exit 2). */

/** A decimal number as written: not '' (which Number reads as 0), not hex, not with units. */
function parseNumber(value: string): number {
  const text = value.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
}

/** A whole number written with digits only (Number would also take '1e2' and '0x10'). */
function parseWhole(value: string): number {
  const text = value.trim();
  return /^\+?\d+$/.test(text) ? Number(text) : NaN;
}

export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = parseWhole(value);
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got '${value}'`);
    return n;
  };
}

/** A whole number of at least `min`; `why` says what the bound is for. */
export function intAtLeast(name: string, min: number, why: string): (value: string) => number {
  return (value) => {
    const n = parseWhole(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min}, got '${value}' (${why})`);
    return n;
  };
}

export function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = parseWhole(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}

export function positiveNumber(name: string): (value: string) => number {
  return (value) => {
    const n = parseNumber(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${value}'`);
    return n;
  };
}

export function nonNegativeNumber(name: string): (value: string) => number {
  return (value) => {
    const n = parseNumber(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got '${value}'`);
    return n;
  };
}

/** A number in [lo, hi]. */
export function inRange(name: string, lo: number, hi: number): (value: string) => number {
  return (value) => {
    const n = parseNumber(value);
    if (!(n >= lo && n <= hi)) throw new InvalidArgumentError(`${name} must be in [${lo}, ${hi}], got '${value}'`);
    return n;
  };
}

/** A number in [0, 1). */
export function fraction(name: string): (value: string) => number {
  return (value) => {
    const n = parseNumber(value);
    if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be in [0, 1), got '${value}'`);
    return n;
  };
}

export function oneOf<T extends string>(name: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!allowed.includes(value as T)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got '${value}'${didYouMean(value, allowed).replace(/^did/, '; did').trimEnd()}`);
    return value as T;
  };
}

/** A TCP port; `lowest` 0 lets the system pick a free one. */
export function port(name: string, lowest: 0 | 1): (value: string) => number {
  return (value) => {
    const n = parseWhole(value);
    if (!(n >= lowest && n <= 65535)) throw new InvalidArgumentError(`${name} must be a port number in ${lowest}–65535, got '${value}'`);
    return n;
  };
}

export function numberList(name: string, lengths: number | readonly number[]): (value: string) => number[] {
  const allowed = typeof lengths === 'number' ? [lengths] : lengths;
  return (value) => {
    const parts = value.split(',').map(parseNumber);
    if (!allowed.includes(parts.length) || parts.some((n) => !Number.isFinite(n))) {
      throw new InvalidArgumentError(`${name} takes ${allowed.join(' or ')} comma-separated number${allowed.every((n) => n === 1) ? '' : 's'}, got '${value}'`);
    }
    return parts;
  };
}

/**
 * Per-channel means of pixels scaled to 0..1, so each in [0, 1]: ImageNet's in 0..255 units (125.3, …)
 * would be taken as given and quietly ruin every score, so they are refused with the values divided out.
 */
export function meanList(name: string, lengths: number | readonly number[]): (value: string) => number[] {
  const list = numberList(name, lengths);
  return (value) => {
    const parts = list(value);
    if (parts.some((n) => n < 0 || n > 1)) {
      const scaled = parts.every((n) => n >= 0 && n <= 255) && parts.some((n) => n >= 2) ? `; in 0..255 units they are ${parts.map((n) => Number((n / 255).toFixed(4))).join(',')} here (divide --std by 255 too)` : '';
      throw new InvalidArgumentError(`${name} takes means of pixels scaled to 0..1, each from 0 to 1, got '${value}'${scaled}`);
    }
    return parts;
  };
}

/** Per-channel standard deviations: dividing by zero or a negative number would silently ruin every score. */
export function stdList(name: string, lengths: number | readonly number[]): (value: string) => number[] {
  const list = numberList(name, lengths);
  return (value) => {
    const parts = list(value);
    if (parts.some((n) => n <= 0)) throw new InvalidArgumentError(`${name} values must be > 0, got '${value}'`);
    // Pixels scaled to 0..1 spread by at most 0.5: more is 0..255 units (ImageNet's 58.4, …).
    if (parts.some((n) => n > 1)) {
      const scaled = parts.every((n) => n <= 255) && parts.some((n) => n >= 2) ? `; in 0..255 units they are ${parts.map((n) => Number((n / 255).toFixed(4))).join(',')} here (divide --mean by 255 too)` : '';
      throw new InvalidArgumentError(`${name} takes standard deviations of pixels scaled to 0..1, each at most 1, got '${value}'${scaled}`);
    }
    return parts;
  };
}

/** Comma-separated names or globs (--freeze); given again, the lists add up. */
export function patternList(value: string, previous: string[] = []): string[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new InvalidArgumentError(`takes comma-separated layer names or globs, got '${value}'`);
  return [...previous, ...parts];
}

/** --channels for zoo models: 3 (RGB) or 1 (grayscale). */
export function channelsArg(value: string): 1 | 3 {
  if (value !== '1' && value !== '3') throw new InvalidArgumentError(`--channels takes 3 (RGB) or 1 (grayscale), got '${value}'`);
  return value === '1' ? 1 : 3;
}

/** --mean / --std: three numbers for RGB models, one for grayscale ones. */
export const CHANNEL_COUNTS = [3, 1] as const;
export const MEAN_HELP = 'per-channel mean of pixels scaled to 0..1: r,g,b, or one number for a grayscale model (default: the model metadata, else CIFAR-10\'s; grayscale 0.5)';
export const STD_HELP = 'per-channel std: r,g,b, or one number (default: the model metadata, else CIFAR-10\'s; grayscale 0.5)';

export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print one JSON document on stdout (logs and progress go to stderr)');
}

/** --data / --data-dir / --limit and the preprocessing overrides, shared by eval and bench. */
export function withData(cmd: Command, { required }: { required: boolean }): Command {
  const data = required
    ? cmd.requiredOption('--data <name|folder>', "'cifar10' or a folder with one subfolder of images per class")
    : cmd.option('--data <name|folder>', "also measure top-1: 'cifar10' or an image folder (one subfolder per class)");
  return data
    .option('--data-dir <dir>', 'folder with the CIFAR-10 binary files (default: $SLIM_DATA_DIR, else download to ~/.cache/slimkit)')
    .option('--split <split>', "'test' (default), 'train' or 'val': CIFAR-10's split, or the subfolder of a --data folder holding train/ and test/ or val/ (test reads val/ when there is no test/)")
    .option('--limit <n>', "use N images only: CIFAR-10's first N, an image folder's N taken across its classes", positiveInt('--limit'))
    .option('--mean <r,g,b|v>', MEAN_HELP, meanList('--mean', CHANNEL_COUNTS))
    .option('--std <r,g,b|v>', STD_HELP, stdList('--std', CHANNEL_COUNTS));
}

/** "32", "32,32", "224x224" → [h, w]. */
export function imageSizeArg(value: string): [number, number] {
  const parts = value.split(/[,x×]/).map((s) => Number(s.trim()));
  const [h, w] = parts.length === 1 ? [parts[0]!, parts[0]!] : parts;
  if (parts.length > 2 || ![h, w].every((v) => Number.isInteger(v) && v! >= 1)) {
    throw new InvalidArgumentError(`--image-size takes H or H,W (whole numbers ≥ 1), got '${value}'`);
  }
  return [h!, w!];
}

/** 'shorter-side', 'stretch' or a size N: how an image of another shape is brought to the model's input. */
export function resizeArg(value: string): ResizeMode {
  if (value === 'shorter-side' || value === 'stretch') return value;
  if (/^\d+$/.test(value) && Number(value) >= 1) return { shorterSide: Number(value) };
  throw new InvalidArgumentError(`--resize must be 'shorter-side', 'stretch' or the shorter side's size before the centre crop (e.g. 256), got '${value}'`);
}

/** --augment: how training images are varied (--no-augment: not at all). */
export type AugmentMode = 'crop' | 'resized-crop';

export const AUGMENT_HELP = "'crop' (a random crop of the image padded by 4, + flip: the CIFAR recipe, default) or 'resized-crop' (a random box of 8–100 % of the area at aspect 3/4–4/3 scaled back to the input, + flip: torchvision's RandomResizedCrop, though cut from the training image as decoded at the input size, not from the full photo)";

export function augmentArg(value: string): AugmentMode {
  if (value === 'crop' || value === 'resized-crop') return value;
  throw new InvalidArgumentError(`--augment must be 'crop' or 'resized-crop' (--no-augment for none), got '${value}'`);
}

/** What --resize does, for the commands' help. */
export const RESIZE_HELP = "'shorter-side' (the shorter side to the input, then the centre: Resize + CenterCrop, default), N (the shorter side to N, then the centre: torchvision's Resize(256) + CenterCrop(224), as ImageNet models are scored) or 'stretch'; a model slimkit trained on a folder, or quantized with --resize, records its own (slimkit.resize), used when --resize is not given";

/** --resize for commands that read image folders: what a bundle made with `slim deploy --resize` does. */
export function withResize(cmd: Command): Command {
  return cmd.option('--resize <mode>', `how a folder's images are brought to the model's input: ${RESIZE_HELP}`, resizeArg);
}

/** --image-size for models whose input height and width are free (MACs, benchmark inputs). */
export function withImageSize(cmd: Command): Command {
  return cmd.option('--image-size <h,w>', "input height,width when the model's are free (default: the model metadata)", imageSizeArg);
}

export function withThreads(cmd: Command): Command {
  return cmd.option('--threads <n>', 'ONNX Runtime intra-op threads (default: the cores this process may use: its CPU affinity and cgroup quota)', positiveInt('--threads'));
}

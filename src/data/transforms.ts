import type { Random } from '../util/random.js';
import type { Normalization } from './types.js';

/**
 * Per-pixel transforms on planar C×H×W uint8 images. They write into caller-owned buffers at an
 * offset so a batch is filled without per-image allocation.
 */

/** Channel c's normalization as x·a + b == (x·scale − mean) / std (one mean/std serves every channel). */
function channelAffine(norm: Normalization, c: number): [number, number] {
  const std = norm.std[c] ?? norm.std[0]!;
  return [norm.scale / std, -(norm.mean[c] ?? norm.mean[0]!) / std];
}

/**
 * out[offset + i] = (pixel * scale - mean[c]) / std[c] for one C×H×W image, computed as one
 * multiply-add per pixel with a = scale/std and b = -mean/std precomputed per channel.
 */
export function normalizeInto(
  out: Float32Array,
  offset: number,
  pixels: Uint8Array,
  pixelOffset: number,
  shape: readonly [number, number, number],
  norm: Normalization,
): void {
  const [channels, height, width] = shape;
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const [a, b] = channelAffine(norm, c);
    const src = pixelOffset + c * plane;
    const dst = offset + c * plane;
    for (let i = 0; i < plane; i++) out[dst + i] = pixels[src + i]! * a + b;
  }
}

/** Dims of a batch of `rows` C×H×W images as a model takes them: N×C×H×W, or N×H×W×C when channels-last. */
export function imageDims(rows: number, shape: readonly [number, number, number], channelsLast: boolean): number[] {
  const [c, h, w] = shape;
  return channelsLast ? [rows, h, w, c] : [rows, c, h, w];
}

/** C×H×W images, one after another, as H×W×C (channels interleaved), for models that take channels-last input. */
export function toChannelsLast<T extends Uint8Array | Float32Array>(planar: T, shape: readonly [number, number, number]): T {
  const [channels, height, width] = shape;
  const plane = height * width;
  const size = channels * plane;
  if (planar.length % size !== 0) throw new Error(`toChannelsLast: ${planar.length} values are not whole ${channels}×${height}×${width} images`);
  const out = new (planar.constructor as new (n: number) => T)(planar.length);
  for (let at = 0; at < planar.length; at += size) {
    for (let c = 0; c < channels; c++) for (let p = 0; p < plane; p++) out[at + p * channels + c] = planar[at + c * plane + p]!;
  }
  return out;
}

/** Where a padded crop starts and whether it is mirrored. */
export interface CropPlacement {
  /** Row of the padded image that becomes output row 0 (0..2·pad). */
  top: number;
  /** Column of the padded image that becomes output column 0 (0..2·pad). */
  left: number;
  /** Mirror left↔right after cropping. */
  flip: boolean;
}

export interface ImageCopy {
  src: Uint8Array;
  srcOffset?: number;
  out: Uint8Array;
  outOffset?: number;
  /** [C, H, W] of source and output (the crop has the input's size). */
  shape: readonly [number, number, number];
}

/**
 * Pads the image with `pad` zeros on every side, takes the H×W window at (top, left), then mirrors it
 * if `flip` — torchvision's RandomCrop(H, padding=pad) followed by RandomHorizontalFlip, in one pass.
 * Zero padding happens on raw bytes, so a padded pixel normalizes to -mean/std as in torchvision.
 * `out` must not overlap `src`.
 */
export function cropWithPadding(copy: ImageCopy & { pad: number; placement: CropPlacement }): void {
  const { src, out, shape, pad, placement } = copy;
  const srcOffset = copy.srcOffset ?? 0;
  const outOffset = copy.outOffset ?? 0;
  const [channels, height, width] = shape;
  const dy = placement.top - pad;
  const dx = placement.left - pad;
  // Output column x reads source column sx(x) = (flip ? W-1-x : x) + dx; valid where 0 ≤ sx < W.
  for (let c = 0; c < channels; c++) {
    const srcPlane = srcOffset + c * height * width;
    const outPlane = outOffset + c * height * width;
    for (let y = 0; y < height; y++) {
      const sy = y + dy;
      const outRow = outPlane + y * width;
      if (sy < 0 || sy >= height) {
        out.fill(0, outRow, outRow + width);
        continue;
      }
      const srcRow = srcPlane + sy * width;
      if (!placement.flip) {
        // Columns [x0, x1) come from the source; the rest are padding.
        const x0 = Math.min(width, Math.max(0, -dx));
        const x1 = Math.max(x0, Math.min(width, width - dx));
        out.fill(0, outRow, outRow + x0);
        out.set(src.subarray(srcRow + x0 + dx, srcRow + x1 + dx), outRow + x0);
        out.fill(0, outRow + x1, outRow + width);
      } else {
        for (let x = 0; x < width; x++) {
          const sx = width - 1 - x + dx;
          out[outRow + x] = sx >= 0 && sx < width ? src[srcRow + sx]! : 0;
        }
      }
    }
  }
}

/**
 * Draws a placement like torchvision: top and left uniform in 0..2·pad, then flip with probability ½
 * (when `flip`). Always three draws per image, so the stream stays aligned whatever the options.
 */
export function randomPlacement(rng: Random, options: { pad: number; flip: boolean }): CropPlacement {
  const top = rng.int(2 * options.pad + 1);
  const left = rng.int(2 * options.pad + 1);
  const flip = rng.next() < 0.5;
  return { top, left, flip: options.flip && flip };
}

/** A resized crop's box in the image, and whether the result is mirrored. */
export interface ResizedCropBox {
  top: number;
  left: number;
  height: number;
  width: number;
  flip: boolean;
}

/**
 * Draws a box as torchvision's RandomResizedCrop(scale=(minScale, 1), ratio=(3/4, 4/3)).get_params
 * does — up to 10 tries at an area and a log-uniform aspect that fit, else the centre at the nearest
 * allowed aspect — then a flip with probability ½ (when `flip`: drawn either way, as randomPlacement).
 */
export function randomResizedBox(rng: Random, [height, width]: [number, number], o: { minScale: number; flip: boolean }): ResizedCropBox {
  const area = height * width;
  const [logLow, logHigh] = [Math.log(3 / 4), Math.log(4 / 3)];
  let box: Omit<ResizedCropBox, 'flip'> | undefined;
  for (let attempt = 0; attempt < 10 && !box; attempt++) {
    const target = area * rng.uniform(o.minScale, 1);
    const aspect = Math.exp(rng.uniform(logLow, logHigh));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) box = { top: rng.int(height - h + 1), left: rng.int(width - w + 1), height: h, width: w };
  }
  if (!box) {
    const ratio = width / height;
    const [h, w] = ratio < 3 / 4 ? [Math.round(width / (3 / 4)), width] : ratio > 4 / 3 ? [height, Math.round(height * (4 / 3))] : [height, width];
    box = { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
  }
  const flip = rng.next() < 0.5;
  return { ...box, flip: o.flip && flip };
}

/**
 * The box of a C×H×W byte image scaled back to H×W (bilinear, as torch.nn.functional.interpolate with
 * align_corners=False samples it), mirrored when `box.flip`, normalized into `out` at `offset`. The
 * CPU twin of the engine's on-device resized crop (native/src/data.cc).
 */
export function resizedCropInto(out: Float32Array, offset: number, pixels: Uint8Array, pixelOffset: number, shape: readonly [number, number, number], box: ResizedCropBox, norm: Normalization): void {
  const [channels, height, width] = shape;
  // Source rows/columns and weights along one axis: output position p samples box position (p + ½)·len/out − ½.
  const axis = (size: number, start: number, length: number, mirrored: boolean) => {
    const first = new Int32Array(size), second = new Int32Array(size), weight = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      const pos = mirrored ? size - 1 - p : p;
      const src = Math.max(0, (pos + 0.5) * (length / size) - 0.5);
      const i0 = Math.min(Math.floor(src), length - 1);
      first[p] = start + i0;
      second[p] = start + Math.min(i0 + 1, length - 1);
      weight[p] = Math.min(1, Math.max(0, src - i0));
    }
    return { first, second, weight };
  };
  const rows = axis(height, box.top, box.height, false);
  const cols = axis(width, box.left, box.width, box.flip);
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const [a, b] = channelAffine(norm, c);
    const src = pixelOffset + c * plane;
    for (let y = 0; y < height; y++) {
      const r0 = src + rows.first[y]! * width, r1 = src + rows.second[y]! * width, fy = rows.weight[y]!;
      for (let x = 0; x < width; x++) {
        const c0 = cols.first[x]!, c1 = cols.second[x]!, fx = cols.weight[x]!;
        const top = pixels[r0 + c0]! * (1 - fx) + pixels[r0 + c1]! * fx;
        const bottom = pixels[r1 + c0]! * (1 - fx) + pixels[r1 + c1]! * fx;
        out[offset + c * plane + y * width + x] = (top * (1 - fy) + bottom * fy) * a + b;
      }
    }
  }
}

/** RandomCrop(H, padding=pad) (+ optional flip) driven by `rng`; returns the placement used. */
export function randomCropWithPadding(
  copy: ImageCopy & { rng: Random; pad?: number; flip?: boolean },
): CropPlacement {
  const pad = copy.pad ?? 4;
  const placement = randomPlacement(copy.rng, { pad, flip: copy.flip ?? false });
  cropWithPadding({ ...copy, pad, placement });
  return placement;
}

/** Mirrors a C×H×W image left↔right. `out` may be `src` (same offset) for an in-place flip. */
export function flipHorizontal(copy: ImageCopy): void {
  const { src, out, shape } = copy;
  const srcOffset = copy.srcOffset ?? 0;
  const outOffset = copy.outOffset ?? 0;
  const [channels, height, width] = shape;
  for (let row = 0; row < channels * height; row++) {
    const s = srcOffset + row * width;
    const o = outOffset + row * width;
    // Swap pairs so that src === out works.
    for (let x = 0; x < (width + 1) >> 1; x++) {
      const a = src[s + x]!;
      const b = src[s + width - 1 - x]!;
      out[o + x] = b;
      out[o + width - 1 - x] = a;
    }
  }
}

/** Flips with probability ½; returns whether it did. Copies unchanged otherwise. */
export function randomHorizontalFlip(copy: ImageCopy & { rng: Random }): boolean {
  const flip = copy.rng.next() < 0.5;
  if (flip) flipHorizontal(copy);
  else if (copy.out !== copy.src || (copy.outOffset ?? 0) !== (copy.srcOffset ?? 0)) {
    const size = copy.shape[0] * copy.shape[1] * copy.shape[2];
    const from = copy.srcOffset ?? 0;
    copy.out.set(copy.src.subarray(from, from + size), copy.outOffset ?? 0);
  }
  return flip;
}

/**
 * Planar RGB → one luma plane, as PIL's convert('L') computes it (ITU-R 601-2 weights in 16-bit fixed
 * point, rounded): what torchvision's Grayscale gives a PyTorch model in training. A gray pixel stays
 * the same value.
 */
export function toGrayscale(rgb: Uint8Array, plane: number): Uint8Array {
  const out = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) out[i] = (rgb[i]! * 19595 + rgb[plane + i]! * 38470 + rgb[2 * plane + i]! * 7471 + 0x8000) >> 16;
  return out;
}

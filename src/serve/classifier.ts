/**
 * A bundle's model behind one small interface: image bytes → normalized tensor (`prepare`), a batch of
 * them → class scores (`run`). The preprocessing is slimkit's own (`loadImageFile`: EXIF orientation,
 * Resize(shorter side) + CenterCrop with sharp; `normalizeInto`, the function evaluation uses), so a
 * device computes exactly what `slim eval` computes. Used by `slim serve`, the bundle's server and
 * its `predict` command alike.
 */
import sharp from 'sharp';
import { inputError, SlimError } from '../errors.js';
import { loadImageFile } from '../data/image-folder.js';
import { imageDims, normalizeInto, toChannelsLast } from '../data/transforms.js';
import { classScoreDims } from '../runtime/class-scores.js';
import { openSession, type OrtModel } from '../runtime/ort.js';
import type { Tensor } from '../onnx/tensor.js';
import { channelCount, type BundleConfig } from '../deploy/config.js';

/** Decoded images above this many pixels are refused before decoding (a 1 KB PNG can claim 100k×100k). */
export const DEFAULT_MAX_PIXELS = 40_000_000;

export interface PreparedImage {
  /** C×H×W, normalized float32 or raw uint8 as the model takes it. */
  data: Float32Array | Uint8Array;
  /** Size as uploaded (after EXIF orientation). */
  width: number;
  height: number;
}

export interface Prediction {
  index: number;
  label: string;
  /** Probability in 0..1 (softmax of the logits, or the model's own probabilities). */
  score: number;
}

/** An image the server must refuse: `status` 413 (too many pixels) or 422 (cannot be decoded). */
export class ImageError extends SlimError {
  constructor(parts: { file?: string; problem: string; fix: string }, readonly status: 413 | 422) {
    super(parts, 'input');
    this.name = 'ImageError';
  }
}

export interface Classifier {
  readonly config: BundleConfig;
  /** Most images one `run` takes. */
  readonly maxBatch: number;
  readonly threads: number;
  prepare(image: Uint8Array, name?: string): Promise<PreparedImage>;
  /** Class scores (probabilities) for each image, in order. */
  run(images: readonly PreparedImage[]): Promise<Float64Array[]>;
  close(): Promise<void>;
}

export interface OpenClassifierOptions {
  config: BundleConfig;
  /** The model file, or its bytes. */
  model: string | Uint8Array;
  threads?: number;
  /** Largest batch one run takes; default 8, capped by a fixed batch dim; 1 for a model with `oneImagePerRun`. */
  maxBatch?: number;
  maxPixels?: number;
}

export async function openClassifier(options: OpenClassifierOptions): Promise<Classifier> {
  const { config } = options;
  const label = typeof options.model === 'string' ? options.model : config.model.file;
  const session = await openSession(options.model, { label, ...(options.threads ? { threads: options.threads } : {}) });
  const input = session.inputs.find((i) => i.name === config.model.input);
  const output = session.outputs.find((o) => o.name === config.model.output);
  if (!input || !output) {
    await session.close();
    throw inputError({
      file: label,
      problem: `has no ${input ? `output '${config.model.output}'` : `input '${config.model.input}'`} as slim.json says`,
      fix: 'the model and slim.json do not belong together; rebuild the bundle with `slim deploy`',
    });
  }
  // A model whose answer for one image depends on the others run with it takes one image per run.
  const maxBatch = config.model.oneImagePerRun ? 1 : Math.max(1, Math.min(options.maxBatch ?? 8, config.model.fixedBatch ?? Infinity));
  return new OrtClassifier(config, session, maxBatch, options.maxPixels ?? DEFAULT_MAX_PIXELS);
}

class OrtClassifier implements Classifier {
  private readonly imageSize: number;

  constructor(
    readonly config: BundleConfig,
    private readonly session: OrtModel,
    readonly maxBatch: number,
    private readonly maxPixels: number,
  ) {
    const [h, w] = config.preprocess.size;
    this.imageSize = channelCount(config.preprocess) * h * w;
  }

  get threads(): number {
    return this.session.threads;
  }

  async prepare(image: Uint8Array, name = '(image bytes)'): Promise<PreparedImage> {
    const buffer = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    await this.checkPixels(buffer, name);
    const p = this.config.preprocess;
    let loaded;
    try {
      loaded = await loadImageFile(buffer, { size: p.size, resize: p.resize, channels: channelCount(p) });
    } catch (e) {
      if (e instanceof SlimError) throw new ImageError({ file: name, problem: e.parts.problem, fix: 'give a valid JPEG, PNG, WebP, GIF, TIFF or AVIF image' }, 422);
      throw e;
    }
    const { pixels, original } = loaded;
    const shape = [channelCount(p), p.size[0], p.size[1]] as const;
    const laidOut = <T extends Uint8Array | Float32Array>(planar: T): T => (p.layout === 'NHWC' ? toChannelsLast(planar, shape) : planar);
    if (this.config.model.inputType === 'uint8') return { data: laidOut(pixels), ...original };
    const data = new Float32Array(this.imageSize);
    normalizeInto(data, 0, pixels, 0, shape, { scale: p.scale, mean: p.mean, std: p.std });
    return { data: laidOut(data), ...original };
  }

  /** Reads only the header: refuses pixel bombs before any pixel memory is allocated. */
  private async checkPixels(buffer: Buffer, name: string): Promise<void> {
    let width: number | undefined;
    let height: number | undefined;
    try {
      ({ width, height } = await sharp(buffer, { limitInputPixels: false }).metadata());
    } catch (e) {
      throw new ImageError({ file: name, problem: `cannot read image (${(e as Error).message.split('\n')[0]})`, fix: 'give a valid JPEG, PNG, WebP, GIF, TIFF or AVIF image' }, 422);
    }
    if (!width || !height) throw new ImageError({ file: name, problem: 'image has no size', fix: 'give a valid image' }, 422);
    if (width * height > this.maxPixels) {
      throw new ImageError({
        file: name,
        problem: `image is ${width}×${height} = ${(width * height / 1e6).toFixed(1)} megapixels; the limit is ${(this.maxPixels / 1e6).toFixed(1)}`,
        fix: `downscale it first (the model sees ${this.config.preprocess.size.join('×')} anyway), or raise the server's --max-megapixels`,
      }, 413);
    }
  }

  async run(images: readonly PreparedImage[]): Promise<Float64Array[]> {
    const out: Float64Array[] = [];
    for (let first = 0; first < images.length; first += this.maxBatch) {
      out.push(...(await this.runBatch(images.slice(first, first + this.maxBatch))));
    }
    return out;
  }

  private async runBatch(images: readonly PreparedImage[]): Promise<Float64Array[]> {
    const { model, preprocess, labels } = this.config;
    const n = images.length;
    const rows = model.fixedBatch ?? n;
    const data = model.inputType === 'uint8' ? new Uint8Array(rows * this.imageSize) : new Float32Array(rows * this.imageSize);
    images.forEach((img, i) => data.set(img.data, i * this.imageSize));
    const feed = { dtype: model.inputType, dims: imageDims(rows, [channelCount(preprocess), ...preprocess.size], preprocess.layout === 'NHWC'), data } as Tensor;
    const result = (await this.session.run({ [model.input]: feed }, { outputs: [model.output] }))[model.output]!;
    const classes = labels.length;
    const scoreDims = classScoreDims(result.dims);
    if (!scoreDims || scoreDims[1] !== classes || scoreDims[0] < n || result.dtype !== 'float32') {
      throw inputError({
        file: this.session.source,
        where: `output '${model.output}'`,
        problem: `is ${result.dtype}[${result.dims.join(', ')}]; expected float32[N, ${classes}] class scores for the ${classes} labels`,
        fix: 'deploy a classifier whose first output has one score per label (or pass --labels with the right count)',
      });
    }
    const scores = result.data as Float32Array;
    return images.map((_, i) => {
      const row = scores.slice(i * classes, (i + 1) * classes);
      return model.outputKind === 'logits' ? softmax(row) : Float64Array.from(row);
    });
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

/** Numerically stable softmax in float64, so distinct float32 logits keep distinct, ordered scores. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  const exp = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) sum += exp[i] = Math.exp(logits[i]! - max);
  return exp.map((v) => v / sum);
}

/** The k best classes, best first; ties go to the lower index (like argmax in `slim eval`). */
export function topK(scores: Float64Array, labels: readonly string[], k: number): Prediction[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order.slice(0, Math.max(1, k)).map((index) => ({ index, label: labels[index] ?? String(index), score: scores[index]! }));
}

/// <reference lib="dom" />
/**
 * The web bundle's classifier as a module of its own (classifier.js): a page of the user's imports it from
 * the bundle folder and classifies images with the preprocessing the bundle's page and `slim eval` use.
 * Geometry, resizing and normalization are slimkit's own functions (resizeBox, resizeCropToPlanar,
 * normalizeInto), bundled by esbuild; decoding is the browser's.
 *
 *   import { loadClassifier } from './classifier.js';
 *   const model = await loadClassifier();
 *   const { top } = await model.classify(file);   // top[0].label, top[0].score
 */
import type * as OrtWeb from 'onnxruntime-web';
import { resizeBox } from '../../data/image-folder.js';
import { imageDims, normalizeInto, toChannelsLast, toGrayscale } from '../../data/transforms.js';
import { softmax, topK, type Prediction } from '../../serve/classifier.js';
import { channelCount, CONFIG_FILE, parseBundleConfig, type BundleConfig } from '../config.js';
import { resizeCropToPlanar } from '../../data/resample.js';

export type { Prediction };

export interface LoadOptions {
  /**
   * WebAssembly threads (default: up to 4 where the page is cross-origin isolated, else 1: browsers give
   * threads SharedArrayBuffer only then). onnxruntime-web takes one setting per page: the first load's.
   */
  threads?: number;
}

export interface Classification {
  /** The best classes, best first (default 5). */
  top: Prediction[];
  /** Every class's probability, in the order of `config.labels`. */
  scores: Float64Array;
  /** The model's time alone, without decoding and resizing. */
  latency_ms: number;
  /** The decoded image's size (after EXIF orientation). */
  width: number;
  height: number;
  /** The C×H×W bytes fed to the model, before normalization. */
  pixels: Uint8Array;
}

export interface WebClassifier {
  /** The bundle's slim.json: labels, preprocessing, the model's input and output. */
  readonly config: BundleConfig;
  /** Classifies a File or Blob (any format the browser decodes), an <img>, a canvas or an ImageBitmap. */
  classify(image: ImageBitmapSource, options?: { top?: number }): Promise<Classification>;
  /** Frees the model's memory; classify fails afterwards. */
  close(): Promise<void>;
}

/**
 * Loads slim.json, onnxruntime-web and the model from the bundle folder at `base` (default: the folder
 * this module was served from), over HTTP.
 */
export async function loadClassifier(base: string | URL = new URL('./', import.meta.url), options: LoadOptions = {}): Promise<WebClassifier> {
  const folder = new URL(String(base).endsWith('/') ? String(base) : `${String(base)}/`, location.href);
  const configUrl = new URL(CONFIG_FILE, folder);
  const response = await fetch(configUrl);
  if (!response.ok) throw new Error(`cannot load ${configUrl.href} (HTTP ${response.status}): pass loadClassifier the URL of the bundle folder, served over HTTP`);
  const config = parseBundleConfig(await response.text(), CONFIG_FILE);
  const ortDir = new URL('./ort/', folder).href;
  const ort = (await import(/* @vite-ignore */ `${ortDir}ort.wasm.bundle.min.mjs`)) as typeof OrtWeb;
  // Only the .wasm is fetched: the .bundle build embeds its JS glue (a string prefix would fetch that too).
  ort.env.wasm.wasmPaths = { wasm: `${ortDir}ort-wasm-simd-threaded.wasm` };
  ort.env.wasm.numThreads = options.threads ?? (self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  const modelUrl = new URL(config.model.file, folder);
  const model = await fetch(modelUrl);
  if (!model.ok) throw new Error(`cannot load ${modelUrl.href} (HTTP ${model.status})`);
  const session = await ort.InferenceSession.create(new Uint8Array(await model.arrayBuffer()), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  return {
    config,
    classify: (image, o = {}) => classifyImage(image, { config, session, ort }, o.top ?? 5),
    close: () => session.release(),
  };
}

interface Loaded {
  config: BundleConfig;
  session: OrtWeb.InferenceSession;
  ort: typeof OrtWeb;
}

async function classifyImage(image: ImageBitmapSource, { config, session, ort }: Loaded, k: number): Promise<Classification> {
  const [outH, outW] = config.preprocess.size;
  // EXIF orientation applied like sharp's autoOrient.
  const bitmap = await createImageBitmap(image, { imageOrientation: 'from-image' }).catch((e: unknown) => {
    // The browser's decoders decide: TIFF, say, decodes in Safari only.
    const kind = image instanceof Blob ? image.type || (image instanceof File ? image.name.split('.').pop() : undefined) || 'unknown type' : 'image';
    throw new Error(`this browser cannot decode it (${kind}: ${(e as Error).message ?? e}); JPEG, PNG, WebP, GIF, BMP and AVIF work everywhere`);
  });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext('2d', { willReadFrequently: true })!;
  // Transparency onto black, as slimkit's sharp pipeline flattens it.
  g.fillStyle = '#000';
  g.fillRect(0, 0, width, height);
  g.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = g.getImageData(0, 0, width, height).data;
  const box = resizeBox(config.preprocess.resize, { srcW: width, srcH: height, width: outW, height: outH });
  const rgb = resizeCropToPlanar(rgba, width, height, 4, box, outW, outH);
  const channels = channelCount(config.preprocess);
  const pixels = channels === 1 ? toGrayscale(rgb, outH * outW) : rgb;

  const start = performance.now();
  const rows = config.model.fixedBatch ?? 1;
  const size = channels * outH * outW;
  let tensor: OrtWeb.Tensor;
  const p = config.preprocess;
  const channelsLast = p.layout === 'NHWC';
  const dims = imageDims(rows, [channels, outH, outW], channelsLast);
  if (config.model.inputType === 'uint8') {
    const data = new Uint8Array(rows * size);
    data.set(channelsLast ? toChannelsLast(pixels, [channels, outH, outW]) : pixels);
    tensor = new ort.Tensor('uint8', data, dims);
  } else {
    const data = new Float32Array(rows * size);
    normalizeInto(data, 0, pixels, 0, [channels, outH, outW], { scale: p.scale, mean: p.mean, std: p.std });
    tensor = new ort.Tensor('float32', channelsLast ? toChannelsLast(data, [channels, outH, outW]) : data, dims);
  }
  const out = await session.run({ [config.model.input]: tensor });
  const latency = performance.now() - start;
  const classes = config.labels.length;
  const row = (out[config.model.output]!.data as Float32Array).slice(0, classes);
  const scores = config.model.outputKind === 'logits' ? softmax(row) : Float64Array.from(row);
  return { top: topK(scores, config.labels, Math.min(k, classes)), scores, latency_ms: Math.round(latency * 1000) / 1000, width, height, pixels: Uint8Array.from(pixels) };
}

/// <reference lib="dom" />
/**
 * The web bundle's page: loads slim.json, the model and onnxruntime-web (WebAssembly) from beside the
 * page, then classifies a chosen or dropped image. Geometry, resizing and normalization are slimkit's
 * own functions (resizeBox, resizeCropToPlanar, normalizeInto), bundled by esbuild; decoding is the browser's.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { resizeBox } from '../../data/image-folder.js';
import { imageDims, normalizeInto, toChannelsLast, toGrayscale } from '../../data/transforms.js';
import { softmax, topK, type Prediction } from '../../serve/classifier.js';
import { channelCount, CONFIG_FILE, parseBundleConfig, type BundleConfig } from '../config.js';
import { resizeCropToPlanar } from '../../data/resample.js';

/** What the page last did, for people (the DOM) and for tests (window.slimLast). */
interface PageResult {
  file: string;
  top: Prediction[];
  latency_ms: number;
  width: number;
  height: number;
  /** The C×H×W bytes fed to the model (before normalization). */
  pixels: number[];
}

declare global {
  interface Window {
    slimLast?: PageResult;
    slimError?: string;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function setStatus(state: 'loading' | 'ready' | 'busy' | 'done' | 'error', text: string): void {
  const status = $('status');
  status.dataset['state'] = state;
  status.textContent = text;
}

async function load(): Promise<{ config: BundleConfig; session: OrtWeb.InferenceSession; ort: typeof OrtWeb }> {
  const configUrl = new URL(CONFIG_FILE, location.href);
  const response = await fetch(configUrl);
  if (!response.ok) throw new Error(`cannot load ${configUrl.pathname} (HTTP ${response.status})`);
  const config = parseBundleConfig(await response.text(), CONFIG_FILE);
  const ortDir = new URL('./ort/', location.href).href;
  const ort = (await import(/* @vite-ignore */ `${ortDir}ort.wasm.bundle.min.mjs`)) as typeof OrtWeb;
  // Only the .wasm is fetched: the .bundle build embeds its JS glue (a string prefix would fetch that too).
  ort.env.wasm.wasmPaths = { wasm: `${ortDir}ort-wasm-simd-threaded.wasm` };
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const model = await fetch(new URL(config.model.file, location.href));
  if (!model.ok) throw new Error(`cannot load ${config.model.file} (HTTP ${model.status})`);
  const session = await ort.InferenceSession.create(new Uint8Array(await model.arrayBuffer()), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
  });
  return { config, session, ort };
}

async function classify(file: File, ctx: Awaited<ReturnType<typeof load>>): Promise<PageResult> {
  const { config, session, ort } = ctx;
  const [outH, outW] = config.preprocess.size;
  // EXIF orientation applied like sharp's autoOrient.
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' }).catch((e: unknown) => {
    // The browser's decoders decide: TIFF, say, decodes in Safari only.
    const kind = file.type || file.name.split('.').pop() || 'unknown type';
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
  return { file: file.name, top: topK(scores, config.labels, Math.min(5, classes)), latency_ms: Math.round(latency * 1000) / 1000, width, height, pixels: Array.from(pixels) };
}

function show(result: PageResult): void {
  const list = $('results');
  list.replaceChildren(
    ...result.top.map((p) => {
      const li = document.createElement('li');
      li.dataset['index'] = String(p.index);
      li.textContent = `${p.label} — ${(p.score * 100).toFixed(1)} %`;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, Math.round(p.score * 200))}px`;
      li.append(bar);
      return li;
    }),
  );
  setStatus('done', `${result.file} (${result.width}×${result.height}): ${result.top[0]!.label}, model time ${result.latency_ms.toFixed(1)} ms`);
}

async function main(): Promise<void> {
  let ctx: Awaited<ReturnType<typeof load>>;
  try {
    ctx = await load();
  } catch (e) {
    window.slimError = String(e);
    setStatus('error', `Cannot start: ${(e as Error).message ?? e}. Serve this folder over HTTP (see README.md).`);
    return;
  }
  setStatus('ready', 'Ready: choose or drop an image.');
  const input = $<HTMLInputElement>('file');
  const drop = $('drop');
  const preview = $<HTMLImageElement>('preview');
  let busy = Promise.resolve();
  const run = (file: File): void => {
    busy = busy.then(async () => {
      setStatus('busy', `Classifying ${file.name}…`);
      // The previous image's scores go first: under a new file's error they would read as its result.
      $('results').replaceChildren();
      preview.src = URL.createObjectURL(file);
      preview.style.display = 'block';
      try {
        const result = await classify(file, ctx);
        window.slimLast = result;
        show(result);
      } catch (e) {
        window.slimError = String(e);
        preview.style.display = 'none';
        setStatus('error', `${file.name}: cannot classify — ${(e as Error).message ?? e}`);
      }
    });
  };
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) run(file);
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer?.files[0];
    if (file) run(file);
  });
}

void main();

/**
 * Models and images for the deploy tests (slim quantize is not here yet, so the int8 model is made
 * here): a small CIFAR-10 classifier — fixed 1×1 colour-opponent conv, ReLU, 4×4 average pool and a
 * ridge-regression linear layer fitted on 4000 training images — quantized to int8 QDQ (uint8
 * activations, int8 weights, int32 biases) with ranges calibrated on the same images. It scores well
 * above chance (~35 %), so a preprocessing mistake on a device shows up as changed predictions.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { CIFAR10_CLASSES, loadCifar10 } from '../../src/data/index.js';
import { normalizeInto } from '../../src/data/transforms.js';
import { CIFAR10_NORMALIZATION, type Normalization } from '../../src/data/types.js';
import { emptyGraph, type Graph, type Node } from '../../src/onnx/graph.js';
import { writeModel } from '../../src/onnx/io.js';
import { makeTensor, type Tensor } from '../../src/onnx/tensor.js';
import { runGraph } from '../../src/runtime/ort.js';
import { preprocessingMetadata } from '../../src/zoo/metadata.js';
import { CIFAR_DIR } from './fixtures.js';

const CONV_OUT = 8;
const POOL = 4;
const FEATURES = CONV_OUT * (32 / POOL) * (32 / POOL);
const SHARPEN = 20;

/** 1×1 conv: each colour and its negative (ReLU keeps both signs), and two opponent channels. */
const CONV_W = [
  [1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, 0, -1], [1, -1, 0], [0, 1, -1],
];

const node = (opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node =>
  ({ name: outputs[0]!, opType, domain: '', inputs, outputs, attributes });

function features(graph: Graph): Graph {
  graph.initializers.set('conv.w', makeTensor('float32', [CONV_OUT, 3, 1, 1], Float32Array.from(CONV_W.flat())));
  graph.nodes.push(
    node('Conv', ['x.dq', 'conv.w.dq'], ['conv'], {}),
    node('Relu', ['conv'], ['relu']),
    node('QuantizeLinear', ['relu', 'relu.s', 'relu.z'], ['relu.q']),
    node('DequantizeLinear', ['relu.q', 'relu.s', 'relu.z'], ['relu.dq']),
    node('AveragePool', ['relu.dq'], ['pool'], { kernel_shape: { type: 'ints', value: [POOL, POOL] }, strides: { type: 'ints', value: [POOL, POOL] } }),
    node('QuantizeLinear', ['pool', 'pool.s', 'pool.z'], ['pool.q']),
    node('DequantizeLinear', ['pool.q', 'pool.s', 'pool.z'], ['pool.dq']),
    node('Flatten', ['pool.dq'], ['flat']),
  );
  return graph;
}

interface Range { scale: number; zero: number }
const uint8Range = (min: number, max: number): Range => {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  const scale = (hi - lo) / 255 || 1;
  return { scale, zero: Math.round(-lo / scale) };
};
const scalar = (dtype: 'float32' | 'uint8' | 'int8' | 'int32', v: number): Tensor => makeTensor(dtype, [], (dtype === 'float32' ? Float32Array : dtype === 'uint8' ? Uint8Array : dtype === 'int8' ? Int8Array : Int32Array).of(v) as never);

/** Per-tensor symmetric int8 for the conv weights (exactly representable: all are 0, ±1). */
function addQuantizedConv(graph: Graph, x: Range): void {
  graph.initializers.delete('conv.w');
  graph.initializers.set('conv.w.q', makeTensor('int8', [CONV_OUT, 3, 1, 1], Int8Array.from(CONV_W.flat(), (v) => v * 127)));
  graph.initializers.set('conv.w.s', scalar('float32', 1 / 127));
  graph.initializers.set('conv.w.z', scalar('int8', 0));
  graph.initializers.set('x.s', scalar('float32', x.scale));
  graph.initializers.set('x.z', scalar('uint8', x.zero));
  graph.nodes.unshift(
    node('QuantizeLinear', ['x', 'x.s', 'x.z'], ['x.q']),
    node('DequantizeLinear', ['x.q', 'x.s', 'x.z'], ['x.dq']),
    node('DequantizeLinear', ['conv.w.q', 'conv.w.s', 'conv.w.z'], ['conv.w.dq']),
  );
}

export interface TinyInt8Model {
  file: string;
  /** Top-1 on the first 1000 CIFAR-10 test images, through slimkit's eval path. */
  calibrationImages: number;
}

/** Fits and writes the int8 model to `file`. Needs the CIFAR-10 binaries (CIFAR_DIR). */
export async function makeInt8CifarModel(file: string): Promise<string> {
  const train = await loadCifar10('train', { dataDir: CIFAR_DIR, limit: 4000 });
  const n = train.labels.length;
  const x = new Float32Array(n * 3072);
  for (let i = 0; i < n; i++) normalizeInto(x, i * 3072, train.pixels, i * 3072, [3, 32, 32], CIFAR10_NORMALIZATION);
  let xmin = Infinity;
  let xmax = -Infinity;
  for (const v of x) {
    if (v < xmin) xmin = v;
    if (v > xmax) xmax = v;
  }
  const xr = uint8Range(xmin, xmax);

  // Calibrate the activation ranges and collect features with a float graph (QDQ only on the input).
  const probe = features(baseGraph());
  probe.initializers.set('relu.s', scalar('float32', 1));
  probe.initializers.set('relu.z', scalar('uint8', 0));
  probe.initializers.set('pool.s', scalar('float32', 1));
  probe.initializers.set('pool.z', scalar('uint8', 0));
  addQuantizedConv(probe, xr);
  probe.outputs = [{ name: 'relu', dtype: 'float32' }, { name: 'pool', dtype: 'float32' }];
  const out = await runGraph(probe, { x: makeTensor('float32', [n, 3, 32, 32], x) });
  const maxOf = (t: Tensor): number => (t.data as Float32Array).reduce((m, v) => (v > m ? v : m), 0);
  const reluR = uint8Range(0, maxOf(out['relu']!));
  const poolR = uint8Range(0, maxOf(out['pool']!));
  // Features as the int8 graph will see them: pooled values rounded to the pool's uint8 grid.
  const pooled = out['pool']!.data as Float32Array;
  const feats = Float64Array.from(pooled, (v) => Math.min(255, Math.round(v / poolR.scale)) * poolR.scale);

  const { weights, bias } = ridge(feats, train.labels, n, FEATURES, 10, 1.0);
  // Ridge outputs live near 0..1; sharpen them so the softmax shows clear winners (top-1 unchanged).
  for (let i = 0; i < weights.length; i++) weights[i]! *= SHARPEN;
  for (let i = 0; i < bias.length; i++) bias[i]! *= SHARPEN;
  return writeInt8Model(file, { xr, reluR, poolR, weights, bias });
}

function baseGraph(): Graph {
  const g = emptyGraph('deploy-test-int8', 13);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 3, 32, 32] }];
  return g;
}

async function writeInt8Model(file: string, p: { xr: Range; reluR: Range; poolR: Range; weights: Float64Array; bias: Float64Array }): Promise<string> {
  const g = features(baseGraph());
  addQuantizedConv(g, p.xr);
  g.initializers.set('relu.s', scalar('float32', p.reluR.scale));
  g.initializers.set('relu.z', scalar('uint8', p.reluR.zero));
  g.initializers.set('pool.s', scalar('float32', p.poolR.scale));
  g.initializers.set('pool.z', scalar('uint8', p.poolR.zero));
  // Per-row (output class) symmetric int8 weights; int32 bias at scale s_in · s_w.
  const wq = new Int8Array(10 * FEATURES);
  const ws = new Float32Array(10);
  const bq = new Int32Array(10);
  for (let c = 0; c < 10; c++) {
    let m = 0;
    for (let j = 0; j < FEATURES; j++) m = Math.max(m, Math.abs(p.weights[c * FEATURES + j]!));
    ws[c] = m / 127 || 1;
    for (let j = 0; j < FEATURES; j++) wq[c * FEATURES + j] = Math.round(p.weights[c * FEATURES + j]! / ws[c]!);
    bq[c] = Math.round(p.bias[c]! / (p.poolR.scale * ws[c]!));
  }
  g.initializers.set('fc.w.q', makeTensor('int8', [10, FEATURES], wq));
  g.initializers.set('fc.w.s', makeTensor('float32', [10], ws));
  g.initializers.set('fc.w.z', makeTensor('int8', [10], new Int8Array(10)));
  g.initializers.set('fc.b.q', makeTensor('int32', [10], bq));
  g.initializers.set('fc.b.s', makeTensor('float32', [10], Float32Array.from(ws, (s) => s * p.poolR.scale)));
  g.initializers.set('fc.b.z', makeTensor('int32', [10], new Int32Array(10)));
  g.nodes.push(
    node('DequantizeLinear', ['fc.w.q', 'fc.w.s', 'fc.w.z'], ['fc.w'], { axis: { type: 'int', value: 0 } }),
    node('DequantizeLinear', ['fc.b.q', 'fc.b.s', 'fc.b.z'], ['fc.b'], { axis: { type: 'int', value: 0 } }),
    node('Gemm', ['flat', 'fc.w', 'fc.b'], ['logits'], { transB: { type: 'int', value: 1 } }),
  );
  g.outputs = [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }];
  g.metadata = preprocessingMetadata({ inputShape: [3, 32, 32], normalization: CIFAR10_NORMALIZATION, classNames: CIFAR10_CLASSES });
  await writeModel(g, file);
  return file;
}

/** Ridge regression to one-hot targets: W = (XᵀX + λI)⁻¹ Xᵀ(Y − ȳ), features centred, bias from the means. */
function ridge(x: Float64Array, labels: Uint16Array, n: number, d: number, k: number, lambda: number): { weights: Float64Array; bias: Float64Array } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  const a = new Float64Array(d * d);
  const b = new Float64Array(d * k);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x[i * d + j]! - mean[j]!;
    for (let p = 0; p < d; p++) {
      const rp = row[p]!;
      for (let q = p; q < d; q++) a[p * d + q]! += rp * row[q]!;
      b[p * k + labels[i]!]! += rp;
    }
  }
  for (let p = 0; p < d; p++) {
    for (let q = 0; q < p; q++) a[p * d + q] = a[q * d + p]!;
    a[p * d + p]! += lambda * n;
  }
  // Cholesky a = L Lᵀ, then solve for each class column.
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j]!;
    for (let m = 0; m < j; m++) s -= a[j * d + m]! ** 2;
    const ljj = Math.sqrt(s);
    a[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j]!;
      for (let m = 0; m < j; m++) t -= a[i * d + m]! * a[j * d + m]!;
      a[i * d + j] = t / ljj;
    }
  }
  const weights = new Float64Array(k * d);
  const bias = new Float64Array(k);
  const y = new Float64Array(d);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < d; i++) {
      let t = b[i * k + c]!;
      for (let m = 0; m < i; m++) t -= a[i * d + m]! * y[m]!;
      y[i] = t / a[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) {
      let t = y[i]!;
      for (let m = i + 1; m < d; m++) t -= a[m * d + i]! * weights[c * d + m]!;
      weights[c * d + i] = t / a[i * d + i]!;
    }
    let dot = 0;
    for (let j = 0; j < d; j++) dot += weights[c * d + j]! * mean[j]!;
    bias[c] = 0.1 - dot; // one-hot targets average 1/10
  }
  return { weights, bias };
}

export interface TestImage {
  file: string;
  label: number;
}

/**
 * CIFAR-10 test images as an image folder (DIR/<class>/<name>): `count` 32×32 PNGs, and `resized` of
 * them also upscaled to odd sizes and aspect ratios as JPEG and WebP, so decoding, Resize + CenterCrop
 * are exercised. Returned in the order slimkit's loadImageFolder visits them (class, then file name).
 */
export async function writeTestImages(dir: string, options: { count: number; resized?: number; offset?: number }): Promise<TestImage[]> {
  const test = await loadCifar10('test', { dataDir: CIFAR_DIR, limit: (options.offset ?? 0) + options.count });
  const images: TestImage[] = [];
  const sizes = [[45, 37], [64, 80], [33, 100], [96, 96]] as const;
  for (let i = options.offset ?? 0; i < test.labels.length; i++) {
    const label = test.labels[i]!;
    const folder = path.join(dir, CIFAR10_CLASSES[label]!);
    await mkdir(folder, { recursive: true });
    const hwc = Buffer.alloc(3072);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = test.pixels[i * 3072 + c * 1024 + p]!;
    const raw = sharp(hwc, { raw: { width: 32, height: 32, channels: 3 } });
    const id = String(i).padStart(5, '0');
    await writeFile(path.join(folder, `${id}.png`), await raw.clone().png().toBuffer());
    images.push({ file: path.join(folder, `${id}.png`), label });
    const k = i - (options.offset ?? 0);
    if (k < (options.resized ?? 0)) {
      const [w, h] = sizes[k % sizes.length]!;
      const big = raw.clone().resize(w, h, { fit: 'fill', kernel: 'cubic' });
      const name = k % 2 === 0 ? `${id}-big.jpg` : `${id}-big.webp`;
      await writeFile(path.join(folder, name), k % 2 === 0 ? await big.jpeg({ quality: 95 }).toBuffer() : await big.webp({ quality: 95 }).toBuffer());
      images.push({ file: path.join(folder, name), label });
    }
  }
  const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return images.sort((a, b) => a.label - b.label || byCodePoint(path.basename(a.file), path.basename(b.file)));
}

/**
 * `plain` (float32 N×C×H×W, normalized as `normalization` says) behind uint8 N×H×W×C pixels → Transpose → Cast →
 * ·1/255 → −mean → /std: the same function as a deployment-style export that preprocesses raw pixels.
 */
export function withPixelPreprocessing(plain: Graph, normalization: Normalization = CIFAR10_NORMALIZATION): Graph {
  const input = plain.inputs.find((v) => !plain.initializers.has(v.name))!;
  const [, c, h, w] = input.shape!;
  const wrapped: Graph = { ...plain, nodes: [...plain.nodes], initializers: new Map(plain.initializers), inputs: [{ name: 'pixels', dtype: 'uint8', shape: ['n', h!, w!, c!] }] };
  const n = normalization;
  wrapped.initializers.set('pre_scale', makeTensor('float32', [], Float32Array.of(n.scale)));
  wrapped.initializers.set('pre_mean', makeTensor('float32', [1, 3, 1, 1], Float32Array.from(n.mean)));
  wrapped.initializers.set('pre_std', makeTensor('float32', [1, 3, 1, 1], Float32Array.from(n.std)));
  const node = (name: string, opType: string, inputs: string[], attributes: Node['attributes'] = {}): Node => ({ name, opType, domain: '', inputs, outputs: [name === 'std' ? input.name : `pre_${name}_out`], attributes });
  wrapped.nodes.unshift(
    node('nchw', 'Transpose', ['pixels'], { perm: { type: 'ints', value: [0, 3, 1, 2] } }),
    node('float', 'Cast', ['pre_nchw_out'], { to: { type: 'int', value: 1 } }),
    node('scale', 'Mul', ['pre_float_out', 'pre_scale']),
    node('mean', 'Sub', ['pre_scale_out', 'pre_mean']),
    node('std', 'Div', ['pre_mean_out', 'pre_std']),
  );
  return wrapped;
}

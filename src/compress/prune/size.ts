/**
 * Honest size reporting: what the .onnx file costs as written (dense — zeros take as many bytes as any
 * weight), what it costs to download (gzip level 9, where runs of zeros do shrink), and what a sparse
 * storage format would need. The estimate stores each float initializer with zeros in the cheapest of:
 * dense; a bitmap (1 bit per element) + the non-zeros; or, for an N:M pattern, the non-zeros + their
 * positions (⌈log2 M⌉ bits each, the layout of sparse tensor cores). No ONNX runtime reads such a
 * format: it is the floor a sparse deployment could reach, not a file slimkit writes.
 */
import { gzipSync } from 'node:zlib';
import type { Graph } from '../../onnx/graph.js';
import { encodeModel } from '../../onnx/io.js';
import { byteLength, type Tensor } from '../../onnx/tensor.js';

export interface SizeReport {
  denseBytes: number;
  gzipBytes: number;
  sparseBytesEstimate: number;
  /** Zeros among float initializer elements. */
  zeroFraction: number;
}

function zerosOf(t: Tensor): number {
  let z = 0;
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') {
    for (const b of t.data as Uint16Array) if ((b & 0x7fff) === 0) z++;
  } else for (const v of t.data as Float32Array) if (v === 0) z++;
  return z;
}

/** Bytes of `t` in the cheapest of the formats above; `nm` when the tensor follows an N:M pattern. */
export function sparseTensorBytes(t: Tensor, nm?: { n: number; m: number }): number {
  const dense = byteLength(t);
  const elements = t.data.length;
  const zeros = zerosOf(t);
  if (zeros === 0) return dense;
  const width = dense / Math.max(1, elements);
  const nonzero = elements - zeros;
  const bitmap = Math.ceil(elements / 8) + nonzero * width;
  const nmBytes = nm ? Math.ceil((elements * nm.n) / nm.m) * width + Math.ceil((elements * nm.n * Math.ceil(Math.log2(nm.m))) / nm.m / 8) : Infinity;
  return Math.min(dense, bitmap, nmBytes);
}

export function sizeReport(graph: Graph, options: { bytes?: Uint8Array; nm?: { n: number; m: number; tensors: ReadonlySet<string> } } = {}): SizeReport {
  const bytes = options.bytes ?? encodeModel(graph).model;
  let saved = 0;
  let floats = 0;
  let zeros = 0;
  for (const [name, t] of graph.initializers) {
    if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16' && t.dtype !== 'float64') continue;
    floats += t.data.length;
    zeros += zerosOf(t);
    const nm = options.nm?.tensors.has(name) ? options.nm : undefined;
    saved += byteLength(t) - sparseTensorBytes(t, nm);
  }
  return {
    denseBytes: bytes.byteLength,
    gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
    sparseBytesEstimate: bytes.byteLength - saved,
    zeroFraction: floats ? zeros / floats : 0,
  };
}

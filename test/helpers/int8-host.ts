/**
 * ONNX Runtime's int8 kernels on this machine, for tests whose oracle is an exact integer computation.
 * On an x64 CPU without VNNI (AVX2 only: the AMD EPYC these tests also run on) onnxruntime-node's u8×s8
 * sums saturate in 16 bits (int8KernelsSaturate), so its outputs are not the exact ones arm64, VNNI CPUs
 * and the web compute. There such a test either lays the weights out as uint8, whose kernels are exact,
 * as users of such CPUs do (--cpu avx2, static or dynamic), or — where the claim is that two encodings are the same model — runs
 * onnxruntime-web, whose WebAssembly kernels are exact.
 */
import path from 'node:path';
import * as ortWeb from 'onnxruntime-web';
import { encodeModel } from '../../src/onnx/io.js';
import type { Graph } from '../../src/onnx/graph.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { runGraph } from '../../src/runtime/ort.js';
import { int8KernelsSaturate } from '../../src/util/cpu-flags.js';
import { REPO_ROOT } from './fixtures.js';

export const SATURATING_HOST = int8KernelsSaturate();

/** Quantization options (static or dynamic) under which onnxruntime-node computes int8 exactly on this machine. */
export const EXACT_ON_HOST: { cpu?: 'avx2' } = SATURATING_HOST ? { cpu: 'avx2' } : {};

/** The first output of `graph` from an ONNX Runtime whose int8 kernels are exact: node, else the web's. */
export async function exactInt8Output(graph: Graph, feeds: Record<string, Tensor<'float32'>>): Promise<number[]> {
  if (!SATURATING_HOST) return Array.from(Object.values(await runGraph(graph, feeds, { threads: 1 }))[0]!.data as Float32Array);
  ortWeb.env.wasm.wasmPaths = path.join(REPO_ROOT, 'node_modules/onnxruntime-web/dist/');
  ortWeb.env.wasm.numThreads = 1;
  const session = await ortWeb.InferenceSession.create(encodeModel(graph).model);
  try {
    const webFeeds = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, new ortWeb.Tensor('float32', t.data, t.dims)]));
    const out = await session.run(webFeeds);
    return Array.from(out[session.outputNames[0]!]!.data as Float32Array);
  } finally {
    await session.release();
  }
}

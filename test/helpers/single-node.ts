/**
 * Build a graph holding one node, infer its output types with slimkit, and run it in ONNX Runtime:
 * the oracle for every op's shape inference (test/ops-ort.test.ts).
 */
import type { DType } from '../../src/onnx/dtype.js';
import { emptyGraph, type Attribute, type Dim, type Graph, type ValueType } from '../../src/onnx/graph.js';
import { inferShapes, type InferenceResult } from '../../src/onnx/shape-inference.js';
import { makeTensor, type Tensor } from '../../src/onnx/tensor.js';
import { runGraph } from '../../src/runtime/ort.js';
import { Random } from '../../src/util/random.js';

/** A node input: a graph input fed random data, a constant (an initializer, so inference sees its value), or omitted. */
export type InputSpec =
  | { dtype: DType; shape: Dim[]; /** Dims to feed; default: `shape` with each symbol set to 2. */ feed?: number[] }
  | { value: Tensor }
  | null;

export interface SingleNodeCase {
  opType: string;
  /** Default 17. */
  opset?: number;
  attrs?: Record<string, Attribute>;
  inputs: InputSpec[];
  /** Number of outputs; default 1. */
  outputs?: number;
}

/** Attribute constructors, so cases read like the ONNX docs. */
export const a = {
  int: (value: number): Attribute => ({ type: 'int', value }),
  ints: (value: number[]): Attribute => ({ type: 'ints', value }),
  float: (value: number): Attribute => ({ type: 'float', value }),
  floats: (value: number[]): Attribute => ({ type: 'floats', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
  tensor: (value: Tensor): Attribute => ({ type: 'tensor', value }),
};

/** A float32 / int64 / any-typed constant input. */
export const c = {
  /** Values at or beyond ±2^63 clamp to INT64_MAX / INT64_MIN (as exporters write "to the end"). */
  i64: (values: number[], dims: number[] = [values.length]): InputSpec => ({
    value: makeTensor('int64', dims, BigInt64Array.from(values, (v) => (v >= 2 ** 63 ? 2n ** 63n - 1n : v <= -(2 ** 63) ? -(2n ** 63n) : BigInt(v)))),
  }),
  f32: (values: number[], dims: number[] = [values.length]): InputSpec => ({ value: makeTensor('float32', dims, Float32Array.from(values)) }),
  of: (value: Tensor): InputSpec => ({ value }),
};

/** IR version ORT expects for an opset (opset 18-19 came with IR 9, 20-21 with IR 10). */
function irVersionFor(opset: number): number {
  return opset >= 20 ? 10 : opset >= 18 ? 9 : 8;
}

/** The one-node graph; output types come from `outputTypes` (ORT checks them against its own). */
export function singleNodeGraph(spec: SingleNodeCase, outputTypes?: ValueType[]): Graph {
  const opset = spec.opset ?? 17;
  const graph = emptyGraph(`single_${spec.opType}`, opset);
  graph.irVersion = irVersionFor(opset);
  const inputNames = spec.inputs.map((input, i) => {
    if (input === null) return '';
    const name = `x${i}`;
    if ('value' in input) graph.initializers.set(name, input.value);
    else graph.inputs.push({ name, dtype: input.dtype, shape: [...input.shape] });
    return name;
  });
  const outputNames = Array.from({ length: spec.outputs ?? 1 }, (_, i) => `y${i}`);
  graph.nodes.push({ name: 'node', opType: spec.opType, domain: '', inputs: inputNames, outputs: outputNames, attributes: spec.attrs ?? {} });
  graph.outputs = outputNames.map((name, i) => ({ name, dtype: outputTypes?.[i]?.dtype ?? 'float32' }));
  return graph;
}

/** slimkit's inference over the case's graph: types, known values and MACs (outputs are y0, y1, ...). */
export function inferSingleNodeResult(spec: SingleNodeCase): InferenceResult {
  return inferShapes(singleNodeGraph(spec));
}

/** slimkit's inferred output types for the case. */
export function inferSingleNode(spec: SingleNodeCase): ValueType[] {
  const result = inferSingleNodeResult(spec);
  return Array.from({ length: spec.outputs ?? 1 }, (_, i) => result.types.get(`y${i}`)!);
}

export interface SingleNodeRun {
  /** Inferred shapes with graph-input symbols replaced by the fed sizes. */
  inferred: { dtype: DType; dims: Dim[] | undefined }[];
  /** What ONNX Runtime produced. */
  actual: { dtype: DType; dims: number[] }[];
}

/** Infer, then run in ORT on seeded random data. */
export async function runSingleNode(spec: SingleNodeCase, seed = 1): Promise<SingleNodeRun> {
  const types = inferSingleNode(spec);
  const graph = singleNodeGraph(spec, types);
  const random = new Random(seed);
  const bindings = new Map<string, number>();
  const feeds: Record<string, Tensor> = {};
  spec.inputs.forEach((input, i) => {
    if (input === null || 'value' in input) return;
    const dims = input.feed ?? input.shape.map((d) => (typeof d === 'number' ? d : 2));
    input.shape.forEach((d, k) => typeof d === 'string' && bindings.set(d, dims[k]!));
    feeds[`x${i}`] = randomTensor(input.dtype, dims, random);
  });
  const outputs = await runGraph(graph, feeds, { threads: 1 });
  return {
    inferred: types.map((t) => ({ dtype: t.dtype, dims: t.shape?.map((d) => (typeof d === 'string' ? (bindings.get(d) ?? d) : d)) })),
    actual: graph.outputs.map((o) => ({ dtype: outputs[o.name]!.dtype, dims: [...outputs[o.name]!.dims] })),
  };
}

function randomTensor(dtype: DType, dims: number[], random: Random): Tensor {
  const t = makeTensor(dtype, dims);
  const data = t.data;
  for (let i = 0; i < data.length; i++) {
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(random.int(4));
    else if (data instanceof Float32Array || data instanceof Float64Array) data[i] = random.normal();
    else if (Array.isArray(data)) data[i] = String(random.int(10));
    else if (dtype === 'bool') data[i] = random.int(2);
    else if (dtype === 'float16') data[i] = 0x3c00; // 1.0
    else data[i] = random.int(4);
  }
  return t;
}

/**
 * float16 conversion, two ways:
 *  - 'full': every float32 tensor becomes float16 and the model computes in float16; Casts at the
 *    graph inputs and outputs keep its interface float32. Half the size and, on hardware with fp16
 *    arithmetic (GPUs, WebGPU, recent ARM), faster. Needs float16 kernels for every op in the runtime.
 *  - 'weights': initializers are stored as float16 and cast back to float32 in the graph; the model
 *    computes in float32 exactly as before (ORT folds those Casts when it loads the model). Half the
 *    file, runs everywhere.
 * Values beyond ±65504 (the float16 range) are clamped and reported. An op slimkit has no definition
 * for (left float by quantize) keeps computing in float32 as exported: its constants stay float32 and,
 * in 'full', its float inputs and outputs are cast around it. Constants ONNX types float32 whatever
 * the data's (Resize's scales: OpDef.float32Inputs) stay float32 too.
 */
import { cloneGraph, dataInputs, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { opDefFor } from '../../ops/registry.js';
import { DTYPES } from '../../onnx/dtype.js';
import { makeTensor, numberToFloat16Bits, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { fixWeightsAsConstants } from '../../passes/fix-weights.js';

export type Float16Mode = 'full' | 'weights';

export interface Float16Result {
  graph: Graph;
  /** Initializer values clamped to ±65504. */
  clamped: number;
  converted: number;
}

const FLOAT16_MAX = 65504;
const FLOAT = DTYPES.float32.onnx;
const FLOAT16 = DTYPES.float16.onnx;

function toFloat16(t: Tensor, counter: { clamped: number }): Tensor<'float16'> {
  const src = t.data as Float32Array;
  const bits = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    let v = src[i]!;
    if (v > FLOAT16_MAX || v < -FLOAT16_MAX) {
      counter.clamped++;
      v = Math.sign(v) * FLOAT16_MAX;
    }
    bits[i] = numberToFloat16Bits(v);
  }
  return makeTensor('float16', t.dims, bits);
}

function cast(name: string, input: string, output: string, to: number): Node {
  return { name, opType: 'Cast', domain: '', inputs: [input], outputs: [output], attributes: { to: { type: 'int', value: to } } };
}

export function convertFloat16(graph: Graph, mode: Float16Mode): Float16Result {
  const g = cloneGraph(fixWeightsAsConstants(graph));
  const taken = valueNames(g);
  const counter = { clamped: 0 };
  const opaque = g.nodes.filter((node) => !opDefFor(node));
  const index = new GraphIndex(g);
  // Constants that only ops slimkit has no definition for read stay as they are; so do those ONNX types
  // float32 whatever the data's (Resize's scales: OpDef.float32Inputs).
  const constant = (value: string): boolean => g.initializers.has(value) || index.producer.get(value)?.opType === 'Constant';
  const readsAsFloat32 = (n: Node, value: string): boolean => {
    const slots = opDefFor(n)?.float32Inputs?.(g.opsets[''] ?? 0) ?? [];
    return n.inputs.every((input, slot) => input !== value || slots.includes(slot));
  };
  const keptFloat32 = (value: string): boolean => constant(value) && index.consumersOf(value).length > 0 && index.consumersOf(value).every((n) => opaque.includes(n) || readsAsFloat32(n, value));
  let converted = 0;
  if (mode === 'weights') {
    const casts: Node[] = [];
    for (const [name, t] of [...g.initializers]) {
      if (t.dtype !== 'float32' || g.inputs.some((v) => v.name === name) || keptFloat32(name)) continue;
      const stored = freshName(taken, `${name}_fp16`);
      g.initializers.delete(name);
      g.initializers.set(stored, toFloat16(t, counter));
      casts.push(cast(freshName(taken, `${name}_Cast`), stored, name, FLOAT));
      converted++;
    }
    g.nodes = [...casts, ...g.nodes];
    return { graph: g, clamped: counter.clamped, converted };
  }

  const floatBefore = opaque.length > 0 ? inferShapes(g).types : undefined;
  for (const [name, t] of [...g.initializers]) {
    if (t.dtype !== 'float32' || keptFloat32(name)) continue;
    g.initializers.set(name, toFloat16(t, counter));
    converted++;
  }
  for (const node of g.nodes) {
    if (node.opType === 'Constant' && node.outputs.every(keptFloat32)) continue;
    // Float values made by attributes: Constant (value, value_float, value_floats) and ConstantOfShape
    // (torch.full(x.size(0), …) with a dynamic batch) would otherwise meet float16 tensors as float32.
    const value = node.attributes['value'];
    if ((node.opType === 'Constant' || node.opType === 'ConstantOfShape') && value?.type === 'tensor' && value.value.dtype === 'float32') {
      node.attributes = { ...node.attributes, value: { type: 'tensor', value: toFloat16(value.value, counter) } };
    }
    const scalar = node.attributes['value_float'];
    const list = node.attributes['value_floats'];
    if (node.opType === 'Constant' && (scalar?.type === 'float' || list?.type === 'floats')) {
      const values = scalar?.type === 'float' ? [scalar.value] : list?.type === 'floats' ? list.value : [];
      const dims = scalar?.type === 'float' ? [] : [values.length];
      node.attributes = { value: { type: 'tensor', value: toFloat16(makeTensor('float32', dims, Float32Array.from(values)), counter) } };
    }
    const to = node.attributes['to'];
    if (node.opType === 'Cast' && to?.type === 'int' && to.value === FLOAT) node.attributes = { ...node.attributes, to: { type: 'int', value: FLOAT16 } };
  }
  for (const [name, info] of g.valueInfo) if (info.dtype === 'float32') g.valueInfo.set(name, { ...info, dtype: 'float16' });
  g.nodes = g.nodes.flatMap((node) => (opaque.includes(node) ? inFloat32(node, g, floatBefore!, keptFloat32, taken) : [node]));
  // float32 interface kept: Cast in after each float input, Cast out before each float output.
  const head: Node[] = [];
  for (const v of dataInputs(g)) {
    if (v.dtype !== 'float32') continue;
    const inner = freshName(taken, `${v.name}_fp16`);
    for (const node of g.nodes) node.inputs = node.inputs.map((i) => (i === v.name ? inner : i));
    head.push(cast(freshName(taken, `${v.name}_Cast`), v.name, inner, FLOAT16));
  }
  const tail: Node[] = [];
  for (const v of g.outputs) {
    if (v.dtype !== 'float32') continue;
    const inner = freshName(taken, `${v.name}_fp16`);
    for (const node of g.nodes) {
      node.outputs = node.outputs.map((o) => (o === v.name ? inner : o));
      node.inputs = node.inputs.map((i) => (i === v.name ? inner : i));
    }
    tail.push(cast(freshName(taken, `${v.name}_Cast`), inner, v.name, FLOAT));
  }
  g.nodes = [...head, ...g.nodes, ...tail];
  return { graph: g, clamped: counter.clamped, converted };
}

/**
 * An op slimkit has no definition for, between Casts: the float16 values it reads back to float32, its
 * float32 outputs on to float16. `float32Before`: every value's type before conversion.
 */
function inFloat32(node: Node, g: Graph, float32Before: ReadonlyMap<string, { dtype: string }>, keptFloat32: (value: string) => boolean, taken: Set<string>): Node[] {
  const before: Node[] = [];
  const after: Node[] = [];
  node.inputs = node.inputs.map((input) => {
    if (!input || float32Before.get(input)?.dtype !== 'float32' || keptFloat32(input)) return input;
    const wide = freshName(taken, `${input}_fp32`);
    before.push(cast(freshName(taken, `${input}_Cast`), input, wide, FLOAT));
    return wide;
  });
  node.outputs = node.outputs.map((output) => {
    const info = output ? g.valueInfo.get(output) : undefined;
    if (!output || float32Before.get(output)?.dtype !== 'float32') return output;
    const wide = freshName(taken, `${output}_fp32`);
    if (info) g.valueInfo.set(wide, { ...info, name: wide, dtype: 'float32' });
    after.push(cast(freshName(taken, `${output}_Cast`), wide, output, FLOAT16));
    return wide;
  });
  return [...before, node, ...after];
}

/** Small hand-built networks and helpers for the pruning tests (test/prune-*.test.ts). */
import { emptyGraph, type Attribute, type Dim, type Graph, type Node } from '../src/onnx/graph.js';
import { float32, int64, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import type { DependencyGraph, Group } from '../src/compress/prune/index.js';
import { cloneGraph } from '../src/onnx/graph.js';

/** A tiny graph builder: every helper adds one node and returns its output name. */
export class Net {
  readonly graph: Graph;
  private readonly rng: Random;
  private count = 0;

  constructor(inputShape: Dim[], options: { seed?: number; opset?: number } = {}) {
    this.graph = emptyGraph('prune_test', options.opset ?? 17);
    this.graph.inputs.push({ name: 'input', dtype: 'float32', shape: inputShape });
    this.rng = new Random(options.seed ?? 1);
  }

  weight(dims: number[], scale = 0.5): string {
    const name = `w${this.count++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.graph.initializers.set(name, float32(dims, Array.from({ length: n }, () => this.rng.normal() * scale)));
    return name;
  }

  constant(t: Tensor): string {
    const name = `k${this.count++}`;
    this.graph.initializers.set(name, t);
    return name;
  }

  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}, outputs = 1): string[] {
    const name = `${opType.toLowerCase()}${this.count++}`;
    const outs = Array.from({ length: outputs }, (_, i) => `${name}_out${i}`);
    this.graph.nodes.push({ name, opType, domain: '', inputs, outputs: outs, attributes });
    return outs;
  }

  conv(x: string, cin: number, cout: number, o: { k?: number; group?: number; bias?: boolean; stride?: number } = {}): string {
    const k = o.k ?? 3;
    const group = o.group ?? 1;
    const inputs = [x, this.weight([cout, cin / group, k, k], 0.3)];
    if (o.bias ?? true) inputs.push(this.weight([cout], 0.1));
    const attrs: Record<string, Attribute> = {
      kernel_shape: { type: 'ints', value: [k, k] },
      pads: { type: 'ints', value: Array(4).fill(Math.floor(k / 2)) },
      strides: { type: 'ints', value: [o.stride ?? 1, o.stride ?? 1] },
      group: { type: 'int', value: group },
    };
    return this.node('Conv', inputs, attrs)[0]!;
  }

  bn(x: string, c: number): string {
    const positive = float32([c], Array.from({ length: c }, () => 0.5 + this.rng.nextUint32() / 2 ** 32));
    return this.node('BatchNormalization', [x, this.weight([c]), this.weight([c], 0.1), this.weight([c], 0.1), this.constant(positive)])[0]!;
  }

  op(opType: string, ...inputs: string[]): string {
    return this.node(opType, inputs)[0]!;
  }

  gemm(x: string, k: number, n: number): string {
    return this.node('Gemm', [x, this.weight([n, k], 0.3), this.weight([n], 0.1)], { transB: { type: 'int', value: 1 } })[0]!;
  }

  concat(xs: string[], axis = 1): string {
    return this.node('Concat', xs, { axis: { type: 'int', value: axis } })[0]!;
  }

  split(x: string, sizes: number[]): string[] {
    return this.node('Split', [x, this.constant(int64([sizes.length], sizes))], { axis: { type: 'int', value: 1 } }, sizes.length);
  }

  reshape(x: string, shape: number[]): string {
    return this.node('Reshape', [x, this.constant(int64([shape.length], shape))])[0]!;
  }

  output(x: string): Graph {
    this.graph.outputs.push({ name: x, dtype: 'float32' });
    return this.graph;
  }
}

/** The same 8 → 8 Conv (one weight, one bias) applied twice on a residual stream; `shared` is its first node. */
export function convAppliedTwiceNet(): { graph: Graph; shared: Node } {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 8));
  const first = n.node('Conv', [x, n.weight([8, 8, 3, 3], 0.3), n.weight([8], 0.1)], { pads: { type: 'ints', value: [1, 1, 1, 1] } })[0]!;
  const shared = n.graph.nodes.at(-1)!;
  const y = n.op('Relu', n.op('Add', x, first));
  n.graph.nodes.push({ ...shared, name: 'again', inputs: [y, shared.inputs[1]!, shared.inputs[2]!], outputs: ['again_out'] });
  return { graph: n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.op('Add', y, 'again_out')))), 8, 10)), shared };
}

export function randomImages(dims: number[], seed = 3): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal()));
}

/** The first output of `graph` in ONNX Runtime for input `x` (fed to the first graph input). */
export async function ortOutput(graph: Graph, x: Tensor): Promise<Tensor> {
  const out = await runGraph(graph, { [graph.inputs[0]!.name]: x });
  return out[graph.outputs[0]!.name]!;
}

/**
 * A copy of the graph where group channels `channels` are dead: every param slice they own (the
 * writers' filters and biases, BN γ and β, the readers' input columns) is zero. Removing them must then
 * leave the output unchanged — the oracle for physical removal.
 */
export function killChannels(dep: DependencyGraph, group: Group, channels: ReadonlySet<number>): Graph {
  const g = cloneGraph(dep.graph);
  const edited = new Map<string, Float32Array>();
  for (const p of group.params) {
    // Statistics and scales (a Div's divisor) stay: a dead channel is 0 through them anyway.
    if (p.param.role === 'statistic' || p.param.role === 'other') continue;
    const map = group.members.get(p.value)!;
    const data = edited.get(p.name) ?? Float32Array.from(dep.graph.initializers.get(p.name)!.data as Float32Array);
    const dims = p.tensor.dims;
    const axis = p.param.axis;
    const n = dims[axis]!;
    const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < data.length; i++) if (channels.has(map[Math.floor(i / inner) % n]!)) data[i] = 0;
    edited.set(p.name, data);
  }
  for (const [name, data] of edited) g.initializers.set(name, makeTensor('float32', g.initializers.get(name)!.dims, data));
  return g;
}

export function maxRelDiff(a: Tensor, b: Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let scale = 1e-6;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m / scale;
}

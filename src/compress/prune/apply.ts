/**
 * Physical removal: given the channels to drop (whole components of the dependency graph), slice every
 * param along its channel axis, let each rule rewrite what params do not cover (Conv group, Split
 * sizes, Reshape targets), and fix the recorded shapes. The result is a smaller dense Graph; nothing is
 * masked or zeroed. Tensors that do not change are shared with the input graph.
 */
import { allocArray } from '../../onnx/dtype.js';
import { cloneGraph, type Graph, type Node } from '../../onnx/graph.js';
import { makeTensor, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import type { ChannelKeep, NodeEdit } from './channel-rule.js';
import type { DependencyGraph } from './dependency-graph.js';
import { portValue, type DepNode } from './node.js';

/** Copy of `t` with only indices `keep` (ascending) along `axis`. */
export function sliceAxis(t: Tensor, axis: number, keep: readonly number[]): Tensor {
  const dims = t.dims;
  const n = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<unknown> };
  const out = allocArray(t.dtype, outer * keep.length * inner) as unknown as { set(a: ArrayLike<unknown>, offset: number): void };
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const start = (o * n + k) * inner;
      out.set(src.subarray(start, start + inner), at);
      at += inner;
    }
  }
  const newDims = [...dims];
  newDims[axis] = keep.length;
  return makeTensor(t.dtype, newDims, out as unknown as Tensor['data']);
}

function placeholder(t: Tensor, axis: number, size: number): Tensor {
  const dims = [...t.dims];
  dims[axis] = size;
  return { dtype: t.dtype, dims, data: allocArray(t.dtype, 0) };
}

/**
 * The bias a Conv / Gemm gets when removed input channels are replaced by their means (see
 * RemoveOptions.means), or the Add put after a MatMul.
 */
function compensation(d: DepNode, keep: ChannelKeep, means: ReadonlyMap<string, Float64Array> | undefined): { inputs: Map<number, Tensor>; append?: NodeEdit['append'] } {
  const out = { inputs: new Map<number, Tensor>() } as { inputs: Map<number, Tensor>; append?: NodeEdit['append'] };
  if (!means || !d.rule?.compensate || d.ports?.coupling !== 'independent') return out;
  for (const slot of d.ports.inputs) {
    const kept = keep.inputs[slot];
    const mean = means.get(portValue(d, 'in', slot) ?? '');
    if (!kept || !mean) continue;
    const shift = Float64Array.from(mean);
    for (const c of kept) shift[c] = 0;
    const edit = d.rule.compensate(d.ctx, shift, keep.outputs[0]);
    for (const [s, t] of Object.entries(edit.inputs ?? {})) out.inputs.set(Number(s), t);
    if (edit.append) out.append = edit.append;
  }
  return out;
}

/** The kept channels of every value that loses some, given per-component removal flags. */
export function keptChannels(dep: DependencyGraph, removed: Uint8Array): Map<string, number[]> {
  const kept = new Map<string, number[]>();
  for (const s of dep.spaces.values()) {
    const keep: number[] = [];
    for (let i = 0; i < s.size; i++) if (!removed[dep.component[s.base + i]!]) keep.push(i);
    if (keep.length < s.size) kept.set(s.value, keep);
  }
  return kept;
}

export interface RemoveOptions {
  /**
   * Placeholder params of the right dims and no data — enough for shape inference and MAC counts during
   * a search, never for running or writing.
   */
  shapesOnly?: boolean;
  /**
   * Mean activation per channel of the values Conv / Gemm read (calibrate.ts). A removed input channel
   * is then replaced by its mean, folded into the reader's bias, instead of by zero: what the next layer
   * saw on average stays, which matters most where BatchNorm was folded into large biases.
   */
  means?: ReadonlyMap<string, Float64Array>;
  /** With `means`: called with each layer that loses input channels but has nowhere to put their means. */
  onUncompensated?(node: string): void;
}

/** A new Graph without the channels of removed components (removed[component] = 1). */
export function removeChannels(dep: DependencyGraph, removed: Uint8Array, options: RemoveOptions = {}): Graph {
  const kept = keptChannels(dep, removed);
  const g = cloneGraph(dep.graph);
  if (kept.size === 0) return g;
  const clones = new Map<Node, Node>(dep.graph.nodes.map((n, i) => [n, g.nodes[i]!]));
  const uses = new Map<string, number>();
  for (const n of dep.graph.nodes) for (const v of n.inputs) if (v) uses.set(v, (uses.get(v) ?? 0) + 1);
  const taken = valueNames(g);
  // Node names too: a node appended here is named after its node, and a model pruned again has one already.
  for (const n of g.nodes) if (n.name) taken.add(n.name);
  const replaced = new Set<string>();
  // A shared initializer cut the same way for several readers (one Conv applied twice) stays one tensor.
  const sharedCuts = new Map<string, string>();

  for (const d of dep.nodes) {
    if (!d.ports) continue;
    const keep: ChannelKeep = { inputs: [], outputs: [] };
    for (const slot of d.ports.inputs) keep.inputs[slot] = kept.get(portValue(d, 'in', slot) ?? '');
    for (const slot of d.ports.outputs) keep.outputs[slot] = kept.get(portValue(d, 'out', slot) ?? '');
    if (!keep.inputs.some(Boolean) && !keep.outputs.some(Boolean)) continue;

    const tensors = new Map<number, Tensor>();
    // Per slot, how its param was cut (axes and kept indices): the key under which a shared one is reused.
    const cuts = new Map<number, string>();
    const compensated = options.shapesOnly ? { inputs: new Map<number, Tensor>() } : compensation(d, keep, options.means);
    const final = compensated.inputs;
    if (options.means && d.ports.coupling === 'independent' && d.ports.inputs.some((slot) => keep.inputs[slot]) && final.size === 0 && !compensated.append) {
      options.onUncompensated?.(d.node.name || d.node.opType);
    }
    for (const p of d.params) {
      const k = (p.port.side === 'in' ? keep.inputs : keep.outputs)[p.port.slot];
      if (!k || final.has(p.slot)) continue;
      const current = tensors.get(p.slot) ?? d.ctx.inputs[p.slot]!.constant!;
      // Every group keeps the same positions (the rule ties them): the first group's say which.
      const along = p.period === undefined ? k : k.filter((c) => c < p.period!);
      tensors.set(p.slot, options.shapesOnly ? placeholder(current, p.axis, along.length) : sliceAxis(current, p.axis, along));
      cuts.set(p.slot, `${cuts.get(p.slot) ?? ''}|${p.axis}:${along.join(',')}`);
    }
    const edit = d.rule?.resize?.(d.ctx, keep) ?? {};
    for (const [slot, t] of [...Object.entries(edit.inputs ?? {}), ...final]) {
      tensors.set(Number(slot), t);
      cuts.delete(Number(slot));
    }

    const node = clones.get(d.node)!;
    for (const [slot, t] of tensors) {
      const old = node.inputs[slot];
      const shared = old !== undefined && old !== '' && (uses.get(old) ?? 0) > 1;
      const cutKey = shared && cuts.has(slot) ? `${old}${cuts.get(slot)}` : undefined;
      const reused = cutKey !== undefined ? sharedCuts.get(cutKey) : undefined;
      if (reused !== undefined) {
        node.inputs[slot] = reused;
        replaced.add(old!);
        continue;
      }
      // An initializer read by one node is replaced under its name; a shared one gets a sliced copy.
      const name = old && !shared ? old : freshName(taken, `${old || node.name || node.opType}.pruned`);
      if (cutKey !== undefined) sharedCuts.set(cutKey, name);
      if (old && name !== old) replaced.add(old);
      g.initializers.set(name, t);
      while (node.inputs.length < slot) node.inputs.push('');
      node.inputs[slot] = name;
    }
    for (const [key, a] of Object.entries(edit.attributes ?? {})) {
      if (a === null) delete node.attributes[key];
      else node.attributes[key] = a;
    }
    // The compensating node goes last (appended first: each later one goes between the node and it);
    // a max given the removed channels' means needs no 0 for them.
    if (compensated.append) appendAfter(g, node, compensated.append, taken);
    if (edit.append && !(edit.append.opType === 'Max' && compensated.append?.opType === 'Max')) appendAfter(g, node, edit.append, taken);
  }

  for (const [value, keep] of kept) {
    const info = g.valueInfo.get(value);
    const axis = dep.spaces.get(value)!.axis;
    if (info?.shape && info.shape.length > axis) {
      const shape = [...info.shape];
      shape[axis] = keep.length;
      g.valueInfo.set(value, { ...info, shape });
    }
  }
  for (const name of replaced) {
    if (!g.nodes.some((n) => n.inputs.includes(name))) g.initializers.delete(name);
  }
  return g;
}

/**
 * `append` after output `slot` of `node` (a clone in `g`): the node writes a fresh value, which the
 * appended node reads with its scalar and writes under the old name, so every reader is unchanged.
 */
function appendAfter(g: Graph, node: Node, append: NonNullable<NodeEdit['append']>, taken: Set<string>): void {
  const value = node.outputs[append.slot]!;
  const before = freshName(taken, `${value}.before_pruning_${append.opType.toLowerCase()}`);
  const operand = freshName(taken, `${value}.${{ Mul: 'kept_fraction', Max: 'removed_zero', Add: 'removed_means' }[append.opType]}`);
  node.outputs[append.slot] = before;
  g.initializers.set(operand, append.operand);
  const info = g.valueInfo.get(value);
  if (info) g.valueInfo.set(before, info);
  const added: Node = { name: freshName(taken, `${node.name || node.opType}.pruned_${append.opType.toLowerCase()}`), opType: append.opType, domain: '', inputs: [before, operand], outputs: [value], attributes: {} };
  g.nodes.splice(g.nodes.indexOf(node) + 1, 0, added);
}

/**
 * Marking: ask every node's op module for its QDQ pattern and resolve the marks of the whole graph
 * into one plan — which tensors are quantized and how, which activations fold into their producer —
 * without touching the graph (insert-qdq.ts does the surgery from the plan).
 */
import { usageError } from '../../errors.js';
import { dataInputs, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import type { InferenceResult, NodeFacts } from '../../onnx/shape-inference.js';
import { opDefFor } from '../../ops/registry.js';
import type { QuantContext, QuantUnit, TensorMark } from './pattern.js';
import type { QuantizeOptions } from './types.js';

/** How one tensor of the float graph is quantized. */
export type PlannedTensor =
  /** Own scale and zero point, from the calibrated range of `rangeOf` (the tensor itself, or the output of the activation folded into its producer). */
  | { kind: 'activation'; rangeOf: string }
  /** An initializer read as an activation (e.g. a constant operand of Add): range from its own values. */
  | { kind: 'constant' }
  /** The scale and zero point of activation `as` (a pass-through op's output). */
  | { kind: 'same'; as: string }
  /** Symmetric, per channel along `axis`, or per tensor when axis is undefined. */
  | { kind: 'weight'; axis: number | undefined }
  /** int32 with scale = scale(input) · scale(weight), per channel like the weight. */
  | { kind: 'bias'; input: string; weight: string };

export interface FloatNode {
  node: string;
  opType: string;
  reason: string;
}

export interface QuantPlan {
  /** Planned tensors by name. Names of folded producers' outputs are already replaced (see `folded`). */
  tensors: Map<string, PlannedTensor>;
  /** Activation nodes absorbed by their producer, by node label: the producer's output `input` becomes `output`. */
  folded: Map<string, { input: string; output: string }>;
  /** Nodes that run quantized, by label, in graph order. */
  units: Map<string, QuantUnit>;
  /** Weighted layers (a weight mark: Conv, Gemm, MatMul with a constant operand), by label, in graph order. */
  layers: string[];
  /** Nodes that have a QDQ pattern but stay float, and why. */
  float: FloatNode[];
}

const QDQ_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'Constant', 'Identity']);

/** A node's name, or `OpType:firstOutput` for unnamed nodes (outputs are unique, so labels are too). */
export function nodeLabel(node: Node): string {
  return node.name || `${node.opType}:${node.outputs[0] ?? ''}`;
}

export interface PlanOptions extends Pick<QuantizeOptions, 'activations' | 'perChannel' | 'exclude' | 'keepFirst' | 'keepLast'> {
  /** Quantize only these nodes (by label): for per-layer sensitivity. */
  only?: ReadonlySet<string>;
  /** Layers --max-drop keeps float (by label): named for that, not as the user's --exclude. */
  keptBySensitivity?: readonly string[];
}

/** --exclude names nodes of the model (static and dynamic quantization alike): a typo must not quantize the layer meant to stay float. */
export function checkExcluded(nodes: readonly Node[], exclude: readonly string[]): void {
  const labels = new Set(nodes.map(nodeLabel));
  const unknown = exclude.filter((name) => !labels.has(name));
  if (unknown.length > 0) {
    throw usageError(
      `--exclude names ${unknown.map((n) => `'${n}'`).join(', ')}, which ${unknown.length === 1 ? 'is not a node' : 'are not nodes'} of the model`,
      `node names look like ${[...labels].slice(0, 3).map((n) => `'${n}'`).join(', ')} (slim quantize --report lists every layer)`,
    );
  }
}

export function planQuantization(graph: Graph, facts: InferenceResult, options: PlanOptions): QuantPlan {
  checkOpset(graph, options.perChannel);
  checkCubicResize(facts);
  const index = new GraphIndex(graph);
  checkExcluded(facts.nodes.map((f) => f.node), options.exclude);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const alreadyQuantized = (name: string): boolean =>
    index.producer.get(name)?.opType === 'DequantizeLinear' || index.consumersOf(name).some((n) => n.opType === 'QuantizeLinear');

  // 1. Every node's marks.
  const float: FloatNode[] = [];
  const units = new Map<string, { facts: NodeFacts; unit: QuantUnit }>();
  const contexts = new Map<string, QuantContext<unknown>>();
  const data = dataValues(graph, facts);
  for (const f of facts.nodes) {
    // Arithmetic on shapes (an output size computed in float from Shape, as recompute_scale_factor
    // exports it) is no activation: quantized, 48 came back 47 (trial 33).
    if (!f.node.inputs.some((name) => name && data.has(name))) continue;
    const def = opDefFor(f.node);
    const label = nodeLabel(f.node);
    // Only nodes that compute on float activations are float compute worth naming: shape arithmetic (int64)
    // and work on constants alone (an Expand of a stored grid) convert nothing.
    const onActivations = f.outputs.some((t) => t.dtype === 'float32') && f.inputs.some((i) => i !== undefined && !i.constant && i.type.dtype === 'float32');
    if (!def?.quant) {
      // Say which float compute stays (HardSwish, Softmax, ...); Q/DQ and shape arithmetic are not compute.
      if (!QDQ_OPS.has(f.node.opType) && onActivations) {
        const reason = f.opaque ? 'an op slimkit has no definition for: left as exported, in float on dequantized inputs' : 'no integer kernel for this op: it runs in float on dequantized inputs';
        float.push({ node: label, opType: f.node.opType, reason });
      }
      continue;
    }
    const opset = graph.opsets[f.node.domain === 'ai.onnx' ? '' : f.node.domain] ?? graph.opsets[''] ?? 0;
    const ctx: QuantContext<unknown> = { node: f.node, attrs: def.parseAttrs(f.node, opset), opset, inputs: f.inputs, outputs: f.outputs };
    contexts.set(label, ctx);
    if (f.node.inputs.some((name) => name && alreadyQuantized(name))) continue;
    const unit = def.quant.mark(ctx);
    if (!unit) {
      if (!def.quant.foldsIntoRange && onActivations) float.push({ node: label, opType: f.node.opType, reason: 'not in a form with an integer kernel (float inputs, constant weights)' });
      continue;
    }
    units.set(label, { facts: f, unit });
  }

  // 2. Which units stay float: --exclude, --keep-first / --keep-last, or outside `only`.
  const weighted = [...units].filter(([, u]) => u.unit.inputs.some((m) => m?.role === 'weight')).map(([label]) => label);
  const drop = (label: string, reason: string): void => {
    const u = units.get(label);
    if (!u) return;
    units.delete(label);
    float.push({ node: label, opType: u.facts.node.opType, reason });
  };
  for (const label of options.exclude) drop(label, 'excluded');
  for (const label of options.keptBySensitivity ?? []) drop(label, 'kept float by --max-drop: among the layers int8 costs the most top-1');
  if (options.keepFirst && weighted.length > 0) drop(weighted[0]!, 'first layer kept float');
  if (options.keepLast && weighted.length > 0) drop(weighted[weighted.length - 1]!, 'last layer kept float');
  if (options.only) for (const label of [...units.keys()]) if (!options.only.has(label)) units.delete(label);
  keepSandwichedLayersFloat(graph, index, units, drop);

  // 3. Activation functions absorbed by a quantized producer (asymmetric ranges only: the clamp at the
  //    zero point is what replaces the function, and a symmetric range has its zero point mid-range).
  const folded = new Map<string, { input: string; output: string }>();
  const alias = new Map<string, string>();
  if (!options.activations.symmetric) {
    for (const f of facts.nodes) {
      const label = nodeLabel(f.node);
      const ctx = contexts.get(label);
      const def = opDefFor(f.node);
      if (!ctx || !def?.quant?.foldsIntoRange?.(ctx)) continue;
      if (options.exclude.includes(label)) continue;
      const x = f.node.inputs[0];
      const y = f.node.outputs[0];
      if (!x || !y || graphOutputs.has(y) || index.soleConsumer(x) !== f.node) continue;
      const producer = index.producer.get(x);
      const pu = producer && units.get(nodeLabel(producer));
      const slot = producer ? producer.outputs.indexOf(x) : -1;
      if (!pu || pu.unit.outputs[slot]?.role !== 'activation') continue;
      folded.set(label, { input: x, output: y });
      alias.set(x, y);
    }
  }

  // 4. Resolve marks into planned tensors. Requests first, then pass-through propagation in graph
  //    order (so an output shares its input's scale whoever else asked for the input), then biases.
  const tensors = new Map<string, PlannedTensor>();
  const request = (name: string): void => {
    if (!name || tensors.has(name) || graphOutputs.has(name) || alreadyQuantized(name)) return;
    tensors.set(name, graph.initializers.has(name) ? { kind: 'constant' } : { kind: 'activation', rangeOf: name });
  };
  const each = (fn: (node: Node, unit: QuantUnit) => void): void => {
    for (const { facts: f, unit } of units.values()) fn(f.node, unit);
  };
  each((node, unit) => {
    unit.inputs.forEach((m, i) => {
      const name = node.inputs[i];
      if (!m || !name) return;
      if (m.role === 'activation') request(name);
      if (m.role === 'weight' && !tensors.has(name)) tensors.set(name, { kind: 'weight', axis: options.perChannel ? m.axis : undefined });
    });
    unit.outputs.forEach((m, i) => {
      const out = node.outputs[i];
      if (m?.role === 'activation' && out) request(alias.get(out) ?? out);
    });
  });
  each((node, unit) => {
    unit.outputs.forEach((m, i) => {
      const out = node.outputs[i];
      if (m?.role !== 'same' || !out || graphOutputs.has(out)) return;
      const root = rootOf(tensors, node.inputs[m.input] ?? '');
      if (root) tensors.set(out, { kind: 'same', as: root });
    });
  });
  const conflicting = new Set<string>();
  each((node, unit) => {
    unit.inputs.forEach((m, i) => {
      const name = node.inputs[i];
      if (m?.role !== 'bias' || !name) return;
      const input = node.inputs[m.input] ?? '';
      const weight = node.inputs[m.weight] ?? '';
      if (tensors.get(weight)?.kind !== 'weight' || !rootOf(tensors, input) || conflicting.has(name)) return;
      // A bias shared by layers with different input scales has no single int32 form: it stays float
      // (prepareFloatGraph gives each layer its own first, untie-biases.ts; this is a graph planned as is).
      const earlier = tensors.get(name);
      if (earlier?.kind === 'bias' && (earlier.weight !== weight || rootOf(tensors, earlier.input) !== rootOf(tensors, input))) {
        tensors.delete(name);
        conflicting.add(name);
        return;
      }
      tensors.set(name, { kind: 'bias', input, weight });
    });
  });

  const planned = new Map([...units].map(([label, u]) => [label, u.unit]));
  return { tensors, folded, units: planned, layers: weighted.filter((l) => planned.has(l)), float };
}

/** Layers ONNX Runtime quantizes itself when they sit between a DequantizeLinear and a QuantizeLinear. */
const SELF_QUANTIZED_BY_ORT = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/**
 * A float Conv, ConvTranspose or Gemm (excluded, kept first/last, or outside `only`) whose input is
 * dequantized and whose output goes on alone — through Relu or Clip at most — into a QuantizeLinear
 * does not stay float: ONNX Runtime (1.20+, its WeightBiasQuantization transform) quantizes its
 * weights itself, per tensor, and runs it in int8. To keep it float, the nodes reading its output stay
 * float too (their inputs then need no QuantizeLinear); each is named with the reason.
 */
function keepSandwichedLayersFloat(graph: Graph, index: GraphIndex, units: Map<string, { facts: NodeFacts; unit: QuantUnit }>, drop: (label: string, reason: string) => void): void {
  const unitOf = (node: Node): QuantUnit | undefined => units.get(nodeLabel(node))?.unit;
  /** Whether a quantized node reads `name` as a quantized activation (so it gets a QuantizeLinear). */
  const readQuantized = (name: string): boolean => index.consumersOf(name).some((c) => unitOf(c)?.inputs.some((m, i) => m?.role === 'activation' && c.inputs[i] === name));
  /** Whether a quantized node writes `name` — directly, or through a ReLU or Clip it will absorb. */
  const writtenQuantized = (name: string): boolean => {
    let value = name;
    let producer = index.producer.get(value);
    while (producer && ['Relu', 'Clip'].includes(producer.opType) && !unitOf(producer)) {
      value = producer.inputs[0] ?? '';
      producer = index.producer.get(value);
    }
    const u = producer && unitOf(producer);
    return !!u && u.outputs.some((m, i) => m?.role === 'activation' && producer!.outputs[i] === value);
  };
  for (const node of graph.nodes) {
    if (!SELF_QUANTIZED_BY_ORT.has(node.opType) || unitOf(node) || !graph.initializers.has(node.inputs[1] ?? '')) continue;
    const input = node.inputs[0] ?? '';
    if (!readQuantized(input) && !writtenQuantized(input)) continue;
    // Follow the output through single-reader Relu / Clip, as ONNX Runtime does.
    let value = node.outputs[0] ?? '';
    for (let consumers = index.consumersOf(value); consumers.length === 1 && ['Relu', 'Clip'].includes(consumers[0]!.opType) && !unitOf(consumers[0]!); consumers = index.consumersOf(value)) {
      value = consumers[0]!.outputs[0] ?? '';
    }
    const readers = index.consumersOf(value);
    if (readers.length === 0 || !readers.every((c) => unitOf(c)) || graph.outputs.some((o) => o.name === value)) continue;
    for (const reader of readers) drop(nodeLabel(reader), `reads float '${nodeLabel(node)}': quantizing its input would have ONNX Runtime quantize that layer itself (per tensor)`);
  }
}

/** The activation a tensor takes its scale from (itself, or through pass-through ops), if quantized. */
export function rootOf(tensors: ReadonlyMap<string, PlannedTensor>, name: string): string | undefined {
  let current = name;
  for (let guard = 0; guard < 10_000; guard++) {
    const t = tensors.get(current);
    if (!t) return undefined;
    if (t.kind === 'activation' || t.kind === 'constant') return current;
    if (t.kind !== 'same') return undefined;
    current = t.as;
  }
  throw new Error(`pass-through chain from '${name}' does not end`);
}

/**
 * Names whose ranges calibration measures for this plan — and for any plan that quantizes fewer nodes
 * (sensitivity, mixed precision): a pass-through output needs its own range once its input stays float.
 */
export function calibrationTargets(plan: QuantPlan, options: { unfolded?: boolean } = {}): string[] {
  const out = new Set<string>();
  for (const [name, t] of plan.tensors) {
    if (t.kind === 'activation') out.add(t.rangeOf);
    if (t.kind === 'same') out.add(name);
  }
  // With `unfolded`, also the inputs of the folded activations: what a symmetric-activation plan (which
  // folds nothing) quantizes, so one calibration serves both formats.
  if (options.unfolded) for (const f of plan.folded.values()) out.add(f.input);
  return [...out];
}

/** Values computed from the images themselves: not constants, and not what Shape or Size reads of them. */
function dataValues(graph: Graph, facts: InferenceResult): Set<string> {
  const data = new Set(dataInputs(graph).map((v) => v.name));
  for (const { node } of facts.nodes) {
    if (node.opType === 'Shape' || node.opType === 'Size') continue;
    if (node.inputs.some((name) => name && data.has(name))) for (const out of node.outputs) if (out) data.add(out);
  }
  return data;
}

/**
 * ONNX Runtime (1.2x) lays a Resize next to int8 layers out channels-last when it loads the model, and
 * its cubic kernel takes that layout only with "the outermost and innermost scale values being 1 and
 * other scales >= 1": a bicubic downscale is refused even left float (torch-tiny-upsample.onnx); a
 * bicubic upsample runs (trial 33: ×2 between int8 convs, 25.2 % against 24.8 % fp32).
 */
function checkCubicResize(facts: InferenceResult): void {
  const shrinks = facts.nodes.find(({ node, inputs, outputs }) => {
    if (node.opType !== 'Resize' || node.attributes['mode']?.value !== 'cubic') return false;
    const [from, to] = [inputs[0]?.type.shape, outputs[0]?.shape];
    // A size not known here may be a downscale.
    return !from || !to || from.some((d, i) => d !== to[i] && (typeof d !== 'number' || typeof to[i] !== 'number' || (to[i] as number) < d));
  });
  if (!shrinks) return;
  throw usageError(
    `the model's bicubic Resize ('${nodeLabel(shrinks.node)}', F.interpolate(mode='bicubic')) shrinks its input (or its size is not known before it runs), which ONNX Runtime cannot run in an int8 model: it lays the Resize out channels-last next to the int8 layers, where its cubic kernel takes only upsampling`,
    "export the model with mode='bilinear' for that resize, or quantize it with --mode dynamic or --mode fp16 (both run it)",
  );
}

function checkOpset(graph: Graph, perChannel: boolean): void {
  const opset = graph.opsets[''] ?? 0;
  if (opset < 10) {
    throw usageError(`the model uses ONNX opset ${opset}; QuantizeLinear/DequantizeLinear need opset 10 or later`, 're-export the model with opset 13 or later (torch.onnx.export(..., opset_version=17))');
  }
  if (perChannel && opset < 13) {
    throw usageError(`per-channel weights need ONNX opset 13 (the model uses ${opset})`, 'pass --per-tensor, or re-export the model with opset 13 or later');
  }
}

export type { TensorMark };

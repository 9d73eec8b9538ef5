import { inputError, SlimError } from '../errors.js';
import { dataInputs, GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import type { Tensor } from '../onnx/tensor.js';
import { OpError } from '../ops/op-def.js';
import { OPS, opDefFor } from '../ops/registry.js';
import { constantsToInitializers, foldShapeSubgraphs, untieIdentityWeights } from '../passes/index.js';
import { computesShapes } from '../passes/fold-shapes.js';
import { hasFreeImageSize, pinImageSize } from '../onnx/image-input.js';
import type { QuantizeLinearAttrs } from '../ops/quantize-linear.js';
import { STATIC_SHAPE_FIX, type KernelName, type LowerContext } from './lowering.js';
import { lowerLearnableQuant } from './qat-lowering.js';
import type { NativeTensorSpec, TensorRole } from './native.js';

/**
 * The plan compiler: a Graph becomes, once, a flat list of kernel calls over numbered tensor slots
 * plus a table of the tensors the plan owns (weights, BN statistics, constants). Pure TS: it needs
 * no addon, so its errors (an op with no lowering, a non-constant shape) show up in any environment.
 */

export interface CompiledStep {
  kernel: KernelName;
  inputs: number[];
  outputs: number[];
  ints: number[];
  floats: number[];
  node: string;
}

export interface CompiledTensor {
  name: string;
  slot: number;
  role: TensorRole;
  value: Tensor;
  decay: boolean;
}

export interface CompiledPlan {
  /**
   * The graph the plan was compiled from, after constant and shape folding; weights write back into it.
   * A free-size model keeps its free size here (CompileOptions.imageSize).
   */
  graph: Graph;
  steps: CompiledStep[];
  tensors: CompiledTensor[];
  numSlots: number;
  input: { name: string; slot: number };
  outputs: { name: string; slot: number }[];
  /** The value the loss reads: the first output, or the input of a final Softmax / LogSoftmax. */
  logits: { name: string; slot: number };
}

export interface CompileOptions {
  /** Named in errors. */
  file?: string;
  /** Weight decay only on weights of rank ≥ 2 (none on BN scale/shift and biases). Default true. */
  decayOnlyWeights?: boolean;
  /** Parameters to keep fixed (treated as constants). */
  frozen?: ReadonlySet<string>;
  /**
   * [height, width] of the images the plan runs on. For a model whose input leaves them free, shape
   * computations that read them (GroupNorm's way back from groups, squeeze-excitation's expand_as) fold
   * at this size; the graph the plan exports keeps them free.
   */
  imageSize?: readonly [number, number];
  /** Float initializers to train besides the ones lowerings name (QAT: weights behind a QuantizeLinear). */
  trainable?: ReadonlySet<string>;
  /** QuantizeLinear → DequantizeLinear pairs train their scales (LSQ; see qat-lowering.ts). */
  learnableScales?: boolean;
  /**
   * Integer range [qmin, qmax] per QuantizeLinear node, where it is narrower than its type's: weights
   * quantized symmetric ([-127, 127]) or with reduce-range ([-64, 64]) must train on that grid.
   * Default: what the graph's QAT_GRID_KEY metadata records (toQatGraph writes it).
   */
  quantRanges?: ReadonlyMap<string, readonly [number, number]>;
}

const ENGINE_DTYPES = new Set(['float32', 'int64', 'int32', 'uint8', 'int8']);

/** Metadata a QAT graph carries: {QuantizeLinear node name: [qmin, qmax]} for grids narrower than the type's. */
export const QAT_GRID_KEY = 'slimkit.qat_grid';

function gridOf(graph: Graph): Map<string, readonly [number, number]> {
  const raw = graph.metadata[QAT_GRID_KEY];
  if (!raw) return new Map();
  const parsed = JSON.parse(raw) as Record<string, [number, number]>;
  return new Map(Object.entries(parsed));
}

/**
 * Constant nodes become initializers and exporter shape subgraphs fold away: the engine only runs data
 * ops. Parameters torch.onnx merged through Identity nodes are untied: each trains (and each BatchNorm
 * keeps its running statistics) on its own, as in the model that was exported.
 */
export function prepareForTraining(graph: Graph): Graph {
  const withConstants = untieIdentityWeights(constantsToInitializers(graph));
  return computesShapes(withConstants) ? foldShapeSubgraphs(withConstants) : withConstants;
}

export function compilePlan(source: Graph, options: CompileOptions = {}): CompiledPlan {
  const prepared = prepareForTraining(source);
  // Weights are shared by name between the two, so the trained ones go back into the free-size graph.
  // Pinned too where nothing computes a shape: a Resize by scales needs its output size (trial 33).
  const pinned = options.imageSize && hasFreeImageSize(prepared) ? pinImageSize(prepared, options.imageSize) : prepared;
  const graph = pinned !== prepared && computesShapes(prepared) ? foldShapeSubgraphs(pinned) : pinned;
  const file = options.file;
  const quantRanges = options.quantRanges ?? gridOf(graph);
  const fail = (parts: { where?: string; problem: string; fix?: string }): SlimError => inputError({ ...(file ? { file } : {}), ...parts });

  const inputs = dataInputs(graph);
  if (inputs.length !== 1) {
    throw fail({ problem: `the engine trains models with one image input; this one has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})` });
  }
  const facts = inferShapes(graph, file ? { file } : {});
  const index = new GraphIndex(graph);
  const slots = new Map<string, number>();
  const slot = (name: string): number => {
    let s = slots.get(name);
    if (s === undefined) slots.set(name, (s = slots.size));
    return s;
  };
  const input = { name: inputs[0]!.name, slot: slot(inputs[0]!.name) };
  const params = new Set<string>();
  const vectors = new Set<string>();
  const state = new Set<string>();
  const steps: CompiledStep[] = [];

  // A node the engine cannot run fails the plan only if a kernel reads what it computes: a Resize's
  // sizes computed from Shape are read by its lowering as known values, and the kernels never need them.
  const unlowerable: { node: Node; error: SlimError }[] = [];
  for (const { node, inputs: inputFacts, outputs } of facts.nodes) {
    const where = `node '${node.name}' (${node.opType})`;
    const def = opDefFor(node);
    if (!def?.lower && node.opType === 'Shape') {
      unlowerable.push({ node, error: fail({ where, problem: 'the model reads a shape at run time where training needs it static', fix: STATIC_SHAPE_FIX }) });
      continue;
    }
    if (!def?.lower) {
      const trainable = Object.entries(OPS).filter(([, d]) => 'lower' in d).map(([op]) => op).sort();
      unlowerable.push({ node, error: fail({ where, problem: `op ${node.opType} has no training lowering`, fix: `the engine trains graphs made of ${trainable.join(', ')}` }) });
      continue;
    }
    const opset = graph.opsets[node.domain === 'ai.onnx' ? '' : node.domain] ?? graph.opsets[''] ?? 0;
    let lowering;
    try {
      const attrs = def.parseAttrs(node, opset);
      const ctx: LowerContext<unknown> = {
        node,
        attrs,
        opset,
        inputs: inputFacts,
        outputs,
        producer: (v) => index.producer.get(v),
        initializer: (v) => graph.initializers.get(v),
        consumers: (v) => index.consumersOf(v),
        ...(quantRanges.has(node.name) ? { quantRange: quantRanges.get(node.name)! } : {}),
      };
      lowering = options.learnableScales && node.opType === 'QuantizeLinear'
        ? lowerLearnableQuant(ctx as LowerContext<QuantizeLinearAttrs>)
        : def.lower(ctx);
    } catch (e) {
      if (!(e instanceof OpError)) throw e;
      unlowerable.push({ node, error: fail({ where, problem: e.message }) });
      continue;
    }
    for (const p of lowering.params ?? []) if (p) params.add(p);
    for (const v of lowering.vectors ?? []) if (v) vectors.add(v);
    for (const s of lowering.state ?? []) if (s) state.add(s);
    for (const step of lowering.steps) {
      steps.push({
        kernel: step.kernel,
        inputs: (step.inputs ?? node.inputs).map((v) => (v ? slot(v) : -1)),
        outputs: (step.outputs ?? node.outputs).map((v) => (v ? slot(v) : -1)),
        ints: (step.ints ?? []).map((v) => checkInt(v, where)),
        floats: step.floats ?? [],
        node: node.name,
      });
    }
  }

  const live = liveSteps(steps, graph.outputs.map((o) => slots.get(o.name)));
  for (const { node, error } of unlowerable) {
    if (node.outputs.some((v) => v && (live.slots.has(slots.get(v) ?? -1) || graph.outputs.some((o) => o.name === v)))) throw error;
  }
  steps.splice(0, steps.length, ...live.steps);

  const tensors: CompiledTensor[] = [];
  for (const [name, value] of graph.initializers) {
    const s = slots.get(name);
    if (s === undefined) continue;
    if (!ENGINE_DTYPES.has(value.dtype)) {
      throw fail({ where: `initializer '${name}'`, problem: `has type ${value.dtype}, which the engine does not hold`, fix: 'convert the model to float32 first' });
    }
    const role: TensorRole =
      (params.has(name) || options.trainable?.has(name)) && value.dtype === 'float32' && !options.frozen?.has(name) ? 0 : state.has(name) ? 1 : 2;
    // A weight has two axes or more; a bias or a per-channel affine — also one written [C, 1, 1] to
    // broadcast (GroupNorm's, a layer scale) — scales or shifts, which PyTorch recipes keep out of decay.
    const decay = role === 0 && (options.decayOnlyWeights === false || (value.dims.length >= 2 && !vectors.has(name)));
    tensors.push({ name, slot: s, role, value, decay });
  }
  const outputs = graph.outputs.map((o) => {
    const s = slots.get(o.name);
    if (s === undefined) {
      const writer = index.producer.get(o.name);
      throw fail(writer
        ? { where: `output '${o.name}'`, problem: `is an optional output of node '${writer.name}' (${writer.opType}) that the engine does not compute`, fix: 'export the model without it (torch.onnx exports inference Dropout with no mask)' }
        : { where: `output '${o.name}'`, problem: 'is not produced by any node' });
    }
    return { name: o.name, slot: s };
  });
  if (outputs.length === 0) throw fail({ problem: 'the graph has no outputs' });
  const first = outputs[0]!;
  const last = index.producer.get(first.name);
  const logitsName = last && (last.opType === 'Softmax' || last.opType === 'LogSoftmax') ? last.inputs[0]! : first.name;
  return { graph: prepared, steps, tensors, numSlots: slots.size, input, outputs, logits: { name: logitsName, slot: slot(logitsName) } };
}

/** The steps whose results reach the graph's outputs, and the slots they read or write. */
function liveSteps(steps: readonly CompiledStep[], outputSlots: readonly (number | undefined)[]): { steps: CompiledStep[]; slots: Set<number> } {
  const slots = new Set(outputSlots.filter((s): s is number => s !== undefined));
  const kept: CompiledStep[] = [];
  for (let k = steps.length - 1; k >= 0; k--) {
    const step = steps[k]!;
    if (!step.outputs.some((s) => slots.has(s))) continue;
    kept.push(step);
    for (const s of step.inputs) if (s >= 0) slots.add(s);
  }
  return { steps: kept.reverse(), slots };
}

function checkInt(v: number, where: string): number {
  // The addon reads ints as int32; shapes and axes never come near the limit.
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new Error(`${where}: lowering produced a non-int32 parameter ${v}`);
  return v;
}

/** The typed arrays the addon's Plan constructor takes; kernel codes come from the addon's own list. */
export function encodePlan(
  plan: CompiledPlan,
  kernelNames: readonly string[],
): { code: Int32Array; floats: Float64Array; nodes: string[]; tensors: NativeTensorSpec[] } {
  const codes = new Map(kernelNames.map((n, i) => [n, i]));
  const code: number[] = [];
  const floats: number[] = [];
  for (const s of plan.steps) {
    const k = codes.get(s.kernel);
    if (k === undefined) throw new Error(`the native addon has no kernel '${s.kernel}' (node '${s.node}'); rebuild it with npm run build:native`);
    code.push(k, s.inputs.length, s.outputs.length, s.ints.length, s.floats.length, ...s.inputs, ...s.outputs, ...s.ints);
    floats.push(...s.floats);
  }
  const tensors = plan.tensors.map((t) => ({
    name: t.name,
    slot: t.slot,
    role: t.role,
    dtype: t.value.dtype as NativeTensorSpec['dtype'],
    dims: [...t.value.dims],
    data: t.value.data as NativeTensorSpec['data'],
    decay: t.decay,
  }));
  return { code: Int32Array.from(code), floats: Float64Array.from(floats), nodes: plan.steps.map((s) => s.node), tensors };
}

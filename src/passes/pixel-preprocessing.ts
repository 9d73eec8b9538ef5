import { dataInputs, GraphIndex, type Dim, type Graph, type Node, type ValueInfo } from '../onnx/graph.js';
import { takesChannelsLast } from '../onnx/image-input.js';
import { toNumbers, type Tensor } from '../onnx/tensor.js';
import { constantValue } from './constants.js';
import { freshName, valueNames } from './rewrite.js';

/**
 * Deployment exports often take raw pixels and normalize them inside the model — uint8 N×H×W×C in, then
 * `x.permute(0, 3, 1, 2).float() / 255`, `- mean`, `/ std` — while slimkit's calibration, training and
 * fine-tuning feed normalized float32 N×C×H×W batches. Such a model is compressed as the network it
 * wraps: `splitPixelPreprocessing` cuts off the leading chain of per-pixel, per-channel affine steps
 * (Cast to float, Transpose, Identity, and Add / Sub / Mul / Div by a per-channel constant), which
 * computes `network input[c] = scale[c] · fed[c] + shift[c]`, and `joinPixelPreprocessing` puts the same
 * nodes back in front of the compressed network. Both are pure.
 *
 * The affine map is read off the constants exactly (no sampling), so the caller can record it as the
 * network's mean and std: the network, fed slimkit's normalized images, computes what the whole model
 * computes from the pixels.
 */
export interface PixelPreprocessing {
  /** The raw image input, as the model declares it. */
  input: ValueInfo;
  /** The value the wrapped network reads: float32 N×C×H×W. */
  cut: string;
  /** The preprocessing nodes, in order. */
  nodes: Node[];
  /** The constants they read (Constant nodes' values included, under their output names). */
  initializers: Map<string, Tensor>;
  /** Per channel: network input = scale · model input + shift, the input taken in its own units (0–255 for uint8). */
  scale: number[];
  shift: number[];
}

export type PixelSplit =
  | { network: Graph; preprocessing: PixelPreprocessing }
  /** Why no network input could be cut off (the chain stops before reaching float32 N×C×H×W). */
  | { reason: string };

/** The ops a preprocessing chain is made of; anything else ends it. */
const ARITHMETIC = new Set(['Add', 'Sub', 'Mul', 'Div']);

interface ChainState {
  dtype: string;
  /** The value's dims, in its current axis order. */
  shape: Dim[];
  /** Where the channels are. */
  channelAxis: number;
  scale: number[];
  shift: number[];
}

export function splitPixelPreprocessing(graph: Graph): PixelSplit {
  const inputs = dataInputs(graph);
  const input = inputs[0];
  if (!input) return { reason: 'the model has no input' };
  if (inputs.length !== 1) return { reason: `the model takes ${inputs.length} inputs` };
  const shape = input.shape;
  if (!shape || shape.length !== 4) return { reason: `its input '${input.name}' is not a 4-d image batch` };
  if (input.dtype !== 'uint8' && input.dtype !== 'float32') return { reason: `its input '${input.name}' is ${input.dtype}; pixels come as uint8 or float32` };
  const channelAxis = takesChannelsLast(graph) ? 3 : 1;
  const channels = shape[channelAxis];
  if (typeof channels !== 'number') return { reason: `its input '${input.name}' has no fixed channel count` };

  const index = new GraphIndex(graph);
  const constants = constantsOf(graph);
  let state: ChainState = { dtype: input.dtype, shape: [...shape], channelAxis, scale: new Array<number>(channels).fill(1), shift: new Array<number>(channels).fill(0) };
  const chain: Node[] = [];
  const read = new Map<string, Tensor>();
  let value = input.name;
  for (;;) {
    const next = index.soleConsumer(value);
    const stepped = next ? step(next, value, state, constants) : undefined;
    if (!next || !stepped) break;
    chain.push(next);
    for (const name of stepped.constants) read.set(name, constants.get(name)!);
    state = stepped.state;
    value = next.outputs[0]!;
  }

  const reached = `its preprocessing (${chain.length ? chain.map((n) => n.opType).join(' → ') : 'no per-pixel step'}) ends at '${value}'`;
  if (state.dtype !== 'float32') return { reason: `${reached}, which is ${state.dtype}, not float32` };
  if (state.channelAxis !== 1) return { reason: `${reached}, which is still channels-last` };
  if (chain.length === 0) return { reason: `${reached}: no preprocessing to cut off` };
  if (!state.scale.every((s) => Number.isFinite(s) && s !== 0) || !state.shift.every(Number.isFinite)) {
    return { reason: `${reached}, which maps some channel to a constant or to a non-finite value` };
  }

  const inChain = new Set(chain);
  const network: Graph = {
    ...graph,
    nodes: graph.nodes.filter((n) => !inChain.has(n)),
    inputs: graph.inputs.map((v) => (v === input ? { name: value, dtype: 'float32', shape: state.shape } : v)),
    initializers: new Map(graph.initializers),
    valueInfo: new Map(graph.valueInfo),
    metadata: { ...graph.metadata },
  };
  for (const n of chain) for (const out of n.outputs) network.valueInfo.delete(out);
  dropUnread(network);
  return {
    network,
    preprocessing: { input, cut: value, nodes: chain, initializers: read, scale: state.scale, shift: state.shift },
  };
}

/**
 * `network` (derived from the split's network: compressed, trained, its batch set back) with the
 * preprocessing in front again. Names the network has taken since the split are left to it: the
 * preprocessing's own values and constants are renamed out of their way.
 */
export function joinPixelPreprocessing(network: Graph, pre: PixelPreprocessing): Graph {
  const cutInput = network.inputs.find((v) => v.name === pre.cut && !network.initializers.has(v.name));
  if (!cutInput) {
    throw new Error(`joinPixelPreprocessing: the network no longer takes '${pre.cut}' as an input (its inputs: ${network.inputs.map((v) => v.name).join(', ')})`);
  }
  const taken = valueNames(network);
  for (const n of network.nodes) taken.add(n.name);
  taken.add(pre.input.name);
  // Names the network does not use stay; the others get fresh ones, which must avoid the kept ones too.
  const own = [...pre.initializers.keys(), ...pre.nodes.flatMap((n) => n.outputs.filter((o) => o !== pre.cut))];
  const clashing = own.filter((name) => taken.has(name));
  const clashingNodes = pre.nodes.filter((n) => taken.has(n.name));
  for (const name of own) taken.add(name);
  for (const n of pre.nodes) taken.add(n.name);
  const renamed = new Map(clashing.map((name) => [name, freshName(taken, `${name}_preprocess`)]));
  const nodeNames = new Map(clashingNodes.map((n) => [n, freshName(taken, `${n.name}_preprocess`)]));
  const nameOf = (v: string): string => renamed.get(v) ?? v;
  const nodes = pre.nodes.map((n) => ({ ...n, name: nodeNames.get(n) ?? n.name, inputs: n.inputs.map(nameOf), outputs: n.outputs.map(nameOf) }));
  const initializers = new Map(network.initializers);
  for (const [name, t] of pre.initializers) initializers.set(nameOf(name), t);
  // IR < 4 lists every initializer among the graph inputs.
  const declared = network.irVersion < 4 ? [...pre.initializers].map(([name, t]): ValueInfo => ({ name: nameOf(name), dtype: t.dtype, shape: [...t.dims] })) : [];
  // The cut's type is left to shape inference: the command may have freed or pinned its dims since.
  return {
    ...network,
    inputs: [...network.inputs.map((v) => (v === cutInput ? pre.input : v)), ...declared],
    nodes: [...nodes, ...network.nodes],
    initializers,
  };
}

/** Every constant a node can read: initializers, and Constant nodes' values under their output names. */
function constantsOf(graph: Graph): Map<string, Tensor> {
  const constants = new Map(graph.initializers);
  for (const n of graph.nodes) {
    if (n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') && n.outputs[0]) constants.set(n.outputs[0], constantValue(n));
  }
  return constants;
}

/** Initializers and Constant nodes nothing reads any more (the preprocessing's own), with their IR < 4 input entries. */
function dropUnread(graph: Graph): void {
  const index = new GraphIndex(graph);
  graph.nodes = graph.nodes.filter((n) => n.opType !== 'Constant' || n.outputs.some((o) => index.isUsed(o)));
  const read = new GraphIndex(graph);
  const unread = new Set([...graph.initializers.keys()].filter((name) => !read.isUsed(name)));
  for (const name of unread) graph.initializers.delete(name);
  graph.inputs = graph.inputs.filter((v) => !unread.has(v.name));
}

/** The chain state after `node` (which reads `value`), or undefined when the node is not a per-pixel affine step. */
function step(node: Node, value: string, state: ChainState, constants: ReadonlyMap<string, Tensor>): { state: ChainState; constants: string[] } | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  if (node.outputs.length !== 1) return undefined;
  switch (node.opType) {
    case 'Identity':
      return { state, constants: [] };
    case 'Cast': {
      // To float32 only: a cast to an integer type would round, one to float16 would lose precision.
      const to = node.attributes['to'];
      if (to?.type !== 'int' || to.value !== 1 || (state.dtype !== 'uint8' && state.dtype !== 'float32')) return undefined;
      return { state: { ...state, dtype: 'float32' }, constants: [] };
    }
    case 'Transpose': {
      const perm = node.attributes['perm']?.type === 'ints' ? (node.attributes['perm'].value as number[]) : [3, 2, 1, 0];
      if (perm.length !== state.shape.length) return undefined;
      return { state: { ...state, shape: perm.map((p) => state.shape[p]!), channelAxis: perm.indexOf(state.channelAxis) }, constants: [] };
    }
    default:
      return ARITHMETIC.has(node.opType) ? arithmeticStep(node, value, state, constants) : undefined;
  }
}

/** x ∘ K or K ∘ x with K constant along every axis but the channels: per-channel affine (K / x is not). */
function arithmeticStep(node: Node, value: string, state: ChainState, constants: ReadonlyMap<string, Tensor>): { state: ChainState; constants: string[] } | undefined {
  if (state.dtype !== 'float32' || node.inputs.length !== 2 || Object.keys(node.attributes).length > 0) return undefined;
  const valueFirst = node.inputs[0] === value;
  const other = node.inputs[valueFirst ? 1 : 0]!;
  if (other === value) return undefined;
  const k = constants.get(other);
  const perChannel = k ? channelValues(k, state) : undefined;
  if (!perChannel) return undefined;
  const scale = [...state.scale];
  const shift = [...state.shift];
  for (let c = 0; c < scale.length; c++) {
    const kc = perChannel[c]!;
    switch (node.opType) {
      case 'Add':
        shift[c]! += kc;
        break;
      case 'Sub':
        if (valueFirst) shift[c]! -= kc;
        else [scale[c], shift[c]] = [-scale[c]!, kc - shift[c]!];
        break;
      case 'Mul':
        [scale[c], shift[c]] = [scale[c]! * kc, shift[c]! * kc];
        break;
      case 'Div':
        if (!valueFirst) return undefined;
        [scale[c], shift[c]] = [scale[c]! / kc, shift[c]! / kc];
        break;
    }
  }
  return { state: { ...state, scale, shift }, constants: [other] };
}

/**
 * K's value for each channel when K broadcasts against the value without growing it and varies along
 * the channel axis at most (numpy rules: K's dims line up with the value's last ones).
 */
function channelValues(k: Tensor, state: ChainState): number[] | undefined {
  if (k.dtype !== 'float32' || k.dims.length > state.shape.length) return undefined;
  const offset = state.shape.length - k.dims.length;
  const channels = state.scale.length;
  let varies = false;
  for (let i = 0; i < k.dims.length; i++) {
    const d = k.dims[i]!;
    if (offset + i === state.channelAxis) {
      if (d !== 1 && d !== channels) return undefined;
      varies = d === channels;
    } else if (d !== 1) {
      return undefined;
    }
  }
  const values = toNumbers(k);
  return Array.from({ length: channels }, (_, c) => values[varies ? c : 0]!);
}

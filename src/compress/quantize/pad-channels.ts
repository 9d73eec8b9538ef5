/**
 * ONNX Runtime's direct symmetric int8 convolution on x64 (MLAS ConvSym, see cpu.ts) takes input
 * channels in groups of 4 (and at least 16 output channels, a multiple of 8); an RGB first Conv (3
 * channels, K = 27) therefore runs as im2col + GEMM, and its im2col copies 3-byte pixels one by one.
 * Padding the Conv's quantized input with zero-point channels up to a multiple of 4, and its weights with
 * zero input channels, gives ConvSym its layout. Exact: the added products are (zp − zp)·w = 0.
 *
 * Measured with ORT's profiler on ResNet18-CIFAR (1 thread, Sapphire Rapids): the first QLinearConv
 * 63 µs → 30 µs, plus 7 µs for the uint8 Pad. Applied for the 'amx' layout only, where it was measured;
 * on wasm, which has no ConvSym, it would only add work.
 */
import { cloneGraph, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { int64, makeTensor, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';

export interface PadChannelsResult {
  graph: Graph;
  /** Names of the Conv nodes whose input and weights were padded. */
  padded: string[];
}

export function padConvInputChannels(graph: Graph): PadChannelsResult {
  if ((graph.opsets[''] ?? 0) < 11) return { graph, padded: [] }; // Pad takes its pads as an input from opset 11
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const taken = valueNames(g);
  const padded: string[] = [];
  const inserts = new Map<Node, Node>();
  for (const conv of g.nodes) {
    const site = paddable(g, index, conv);
    if (!site) continue;
    const { dqx, values, zeroPoint, extra } = site;
    const [m, c, ...kernel] = values.dims as number[];
    const rank = values.dims.length;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[rank + 1] = extra;
    const padsName = freshName(taken, `${conv.name || 'conv'}_channel_pads`);
    const paddedName = freshName(taken, `${dqx.inputs[0]}_channels_padded`);
    g.initializers.set(padsName, int64([2 * rank], pads));
    inserts.set(dqx, {
      name: freshName(taken, `${conv.name || 'conv'}_pad_channels`),
      opType: 'Pad',
      domain: '',
      inputs: [dqx.inputs[0]!, padsName, dqx.inputs[2]!],
      outputs: [paddedName],
      attributes: {},
    });
    dqx.inputs = [paddedName, ...dqx.inputs.slice(1)];
    g.valueInfo.delete(dqx.outputs[0]!);
    const inner = kernel.reduce((a, b) => a * b, 1);
    const out = new Int8Array(m! * (c! + extra) * inner).fill(zeroPoint);
    const src = values.data as Int8Array;
    for (let o = 0; o < m!; o++) out.set(src.subarray(o * c! * inner, (o + 1) * c! * inner), o * (c! + extra) * inner);
    const weightDq = index.producer.get(conv.inputs[1]!)!;
    g.initializers.set(weightDq.inputs[0]!, makeTensor('int8', [m!, c! + extra, ...kernel], out));
    padded.push(conv.name || conv.outputs[0] || '');
  }
  if (padded.length === 0) return { graph, padded };
  g.nodes = g.nodes.flatMap((n) => (inserts.has(n) ? [inserts.get(n)!, n] : [n]));
  return { graph: g, padded };
}

/** A plain Conv reading a per-tensor DequantizeLinear of a computed tensor, with int8 weights, whose input channels are not a multiple of 4. */
function paddable(g: Graph, index: GraphIndex, conv: Node): { dqx: Node; values: Tensor; zeroPoint: number; extra: number } | undefined {
  if (conv.opType !== 'Conv' || (conv.domain !== '' && conv.domain !== 'ai.onnx')) return undefined;
  const group = conv.attributes['group'];
  if (group?.type === 'int' && group.value !== 1) return undefined;
  const dqx = index.producer.get(conv.inputs[0] ?? '');
  const dqw = index.producer.get(conv.inputs[1] ?? '');
  if (dqx?.opType !== 'DequantizeLinear' || dqw?.opType !== 'DequantizeLinear') return undefined;
  const [xq, xScale, xZero] = dqx.inputs;
  if (!xq || !xScale || !xZero || g.initializers.has(xq) || dqx.attributes['axis'] !== undefined) return undefined;
  if (index.consumersOf(dqx.outputs[0]!).length !== 1 || index.isGraphOutput(dqx.outputs[0]!)) return undefined;
  if (g.initializers.get(xZero)?.dims.length !== 0 || g.initializers.get(xScale)?.dims.length !== 0) return undefined;
  const values = g.initializers.get(dqw.inputs[0] ?? '');
  const zeros = g.initializers.get(dqw.inputs[2] ?? '');
  if (values?.dtype !== 'int8' || zeros?.dtype !== 'int8' || values.dims.length < 3) return undefined;
  if (index.consumersOf(dqw.inputs[0]!).length !== 1) return undefined;
  const z = zeros.data as Int8Array;
  if (z.length === 0 || !z.every((v) => v === z[0])) return undefined;
  const [m, c] = values.dims as [number, number];
  if (c % 4 === 0 || m < 16 || m % 8 !== 0) return undefined;
  return { dqx, values, zeroPoint: z[0]!, extra: 4 - (c % 4) };
}

/**
 * The inverse, for counting: each Conv whose quantized input padPads padded (a channel-only constant Pad
 * by the input's zero point, read by a per-tensor DequantizeLinear) gets its input and weights back at
 * the channels before the padding. Params and MACs are the network's, not the layout's (the padding
 * added 144 params and 147,456 MACs to a ResNet18-CIFAR ×0.25, on AMX machines only).
 */
export function unpadConvInputChannels(graph: Graph): Graph {
  const index = new GraphIndex(graph);
  let g: Graph | undefined;
  for (const conv of graph.nodes) {
    const site = padded(graph, index, conv);
    if (!site) continue;
    g ??= cloneGraph(graph);
    const { pad, dqx, weights, extra } = site;
    const [m, c, ...kernel] = weights.values.dims as number[];
    const inner = kernel.reduce((a, b) => a * b, 1);
    const kept = c! - extra;
    const out = new Int8Array(m! * kept * inner);
    const src = weights.values.data as Int8Array;
    for (let o = 0; o < m!; o++) out.set(src.subarray(o * c! * inner, (o * c! + kept) * inner), o * kept * inner);
    g.initializers.set(weights.name, makeTensor('int8', [m!, kept, ...kernel], out));
    const reader = g.nodes.find((n) => n.outputs[0] === dqx.outputs[0])!;
    reader.inputs = [pad.inputs[0]!, ...reader.inputs.slice(1)];
    g.valueInfo.delete(reader.outputs[0]!);
    if (index.consumersOf(pad.outputs[0]!).length === 1) g.nodes = g.nodes.filter((n) => n.outputs[0] !== pad.outputs[0]);
  }
  return g ?? graph;
}

/** A Conv whose DequantizeLinear input reads a channel-only Pad by its zero point, over weight channels that are all zero points. */
function padded(g: Graph, index: GraphIndex, conv: Node): { pad: Node; dqx: Node; weights: { name: string; values: Tensor }; extra: number } | undefined {
  if (conv.opType !== 'Conv' || (conv.domain !== '' && conv.domain !== 'ai.onnx')) return undefined;
  const dqx = index.producer.get(conv.inputs[0] ?? '');
  const dqw = index.producer.get(conv.inputs[1] ?? '');
  if (dqx?.opType !== 'DequantizeLinear' || dqw?.opType !== 'DequantizeLinear') return undefined;
  const pad = index.producer.get(dqx.inputs[0] ?? '');
  if (pad?.opType !== 'Pad' || (pad.attributes['mode'] !== undefined && pad.attributes['mode'].value !== 'constant')) return undefined;
  // Padded by the zero point: the added channels dequantize to 0.
  if (pad.inputs.length < 3 || pad.inputs[2] !== dqx.inputs[2] || pad.inputs[3]) return undefined;
  const pads = g.initializers.get(pad.inputs[1] ?? '');
  const name = dqw.inputs[0] ?? '';
  const values = g.initializers.get(name);
  const zeros = g.initializers.get(dqw.inputs[2] ?? '');
  if (!pads || pads.dtype !== 'int64' || values?.dtype !== 'int8' || zeros?.dtype !== 'int8' || values.dims.length < 3) return undefined;
  const rank = values.dims.length;
  const p = Array.from(pads.data as BigInt64Array, Number);
  const extra = p[rank + 1] ?? 0;
  if (p.length !== 2 * rank || extra <= 0 || p.some((v, i) => i !== rank + 1 && v !== 0)) return undefined;
  const [m, c, ...kernel] = values.dims as number[];
  if (extra >= c!) return undefined;
  const z = zeros.data as Int8Array;
  if (z.length === 0 || !z.every((v) => v === z[0])) return undefined;
  const inner = kernel.reduce((a, b) => a * b, 1);
  const w = values.data as Int8Array;
  for (let o = 0; o < m!; o++) for (let i = (o * c! + c! - extra) * inner; i < (o + 1) * c! * inner; i++) if (w[i] !== z[0]) return undefined;
  return { pad, dqx, weights: { name, values }, extra };
}

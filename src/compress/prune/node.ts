import type { Graph, Node } from '../../onnx/graph.js';
import type { NodeFacts } from '../../onnx/shape-inference.js';
import type { Tensor } from '../../onnx/tensor.js';
import { OpError, type OpDef } from '../../ops/op-def.js';
import { opDefFor } from '../../ops/registry.js';
import type { ChannelContext, ChannelParam, ChannelPorts, ChannelRule } from './channel-rule.js';
import { channelDim } from './rules.js';
import type { ShapeExprOf } from './shape-expr.js';

/**
 * A node of the dependency graph: a graph node with its channel rule applied. Exactly one of `ports`
 * (channels flow through it) and `boundary` (why they cannot) is set.
 */
export interface DepNode {
  /** Position in topological order. */
  index: number;
  node: Node;
  ctx: ChannelContext<unknown>;
  rule?: ChannelRule<unknown>;
  ports?: ChannelPorts;
  /** Stored tensors sliced with the ports' channels (empty for boundaries). */
  params: ChannelParam[];
  boundary?: string;
  /** Inputs this node reads whose channels may not change, and why (channels where the op does not take them). */
  frozenInputs?: { value: string; reason: string }[];
}

/** What the dependency graph lets rules look up beyond their own node (ChannelContext). */
export interface GraphLookups {
  shapeExpr?: ShapeExprOf;
  producer?: (value: string) => Node | undefined;
  consumers?: (value: string) => readonly Node[];
  stored?: (value: string) => Tensor | undefined;
}

/** The context a channel rule sees for one node; `axisOf` gives each value's channel axis (default 1). */
export function channelContext(
  graph: Graph,
  facts: NodeFacts,
  def: OpDef<unknown> | undefined,
  axisOf: ReadonlyMap<string, number> = new Map(),
  { shapeExpr, producer, consumers, stored }: GraphLookups = {},
): ChannelContext<unknown> {
  const { node } = facts;
  const opset = graph.opsets[node.domain === 'ai.onnx' ? '' : node.domain] ?? graph.opsets[''] ?? 0;
  const channelAxes = node.inputs.map((v) => axisOf.get(v) ?? 1);
  return {
    node, attrs: def ? def.parseAttrs(node, opset) : {}, opset, inputs: facts.inputs, outputs: facts.outputs, channelAxes,
    ...(shapeExpr ? { shapeExpr } : {}), ...(producer ? { producer } : {}), ...(consumers ? { consumers } : {}),
    ...(stored ? { stored } : {}),
  };
}

/**
 * The node's entry in the dependency graph. Nodes come in topological order: `axisOf` holds the channel
 * axis of every value written so far and gets this node's outputs (1 unless its rule says otherwise).
 */
export function makeDepNode(graph: Graph, facts: NodeFacts, index: number, axisOf: Map<string, number> = new Map(), lookups: GraphLookups = {}): DepNode {
  const dep = ruleNode(graph, facts, index, axisOf, lookups);
  dep.node.outputs.forEach((v, slot) => {
    if (v) axisOf.set(v, dep.ports?.outputAxes?.[slot] ?? 1);
  });
  return dep;
}

function ruleNode(graph: Graph, facts: NodeFacts, index: number, axisOf: ReadonlyMap<string, number>, lookups: GraphLookups): DepNode {
  const { node } = facts;
  const def = opDefFor(node);
  const rule = def?.channels;
  const base = { index, node, params: [] as ChannelParam[] };
  if (!def || !rule) return { ...base, ctx: channelContext(graph, facts, undefined), boundary: `${node.opType} has no channel rule` };
  const ctx = channelContext(graph, facts, def, axisOf, lookups);
  // No input carries channels (a reduction over them with keepdims 0 left their axis past the last): the
  // node has none to pass, and its outputs carry none either — not a boundary (a Reshape or Unsqueeze
  // after `x.mean(1)` was listed as one).
  if (carriesNoChannels(ctx)) {
    const outputAxes = ctx.outputs.map((o) => o?.shape?.length ?? 1);
    return { ...base, ctx, rule, ports: { inputs: [], outputs: [], coupling: 'independent', outputAxes }, params: [] };
  }
  try {
    const ports = rule.ports(ctx);
    if (typeof ports === 'string') return { ...base, ctx, rule, boundary: ports };
    const moved = rule.anyAxis ? [] : ports.inputs.filter((slot) => ctx.channelAxes[slot] !== 1 && channelDim(ctx.inputs[slot]?.type.shape, ctx.channelAxes[slot]) !== undefined);
    const why = (slot: number): string => `it carries its channels on axis ${ctx.channelAxes[slot]}, and ${node.opType} '${node.name}' takes them on axis 1`;
    // Channels elsewhere than where the op reads them: an op with channels of its own (Conv, Gemm) keeps
    // those and only leaves that input whole; one that passes channels through cannot pass these.
    if (moved.length > 0 && ports.coupling !== 'independent') return { ...base, ctx, rule, boundary: why(moved[0]!) };
    const params = (rule.params?.(ctx) ?? []).filter((p) => !(p.port.side === 'in' && moved.includes(p.port.slot)));
    // A param must be stored: a computed one (e.g. a dequantized weight) cannot be sliced.
    const computed = params.find((p) => !ctx.inputs[p.slot]?.constant);
    if (computed) return { ...base, ctx, rule, boundary: `input ${computed.slot} ('${node.inputs[computed.slot]}') is computed, not stored` };
    if (moved.length === 0) return { ...base, ctx, rule, ports, params };
    const kept = { ...ports, inputs: ports.inputs.filter((slot) => !moved.includes(slot)) };
    return { ...base, ctx, rule, ports: kept, params, frozenInputs: moved.map((slot) => ({ value: node.inputs[slot]!, reason: why(slot) })) };
  } catch (e) {
    if (e instanceof OpError) return { ...base, ctx, rule, boundary: e.message };
    throw e;
  }
}

/** Whether every input of known rank has its channel axis past its last axis (and one has a known rank). */
function carriesNoChannels(ctx: ChannelContext<unknown>): boolean {
  const ranks = ctx.inputs.map((input) => input?.type.shape?.length);
  return ranks.some((r) => r !== undefined && r >= 2) && ranks.every((r, slot) => r === undefined || ctx.channelAxes[slot]! >= r);
}

/** The value a port reads or writes. */
export function portValue(dep: DepNode, side: 'in' | 'out', slot: number): string | undefined {
  return (side === 'in' ? dep.node.inputs[slot] : dep.node.outputs[slot]) || undefined;
}

import type { Dim, Graph, Node } from '../../onnx/graph.js';
import type { NodeFacts } from '../../onnx/shape-inference.js';
import { OpError, type OpDef } from '../../ops/op-def.js';
import { opDefFor } from '../../ops/registry.js';
import type { ChannelContext, ChannelParam, ChannelPorts, ChannelRule } from './channel-rule.js';

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
}

/** The context a channel rule sees for one node; `axisOf` gives each value's channel axis (default 1). */
export function channelContext(graph: Graph, facts: NodeFacts, def: OpDef<unknown> | undefined, axisOf: ReadonlyMap<string, number> = new Map()): ChannelContext<unknown> {
  const { node } = facts;
  const opset = graph.opsets[node.domain === 'ai.onnx' ? '' : node.domain] ?? graph.opsets[''] ?? 0;
  const channelAxes = node.inputs.map((v) => axisOf.get(v) ?? 1);
  return { node, attrs: def ? def.parseAttrs(node, opset) : {}, opset, inputs: facts.inputs, outputs: facts.outputs, channelAxes };
}

/**
 * The node's entry in the dependency graph. Nodes come in topological order: `axisOf` holds the channel
 * axis of every value written so far and gets this node's outputs (1 unless its rule says otherwise).
 */
export function makeDepNode(graph: Graph, facts: NodeFacts, index: number, axisOf: Map<string, number> = new Map()): DepNode {
  const dep = ruleNode(graph, facts, index, axisOf);
  dep.node.outputs.forEach((v, slot) => {
    if (v) axisOf.set(v, dep.ports?.outputAxes?.[slot] ?? 1);
  });
  return dep;
}

function ruleNode(graph: Graph, facts: NodeFacts, index: number, axisOf: ReadonlyMap<string, number>): DepNode {
  const { node } = facts;
  const def = opDefFor(node);
  const rule = def?.channels;
  const base = { index, node, params: [] as ChannelParam[] };
  if (!def || !rule) return { ...base, ctx: channelContext(graph, facts, undefined), boundary: `${node.opType} has no channel rule` };
  const ctx = channelContext(graph, facts, def, axisOf);
  try {
    const ports = rule.ports(ctx);
    if (typeof ports === 'string') return { ...base, ctx, rule, boundary: ports };
    if (!rule.anyAxis) {
      const moved = ports.inputs.find((slot) => ctx.channelAxes[slot] !== 1 && channelCount(ctx, slot) !== undefined);
      if (moved !== undefined) {
        return { ...base, ctx, rule, boundary: `input '${node.inputs[moved]}' carries its channels on axis ${ctx.channelAxes[moved]}; ${node.opType} follows channels on axis 1 only` };
      }
    }
    const params = rule.params?.(ctx) ?? [];
    // A param must be stored: a computed one (e.g. a dequantized weight) cannot be sliced.
    const computed = params.find((p) => !ctx.inputs[p.slot]?.constant);
    if (computed) return { ...base, ctx, rule, boundary: `input ${computed.slot} ('${node.inputs[computed.slot]}') is computed, not stored` };
    return { ...base, ctx, rule, ports, params };
  } catch (e) {
    if (e instanceof OpError) return { ...base, ctx, rule, boundary: e.message };
    throw e;
  }
}

/** The size of an input's channel axis, or undefined when its rank has no such axis. */
function channelCount(ctx: ChannelContext<unknown>, slot: number): Dim | undefined {
  const shape = ctx.inputs[slot]?.type.shape;
  const axis = ctx.channelAxes[slot]!;
  return shape && axis < shape.length ? shape[axis] : undefined;
}

/** The value a port reads or writes. */
export function portValue(dep: DepNode, side: 'in' | 'out', slot: number): string | undefined {
  return (side === 'in' ? dep.node.inputs[slot] : dep.node.outputs[slot]) || undefined;
}

import type { Graph, Node } from '../../onnx/graph.js';
import type { NodeFacts } from '../../onnx/shape-inference.js';
import { OpError } from '../../ops/op-def.js';
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

export function makeDepNode(graph: Graph, facts: NodeFacts, index: number): DepNode {
  const { node } = facts;
  const def = opDefFor(node);
  const opset = graph.opsets[node.domain === 'ai.onnx' ? '' : node.domain] ?? graph.opsets[''] ?? 0;
  const rule = def?.channels;
  const base = { index, node, params: [] as ChannelParam[] };
  if (!def || !rule) {
    const ctx: ChannelContext<unknown> = { node, attrs: {}, opset, inputs: facts.inputs, outputs: facts.outputs };
    return { ...base, ctx, boundary: `${node.opType} has no channel rule` };
  }
  const ctx: ChannelContext<unknown> = { node, attrs: def.parseAttrs(node, opset), opset, inputs: facts.inputs, outputs: facts.outputs };
  try {
    const ports = rule.ports(ctx);
    if (typeof ports === 'string') return { ...base, ctx, rule, boundary: ports };
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

/** The value a port reads or writes. */
export function portValue(dep: DepNode, side: 'in' | 'out', slot: number): string | undefined {
  return (side === 'in' ? dep.node.inputs[slot] : dep.node.outputs[slot]) || undefined;
}

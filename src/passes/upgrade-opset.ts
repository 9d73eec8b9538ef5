import { inputError } from '../errors.js';
import { cloneGraph, cloneNode, type Graph, type Node } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { OpError, UPGRADE_OPSET, type UpgradeContext } from '../ops/op-def.js';
import { opDefFor } from '../ops/registry.js';
import type { Pass } from './pass.js';
import { freshName, valueNames } from './rewrite.js';

/** The oldest opset the rewrites start from: below 7, Gemm, BatchNormalization and Dropout had other forms. */
const OLDEST = 7;

/** Whether upgradeOpset rewrites this graph (opsets 7–12); a graph at 13 or later needs nothing. */
export function upgradesOpset(graph: Graph): boolean {
  const opset = graph.opsets[''] ?? 0;
  return opset >= OLDEST && opset < UPGRADE_OPSET;
}

/**
 * The graph at opset 13 (UPGRADE_OPSET), for models exported at 7–12 (torch.onnx before 1.12 wrote
 * opset 9 by default). QuantizeLinear needs opset 10 and per-channel weights 13. Simply raising the
 * opset number, as ONNX Runtime's quantizer does, changes what some nodes mean; here each op whose
 * form changed rewrites its nodes (OpDef.upgrade: Clip/Pad/Slice/Split/Squeeze/Unsqueeze/ReduceSum
 * attributes become inputs, Softmax keeps normalizing over the axes it did). Pure; a graph at 13 or
 * later is returned as it is.
 */
export function upgradeOpset(graph: Graph, options: { file?: string } = {}): Graph {
  const from = graph.opsets[''] ?? 0;
  if (from >= UPGRADE_OPSET) return graph;
  const fail = (problem: string, where?: string) =>
    inputError({ ...(options.file ? { file: options.file } : {}), ...(where ? { where } : {}), problem, fix: 're-export the model at opset 13 or later (torch.onnx.export(..., opset_version=17))' });
  if (from < OLDEST) throw fail(`the model uses ONNX opset ${from}; slimkit converts opsets ${OLDEST} to 12 to ${UPGRADE_OPSET}, not older ones`);

  const facts = inferShapes(graph, options);
  // Whether an op slimkit has no definition for means the same at opset 13 is unknown (Upsample is gone).
  const opaque = facts.nodes.find((f) => f.opaque && (f.node.domain === '' || f.node.domain === 'ai.onnx'));
  if (opaque) throw fail(`the model is ONNX opset ${from}, and slimkit cannot convert its ${opaque.node.opType}, an op it has no definition for, to opset ${UPGRADE_OPSET} (per-channel int8 weights need ${UPGRADE_OPSET})`, `node '${opaque.node.name}' (${opaque.node.opType})`);
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  for (const n of g.nodes) taken.add(n.name);
  const nodes: Node[] = [];
  for (const { node, inputs } of facts.nodes) {
    const def = opDefFor(node);
    if (!def?.upgrade || def.domain !== '') {
      nodes.push(cloneNode(node));
      continue;
    }
    const ctx: UpgradeContext<unknown> = {
      node,
      attrs: def.parseAttrs(node, from),
      opset: from,
      inputs,
      constant(base, value) {
        const name = freshName(taken, base);
        g.initializers.set(name, value);
        return name;
      },
      fresh: (base) => freshName(taken, base),
    };
    try {
      nodes.push(...def.upgrade(ctx).map((n) => (n === node ? cloneNode(node) : n)));
    } catch (e) {
      if (e instanceof OpError) throw fail(e.message, `node '${node.name}' (${node.opType})`);
      throw e;
    }
  }
  g.nodes = nodes;
  g.opsets = { ...g.opsets, '': UPGRADE_OPSET };
  g.irVersion = Math.max(g.irVersion, 7); // the first IR version that admits opset 13
  return g;
}

/** In pipelines: models older than opset 7 pass unchanged (fp16 conversion takes them; QDQ refuses them itself). */
export const upgradeOpsetPass: Pass = {
  name: 'upgrade-opset',
  description: `rewrite a model of opset ${OLDEST}–12 for opset ${UPGRADE_OPSET}: attributes that became inputs move, Softmax keeps its axes (per-channel QDQ needs 13)`,
  run: (graph) => (upgradesOpset(graph) ? upgradeOpset(graph) : graph),
  idleReason(graph) {
    const opset = graph.opsets[''] ?? 0;
    return opset >= UPGRADE_OPSET ? `nothing to rewrite: the model is at opset ${opset} already (this pass converts opsets ${OLDEST}–12 to ${UPGRADE_OPSET})` : undefined;
  },
};

import { inputError } from '../errors.js';
import { cloneGraph, dataInputs, type Graph, type Node, type ValueInfo } from '../onnx/graph.js';
import { fixedBatchOf } from '../onnx/image-input.js';
import { inferShapes, type InferenceResult } from '../onnx/shape-inference.js';
import { opDefFor } from '../ops/registry.js';
import { int64, toNumbers } from '../onnx/tensor.js';
import { constantValue } from './constants.js';
import { freshName, valueNames } from './rewrite.js';

/**
 * torch.onnx.export without `dynamic_axes` writes a model for one batch size (usually 1): its input is
 * [1, 3, H, W] and every `x.view(x.size(0), -1)` is stored as the Reshape target [1, -1]. Training,
 * calibration and QAT feed batches of many images, which ONNX Runtime refuses on such a model.
 *
 * `anyBatch` frees the batch: the inputs' leading dim becomes a symbol, and a stored Reshape target
 * whose first entry is the fixed batch, applied to a value whose first axis is the batch, copies the
 * input's batch instead (0; -1 under allowzero). At the exported batch the rewritten Reshape is the
 * same function, and it keeps each sample's elements in that sample, so every other batch size runs
 * each sample as the batch-1 model would. Shape inference then has to show every output following the
 * batch; a node that still fixes it (a Slice or Expand of the batch axis, say) is named in an error.
 * Pure: the input graph is not changed.
 */
export interface AnyBatch {
  graph: Graph;
  /** The batch the model was exported for; undefined when its batch was already free. */
  fixedBatch?: number;
  /** The graph inputs and outputs whose leading dim was freed, and the symbol it became (what fixBatch sets back). */
  freed: { inputs: string[]; outputs: string[]; symbol?: string };
  /** Names of the Reshape nodes whose stored target was rewritten. */
  reshapes: string[];
}

export function anyBatch(graph: Graph, options: { file?: string } = {}): AnyBatch {
  const image = dataInputs(graph)[0];
  const fixed = fixedBatchOf(image?.shape);
  const unchanged: AnyBatch = { graph, freed: { inputs: [], outputs: [] }, reshapes: [] };
  // A model whose batch is free on any input is not one exported for a single batch size.
  if (fixed === undefined || dataInputs(graph).some((v) => typeof v.shape?.[0] === 'string')) return unchanged;
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  for (const v of g.inputs) for (const d of v.shape ?? []) if (typeof d === 'string') taken.add(d);
  const symbol = freshName(taken, 'batch');
  // The image input, and other inputs of the same rank and batch (a second image, a mask).
  const inputs = dataInputs(g).filter((v) => v.shape?.[0] === fixed && v.shape.length === image!.shape!.length).map((v) => v.name);
  const outputs = g.outputs.filter((v) => v.shape?.[0] === fixed).map((v) => v.name);
  const freeFirst = (v: ValueInfo): ValueInfo => ({ ...v, shape: [symbol, ...v.shape!.slice(1)] });
  g.inputs = g.inputs.map((v) => (inputs.includes(v.name) ? freeFirst(v) : v));
  g.outputs = g.outputs.map((v) => (outputs.includes(v.name) ? freeFirst(v) : v));
  // Stored intermediate types would pin the batch again when ONNX Runtime merges them with its own. Those
  // measured for ops slimkit has no definition for are what inference knows of them: freed too, and
  // measured again on the freed graph before use (runtime/opaque-types.ts).
  const opaqueOutputs = new Set(g.nodes.filter((n) => !opDefFor(n)).flatMap((n) => n.outputs));
  for (const [name, info] of [...g.valueInfo]) {
    if (info.shape?.[0] !== fixed) continue;
    if (opaqueOutputs.has(name)) g.valueInfo.set(name, freeFirst(info));
    else g.valueInfo.delete(name);
  }

  const reshapes: string[] = [];
  let facts = inferShapes(g, options);
  for (let node = batchPinningReshape(g, facts, fixed, symbol); node && copyBatchInTarget(g, node, taken); node = batchPinningReshape(g, facts, fixed, symbol)) {
    reshapes.push(node.name);
    facts = inferShapes(g, options);
  }
  // Outputs declared with the batch, or with no shape, must follow it; others (a [classes] vector) need not.
  const follow = g.outputs.filter((v) => !v.shape || outputs.includes(v.name)).map((v) => v.name);
  checkOutputsFollowBatch(g, facts, follow, fixed, symbol, options.file);
  return { graph: g, fixedBatch: fixed, freed: { inputs, outputs, symbol }, reshapes };
}

/**
 * A graph derived from anyBatch's with the freed inputs' and outputs' leading dim set back to `batch`,
 * and intermediate types that carry the freed batch's symbol dropped (they would disagree) — but for the
 * measured types of ops slimkit has no definition for, which are all it knows of them: fixed too. Pure.
 */
export function fixBatch(graph: Graph, batch: number, freed: AnyBatch['freed']): Graph {
  const fix = (v: ValueInfo, names: readonly string[]): ValueInfo => (names.includes(v.name) && v.shape?.length ? { ...v, shape: [batch, ...v.shape.slice(1)] } : v);
  const opaqueOutputs = graph.nodes.filter((n) => !opDefFor(n)).flatMap((n) => n.outputs);
  const valueInfo = new Map([...graph.valueInfo].flatMap(([name, info]): [string, ValueInfo][] => {
    if (info.shape?.[0] === undefined || info.shape[0] !== freed.symbol) return [[name, info]];
    return opaqueOutputs.includes(name) ? [[name, fix(info, [name])]] : [];
  }));
  return {
    ...graph,
    inputs: graph.inputs.map((v) => fix(v, freed.inputs)),
    outputs: graph.outputs.map((v) => fix(v, freed.outputs)),
    valueInfo,
  };
}

/** The first Reshape (in order) whose stored target turns a batch axis into the fixed number. */
function batchPinningReshape(g: Graph, facts: InferenceResult, fixed: number, symbol: string): Node | undefined {
  for (const { node, inputs, outputs } of facts.nodes) {
    if (node.opType !== 'Reshape' || inputs[0]?.type.shape?.[0] !== symbol || outputs[0]?.shape?.[0] === symbol) continue;
    const target = storedTarget(g, node);
    if (target && target[0] === fixed) return node;
  }
  return undefined;
}

/** A Reshape target held in the file (initializer or Constant node), not computed at run time. */
function storedTarget(g: Graph, node: Node): number[] | undefined {
  const name = node.inputs[1];
  if (!name) return undefined;
  const init = g.initializers.get(name);
  if (init) return toNumbers(init);
  const constant = g.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name);
  return constant ? toNumbers(constantValue(constant)) : undefined;
}

/** Point the Reshape at a copy of its target whose first entry copies the batch; false when none can. */
function copyBatchInTarget(g: Graph, node: Node, taken: Set<string>): boolean {
  const target = storedTarget(g, node)!;
  const allowZero = node.attributes['allowzero']?.type === 'int' && node.attributes['allowzero'].value !== 0;
  // Under allowzero a 0 is a size of zero: the batch is then the one inferred entry, if none is yet.
  const first = allowZero ? (target.includes(-1) ? undefined : -1) : 0;
  if (first === undefined) return false;
  const old = node.inputs[1]!;
  const name = freshName(taken, `${old}_any_batch`);
  g.initializers.set(name, int64([target.length], [first, ...target.slice(1)]));
  g.nodes[g.nodes.indexOf(node)] = { ...node, inputs: [node.inputs[0]!, name, ...node.inputs.slice(2)] };
  // The old target, now read by nothing, goes (a Constant node or an initializer only it read).
  if (!g.nodes.some((n) => n.inputs.includes(old)) && !g.outputs.some((o) => o.name === old) && !g.inputs.some((v) => v.name === old)) {
    g.initializers.delete(old);
    g.nodes = g.nodes.filter((n) => !(n.opType === 'Constant' && n.outputs[0] === old));
  }
  return true;
}

function checkOutputsFollowBatch(g: Graph, facts: InferenceResult, follow: readonly string[], fixed: number, symbol: string, file: string | undefined): void {
  const types = facts.types;
  const stuck = g.outputs.find((o) => follow.includes(o.name) && types.get(o.name)?.shape?.[0] !== symbol);
  if (!stuck) return;
  const culprit = facts.nodes.find(({ inputs, outputs }) =>
    inputs.some((i) => i?.type.shape?.[0] === symbol) && outputs.some((t) => t.shape !== undefined && t.shape.length > 0 && t.shape[0] !== symbol));
  const where = culprit ? `node '${culprit.node.name}' (${culprit.node.opType})` : `output '${stuck.name}'`;
  throw inputError({
    ...(file ? { file } : {}),
    where,
    problem: `the model takes ${fixed} sample(s) at a time, and ${culprit ? 'this node keeps its first axis at that size' : 'slimkit cannot tell that this output follows the first axis'}, so it cannot be trained or calibrated on batches of other sizes (or its first axis is not a batch)`,
    fix: "re-export it with a free batch axis: torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})",
  });
}

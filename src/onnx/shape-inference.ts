import { inputError, SlimError } from '../errors.js';
import { OpError, type InputFacts, type KnownValue, type OpContext } from '../ops/op-def.js';
import { OPS, opDefFor } from '../ops/registry.js';
import { dataInputs, type Dim, type Graph, type Node, type ValueType } from './graph.js';
import { toNumbers, type Tensor } from './tensor.js';
import { topologicalOrder } from './topology.js';

/** Integer constants up to this many elements are tracked as known values (shapes, axes, indices). */
const KNOWN_VALUE_LIMIT = 4096;

export interface NodeFacts {
  node: Node;
  inputs: (InputFacts | undefined)[];
  outputs: ValueType[];
  macs: number;
  /**
   * An op slimkit has no definition for, whose output types were measured (ONNX Runtime ran it):
   * nothing is known of what it computes, and its MACs are counted as 0.
   */
  opaque?: true;
}

export interface InferenceResult {
  /** Type of every value: graph inputs, initializers and node outputs. */
  types: Map<string, ValueType>;
  /** Statically known contents of small integer values. */
  known: Map<string, KnownValue>;
  /** Per node, in topological order. */
  nodes: NodeFacts[];
  /** Sum of node MACs for one forward pass (per sample when the batch dimension is symbolic). */
  totalMacs: number;
}

export interface InferOptions {
  /** Named in error messages. */
  file?: string;
  /** Override graph input shapes, e.g. to fix the batch size. */
  inputShapes?: Record<string, Dim[]>;
}

export function knownValueOf(t: Tensor): KnownValue | undefined {
  const isInt = t.dtype === 'int64' || t.dtype === 'int32';
  if (!isInt || t.data.length > KNOWN_VALUE_LIMIT) return undefined;
  return { dims: [...t.dims], values: toNumbers(t) };
}

/** The refusal of an op slimkit has no definition for, naming what still runs the model. */
export function unsupportedOpError(node: Node, file?: string, others: readonly string[] = []): SlimError {
  const domain = node.domain && node.domain !== 'ai.onnx' ? ` in domain '${node.domain}'` : '';
  // The model's other such ops too (`others`: their names): fixing one at a time cost an export each.
  const also = others.filter((op) => op !== node.opType && op !== `${node.domain}.${node.opType}`);
  return inputError({
    ...(file ? { file } : {}),
    where: `node '${node.name}' (${node.opType})`,
    problem: `op ${node.opType}${domain} is not supported${also.length ? ` (nor ${also.join(', ')})` : ''}`,
    // The ops themselves are listed in the README ("Ops slimkit defines"): 74 names here buried the fix.
    fix: `slim eval, bench, info and deploy still run it with ONNX Runtime, and quantize leaves it float; prune and train need each op to be one of slimkit's ${Object.keys(OPS).length} (README, "Ops slimkit defines"): export the model without ${[node.opType, ...also].join(", ")}, and \`slim info\` names every such op it has`,
  });
}

/**
 * Types and shapes of every value, computed from the op registry in topological order. Throws a
 * SlimError naming the file and node on unsupported ops and on inputs an op cannot accept.
 */
export function inferShapes(graph: Graph, options: InferOptions = {}): InferenceResult {
  const types = new Map<string, ValueType>();
  const known = new Map<string, KnownValue>();
  const literals = new Map<string, Tensor>();
  const fail = (problem: string, where?: string, fix?: string): SlimError =>
    inputError({ ...(options.file ? { file: options.file } : {}), ...(where ? { where } : {}), problem, ...(fix ? { fix } : {}) });

  for (const [name, t] of graph.initializers) {
    types.set(name, { dtype: t.dtype, shape: [...t.dims] });
    const value = knownValueOf(t);
    if (value) known.set(name, value);
  }
  for (const v of dataInputs(graph)) {
    const shape = options.inputShapes?.[v.name] ?? v.shape;
    types.set(v.name, shape ? { dtype: v.dtype, shape: [...shape] } : { dtype: v.dtype });
  }

  let order: Node[];
  try {
    order = topologicalOrder(graph);
  } catch (e) {
    throw e instanceof SlimError && options.file ? e.inFile(options.file) : e;
  }

  const nodes: NodeFacts[] = [];
  let totalMacs = 0;
  for (const node of order) {
    const where = `node '${node.name}' (${node.opType})`;
    const def = opDefFor(node);
    if (!def) {
      // An op slimkit has no definition for passes only with types given for its outputs (quantize
      // measures them with ONNX Runtime and leaves the op float: runtime/opaque-types.ts).
      const measured = node.outputs.map((out) => (out ? graph.valueInfo.get(out) : undefined));
      if (node.outputs.some((out, i) => out && !measured[i]?.shape)) throw unsupportedOpError(node, options.file);
      const inputs = node.inputs.map((name): InputFacts | undefined => {
        const type = name ? types.get(name) : undefined;
        return name && type ? { name, type } : undefined;
      });
      const outputs = measured.map((v) => ({ dtype: v?.dtype ?? 'float32', ...(v?.shape ? { shape: [...v.shape] } : {}) }));
      node.outputs.forEach((out, i) => void (out && types.set(out, outputs[i]!)));
      nodes.push({ node, inputs, outputs, macs: 0, opaque: true });
      continue;
    }
    const [minIn, maxIn] = def.inputCount;
    const [minOut, maxOut] = def.outputCount;
    if (node.inputs.length < minIn || node.inputs.length > maxIn) {
      throw fail(`has ${node.inputs.length} inputs; ${node.opType} takes ${minIn === maxIn ? minIn : `${minIn} to ${maxIn}`}`, where);
    }
    if (node.outputs.length < minOut || node.outputs.length > maxOut) {
      throw fail(`has ${node.outputs.length} outputs; ${node.opType} gives ${minOut === maxOut ? minOut : `${minOut} to ${maxOut}`}`, where);
    }
    const inputs = node.inputs.map((name): InputFacts | undefined => {
      if (!name) return undefined;
      const type = types.get(name);
      if (!type) throw fail(`input '${name}' has no known type`, where);
      const constant = graph.initializers.get(name);
      const value = known.get(name);
      const literal = literals.get(name);
      return { name, type, ...(constant ? { constant } : {}), ...(literal ? { literal } : {}), ...(value ? { known: value } : {}) };
    });
    const literal = node.opType === 'Constant' ? node.attributes['value'] : undefined;
    if (literal?.type === 'tensor' && node.outputs[0]) literals.set(node.outputs[0], literal.value);
    const opset = graph.opsets[node.domain === 'ai.onnx' ? '' : node.domain] ?? graph.opsets[''] ?? 0;
    let outputs: ValueType[];
    let macs: number;
    try {
      const attrs = def.parseAttrs(node, opset);
      const ctx: OpContext<unknown> = { node, attrs, opset, inputs };
      outputs = def.inferTypes(ctx);
      macs = def.macs(ctx, outputs);
      const values = def.foldValues?.(ctx, outputs) ?? [];
      values.forEach((v, i) => {
        const out = node.outputs[i];
        if (v && out) known.set(out, v);
      });
    } catch (e) {
      if (e instanceof OpError) throw fail(e.message, where, 'check the exporter and opset that produced this model');
      throw e;
    }
    node.outputs.forEach((out, i) => {
      const t = outputs[i];
      if (out && t) types.set(out, t);
    });
    nodes.push({ node, inputs, outputs, macs });
    totalMacs += macs;
  }
  return { types, known, nodes, totalMacs };
}

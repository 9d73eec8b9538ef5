/**
 * ONNX model-local functions (ModelProto.functions): `torch.onnx.export(..., export_modules_as_functions=…)`
 * writes each module class once as a function and the graph as calls to it, with the parameters passed
 * in. slimkit's passes, pruning rules and engine work on plain ops, so the decoder inlines every call:
 * the function body's nodes take the call's inputs and outputs, their other values get names prefixed
 * by the call node's, and attributes that refer to the call's (ref_attr_name) take its values.
 */
import type { IAttributeProto } from './proto.js';
import type { Attribute, Node } from './graph.js';

export interface LocalFunction {
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** FunctionProto.attribute: the attributes it declares without a default value. */
  attributes: string[];
  nodes: Node[];
  /** The function's own opset imports; '' is ai.onnx. */
  opsets: Record<string, number>;
}

/** Calls of functions nested deeper than this are taken for a recursion. */
const MAX_DEPTH = 32;
/** A damaged or hostile file could nest calls that double at every level: stop well before memory does. */
const MAX_NODES = 1_000_000;

const keyOf = (domain: string, name: string): string => `${domain}\u0000${name}`;

export interface InlineContext {
  /** The model's opset imports ('' is ai.onnx). */
  opsets: Record<string, number>;
  /** Every name the model already uses (values, initializers, inputs, outputs, value_info, nodes). */
  names: Iterable<string>;
  fail: (problem: string) => Error;
}

/**
 * `nodes` with every call of a local function replaced by the function's body (recursively). Throws
 * `fail(problem)` for a function whose ai.onnx opset differs from the model's, that calls itself, that
 * is overloaded, or that leaves an attribute to a default slimkit's onnx.proto (ONNX 1.12) cannot read.
 */
export function inlineFunctions(nodes: readonly Node[], functions: readonly LocalFunction[], context: InlineContext): Node[] {
  const { opsets: modelOpsets, fail } = context;
  const byKey = new Map<string, LocalFunction>();
  for (const f of functions) {
    // IR 10 lets functions share a name with different `overload`s, a field ONNX 1.12 does not have.
    if (byKey.has(keyOf(f.domain, f.name))) throw fail(`local function '${f.name}' is defined twice (overloads are not supported)`);
    byKey.set(keyOf(f.domain, f.name), f);
  }
  for (const f of functions) {
    const theirs = f.opsets[''];
    if (theirs !== undefined && modelOpsets[''] !== undefined && theirs !== modelOpsets['']) {
      throw fail(`local function '${f.name}' imports ai.onnx opset ${theirs} and the model ${modelOpsets['']}; slimkit inlines functions of the model's opset only`);
    }
  }
  const taken = new Set<string>(context.names);
  for (const n of nodes) for (const v of [...n.inputs, ...n.outputs, n.name]) if (v) taken.add(v);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };

  let made = 0;
  const expand = (list: readonly Node[], depth: number): Node[] =>
    list.flatMap((node) => {
      const f = byKey.get(keyOf(node.domain, node.opType));
      if (!f) return [node];
      if (depth >= MAX_DEPTH) throw fail(`local function '${f.name}' calls itself (nested more than ${MAX_DEPTH} deep)`);
      made += f.nodes.length;
      if (made > MAX_NODES) throw fail(`its local functions expand to more than ${MAX_NODES.toLocaleString('en')} nodes`);
      return expand(instantiate(f, node, unique, context), depth + 1);
    });
  return expand(nodes, 0);
}

/** The body of `f` for one call: values and node names renamed, referenced attributes filled in. */
function instantiate(f: LocalFunction, call: Node, unique: (base: string) => string, context: InlineContext): Node[] {
  const prefix = call.name || call.outputs.find(Boolean) || f.name;
  const names = new Map<string, string>();
  f.inputs.forEach((formal, i) => names.set(formal, call.inputs[i] ?? ''));
  // An output the call leaves out is still a value inside the body.
  f.outputs.forEach((formal, i) => names.set(formal, call.outputs[i] || unique(`${prefix}/${formal}`)));
  const rename = (v: string): string => {
    if (!v) return v;
    let actual = names.get(v);
    if (actual === undefined) names.set(v, (actual = unique(`${prefix}/${v}`)));
    return actual;
  };
  return f.nodes.map((n) => {
    const attributes: Record<string, Attribute> = {};
    for (const [key, a] of Object.entries(n.attributes)) {
      const ref = referencedAttribute(a);
      if (ref === undefined) attributes[key] = a;
      else if (call.attributes[ref]) attributes[key] = call.attributes[ref];
      // Unset by the call: the op's default for an attribute declared without one; one declared with
      // a default is in IR 9's attribute_proto, which ONNX 1.12's onnx.proto (slimkit's) cannot read.
      else if (!f.attributes.includes(ref)) throw context.fail(`a call of local function '${f.name}' leaves attribute '${ref}' to the function's default, which slimkit cannot read`);
    }
    return {
      ...n,
      name: unique(`${prefix}/${n.name || n.opType}`),
      inputs: n.inputs.map(rename),
      outputs: n.outputs.map(rename),
      attributes,
    };
  });
}

function referencedAttribute(a: Attribute): string | undefined {
  if (a.type !== 'opaque') return undefined;
  const ref = (a.value as IAttributeProto).ref_attr_name;
  return ref ? ref : undefined;
}

import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';
import { VERSION } from '../version.js';

/** A dimension: a number, or a symbol such as "batch" when the model leaves it free. */
export type Dim = number | string;

/** What is known statically about a value. `shape` is undefined when even the rank is unknown. */
export interface ValueType {
  dtype: DType;
  shape?: Dim[];
}

export interface ValueInfo extends ValueType {
  name: string;
}

/**
 * A node attribute, tagged by its ONNX type so that it writes back the way it was read.
 * Integers are JS numbers: int64 values beyond 2^53 (INT64_MAX in Slice ends) round, and are clamped
 * back into int64 range on write.
 */
export interface AttributeValues {
  float: number;
  int: number;
  string: string;
  tensor: Tensor;
  floats: number[];
  ints: number[];
  strings: string[];
  /** Subgraphs (If/Loop/Scan bodies) and other kinds slimkit does not interpret, kept for round trips. */
  opaque: unknown;
}

export type AttributeType = keyof AttributeValues;
export type Attribute = { [K in AttributeType]: { type: K; value: AttributeValues[K] } }[AttributeType];

export interface Node {
  name: string;
  opType: string;
  /** '' is the default ONNX domain ("ai.onnx"). */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
  docString?: string;
}

/**
 * The one IR: an ONNX model as plain data. Nodes are kept in topological order by every pass.
 * A Graph is treated as immutable: passes return new Graphs (see `cloneGraph`), and tensors are shared.
 */
export interface Graph {
  name: string;
  irVersion: number;
  /** domain → opset version; '' is ai.onnx. */
  opsets: Record<string, number>;
  producerName: string;
  producerVersion: string;
  /** The model's doc string. */
  docString: string;
  /** The graph's own doc string, when it has one. */
  graphDocString?: string;
  /** ModelProto.model_version and domain: kept so a round trip does not drop them. */
  modelVersion?: number;
  domain?: string;
  metadata: Record<string, string>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Map<string, Tensor>;
  /** Types of intermediate values, as stored in the file or filled in by shape inference. */
  valueInfo: Map<string, ValueInfo>;
  /**
   * The model-local functions (export_modules_as_functions) whose calls reading the file inlined, by
   * name: `slim info` says so. Never written: the models slimkit writes hold the plain ops.
   */
  inlinedFunctions?: string[];
}

export function emptyGraph(name = 'main', opset = 17): Graph {
  return {
    name,
    irVersion: 8,
    opsets: { '': opset },
    producerName: 'slimkit',
    producerVersion: VERSION,
    docString: '',
    metadata: {},
    inputs: [],
    outputs: [],
    nodes: [],
    initializers: new Map(),
    valueInfo: new Map(),
  };
}

/** Metadata key of the tool a model slimkit rewrote came from (its producer before: `pytorch 1.13.0`). */
export const SOURCE_PRODUCER_KEY = 'slimkit.source_producer';

/**
 * A model a command made (trained, quantized, pruned, optimized) names slimkit as its producer, as ONNX
 * means the field; the tool its input came from is kept in SOURCE_PRODUCER_KEY (the first one, across
 * several slimkit steps).
 */
export function madeBySlimkit(graph: Graph): Graph {
  const source = [graph.producerName, graph.producerVersion].filter(Boolean).join(' ');
  const keep = graph.producerName === 'slimkit' || !source || graph.metadata[SOURCE_PRODUCER_KEY] !== undefined;
  return {
    ...graph,
    producerName: 'slimkit',
    producerVersion: VERSION,
    metadata: keep ? graph.metadata : { ...graph.metadata, [SOURCE_PRODUCER_KEY]: source },
  };
}

export function cloneNode(node: Node): Node {
  return {
    ...node,
    inputs: [...node.inputs],
    outputs: [...node.outputs],
    attributes: { ...node.attributes },
  };
}

/** A structural copy: new containers and nodes, shared (immutable) tensors. */
export function cloneGraph(graph: Graph): Graph {
  return {
    ...graph,
    opsets: { ...graph.opsets },
    metadata: { ...graph.metadata },
    inputs: graph.inputs.map((v) => ({ ...v, ...(v.shape ? { shape: [...v.shape] } : {}) })),
    outputs: graph.outputs.map((v) => ({ ...v, ...(v.shape ? { shape: [...v.shape] } : {}) })),
    nodes: graph.nodes.map(cloneNode),
    initializers: new Map(graph.initializers),
    valueInfo: new Map(graph.valueInfo),
  };
}

export function opsetVersion(graph: Graph, domain = ''): number {
  const v = graph.opsets[domain === 'ai.onnx' ? '' : domain];
  if (v === undefined) throw new Error(`graph imports no opset for domain '${domain || 'ai.onnx'}'`);
  return v;
}

/** Graph inputs that are real inputs (ONNX IR < 4 also lists initializers as inputs). */
export function dataInputs(graph: Graph): ValueInfo[] {
  return graph.inputs.filter((v) => !graph.initializers.has(v.name));
}

/** Producer and consumer lookups. Build one after changing a graph; it does not track edits. */
export class GraphIndex {
  readonly producer = new Map<string, Node>();
  readonly consumers = new Map<string, Node[]>();

  constructor(readonly graph: Graph) {
    for (const node of graph.nodes) {
      for (const out of node.outputs) if (out) this.producer.set(out, node);
      for (const input of node.inputs) {
        if (!input) continue;
        const list = this.consumers.get(input);
        if (list) list.push(node);
        else this.consumers.set(input, [node]);
      }
    }
  }

  consumersOf(value: string): readonly Node[] {
    return this.consumers.get(value) ?? [];
  }

  /** True when `value` is read by a node or is a graph output. */
  isUsed(value: string): boolean {
    return this.consumersOf(value).length > 0 || this.graph.outputs.some((o) => o.name === value);
  }

  isGraphOutput(value: string): boolean {
    return this.graph.outputs.some((o) => o.name === value);
  }

  /** The single consumer of `value`, if it has exactly one and is not also a graph output. */
  soleConsumer(value: string): Node | undefined {
    const list = this.consumersOf(value);
    return list.length === 1 && !this.isGraphOutput(value) ? list[0] : undefined;
  }
}

export function attr<T extends AttributeType>(node: Node, name: string, type: T): AttributeValues[T] | undefined {
  const a = node.attributes[name];
  if (!a) return undefined;
  if (a.type !== type) {
    throw new TypeError(`attribute '${name}' of ${node.opType} node '${node.name}' is ${a.type}, expected ${type}`);
  }
  return a.value as AttributeValues[T];
}

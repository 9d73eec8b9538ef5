/**
 * The dependency graph over the IR: which channels must be pruned together, and which may not be
 * pruned at all. Every value with a channel axis that a port reads or writes gets a channel space; the
 * couplings ops declare (dependency.ts) union channels across spaces; channels that reach a graph input
 * or output, a stored tensor used as data, or a node without a channel rule are frozen. What remains
 * falls into groups (group.ts) — one per set of values that share channels, e.g. a residual stage.
 */
import { dataInputs, GraphIndex, type Graph, type Node } from '../../onnx/graph.js';
import { inferShapes, type InferenceResult } from '../../onnx/shape-inference.js';
import type { Tensor } from '../../onnx/tensor.js';
import { nodeDependencies, type Dependency } from './dependency.js';
import { channelDim } from './rules.js';
import type { Group } from './group.js';
import { makeDepNode, portValue, type DepNode } from './node.js';
import { shapeExprs } from './shape-expr.js';

/** The channels of one value: elements base … base + size − 1 of the graph's union-find. */
export interface ChannelSpace {
  value: string;
  /** The value's channel axis: 1, or where a Transpose moved the channels. */
  axis: number;
  size: number;
  base: number;
}

/** A node pruning cannot cross, and why: listed in every report. */
export interface Boundary {
  node: string;
  opType: string;
  reason: string;
}

export interface DependencyGraph {
  graph: Graph;
  facts: InferenceResult;
  nodes: DepNode[];
  edges: Dependency[];
  spaces: Map<string, ChannelSpace>;
  /** Component of each element (a channel of a space). */
  component: Int32Array;
  /** Group of each component; −1 when its channels are frozen. */
  groupOf: Int32Array;
  groups: Group[];
  boundaries: Boundary[];
  /** Values whose channels may not change, with the first reason found. */
  frozen: Map<string, string>;
}

class UnionFind {
  private readonly parent: Int32Array;

  constructor(size: number) {
    this.parent = Int32Array.from({ length: size }, (_, i) => i);
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }

  union(a: number, b: number): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

/** What the steps below share while the graph is built. */
interface Builder {
  graph: Graph;
  nodes: DepNode[];
  spaces: Map<string, ChannelSpace>;
  frozen: Map<string, string>;
  uf: UnionFind;
  /** The element standing for "frozen". */
  sentinel: number;
  channelsOf(value: string): number | string | undefined;
  freeze(value: string | undefined, reason: string): void;
}

export function buildDependencyGraph(graph: Graph, facts: InferenceResult = inferShapes(graph)): DependencyGraph {
  const axisOf = new Map<string, number>();
  const shapeExpr = shapeExprs(graph, facts, (v) => axisOf.get(v));
  const index = new GraphIndex(graph);
  const producer = (value: string): Node | undefined => index.producer.get(value);
  const consumers = (value: string): readonly Node[] => index.consumersOf(value);
  const stored = (value: string): Tensor | undefined => graph.initializers.get(value);
  const nodes = facts.nodes.map((f, i) => makeDepNode(graph, f, i, axisOf, { shapeExpr, producer, consumers, stored }));
  const frozen = new Map<string, string>();
  const channelsOf = (value: string): number | string | undefined => channelDim(facts.types.get(value)?.shape, axisOf.get(value));
  const freeze = (value: string | undefined, reason: string): void => {
    if (value && channelsOf(value) !== undefined && !frozen.has(value)) frozen.set(value, reason);
  };
  const spaces = channelSpaces(nodes, channelsOf, (v) => axisOf.get(v) ?? 1, freeze);
  const total = [...spaces.values()].reduce((a, s) => a + s.size, 0);
  const b: Builder = { graph, nodes, spaces, frozen, uf: new UnionFind(total + 1), sentinel: total, channelsOf, freeze };

  freezeFixedValues(b);
  const edges = unionDependencies(b);
  freezeAll(b);
  const boundaries = findBoundaries(b);
  freezeAll(b);

  const { component, count } = numberComponents(b, total);
  const frozenComponent = b.uf.find(b.sentinel) === b.sentinel ? -1 : component[b.uf.find(b.sentinel)]!;
  const sources = sourceValues(nodes);
  const free = new Uint8Array(count);
  for (const v of sources) {
    const s = spaces.get(v);
    for (let i = 0; s && i < s.size; i++) free[component[s.base + i]!] = 1;
  }
  if (frozenComponent >= 0) free[frozenComponent] = 0;
  const groupOf = new Int32Array(count).fill(-1);
  const groups = formGroups(b, component, free, sources, groupOf);
  return { graph, facts, nodes, edges, spaces, component, groupOf, groups, boundaries, frozen };
}

/** A space for every value a port reads or writes that has a static channel count. */
function channelSpaces(
  nodes: DepNode[],
  channelsOf: (value: string) => number | string | undefined,
  axisOf: (value: string) => number,
  freeze: (value: string, reason: string) => void,
): Map<string, ChannelSpace> {
  const spaces = new Map<string, ChannelSpace>();
  let total = 0;
  const add = (value: string | undefined): void => {
    const c = value ? channelsOf(value) : undefined;
    if (!value || c === undefined || spaces.has(value)) return;
    if (typeof c !== 'number') return freeze(value, `its channel count is symbolic (${c})`);
    spaces.set(value, { value, axis: axisOf(value), size: c, base: total });
    total += c;
  };
  for (const dep of nodes) {
    for (const slot of dep.ports?.inputs ?? []) add(portValue(dep, 'in', slot));
    for (const slot of dep.ports?.outputs ?? []) add(portValue(dep, 'out', slot));
  }
  return spaces;
}

/** Graph inputs and outputs, stored tensors read as data, outputs a node writes without a port. */
function freezeFixedValues(b: Builder): void {
  for (const v of dataInputs(b.graph)) b.freeze(v.name, 'it is a graph input');
  for (const v of b.graph.outputs) b.freeze(v.name, 'it is a graph output');
  for (const dep of b.nodes) {
    for (const f of dep.frozenInputs ?? []) b.freeze(f.value, f.reason);
    const ports = dep.ports;
    if (!ports) continue;
    for (const slot of ports.inputs) {
      const v = portValue(dep, 'in', slot);
      if (v && b.graph.initializers.has(v)) b.freeze(v, 'it is a stored tensor');
    }
    dep.node.outputs.forEach((v, slot) => {
      if (!ports.outputs.includes(slot)) b.freeze(v, `node '${dep.node.name}' (${dep.node.opType}) writes it without a channel port`);
    });
  }
}

function unionDependencies(b: Builder): Dependency[] {
  const edges: Dependency[] = [];
  const sizeOf = (v: string): number | undefined => b.spaces.get(v)?.size;
  for (const dep of b.nodes) {
    for (const e of nodeDependencies(dep, sizeOf)) {
      const from = b.spaces.get(e.from);
      const to = b.spaces.get(e.to);
      if (!from || !to || e.fromStart + e.count > from.size || e.toStart + e.count * e.span > to.size) {
        // The rule and the inferred shapes disagree: do not guess, keep both values as they are.
        const why = !from || !to ? `node '${e.node}' ties channels to a value that has none to prune` : `node '${e.node}' maps more channels than it has`;
        b.freeze(e.from, why);
        b.freeze(e.to, why);
        continue;
      }
      edges.push(e);
      for (let i = 0; i < e.count; i++) {
        for (let k = 0; k < e.span; k++) b.uf.union(from.base + e.fromStart + i, to.base + e.toStart + i * e.span + k);
      }
    }
  }
  return edges;
}

function freezeAll(b: Builder): void {
  for (const [value] of b.frozen) {
    const s = b.spaces.get(value);
    for (let i = 0; s && i < s.size; i++) b.uf.union(s.base + i, b.sentinel);
  }
}

/**
 * Freeze what boundary nodes touch, and list those that stop something. One that keeps the channel
 * count (Softmax, Transpose) would pass channels through if it had a rule, so it stops nothing when a
 * value it touches is fixed anyway by a graph input or output (a Softmax on the logits is not news).
 */
function findBoundaries(b: Builder): Boundary[] {
  const boundaries: Boundary[] = [];
  const fixedBefore = new Set(b.frozen.keys());
  const frozenRoot = b.uf.find(b.sentinel);
  const fixed = (v: string): boolean => {
    const s = b.spaces.get(v);
    if (fixedBefore.has(v)) return true;
    for (let i = 0; s && i < s.size; i++) if (b.uf.find(s.base + i) === frozenRoot) return true;
    return false;
  };
  for (const dep of b.nodes) {
    if (!dep.boundary) continue;
    const touched = [...dep.node.inputs, ...dep.node.outputs].filter((v) => v && b.channelsOf(v) !== undefined && !b.graph.initializers.has(v));
    const passThrough = new Set(touched.map(b.channelsOf)).size === 1;
    const stops = !(passThrough && touched.some(fixed)) && touched.some((v) => !fixed(v) && b.spaces.has(v));
    if (stops) boundaries.push({ node: dep.node.name, opType: dep.node.opType, reason: dep.boundary });
    for (const v of touched) b.freeze(v, `node '${dep.node.name}' (${dep.node.opType}) is a boundary: ${dep.boundary}`);
  }
  return boundaries;
}

/** Component ids 0 … count − 1 in element order. */
function numberComponents(b: Builder, total: number): { component: Int32Array; count: number } {
  const component = new Int32Array(total);
  const ids = new Map<number, number>();
  for (let e = 0; e < total; e++) {
    const r = b.uf.find(e);
    let id = ids.get(r);
    if (id === undefined) ids.set(r, (id = ids.size));
    component[e] = id;
  }
  return { component, count: ids.size };
}

/**
 * Values whose channels a node creates (Conv, Gemm outputs). A component none of them writes only
 * flows between coupled ops, so nothing could drop it: it stays whole.
 */
function sourceValues(nodes: DepNode[]): Set<string> {
  const sources = new Set<string>();
  for (const dep of nodes) {
    if (dep.ports?.coupling === 'independent' && !dep.ports.spread) for (const slot of dep.ports.outputs) sources.add(portValue(dep, 'out', slot) ?? '');
  }
  return sources;
}

/**
 * Free components with the same set of member values form one group (a residual stage: every channel
 * touches the same convs). The root is the first source value in topological order; group channel i
 * is the component holding the root's i-th channel. Groups come out in root order.
 */
function formGroups(b: Builder, component: Int32Array, free: Uint8Array, sources: Set<string>, groupOf: Int32Array): Group[] {
  const valuesOf = new Map<number, string[]>();
  for (const s of b.spaces.values()) {
    for (let i = 0; i < s.size; i++) {
      const c = component[s.base + i]!;
      if (!free[c]) continue;
      const list = valuesOf.get(c) ?? [];
      if (list[list.length - 1] !== s.value) list.push(s.value);
      valuesOf.set(c, list);
    }
  }
  const bySignature = new Map<string, number[]>();
  for (const [c, values] of valuesOf) {
    const key = values.join('\u0000');
    bySignature.set(key, [...(bySignature.get(key) ?? []), c]);
  }
  const order = new Map<string, number>();
  for (const dep of b.nodes) for (const v of dep.node.outputs) if (v) order.set(v, dep.index);
  const producer = new Map<string, DepNode>();
  for (const dep of b.nodes) for (const v of dep.node.outputs) if (v) producer.set(v, dep);

  const made = [...bySignature].map(([key, comps]) => {
    const values = key.split('\u0000');
    const rootValue = values.filter((v) => sources.has(v)).sort((x, y) => order.get(x)! - order.get(y)!)[0]!;
    const root = b.spaces.get(rootValue)!;
    // Group channels follow the root's channels (the first one, if a component holds several).
    const first = new Map<number, number>();
    for (let i = root.size - 1; i >= 0; i--) first.set(component[root.base + i]!, i);
    comps.sort((x, y) => first.get(x)! - first.get(y)!);
    return { values, rootValue, comps, at: [order.get(rootValue)!, first.get(comps[0]!)!] as const };
  });
  made.sort((x, y) => x.at[0] - y.at[0] || x.at[1] - y.at[1]);

  const groups = made.map(({ values, rootValue, comps }, id): Group => {
    const channel = new Map(comps.map((c, i) => [c, i]));
    for (const c of comps) groupOf[c] = id;
    const members = new Map<string, Int32Array>();
    for (const v of values) {
      const s = b.spaces.get(v)!;
      members.set(v, Int32Array.from({ length: s.size }, (_, i) => channel.get(component[s.base + i]!) ?? -1));
    }
    const rootChannels = members.get(rootValue)!.filter((c) => c >= 0).length;
    return { id, root: { node: producer.get(rootValue)!.node, value: rootValue }, size: comps.length, rootChannels, members, components: Int32Array.from(comps), params: [], nodes: [] };
  });
  attachParams(b, groups);
  return groups;
}

/** Each group's params (what importance scores and removal slices) and the nodes that touch it. */
function attachParams(b: Builder, groups: Group[]): void {
  const byValue = new Map<string, Group[]>();
  for (const g of groups) for (const v of g.members.keys()) byValue.set(v, [...(byValue.get(v) ?? []), g]);
  for (const dep of b.nodes) {
    if (!dep.ports) continue;
    const touched = new Set<Group>();
    const ports = [...dep.ports.inputs.map((s) => portValue(dep, 'in', s)), ...dep.ports.outputs.map((s) => portValue(dep, 'out', s))];
    for (const v of ports) for (const g of byValue.get(v ?? '') ?? []) touched.add(g);
    for (const g of touched) g.nodes.push(dep.node.name);
    for (const param of dep.params) {
      const value = portValue(dep, param.port.side, param.port.slot);
      const name = dep.node.inputs[param.slot]!;
      const tensor = b.graph.initializers.get(name);
      if (!value || !tensor) continue;
      for (const g of byValue.get(value) ?? []) g.params.push({ node: dep.node, param, name, tensor, value });
    }
  }
}

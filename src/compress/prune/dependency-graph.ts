/**
 * The dependency graph over the IR: which channels must be pruned together, and which may not be
 * pruned at all. Every value with a channel axis gets a channel space; the couplings ops declare
 * (dependency.ts) union channels across spaces; channels that reach a graph input or output, a stored
 * tensor used as data, or a node without a channel rule are frozen. What remains falls into groups
 * (group.ts) — one per set of values that share channels, e.g. a residual stage.
 */
import { dataInputs, type Graph } from '../../onnx/graph.js';
import { inferShapes, type InferenceResult } from '../../onnx/shape-inference.js';
import { channelDim } from './rules.js';
import { nodeDependencies, type Dependency } from './dependency.js';
import type { Group, GroupParam } from './group.js';
import { makeDepNode, portValue, type DepNode } from './node.js';

/** The channels of one value: elements base … base + size − 1 of the graph's union-find. */
export interface ChannelSpace {
  value: string;
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

export function buildDependencyGraph(graph: Graph, facts: InferenceResult = inferShapes(graph)): DependencyGraph {
  const nodes = facts.nodes.map((f, i) => makeDepNode(graph, f, i));
  const channelsOf = (value: string): number | string | undefined => channelDim(facts.types.get(value)?.shape);
  const frozen = new Map<string, string>();
  const freeze = (value: string | undefined, reason: string): void => {
    if (value && channelsOf(value) !== undefined && !frozen.has(value)) frozen.set(value, reason);
  };

  // Channel spaces for every port value with a static channel count.
  const spaces = new Map<string, ChannelSpace>();
  let total = 0;
  const space = (value: string): void => {
    const c = channelsOf(value);
    if (c === undefined || spaces.has(value)) return;
    if (typeof c !== 'number') return freeze(value, `its channel count is symbolic (${c})`);
    spaces.set(value, { value, size: c, base: total });
    total += c;
  };
  for (const dep of nodes) {
    if (!dep.ports) continue;
    for (const slot of dep.ports.inputs) space(portValue(dep, 'in', slot) ?? '');
    for (const slot of dep.ports.outputs) space(portValue(dep, 'out', slot) ?? '');
  }

  // Frozen: graph inputs and outputs, stored tensors read as data, and outputs a node does not declare
  // as ports (it could not write fewer channels) — then everything a boundary node touches.
  for (const v of dataInputs(graph)) freeze(v.name, 'it is a graph input');
  for (const v of graph.outputs) freeze(v.name, 'it is a graph output');
  for (const dep of nodes) {
    const ports = dep.ports;
    if (!ports) continue;
    for (const slot of ports.inputs) {
      const v = portValue(dep, 'in', slot);
      if (v && graph.initializers.has(v)) freeze(v, 'it is a stored tensor');
    }
    dep.node.outputs.forEach((v, slot) => {
      if (!ports.outputs.includes(slot)) freeze(v, `node '${dep.node.name}' (${dep.node.opType}) writes it without a channel port`);
    });
  }

  // Union channels along every dependency. Element `total` stands for "frozen".
  const parent = new Int32Array(total + 1).map((_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const FROZEN = total;
  const freezeAll = (): void => {
    for (const [value] of frozen) {
      const s = spaces.get(value);
      if (s) for (let i = 0; i < s.size; i++) union(s.base + i, FROZEN);
    }
  };
  const edges: Dependency[] = [];
  const sizeOf = (v: string): number | undefined => spaces.get(v)?.size;
  for (const dep of nodes) {
    for (const e of nodeDependencies(dep, sizeOf)) {
      const from = spaces.get(e.from)!;
      const to = spaces.get(e.to)!;
      if (e.fromStart + e.count > from.size || e.toStart + e.count * e.span > to.size) {
        // The rule and the inferred shapes disagree: do not guess, keep both values as they are.
        freeze(e.from, `node '${e.node}' maps more channels than it has`);
        freeze(e.to, `node '${e.node}' maps more channels than it has`);
        continue;
      }
      edges.push(e);
      for (let i = 0; i < e.count; i++) {
        for (let k = 0; k < e.span; k++) union(from.base + e.fromStart + i, to.base + e.toStart + i * e.span + k);
      }
    }
  }
  freezeAll();

  // A boundary is reported unless a value it touches is fixed anyway — by the graph's inputs or outputs,
  // directly or through couplings (a Softmax on the logits is not news).
  const boundaries: Boundary[] = [];
  const fixedBefore = new Set(frozen.keys());
  const isFrozen = (v: string, i: number): boolean => find(spaces.get(v)!.base + i) === find(FROZEN);
  for (const dep of nodes) {
    if (!dep.boundary) continue;
    const touched = [...dep.node.inputs, ...dep.node.outputs].filter((v) => v && channelsOf(v) !== undefined && !graph.initializers.has(v));
    const channels = (v: string): number[] => Array.from({ length: spaces.get(v)?.size ?? 0 }, (_, i) => i);
    const fixed = touched.some((v) => fixedBefore.has(v) || channels(v).some((i) => isFrozen(v, i)));
    const stops = !fixed && touched.some((v) => channels(v).length > 0);
    if (stops) boundaries.push({ node: dep.node.name, opType: dep.node.opType, reason: dep.boundary });
    for (const v of touched) freeze(v, `node '${dep.node.name}' (${dep.node.opType}) is a boundary: ${dep.boundary}`);
  }
  freezeAll();

  // Channels must come from somewhere: a component no Conv/Gemm writes (one that only flows between
  // coupled ops) has nothing that could drop it, so it is frozen too.
  const sources = new Set<string>();
  for (const dep of nodes) {
    if (dep.ports?.coupling === 'independent') for (const slot of dep.ports.outputs) sources.add(portValue(dep, 'out', slot) ?? '');
  }
  const sourced = new Set<number>();
  for (const v of sources) {
    const s = spaces.get(v);
    if (s) for (let i = 0; i < s.size; i++) sourced.add(find(s.base + i));
  }

  const component = new Int32Array(total);
  const ids = new Map<number, number>();
  for (let e = 0; e < total; e++) {
    const r = find(e);
    let id = ids.get(r);
    if (id === undefined) ids.set(r, (id = ids.size));
    component[e] = id;
  }
  const frozenComponent = ids.get(find(FROZEN)) ?? -1;
  const groupOf = new Int32Array(ids.size).fill(-1);
  const groups = formGroups({ graph, nodes, spaces, component, groupOf, frozenComponent, sourced: new Set([...sourced].map((r) => ids.get(r)!)), sources });
  return { graph, facts, nodes, edges, spaces, component, groupOf, groups, boundaries, frozen };
}

/**
 * Components with the same set of member values form one group (a residual stage: every channel
 * touches the same convs). The root is the first source value in topological order; group channel i
 * is the component holding the root's i-th channel.
 */
function formGroups(s: {
  graph: Graph;
  nodes: DepNode[];
  spaces: Map<string, ChannelSpace>;
  component: Int32Array;
  groupOf: Int32Array;
  frozenComponent: number;
  sourced: Set<number>;
  sources: Set<string>;
}): Group[] {
  const members = new Map<number, string[]>();
  const spaceList = [...s.spaces.values()];
  for (const sp of spaceList) {
    for (let i = 0; i < sp.size; i++) {
      const c = s.component[sp.base + i]!;
      if (c === s.frozenComponent || !s.sourced.has(c)) continue;
      const list = members.get(c) ?? [];
      if (list[list.length - 1] !== sp.value) list.push(sp.value);
      members.set(c, list);
    }
  }
  // Producer order for choosing roots.
  const producer = new Map<string, DepNode>();
  for (const dep of s.nodes) for (const v of dep.node.outputs) if (v) producer.set(v, dep);

  const bySignature = new Map<string, number[]>();
  for (const [c, values] of members) {
    const key = values.join('\u0000');
    const list = bySignature.get(key) ?? [];
    list.push(c);
    bySignature.set(key, list);
  }
  const groups: Group[] = [];
  for (const [key, comps] of bySignature) {
    const values = key.split('\u0000');
    const rootValue = values
      .filter((v) => s.sources.has(v))
      .sort((a, b) => (producer.get(a)?.index ?? 0) - (producer.get(b)?.index ?? 0))[0]!;
    const root = s.spaces.get(rootValue)!;
    // Order group channels by the root channel they hold (the first, if a component holds several).
    const first = new Map<number, number>();
    for (let i = root.size - 1; i >= 0; i--) first.set(s.component[root.base + i]!, i);
    comps.sort((a, b) => first.get(a)! - first.get(b)!);
    const id = groups.length;
    const channel = new Map<number, number>();
    comps.forEach((c, i) => {
      channel.set(c, i);
      s.groupOf[c] = id;
    });
    const memberMaps = new Map<string, Int32Array>();
    for (const v of values) {
      const sp = s.spaces.get(v)!;
      const map = new Int32Array(sp.size);
      for (let i = 0; i < sp.size; i++) map[i] = channel.get(s.component[sp.base + i]!) ?? -1;
      memberMaps.set(v, map);
    }
    groups.push({
      id,
      root: { node: producer.get(rootValue)!.node, value: rootValue },
      size: comps.length,
      members: memberMaps,
      components: Int32Array.from(comps),
      params: [],
      nodes: [],
    });
  }
  attachParams(s.graph, s.nodes, groups);
  groups.sort((a, b) => (producer.get(a.root.value)?.index ?? 0) - (producer.get(b.root.value)?.index ?? 0));
  groups.forEach((g, i) => {
    for (const c of g.components) s.groupOf[c] = i;
    g.id = i;
  });
  return groups;
}

function attachParams(graph: Graph, nodes: DepNode[], groups: Group[]): void {
  const byValue = new Map<string, Group[]>();
  for (const g of groups) {
    for (const v of g.members.keys()) byValue.set(v, [...(byValue.get(v) ?? []), g]);
  }
  for (const dep of nodes) {
    if (!dep.ports) continue;
    const touched = new Set<Group>();
    const ports = [
      ...dep.ports.inputs.map((slot) => portValue(dep, 'in', slot)),
      ...dep.ports.outputs.map((slot) => portValue(dep, 'out', slot)),
    ];
    for (const v of ports) for (const g of byValue.get(v ?? '') ?? []) touched.add(g);
    for (const g of touched) g.nodes.push(dep.node.name);
    for (const param of dep.params) {
      const value = portValue(dep, param.port.side, param.port.slot);
      const name = dep.node.inputs[param.slot]!;
      const tensor = graph.initializers.get(name);
      if (!value || !tensor) continue;
      for (const g of byValue.get(value) ?? []) {
        const p: GroupParam = { node: dep.node, param, name, tensor, value };
        g.params.push(p);
      }
    }
  }
}

import type { Graph } from '../onnx/graph.js';

/**
 * A named, pure Graph → Graph transform. Passes never mutate their input: they clone what they change
 * and share the rest (tensors are immutable), so a pipeline can keep every intermediate graph.
 */
export interface Pass {
  name: string;
  /** One line: what it does and why it is safe. */
  description: string;
  run(graph: Graph): Graph;
  /** Why this graph gives the pass nothing to do, when that is worth saying (a model already at the opset it converts to). */
  idleReason?(graph: Graph): string | undefined;
}

/** What one pass changed, for `--trace`. */
export interface PassTrace {
  pass: string;
  nodesBefore: number;
  nodesAfter: number;
  initializersBefore: number;
  initializersAfter: number;
  /** Op types whose node count changed: op → after − before. */
  opDelta: Record<string, number>;
  ms: number;
  /** The pass's idleReason, where it had one. */
  note?: string;
}

function opCounts(graph: Graph): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of graph.nodes) counts.set(n.opType, (counts.get(n.opType) ?? 0) + 1);
  return counts;
}

/** Run passes in order; `onTrace` receives what each one changed. */
export function runPasses(graph: Graph, passes: readonly Pass[], onTrace?: (t: PassTrace) => void): Graph {
  let current = graph;
  for (const pass of passes) {
    const start = performance.now();
    const note = onTrace ? pass.idleReason?.(current) : undefined;
    const next = pass.run(current);
    if (onTrace) {
      const before = opCounts(current);
      const after = opCounts(next);
      const opDelta: Record<string, number> = {};
      for (const op of new Set([...before.keys(), ...after.keys()])) {
        const d = (after.get(op) ?? 0) - (before.get(op) ?? 0);
        if (d !== 0) opDelta[op] = d;
      }
      onTrace({
        pass: pass.name,
        nodesBefore: current.nodes.length,
        nodesAfter: next.nodes.length,
        initializersBefore: current.initializers.size,
        initializersAfter: next.initializers.size,
        opDelta,
        ms: performance.now() - start,
        ...(note ? { note } : {}),
      });
    }
    current = next;
  }
  return current;
}

export function formatTrace(t: PassTrace): string {
  const delta = Object.entries(t.opDelta)
    .map(([op, d]) => `${op} ${d > 0 ? '+' : ''}${d}`)
    .join(', ');
  return `${t.pass}: nodes ${t.nodesBefore} → ${t.nodesAfter}, initializers ${t.initializersBefore} → ${t.initializersAfter}${delta ? ` (${delta})` : ''} in ${t.ms.toFixed(1)} ms${t.note ? ` — ${t.note}` : ''}`;
}

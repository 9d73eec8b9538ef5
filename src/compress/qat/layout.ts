/**
 * `slim quantize` lays its int8 Convs out for the CPU they will run on (quantize/cpu.ts,
 * quantize/pad-channels.ts): weights stored with zero point −1 for ONNX Runtime's AMX GEMM path, and an
 * RGB first Conv's quantized input padded with zero-point channels. Both are exact re-encodings of the
 * same model. QAT trains the canonical form — symmetric weights at zero point 0, no padding — and export
 * re-applies the layout, so the shipped model runs the same kernels PTQ's did.
 */
import { cloneGraph, type Graph } from '../../onnx/graph.js';
import { padConvInputChannels, resolveCpu, retargetConvWeights, toGenericLayout, type Int8Cpu } from '../quantize/index.js';

export interface CanonicalGraph {
  graph: Graph;
  /** The CPU layout PTQ wrote (from its metadata), to re-apply at export; undefined when none was recorded. */
  cpu: Int8Cpu | undefined;
  /** With a measured layout (quantize/tune-layout.ts): the Convs PTQ put on the AMX path. */
  amxConvs?: string[];
}

export function toCanonicalLayout(qdq: Graph): CanonicalGraph {
  // The record keeps saying which layout export re-applies. A copy always: toQatGraph edits the graph
  // in place, and on a CPU without AMX the generic layout is PTQ's own graph, which must stay as it is.
  const g = { ...cloneGraph(toGenericLayout(qdq).graph), metadata: { ...qdq.metadata } };
  const record = recordedLayout(qdq);
  return { graph: g, cpu: record.cpu, ...(record.amxConvs ? { amxConvs: record.amxConvs } : {}) };
}

/**
 * The layout `slim quantize` gives a QDQ graph for `cpu` (a no-op on a graph already in it); with
 * `amxConvs`, only those Convs take the AMX layout.
 */
export function toCpuLayout(graph: Graph, cpu: Int8Cpu, amxConvs?: readonly string[]): Graph {
  return retargetConvWeights(cpu === 'amx' ? padConvInputChannels(graph).graph : graph, cpu, amxConvs ? { only: new Set(amxConvs) } : {}).graph;
}

function recordedLayout(g: Graph): { cpu: Int8Cpu | undefined; amxConvs?: string[] } {
  try {
    const r = JSON.parse(g.metadata['slimkit.quantization'] ?? '{}') as { cpu?: unknown; amx_convs?: unknown };
    const cpu = r.cpu === 'amx' || r.cpu === 'generic' || r.cpu === 'avx2' ? r.cpu : undefined;
    const amxConvs = Array.isArray(r.amx_convs) && r.amx_convs.every((c) => typeof c === 'string') ? (r.amx_convs as string[]) : undefined;
    return { cpu, ...(amxConvs ? { amxConvs } : {}) };
  } catch {
    return { cpu: undefined };
  }
}

/** The default for graphs without a record: this machine's layout, as `slim quantize --cpu auto`. */
export function exportCpu(canonical: CanonicalGraph): Int8Cpu {
  return canonical.cpu ?? resolveCpu('auto');
}

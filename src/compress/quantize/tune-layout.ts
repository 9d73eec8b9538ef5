/**
 * A measured Conv layout. cpu.ts lays every eligible int8 Conv out for ONNX Runtime's AMX GEMM path on a
 * CPU with AMX; whether that wins depends on the layer and on the thread count: on this project's
 * 2-vCPU VM (two hyperthreads of one core, which share one AMX unit) the 32×32 stage of ResNet18-CIFAR
 * runs faster on ConvSym at 2 threads (80 µs against 119 µs per 3×3 conv) but slower at 1 thread, and
 * the 8×8 and 4×4 stages are faster on AMX at both. So each Conv is timed on both kernels with ORT's
 * profiler at the thread count the model will run with, and keeps the faster one. Both layouts are the
 * same model (exact re-encodings), so only speed can change.
 */
import type { Graph } from '../../onnx/graph.js';
import { profileNodes, type NodeProfile } from '../../runtime/profile.js';
import { resolveCpu, retargetConvWeights, type CpuChoice } from './cpu.js';

export interface ConvTiming {
  conv: string;
  amxUs: number;
  genericUs: number;
}

export interface TunedLayout {
  graph: Graph;
  /** The Convs laid out for AMX (the rest use ConvSym). */
  amxConvs: string[];
  /** Per candidate Conv: the median kernel time on each path. */
  timings: ConvTiming[];
  /** Median whole-run µs of the all-AMX and all-ConvSym layouts. */
  runUs: { amx: number; generic: number };
  threads: number;
}

/**
 * `graph`: a QDQ graph laid out for 'amx' (as buildQuantized writes it on an AMX machine). Returns the
 * same model with each eligible Conv on the faster of the two kernels at `threads`.
 */
export async function tuneConvLayout(graph: Graph, options: { threads: number; runs?: number }): Promise<TunedLayout> {
  const generic = retargetConvWeights(graph, 'generic').graph;
  const candidates = retargetConvWeights(generic, 'amx').changed;
  const threads = options.threads;
  if (candidates.length === 0) return { graph, amxConvs: [], timings: [], runUs: { amx: 0, generic: 0 }, threads };
  const profile = { runs: options.runs ?? 100, threads };
  // Two alternating rounds per layout; the lower median of each node counts (load on a shared CPU only adds time).
  const rounds: { amx: NodeProfile[]; generic: NodeProfile[] } = { amx: [], generic: [] };
  for (let r = 0; r < 2; r++) {
    rounds.generic.push(await profileNodes(generic, profile));
    rounds.amx.push(await profileNodes(graph, profile));
  }
  const timings: ConvTiming[] = [];
  for (const conv of candidates) {
    const amxUs = fastest(rounds.amx, conv);
    const genericUs = fastest(rounds.generic, conv);
    if (amxUs !== undefined && genericUs !== undefined) timings.push({ conv, amxUs, genericUs });
  }
  // A Conv ORT's profile does not name (an unexpected fusion) keeps the AMX layout cpu.ts gives it.
  const timed = new Set(timings.map((t) => t.conv));
  const amxConvs = candidates.filter((c) => !timed.has(c) || timings.find((t) => t.conv === c)!.amxUs < timings.find((t) => t.conv === c)!.genericUs);
  const tuned = retargetConvWeights(generic, 'amx', { only: new Set(amxConvs) }).graph;
  const runUs = { amx: Math.min(...rounds.amx.map((p) => p.runUs)), generic: Math.min(...rounds.generic.map((p) => p.runUs)) };
  return { graph: withLayoutRecord(tuned, amxConvs, threads), amxConvs, timings, runUs, threads };
}

/** The lowest median kernel time of ORT's node for `conv` (named `<conv>` or `<conv>_token_<n>`). */
function fastest(profiles: NodeProfile[], conv: string): number | undefined {
  const pattern = new RegExp(`^${conv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(_token_\\d+)*$`);
  let best: number | undefined;
  for (const p of profiles) {
    for (const [name, { us }] of p.nodes) if (pattern.test(name) && (best === undefined || us < best)) best = us;
  }
  return best;
}

/** The quantization record in the model's metadata names the AMX Convs, so QAT can re-apply the layout. */
function withLayoutRecord(graph: Graph, amxConvs: string[], threads: number): Graph {
  let record: Record<string, unknown> = {};
  try {
    record = JSON.parse(graph.metadata['slimkit.quantization'] ?? '{}') as Record<string, unknown>;
  } catch {
    record = {};
  }
  const layout = { ...record, cpu: 'amx', amx_convs: amxConvs, tuned_threads: threads };
  return { ...graph, metadata: { ...graph.metadata, 'slimkit.quantization': JSON.stringify(layout) } };
}

/** The summary `slim quantize --json` and the run manifest carry. */
export interface ConvLayoutSummary {
  threads: number;
  amx_convs: number;
  convsym_convs: number;
}

/**
 * What `--cpu auto` writes: on a CPU with AMX, the layout measured at `threads` (the count the model will
 * be benchmarked or served with); elsewhere, and for an explicit 'amx' or 'generic', nothing to change.
 */
export async function autoConvLayout(graph: Graph, choice: CpuChoice, threads: number): Promise<(TunedLayout & { summary: ConvLayoutSummary }) | undefined> {
  if (choice !== 'auto' || resolveCpu('auto') !== 'amx') return undefined;
  const tuned = await tuneConvLayout(graph, { threads });
  const convsym = tuned.timings.filter((t) => t.amxUs >= t.genericUs).length;
  return { ...tuned, summary: { threads, amx_convs: tuned.amxConvs.length, convsym_convs: convsym } };
}

/**
 * Per-node kernel times from ONNX Runtime's own profiler: the time each node of the optimized graph
 * takes, median over many runs after a warm-up, at a given thread count. The names are ORT's (after its
 * fusions: a QDQ Conv becomes a QLinearConv named after the Conv, e.g. `/layer1/conv1/Conv_token_4`).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { encodeModel } from '../onnx/io.js';
import { float32 } from '../onnx/tensor.js';
import { openSession } from './ort.js';

export interface NodeProfile {
  /** Median µs of the whole run. */
  runUs: number;
  /** Median µs per ORT node, by ORT node name, with the op type ORT ran. */
  nodes: Map<string, { op: string; us: number }>;
}

interface TraceEvent {
  name: string;
  cat: string;
  dur: number;
  ts: number;
  args?: { op_name?: string };
}

/** Profile `graph` at batch 1 on a deterministic input; the first `warmup` runs are not counted. */
export async function profileNodes(graph: Graph, options: { threads?: number; runs?: number; warmup?: number } = {}): Promise<NodeProfile> {
  const runs = options.runs ?? 100;
  const warmup = options.warmup ?? 20;
  const input = dataInputs(graph)[0];
  if (!input?.shape || input.dtype !== 'float32') throw new Error(`profileNodes: graph '${graph.name}' has no float32 input of known rank to feed`);
  // Symbolic dims (the batch) are 1.
  const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const x = float32(dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37)));
  const dir = mkdtempSync(path.join(tmpdir(), 'slim-profile-'));
  try {
    const session = await openSession(encodeModel(graph).model, { ...(options.threads !== undefined ? { threads: options.threads } : {}), profile: path.join(dir, 'p'), label: `graph '${graph.name}'` });
    for (let i = 0; i < warmup + runs; i++) await session.run({ [input.name]: x });
    await session.close();
    const events = JSON.parse(readFileSync(session.profileFile!, 'utf8')) as TraceEvent[];
    const starts = events.filter((e) => e.name === 'model_run').map((e) => e.ts).sort((a, b) => a - b);
    const counted = starts[warmup] ?? 0;
    const perNode = new Map<string, { op: string; durs: number[] }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < counted) continue;
      const name = e.name.slice(0, -'_kernel_time'.length);
      const entry = perNode.get(name) ?? { op: e.args?.op_name ?? '?', durs: [] };
      entry.durs.push(e.dur);
      perNode.set(name, entry);
    }
    return {
      runUs: median(events.filter((e) => e.name === 'model_run' && e.ts >= counted).map((e) => e.dur)),
      nodes: new Map([...perNode].map(([name, { op, durs }]) => [name, { op, us: median(durs) }])),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

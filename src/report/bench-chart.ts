/**
 * `slim bench --chart`: the comparison as a picture — top-1 against batch-1 latency and against file
 * size, side by side, each with its Pareto front (report/charts.ts draws both, as the run report does).
 */
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { paretoSpec, renderSvg, type ChartPoint } from './charts.js';
import { paretoFront } from './pareto.js';
import { comparableLatencies, latencyTied } from './latency-ratio.js';

export interface ChartRow {
  /** The label of its points (the file as given). */
  file: string;
  top1: number;
  latency_ms: { p50: number };
  turn_p50_ms?: number[];
  size_bytes: number;
}

/** Point labels: the file names when they tell the models apart, else the paths as given. */
export function chartLabels(files: readonly string[]): string[] {
  const names = files.map((f) => path.basename(f));
  return new Set(names).size === names.length ? names : [...files];
}

function panel(rows: readonly ChartRow[], labels: readonly string[], cost: (r: ChartRow) => number, o: { title: string; xTitle: string }, tied?: (a: ChartRow, b: ChartRow) => boolean): TopLevelSpec {
  const front = new Set(paretoFront(rows.map((r, i) => ({ id: labels[i]!, gain: r.top1, cost: cost(r), r })), tied && ((a, b) => tied(a.r, b.r))));
  const points: ChartPoint[] = rows.map((r, i) => ({ id: labels[i]!, x: cost(r), top1: r.top1, pareto: front.has(labels[i]!) }));
  return paretoSpec(points, o);
}

export async function benchChartSvg(rows: readonly ChartRow[]): Promise<string> {
  const labels = chartLabels(rows.map((r) => r.file));
  // Latency as bench compares it: per round of turns (latency-ratio.ts) when the models took turns.
  const scale = comparableLatencies(rows);
  const perRound = rows.some((r) => r.turn_p50_ms?.length);
  const [latency, size] = [
    panel(rows, labels, (r) => scale.get(r)!, { title: 'Top-1 vs batch-1 latency', xTitle: perRound ? 'latency (ms): p50 of the first, the others by per-round ratio' : 'p50 latency (ms)' }, latencyTied),
    panel(rows, labels, (r) => r.size_bytes / 1024, { title: 'Top-1 vs file size', xTitle: 'file size (KiB)' }),
  ];
  // One SVG, two panels: the schema and config belong to the top level only.
  const inner = (s: TopLevelSpec): object => {
    const { $schema: _s, config: _c, ...rest } = s as TopLevelSpec & { config?: unknown };
    return rest;
  };
  const { $schema, config } = latency as TopLevelSpec & { config?: object };
  return renderSvg({ $schema, ...(config ? { config } : {}), hconcat: [inner(latency), inner(size)] } as TopLevelSpec, 'bench');
}

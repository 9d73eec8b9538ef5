/**
 * The article-style comparison table, defined once for the HTML and Markdown pages: which field of
 * a variant each column shows and how it is printed. A cell is always `format(value(v))`, and the HTML
 * keeps `value(v)` exactly in a data attribute, so a reader (or a test) can check text against JSON.
 */
import { shellWord } from '../util/shell.js';
import { comparePaired, formatP } from './paired.js';
import type { VariantBench } from '../pipeline/manifest.js';
import type { RunReport, StageRow } from './run-report.js';
import { formatBytes, formatCount, formatPercent, formatPointChange } from './format.js';
import { latencyRatio } from './latency-ratio.js';

export interface Column<T> {
  key: string;
  header: string;
  value: (row: T) => number | string | undefined;
  format: (value: never) => string;
  numeric: boolean;
}

const fixed = (digits: number) => (v: number): string => v.toFixed(digits);
const text = (v: string): string => v;

export const VARIANT_COLUMNS: readonly Column<VariantBench>[] = [
  { key: 'id', header: 'variant', value: (v) => v.id, format: text, numeric: false },
  { key: 'kind', header: 'made by', value: (v) => (v.from ? `${v.kind} ← ${v.from}` : v.kind), format: text, numeric: false },
  { key: 'size_bytes', header: 'file size', value: (v) => v.size_bytes, format: formatBytes, numeric: true },
  { key: 'gzip_bytes', header: 'gzip size', value: (v) => v.gzip_bytes, format: formatBytes, numeric: true },
  { key: 'params', header: 'params', value: (v) => v.params, format: formatCount, numeric: true },
  { key: 'macs', header: 'MACs', value: (v) => v.macs ?? undefined, format: formatCount, numeric: true },
  { key: 'latency_ms.p50', header: 'p50 (ms)', value: (v) => v.latency_ms.p50, format: fixed(3), numeric: true },
  { key: 'latency_ms.p90', header: 'p90 (ms)', value: (v) => v.latency_ms.p90, format: fixed(3), numeric: true },
  { key: 'throughput_ips', header: 'img/s', value: (v) => v.throughput_ips, format: fixed(0), numeric: true },
  // A model exported for one batch size is measured at that batch: its throughput is not comparable.
  { key: 'throughput_batch', header: 'at batch', value: (v) => v.throughput_batch, format: String, numeric: true },
  { key: 'top1', header: 'top-1', value: (v) => v.top1, format: (v: number) => formatPercent(v), numeric: true },
];

/** "×0.26 size, ×0.48 latency, −1.20 pt" against the first variant (the baseline). */
export function versusBaseline(v: VariantBench, base: VariantBench | undefined): string {
  if (!base || base === v) return 'baseline';
  const ratio = (a: number, b: number): string => (b > 0 ? `×${(a / b).toFixed(2)}` : '');
  const pt = (v.top1 - base.top1) * 100;
  // On the same test images: McNemar's p says whether the top-1 change is more than chance.
  const paired = comparePaired(v, base);
  const p = paired && v.top1 !== base.top1 ? ` (${formatP(paired.p)})` : '';
  // Latency per round of turns (latency-ratio.ts): under changing load the ratio of p50s can mislead.
  // The quartiles of the rounds' ratios show how steady it was.
  const lat = latencyRatio(v, base);
  const spread = lat.spread ? ` (${lat.spread[0].toFixed(2)}–${lat.spread[1].toFixed(2)})` : '';
  return `${ratio(v.size_bytes, base.size_bytes)} size, ×${lat.ratio.toFixed(2)}${spread} latency, ${formatPointChange(pt)}${p}`;
}

export const STAGE_COLUMNS: readonly Column<StageRow>[] = [
  { key: 'id', header: 'stage', value: (s) => s.id, format: text, numeric: false },
  { key: 'kind', header: 'kind', value: (s) => s.kind, format: text, numeric: false },
  { key: 'status', header: 'status', value: (s) => (s.reused ? `${s.status} (reused)` : s.status), format: text, numeric: false },
  { key: 'device', header: 'device', value: (s) => s.device, format: text, numeric: false },
  { key: 'seconds', header: 'seconds', value: (s) => s.seconds, format: fixed(1), numeric: true },
  { key: 'gpu_seconds', header: 'GPU-seconds', value: (s) => s.gpu_seconds, format: fixed(1), numeric: true },
  { key: 'cost', header: 'cost ($)', value: (s) => s.cost, format: fixed(4), numeric: true },
  { key: 'summary', header: 'what it did', value: (s) => s.summary, format: text, numeric: false },
];

/** The run's wall time; a run that did not finish has it as last recorded (within half a minute of its end). */
export function wallTimeText(r: Pick<RunReport, 'wall_seconds' | 'complete'>): string {
  return r.complete ? `${r.wall_seconds.toFixed(1)} s` : `${r.wall_seconds.toFixed(1)} s as last recorded (it did not finish)`;
}

/** The sentence above the stage table (HTML and Markdown alike). */
export function stagesIntro(r: Pick<RunReport, 'wall_seconds' | 'complete' | 'gpu_price_per_hour' | 'stages'>): string {
  // A CPU-only run has no GPU cost to price: the price is not one the user set for anything here.
  const onGpu = r.stages.some((s) => s.device === 'cuda');
  const cost = onGpu ? `Cost = GPU-seconds × $${r.gpu_price_per_hour}/GPU-hour (the recipe's gpu_price_per_hour); CPU stages cost 0 here.` : 'Every stage ran on the CPU: no GPU time, so no cost.';
  return `Wall time of this invocation: ${wallTimeText(r)}. Stage times are those of the run that made each result (a reused stage cost nothing now). ${cost}`;
}

/** What timed the variants, for the sentence above the table. */
export function timedWith(b: { target?: string; runtime?: string; timed_in_turns?: boolean }): string {
  const turns = b.timed_in_turns ? ', the variants taking turns (a change in load falls on all alike)' : '';
  if (b.target === 'web') return `${b.runtime ?? 'onnxruntime-web (WebAssembly)'} — the browser, as the web bundle runs${turns}`;
  return `ONNX Runtime CPU${turns}`;
}

/** What the 'vs' column's latency is, for a bench whose variants took turns; '' otherwise. */
export function versusLatencyNote(b: { timed_in_turns?: boolean }): string {
  return b.timed_in_turns
    ? " The 'vs' latency is the median of the per-round ratios, their quartiles in brackets: it holds under changing load, where a ratio of p50s does not, so on a busy machine it can order variants otherwise than the p50 column (★ and recommend follow it)."
    : '';
}

/** One line per other bench stage: what it timed the variants at ("Also timed in stage 'web' …"). */
export function otherBenchLines(r: RunReport): string[] {
  return r.other_benches.map((o) => `Also timed in stage '${o.stage}' (${timedWith(o)}): ${Object.entries(o.p50_ms).map(([id, ms]) => `${id} ${ms.toFixed(3)} ms`).join(', ')} (batch-1 p50).`);
}

/** Shell command that re-measures the report's variants with `slim bench`. */
export function benchCommand(r: RunReport): string {
  const files = r.variants.map((v) => shellWord(`${r.run_dir}/${v.file}`));
  // A folder's train/ + test/ layout is read by --data itself (test/, numbered by train/'s classes).
  const data = r.data.name;
  const limit = r.data.name === 'cifar10' && r.data.test_images === 10000 ? '' : ` --limit ${r.data.test_images}`;
  const b = r.bench;
  const dataDir = r.data.name === 'cifar10' && r.data.dir ? ` --data-dir ${shellWord(r.data.dir)}` : '';
  // Always said: slim bench's own default (auto) may take another count.
  const runs = b ? ` --runs ${b.runs}` : '';
  const warmup = b?.warmup_runs !== undefined && b.warmup_runs !== 10 ? ` --warmup ${b.warmup_runs}` : '';
  const size = b?.image_size ? ` --image-size ${b.image_size.join(',')}` : '';
  const web = b?.target === 'web' ? ' --target web' : '';
  return `slim bench ${files.join(' ')}${b ? ` --threads ${b.threads} --batch ${b.batch}${runs}${warmup}${size}${web}` : ''} --data ${shellWord(data)}${dataDir}${limit}`;
}

export function cell<T>(c: Column<T>, row: T): string {
  const v = c.value(row);
  return v === undefined ? '' : (c.format as (x: unknown) => string)(v);
}

/** The deployment table of report.html and report.md: one row per bundle a deploy stage wrote. */
export function deployTable(r: Pick<RunReport, 'deploy' | 'run_dir'>): { headers: string[]; rows: string[][]; numeric: boolean[] } {
  return {
    headers: ['stage', 'variant', 'target', 'bundle', 'files', 'bundle size', 'model size'],
    rows: r.deploy.map((d) => [d.stage, d.variant, d.target, `${r.run_dir}/${d.out}`, String(d.files), formatBytes(d.total_bytes), formatBytes(d.model_bytes)]),
    numeric: [false, false, false, false, true, true, true],
  };
}

/**
 * `writeRunReport`: a run folder's manifest → `<run>/report/`: report.json (the data), report.html
 * (one self-contained page), report.md and charts/*.svg (for the Markdown). Each file is written
 * atomically.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { SlimError } from '../errors.js';
import { writeFilesAtomic } from '../onnx/io.js';
import { requireRunManifest } from '../pipeline/manifest.js';
import { curvesSpec, paretoSpec, perClassSpec, renderSvg, sensitivitySpec, stageTimeSpec } from './charts.js';
import { chartFile, renderHtml, REPORT_CHARTS, type ReportCharts } from './html.js';
import { renderMarkdown } from './markdown.js';
import { buildRunReport, type RunReport } from './run-report.js';
import { comparableLatencies } from './latency-ratio.js';
import { shownClasses } from './class-selection.js';

/**
 * Removes `<run>/report/`'s files (the page, the Markdown, the JSON, the charts), returning whether there
 * were any: a run about to replace the models they describe must not leave them looking current.
 */
export async function withdrawReport(runDir: string): Promise<boolean> {
  const out = path.join(runDir, 'report');
  const files = ['report.html', 'report.md', 'report.json', ...REPORT_CHARTS.flatMap((name) => [chartFile(name), `charts/${name}.svg`])].map((f) => path.join(out, f));
  const present = files.filter((f) => existsSync(f));
  await Promise.all(present.map((f) => rm(f, { force: true })));
  return present.length > 0;
}

export interface ReportPaths {
  html: string;
  markdown: string;
  json: string;
  charts: string[];
}

export async function renderCharts(r: RunReport): Promise<ReportCharts> {
  const charts: ReportCharts = {};
  if (r.variants.length) {
    const points = (front: readonly string[], x: (v: RunReport['variants'][number]) => number) =>
      r.variants.map((v) => ({ id: v.id, x: x(v), top1: v.top1, pareto: front.includes(v.id) }));
    // Placed as the Pareto front is found: per round of turns where the bench took them (latency-ratio.ts).
    const latency = comparableLatencies(r.variants);
    const perRound = r.variants.some((v) => v.turn_p50_ms?.length);
    charts.latency = await renderSvg(paretoSpec(points(r.pareto.latency, (v) => latency.get(v)!), { title: 'Top-1 vs batch-1 latency', xTitle: perRound ? 'latency (ms): p50 of the first, the others by per-round ratio' : 'p50 latency (ms)' }), 'latency');
    charts.size = await renderSvg(paretoSpec(points(r.pareto.size, (v) => v.size_bytes / 1024), { title: 'Top-1 vs file size', xTitle: 'file size (KiB)' }), 'size');
    const shown = shownClasses(r.variants).indices;
    const classes = shown.map((i) => r.variants[0]!.per_class[i]!.name);
    const rows = r.variants.flatMap((v) => shown.map((i) => v.per_class[i]!).filter((c) => c.total > 0).map((c) => ({ variant: v.id, className: c.name, accuracy: c.accuracy })));
    charts.perClass = await renderSvg(perClassSpec(rows, classes), 'per-class');
  }
  if (r.sensitivity) charts.sensitivity = await renderSvg(sensitivitySpec(r.sensitivity.layers), 'sensitivity');
  if (r.training.length) {
    const series = r.training.map((t) => ({ stage: t.stage, history: t.history, ...(t.start ? { start: t.start } : {}), ...(t.cuts ? { cuts: t.cuts } : {}) }));
    charts.accuracyCurves = await renderSvg(curvesSpec(series, 'test_top1'), 'accuracy-curves');
    charts.lossCurves = await renderSvg(curvesSpec(series, 'train_loss'), 'loss-curves');
  }
  const timed = r.stages.filter((s) => s.kind !== 'source' && s.status === 'done');
  if (timed.length) charts.stageTimes = await renderSvg(stageTimeSpec(timed.map((s) => ({ stage: s.id, seconds: s.seconds, device: s.device }))), 'stage-times');
  return charts;
}

export async function writeRunReport(runDir: string, options: { out?: string } = {}): Promise<{ report: RunReport; paths: ReportPaths }> {
  const dir = path.resolve(runDir);
  const manifest = await requireRunManifest(dir, 'pass a folder made by slim run or slim demo (run a recipe first: slim run recipes/demo.yaml)');
  const report = buildRunReport(manifest, dir);
  const out = path.resolve(options.out ?? path.join(dir, 'report'));
  await mkdir(path.join(out, 'charts'), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new SlimError({ file: out, problem: `is not a folder the report can be written to (${e.code ?? e.message})`, fix: 'pass --out a folder (it is created when missing)' }, 'input');
  });
  const charts = await renderCharts(report);
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const chartFiles: Record<string, string> = {};
  const files: { path: string; bytes: Uint8Array }[] = [];
  for (const [name, svg] of Object.entries(charts) as [keyof ReportCharts, string | undefined][]) {
    if (!svg) continue;
    const rel = chartFile(name);
    files.push({ path: path.join(out, rel), bytes: text(svg) });
    chartFiles[name] = rel;
  }
  const paths: ReportPaths = {
    html: path.join(out, 'report.html'),
    markdown: path.join(out, 'report.md'),
    json: path.join(out, 'report.json'),
    charts: Object.values(chartFiles).map((f) => path.join(out, f)),
  };
  files.push(
    { path: paths.json, bytes: text(`${JSON.stringify(report, null, 2)}\n`) },
    { path: paths.markdown, bytes: text(renderMarkdown(report, chartFiles)) },
    { path: paths.html, bytes: text(renderHtml(report, charts)) },
  );
  // Every file on disk before any replaces the last report's: a full disk leaves the old report whole,
  // not new JSON beside an old page.
  await writeFilesAtomic(files);
  // A chart the last report drew and this one does not (no training now), or one under its earlier
  // camelCase name, would be left beside the new ones as if current.
  const stale = REPORT_CHARTS.flatMap((name) => [...(charts[name] ? [] : [chartFile(name)]), `charts/${name}.svg`]).filter((rel) => !Object.values(chartFiles).includes(rel));
  await Promise.all(stale.map((rel) => rm(path.join(out, rel), { force: true })));
  return { report, paths };
}

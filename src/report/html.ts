/**
 * The report as ONE self-contained HTML file: inline CSS, inline SVG charts, no scripts, no fonts,
 * no images or links that would make a request. Opened from disk, mailed, or attached to a ticket, it
 * shows the same thing. The report JSON is embedded too (a script of type application/json, never
 * executed) for anyone who wants the raw numbers from the same file.
 */
import type { VariantBench } from '../pipeline/manifest.js';
import { benchCommand, deployTable, otherBenchLines, cell, timedWith, STAGE_COLUMNS, VARIANT_COLUMNS, versusBaseline, versusLatencyNote, stagesIntro, type Column } from './columns.js';
import { formatBytes, formatClassAccuracy, formatPercent } from './format.js';
import { changedFilesNote, choseOnTestNote, exactKernelsNote, unrecoveredPruneNote, type RunReport } from './run-report.js';
import { noiseNote } from './recommend.js';
import { comparableLatencies, latencyRatio, pairedTurns } from './latency-ratio.js';
import { shownClasses } from './class-selection.js';

export interface ReportCharts {
  latency?: string;
  size?: string;
  perClass?: string;
  sensitivity?: string;
  accuracyCurves?: string;
  lossCurves?: string;
  stageTimes?: string;
}

/** Every chart a report can draw: the charts folder holds those this report drew, and no other. */
export const REPORT_CHARTS: readonly (keyof ReportCharts)[] = ['latency', 'size', 'perClass', 'sensitivity', 'accuracyCurves', 'lossCurves', 'stageTimes'];

/** A chart's file in the report's charts folder: kebab-case, as the project's file names are (per-class.svg). */
export const chartFile = (name: keyof ReportCharts): string => `charts/${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.svg`;

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:1px solid #e5e5e5;padding-bottom:4px}
.lede{color:#555;margin:0 0 16px}.meta{color:#666;font-size:13px}
table{border-collapse:collapse;margin:10px 0;font-size:13.5px}th,td{padding:5px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.front td:first-child{font-weight:600}tr.front td:first-child::after{content:" ★";color:#2ca02c}
.charts{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.charts figure{margin:0}
figcaption{font-size:12.5px;color:#666;max-width:520px}
code,pre{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f4f4f6;border-radius:4px}
pre{padding:10px;white-space:pre-wrap;word-break:break-all}code{padding:1px 4px}
.cards{display:flex;gap:14px;flex-wrap:wrap;margin:14px 0}.card{border:1px solid #e5e5e5;border-radius:8px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12.5px}
.scroll{overflow-x:auto;max-width:100%}td.vs{white-space:nowrap}
.warn{background:#fff4e5;border:1px solid #ffc46b;padding:8px 12px;border-radius:6px}
`;

export function renderHtml(r: RunReport, charts: ReportCharts): string {
  const base = r.variants[0];
  const front = new Set(r.pareto.latency);
  const parts: string[] = [];
  parts.push(
    `<header><h1>${escapeHtml(r.name)}</h1>`,
    r.description ? `<p class="lede">${escapeHtml(r.description)}</p>` : '',
    `<p class="meta">${escapeHtml(`${r.data.name}: ${r.data.train_images.toLocaleString('en')} training images, ${r.data.test_images.toLocaleString('en')} test images · ${r.machine.cpu}, ${r.machine.cores} cores · slimkit ${r.machine.slimkit}, Node ${r.machine.node} · generated ${r.generated}`)}</p></header>`,
  );
  if (!r.complete) parts.push(`<p class="warn">This run did not finish: the tables show the stages that did.</p>`);
  parts.push(cards(r));

  if (r.variants.length) {
    const b = r.bench!;
    parts.push(
      '<h2 id="variants">Every variant, measured</h2>',
      `<p>Batch-1 latency: ${b.runs} timed runs after warm-up, ${b.threads} thread(s), ${escapeHtml(timedWith(b))}; throughput at batch ${b.batch} (a model exported for one batch size at that one: see <em>at batch</em>); top-1 on ${escapeHtml(b.eval_data)}. Sizes are bytes of the .onnx file (gzip level 9). ★ = on the Pareto front of top-1 vs latency. <em>p</em> = McNemar's exact test of the top-1 change on the same test images (above 0.05: a change chance alone makes often).${escapeHtml(versusLatencyNote(b))}</p>`,
      variantTable(r.variants, front, base),
      ...[changedFilesNote(r), unrecoveredPruneNote(r), choseOnTestNote(r), exactKernelsNote(r), ...noiseNote(r.variants, r.bench)].filter((l) => l !== undefined).map((l) => `<p class="warn">${escapeHtml(l)}</p>`),
      ...otherBenchLines(r).map((l) => `<p>${escapeHtml(l)}</p>`),
      '<p>Re-measure these files yourself (latency varies with machine load; sizes, params, MACs and top-1 match exactly):</p>',
      `<pre>${escapeHtml(benchCommand(r))}</pre>`,
      '<h2 id="pareto">Accuracy against latency and size</h2>',
      `<div class="charts">${figure(charts.latency, 'Top-1 vs batch-1 latency on one scale (the first variant\'s p50 times each one\'s median per-round ratio to it, as the variants were timed in turns). Green: the Pareto front — no other variant is both faster and more accurate; a variant whose timing cannot be told from a more accurate one\'s (the quartiles of their per-round ratio hold 1) is not on it.', 'chart-latency')}${figure(charts.size, 'Top-1 vs file size. Green: the Pareto front for size.', 'chart-size')}</div>`,
      '<h2 id="per-class">Per-class accuracy</h2>',
      `<div class="charts">${figure(charts.perClass, 'Top-1 per class and variant: where compression costs accuracy.', 'chart-per-class')}</div>`,
      perClassTable(r.variants),
    );
  }
  if (r.sensitivity) {
    const s = r.sensitivity;
    const worst = [...s.layers].sort((a, b) => a.score - b.score).slice(0, 8);
    parts.push(
      '<h2 id="sensitivity">Layer sensitivity to int8</h2>',
      `<p>From stage <code>${escapeHtml(s.stage)}</code>${s.from ? ` (quantizing <code>${escapeHtml(s.from)}</code>)` : ''}: each layer quantized alone, the rest in float; output SQNR against the float model and the share of images whose class does not change.</p>`,
      `<div class="charts">${figure(charts.sensitivity, 'Output SQNR per layer; red: the most sensitive fifth (candidates to keep in float).', 'chart-sensitivity')}</div>`,
      simpleTable(['most sensitive layers', 'op', 'output SQNR (dB)', 'top-1 agreement'], worst.map((l) => [l.layer, l.op_type, Number.isFinite(l.score) ? l.score.toFixed(1) : '∞', formatPercent(l.agreement)]), [false, false, true, true]),
    );
  }
  if (r.training.length) {
    parts.push(
      '<h2 id="training">Training curves</h2>',
      `<div class="charts">${figure(charts.accuracyCurves, 'Engine test top-1 after each epoch (on the first images of the test set); at epoch 0 a model trained further, scored before its first step; a prune stage\'s line drops where each later cut was made.', 'chart-accuracy-curves')}${figure(charts.lossCurves, 'Mean training loss of each epoch.', 'chart-loss-curves')}</div>`,
      simpleTable(
        ['stage', 'epochs', 'final train loss', 'final test top-1', 'test images', 'img/s (last epoch)'],
        r.training.map((t) => {
          const last = t.history.at(-1);
          return [t.stage + (t.teacher ? ` (teacher ${t.teacher})` : ''), String(t.history.length), last ? last.train_loss.toFixed(3) : '', last ? formatPercent(last.test_top1) : '', t.eval_images.toLocaleString('en'), last ? last.images_per_second.toFixed(0) : ''];
        }),
        [false, true, true, true, true, true],
      ),
    );
  }
  parts.push(
    '<h2 id="stages">Stages: time, GPU-seconds, cost</h2>',
    `<p>${escapeHtml(stagesIntro(r))}</p>`,
    stageTable(r),
    `<div class="charts">${figure(charts.stageTimes, 'Seconds per stage.', 'chart-stage-times')}</div>`,
  );
  if (r.deploy.length) {
    parts.push(
      '<h2 id="deploy">Deployment</h2>',
      ((t) => simpleTable(t.headers, t.rows, t.numeric))(deployTable(r)),
    );
  }
  const json = JSON.stringify(r).replace(/</g, '\\u003c');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(`slimkit report: ${r.name}`)}</title><style>${CSS}</style></head>`,
    `<body><main>${parts.join('\n')}</main>`,
    `<script type="application/json" id="slim-report">${json}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

function cards(r: RunReport): string {
  if (!r.variants.length) return '';
  const best = [...r.variants].sort((a, b) => b.top1 - a.top1)[0]!;
  const latency = comparableLatencies(r.variants);
  const fastest = [...r.variants].sort((a, b) => latency.get(a)! - latency.get(b)!)[0]!;
  // Ranked on the common scale, so said as a ratio to the reference timed in the same rounds: its raw
  // p50 beside the table's (another variant's p50 lower) read as a wrong number.
  const reference = r.variants.find((v) => v.turn_p50_ms?.length);
  const ratio = reference && fastest !== reference && pairedTurns(fastest, reference) ? latencyRatio(fastest, reference).ratio : undefined;
  const smallest = [...r.variants].sort((a, b) => a.size_bytes - b.size_bytes)[0]!;
  const card = (value: string, label: string): string => `<div class="card"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`;
  return `<div class="cards">${[
    card(formatPercent(best.top1), `best top-1 (${best.id})`),
    ratio !== undefined
      ? card(`×${ratio.toFixed(2)}`, `fastest batch-1: ${fastest.id}, the latency of ${reference!.id} (median per-round ratio, timed in turns)`)
      : card(`${fastest.latency_ms.p50.toFixed(2)} ms`, `fastest batch-1 p50 (${fastest.id})`),
    card(formatBytes(smallest.size_bytes), `smallest file (${smallest.id})`),
    card(`${(r.totals.seconds / 60).toFixed(1)} min`, `compute over all stages${r.totals.gpu_seconds > 0 ? `, $${r.totals.cost.toFixed(2)} of GPU` : ''}`),
  ].join('')}</div>`;
}

function figure(svg: string | undefined, caption: string, id: string): string {
  return svg ? `<figure id="${id}">${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>` : '';
}

function th<T>(c: Column<T>): string {
  return `<th${c.numeric ? ' class="num"' : ''}>${escapeHtml(c.header)}</th>`;
}

function td<T>(c: Column<T>, row: T): string {
  const raw = c.value(row);
  const data = c.numeric && typeof raw === 'number' ? ` data-value="${raw}"` : '';
  return `<td data-key="${c.key}"${data}${c.numeric ? ' class="num"' : ''}>${escapeHtml(cell(c, row))}</td>`;
}

function variantTable(variants: readonly VariantBench[], front: ReadonlySet<string>, base: VariantBench | undefined): string {
  const head = `<tr>${VARIANT_COLUMNS.map(th).join('')}<th>vs ${escapeHtml(base?.id ?? 'baseline')}</th></tr>`;
  const body = variants
    .map((v) => `<tr data-variant="${escapeHtml(v.id)}"${front.has(v.id) ? ' class="front"' : ''}>${VARIANT_COLUMNS.map((c) => td(c, v)).join('')}<td class="vs">${versusBaseline(v, base).split(', ').map(escapeHtml).join('<br>')}</td></tr>`)
    .join('\n');
  return `<div class="scroll"><table id="variants-table"><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>`;
}

function perClassTable(variants: readonly VariantBench[]): string {
  const shown = shownClasses(variants);
  const head = `<tr><th>class</th>${variants.map((v) => `<th class="num">${escapeHtml(v.id)}</th>`).join('')}</tr>`;
  const body = shown.indices
    .map((i) => `<tr><td>${escapeHtml(variants[0]!.per_class[i]!.name)}</td>${variants.map((v) => {
      const c = v.per_class[i]!;
      return `<td class="num" data-variant="${escapeHtml(v.id)}" data-value="${c.accuracy}">${escapeHtml(formatClassAccuracy(c))}</td>`;
    }).join('')}</tr>`)
    .join('\n');
  const caption = shown.caption ? `<p><small>Per class: ${escapeHtml(shown.caption)}.</small></p>` : '';
  return `${caption}<div class="scroll"><table id="per-class-table"><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>`;
}

function stageTable(r: RunReport): string {
  const head = `<tr>${STAGE_COLUMNS.map(th).join('')}</tr>`;
  const body = r.stages.map((s) => `<tr data-stage="${escapeHtml(s.id)}">${STAGE_COLUMNS.map((c) => td(c, s)).join('')}</tr>`).join('\n');
  const total = `<tr><td><b>total</b></td><td></td><td></td><td></td><td class="num" data-key="total-seconds" data-value="${r.totals.seconds}">${r.totals.seconds.toFixed(1)}</td><td class="num" data-key="total-gpu-seconds" data-value="${r.totals.gpu_seconds}">${r.totals.gpu_seconds.toFixed(1)}</td><td class="num" data-key="total-cost" data-value="${r.totals.cost}">${r.totals.cost.toFixed(4)}</td><td></td></tr>`;
  return `<div class="scroll"><table id="stages-table"><thead>${head}</thead><tbody>\n${body}\n${total}\n</tbody></table></div>`;
}

function simpleTable(headers: string[], rows: string[][], numeric: boolean[]): string {
  const cls = (i: number): string => (numeric[i] ? ' class="num"' : '');
  return `<table><thead><tr>${headers.map((h, i) => `<th${cls(i)}>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** The report as Markdown: the same tables as the HTML page, charts as links to charts/*.svg. */
import { benchCommand, deployTable, otherBenchLines, cell, timedWith, STAGE_COLUMNS, VARIANT_COLUMNS, versusBaseline, versusLatencyNote, stagesIntro } from './columns.js';
import { formatClassAccuracy, formatPercent } from './format.js';
import { changedFilesNote, choseOnTestNote, exactKernelsNote, unrecoveredPruneNote, type RunReport } from './run-report.js';
import { noiseNote } from './recommend.js';
import { shownClasses } from './class-selection.js';

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(headers: string[], rows: string[][], numeric: boolean[]): string {
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: |' : ' --- |')).join('')}`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function renderMarkdown(r: RunReport, charts: Readonly<Record<string, string | undefined>>): string {
  const img = (name: string, alt: string): string => (charts[name] ? `![${alt}](${charts[name]})` : '');
  const lines: string[] = [`# ${r.name}`, ''];
  if (r.description) lines.push(r.description, '');
  lines.push(
    `${r.data.name}: ${r.data.train_images.toLocaleString('en')} training images, ${r.data.test_images.toLocaleString('en')} test images. ${r.machine.cpu}, ${r.machine.cores} cores; slimkit ${r.machine.slimkit}. Generated ${r.generated}.`,
    '',
  );
  if (!r.complete) lines.push('> This run did not finish: the tables show the stages that did.', '');
  if (r.variants.length) {
    const b = r.bench!;
    const front = new Set(r.pareto.latency);
    const base = r.variants[0];
    const shown = shownClasses(r.variants);
    lines.push(
      '## Every variant, measured',
      '',
      `Batch-1 latency: ${b.runs} timed runs, ${b.threads} thread(s), ${timedWith(b)}; throughput at batch ${b.batch} (a model exported for one batch size at that one: see 'at batch'); top-1 on ${b.eval_data}. ★ = Pareto front of top-1 vs latency. p = McNemar's exact test of the top-1 change on the same images (above 0.05: a change chance alone makes often).${versusLatencyNote(b)}`,
      '',
      table(
        [...VARIANT_COLUMNS.map((c) => c.header), `vs ${base?.id ?? 'baseline'}`],
        r.variants.map((v) => [...VARIANT_COLUMNS.map((c, i) => (i === 0 && front.has(v.id) ? `${cell(c, v)} ★` : cell(c, v))), versusBaseline(v, base)]),
        [...VARIANT_COLUMNS.map((c) => c.numeric), false],
      ),
      '',
      ...[changedFilesNote(r), unrecoveredPruneNote(r), choseOnTestNote(r), exactKernelsNote(r), ...noiseNote(r.variants, r.bench)].filter((l) => l !== undefined).flatMap((l) => [`> **Note:** ${l}`, '']),
      ...otherBenchLines(r).flatMap((l) => [l, '']),
      'Re-measure:',
      '',
      '```sh',
      benchCommand(r),
      '```',
      '',
      '## Accuracy against latency and size',
      '',
      img('latency', 'top-1 vs latency'),
      img('size', 'top-1 vs size'),
      '',
      '## Per-class accuracy',
      '',
      img('perClass', 'per-class top-1'),
      '',
      ...(shown.caption ? [`Per class: ${shown.caption}.`, ''] : []),
      table(
        ['class', ...r.variants.map((v) => v.id)],
        shown.indices.map((i) => [r.variants[0]!.per_class[i]!.name, ...r.variants.map((v) => formatClassAccuracy(v.per_class[i]!))]),
        [false, ...r.variants.map(() => true)],
      ),
      '',
    );
  }
  if (r.sensitivity) {
    const worst = [...r.sensitivity.layers].sort((a, b) => a.score - b.score).slice(0, 8);
    lines.push(
      '## Layer sensitivity to int8',
      '',
      `Stage \`${r.sensitivity.stage}\`: each layer quantized alone; output SQNR against the float model.`,
      '',
      img('sensitivity', 'layer sensitivity'),
      '',
      table(['most sensitive layers', 'op', 'output SQNR (dB)', 'top-1 agreement'], worst.map((l) => [l.layer, l.op_type, Number.isFinite(l.score) ? l.score.toFixed(1) : '∞', formatPercent(l.agreement)]), [false, false, true, true]),
      '',
    );
  }
  if (r.training.length) {
    lines.push('## Training curves', '', img('accuracyCurves', 'test top-1 per epoch'), img('lossCurves', 'training loss per epoch'), '');
  }
  lines.push(
    '## Stages: time, GPU-seconds, cost',
    '',
    stagesIntro(r),
    '',
    table(
      STAGE_COLUMNS.map((c) => c.header),
      [...r.stages.map((s) => STAGE_COLUMNS.map((c) => cell(c, s))), ['total', '', '', '', r.totals.seconds.toFixed(1), r.totals.gpu_seconds.toFixed(1), r.totals.cost.toFixed(4), '']],
      STAGE_COLUMNS.map((c) => c.numeric),
    ),
    '',
    img('stageTimes', 'seconds per stage'),
    '',
  );
  if (r.deploy.length) {
    lines.push(
      '## Deployment',
      '',
      ((t) => table(t.headers, t.rows, t.numeric))(deployTable(r)),
      '',
    );
  }
  return lines.join('\n');
}

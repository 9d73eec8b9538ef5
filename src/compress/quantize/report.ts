/**
 * The `slim quantize --report` files: one JSON document, a Markdown page with the same tables, and an
 * SVG bar chart of per-layer sensitivity. Plain data in, strings out (the CLI writes them).
 */
import type { FloatNode } from './mark.js';
import type { MixedPrecisionStep } from './mixed-precision.js';
import { rankBySensitivity, type LayerSensitivity } from './sensitivity.js';
import type { TensorError } from './sqnr.js';
import { formatPointChange } from '../../report/format.js';

export interface QuantizeReport {
  model: string;
  output: string;
  settings: Record<string, unknown>;
  size_bytes_before: number;
  size_bytes_after: number;
  top1_before?: number;
  top1_after?: number;
  /** Per activation: local and accumulated SQNR (dB), calibrated range, scale and zero point. */
  activations: (TensorError & { min?: number; max?: number; scale?: number; zero_point?: number })[];
  weights: TensorError[];
  sensitivity: LayerSensitivity[];
  float_nodes: FloatNode[];
  /**
   * How the sensitivity and SQNRs were measured: on how many calibration images each, and whether on exact
   * int8 kernels (weights laid as uint8 because this CPU's int8 sums saturate; forExactScoring).
   */
  measured: { sensitivity_images: number; sqnr_images: number; exact_kernels: boolean };
  /** `chosen_on_images`: the evaluation images the search scored (every other one; top-1 above is the others'). */
  mixed_precision?: { steps: MixedPrecisionStep[]; float_layers: string[]; chosen_on_images: number };
}

const db = (v: number | undefined): string => (v === undefined ? '' : Number.isFinite(v) ? v.toFixed(1) : v > 0 ? '∞' : '−∞');
const pct = (v: number | undefined): string => (v === undefined ? '' : `${(v * 100).toFixed(2)} %`);
const cell = (s: string): string => s.replace(/\|/g, '\\|');

function markdownTable(headers: string[], rows: string[][]): string {
  return [`| ${headers.join(' | ')} |`, `|${headers.map(() => ' --- |').join('')}`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function reportMarkdown(r: QuantizeReport, svgFile?: string): string {
  const lines: string[] = [
    `# Quantization report: ${r.model}`,
    '',
    `Output \`${r.output}\`: ${r.size_bytes_before.toLocaleString('en')} → ${r.size_bytes_after.toLocaleString('en')} bytes (${(r.size_bytes_after / r.size_bytes_before).toFixed(3)}×).`,
  ];
  if (r.top1_before !== undefined && r.top1_after !== undefined) {
    lines.push(`Top-1: ${pct(r.top1_before)} float → ${pct(r.top1_after)} int8 (${formatPointChange((r.top1_after - r.top1_before) * 100)}).`);
  }
  lines.push('', `Settings: ${Object.entries(r.settings).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')}.`, '', measuredText(r.measured, r.top1_after !== undefined), '');
  if (r.sensitivity.length > 0) {
    lines.push(
      '## Per-layer sensitivity',
      '',
      'Each layer quantized alone, everything else float: SQNR of the model output against the float model (higher is better) and the share of images whose top-1 class does not change. Most sensitive first, in the order --max-drop keeps layers float: lowest top-1 agreement, then lowest SQNR.',
      '',
    );
    if (svgFile) lines.push(`![sensitivity](${svgFile})`, '');
    const order = rankBySensitivity(r.sensitivity);
    const sorted = [...r.sensitivity].sort((a, b) => order.indexOf(a.layer) - order.indexOf(b.layer));
    lines.push(markdownTable(['layer', 'op', 'output SQNR (dB)', 'top-1 agreement'], sorted.map((s) => [s.layer, s.opType, db(s.score), pct(s.agreement)])), '');
  }
  if (r.activations.length > 0) {
    lines.push(
      '## Activations',
      '',
      'local: the float tensor against its own quantize → dequantize (the cost of its range); accumulated: the float tensor against the same tensor in the int8 model (everything upstream included).',
      '',
      markdownTable(
        ['tensor', 'producer', 'local SQNR (dB)', 'accumulated SQNR (dB)', 'range', 'scale', 'zero point'],
        r.activations.map((a) => [
          a.tensor,
          a.producer,
          db(a.local),
          db(a.accumulated),
          a.min !== undefined && a.max !== undefined ? `[${a.min.toPrecision(4)}, ${a.max.toPrecision(4)}]` : '',
          a.scale !== undefined ? a.scale.toPrecision(4) : '',
          a.zero_point !== undefined ? String(a.zero_point) : '',
        ]),
      ),
      '',
    );
  }
  if (r.weights.length > 0) {
    lines.push('## Weights', '', markdownTable(['weight', 'SQNR (dB)'], r.weights.map((w) => [w.tensor, db(w.local)])), '');
  }
  if (r.float_nodes.length > 0) {
    lines.push('## Nodes left in float', '', markdownTable(['node', 'op', 'why'], r.float_nodes.map((f) => [f.node, f.opType, f.reason])), '');
  }
  if (r.mixed_precision) {
    lines.push(
      '## Mixed precision search',
      '',
      `Each split tried, scored on the ${r.mixed_precision.chosen_on_images} evaluation images the search chose on (every other one); the top-1 above is on the others, which took no part in the choice.`,
      '',
      markdownTable(['layers kept float', 'top-1', 'drop (pt)'], r.mixed_precision.steps.map((s) => [String(s.floatLayers), pct(s.top1), s.dropPt.toFixed(2)])),
      '',
      `Kept float: ${r.mixed_precision.float_layers.length ? r.mixed_precision.float_layers.map((l) => `\`${l}\``).join(', ') : 'none'}.`,
      '',
    );
  }
  return lines.join('\n');
}

/** Where the report's numbers come from: image counts, and which kernels ran the int8 model. */
function measuredText(m: QuantizeReport['measured'], hasTop1: boolean): string {
  const kernels = m.exact_kernels
    ? `on exact int8 kernels: this CPU's int8 sums saturate (x64 without VNNI), so for these measurements the weights were laid as uint8, the same model${hasTop1 ? ' (the top-1 above is this CPU\'s, saturating)' : ''}`
    : "on this CPU's int8 kernels";
  return `Measured on calibration images: layer sensitivity on ${m.sensitivity_images}, SQNRs on ${m.sqnr_images}, ${kernels}.`;
}

const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Horizontal bars, one per layer in graph order: output SQNR with only that layer quantized. */
export function sensitivitySvg(layers: readonly LayerSensitivity[]): string {
  const rowHeight = 18;
  const labelWidth = 300;
  const barWidth = 420;
  const top = 30;
  const finite = layers.map((l) => l.score).filter(Number.isFinite);
  const max = Math.max(10, ...finite);
  const height = top + layers.length * rowHeight + 30;
  const worst = [...layers].sort((a, b) => a.score - b.score).slice(0, Math.max(1, Math.ceil(layers.length / 5))).map((l) => l.layer);
  const bars = layers.map((l, i) => {
    const y = top + i * rowHeight;
    const value = Number.isFinite(l.score) ? Math.max(0, l.score) : max;
    const w = (value / max) * barWidth;
    const color = worst.includes(l.layer) ? '#d62728' : '#1f77b4';
    const label = l.layer.length > 40 ? `…${l.layer.slice(-39)}` : l.layer;
    return [
      `<text x="${labelWidth - 6}" y="${y + 13}" text-anchor="end" font-size="11">${escapeXml(label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${color}"><title>${escapeXml(`${l.layer} (${l.opType}): ${db(l.score)} dB, top-1 agreement ${pct(l.agreement)}`)}</title></rect>`,
      `<text x="${labelWidth + w + 4}" y="${y + 13}" font-size="10">${db(l.score)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + barWidth + 60}" height="${height}" font-family="sans-serif">`,
    `<text x="10" y="18" font-size="13" font-weight="bold">Output SQNR (dB) with one layer quantized — shorter bar = more sensitive (red: worst fifth)</text>`,
    ...bars,
    `<line x1="${labelWidth}" y1="${top}" x2="${labelWidth}" y2="${top + layers.length * rowHeight}" stroke="#333"/>`,
    `<text x="${labelWidth + barWidth}" y="${height - 8}" font-size="10" text-anchor="end">${max.toFixed(0)} dB</text>`,
    '</svg>',
    '',
  ].join('\n');
}

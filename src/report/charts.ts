/**
 * The report's charts: vega-lite specs (plain data in, a spec out) rendered to standalone SVG strings
 * in Node — vega's headless View, no browser, no canvas, no network. Element ids inside each SVG are
 * prefixed with the chart's name, so several charts can sit inline in one HTML page without their
 * clip paths colliding.
 */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { EpochJson } from './json-records.js';
import type { LayerSensitivity } from '../compress/quantize/sensitivity.js';
import { LABEL_OFFSET, LABEL_SIDES, paddedDomain, placeLabels, type Segment } from './label-placement.js';

export interface ChartPoint {
  id: string;
  x: number;
  top1: number;
  pareto: boolean;
}

/** The Pareto charts' point labels and dots (a point mark's size is its area in px²). */
const LABEL_FONT_SIZE = 11;
const DOT_RADIUS = 5.35;

const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif';
const CONFIG = { font: FONT, view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, labelLimit: 220 }, title: { fontSize: 14 } };

export async function renderSvg(spec: TopLevelSpec, name: string): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return namespaceIds(svg, name);
  } finally {
    view.finalize();
  }
}

function namespaceIds(svg: string, name: string): string {
  const prefix = `${name.replace(/[^A-Za-z0-9_-]/g, '-')}-`;
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${prefix}${id}"`);
}

/**
 * Top-1 against a cost (latency or size), every variant a labelled point, the Pareto front (no other
 * variant is both cheaper and more accurate) drawn as a line through its points.
 */
export function paretoSpec(points: readonly ChartPoint[], o: { title: string; xTitle: string }): TopLevelSpec {
  const [width, height, padding] = [400, 260, 20];
  // The front's line steps right from each point, then up to the next (interpolate: 'step-after').
  const front = points.filter((p) => p.pareto).sort((a, b) => a.x - b.x);
  const steps = front.slice(1).flatMap((b, i): Segment[] => {
    const a = front[i]!;
    return [[{ x: a.x, y: a.top1 * 100 }, { x: b.x, y: a.top1 * 100 }], [{ x: b.x, y: a.top1 * 100 }, { x: b.x, y: b.top1 * 100 }]];
  });
  // Padded as vega pads, but a latency or a size never below 0 (an axis from −500 KiB) nor a top-1 above 100 %.
  const xDomain = points.length ? paddedDomain(points.map((p) => p.x), width, padding, [0, Infinity]) : undefined;
  const yDomain = points.length ? paddedDomain(points.map((p) => p.top1 * 100), height, padding, [0, 100]) : undefined;
  const sides = xDomain && yDomain ? placeLabels(points.map((p) => ({ id: p.id, x: p.x, y: p.top1 * 100 })), { width, height, xDomain, yDomain, fontSize: LABEL_FONT_SIZE, dotRadius: DOT_RADIUS }, steps) : [];
  const values = points.map((p, i) => ({ ...p, top1pct: p.top1 * 100, front: p.pareto ? 'Pareto front' : 'dominated', label: sides[i] }));
  const x = { field: 'x', type: 'quantitative' as const, title: o.xTitle, scale: { zero: false, nice: true, ...(xDomain ? { domain: xDomain } : {}) } };
  const y = { field: 'top1pct', type: 'quantitative' as const, title: 'top-1 (%)', scale: { zero: false, nice: true, ...(yDomain ? { domain: yDomain } : {}) } };
  // One text layer per side a label can take (placeLabels chose it so that labels and dots stay clear).
  const labels = LABEL_SIDES.map((side) => ({
    transform: [{ filter: `datum.label === '${side}'` }],
    mark: { type: 'text', align: side.endsWith('right') ? 'left' : 'right', dx: side.endsWith('right') ? LABEL_OFFSET.dx : -LABEL_OFFSET.dx, dy: side.startsWith('above') ? LABEL_OFFSET.above : LABEL_OFFSET.below, fontSize: LABEL_FONT_SIZE },
    encoding: { x, y, text: { field: 'id' } },
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width,
    height,
    config: CONFIG,
    data: { values },
    layer: [
      {
        transform: [{ filter: 'datum.pareto' }],
        mark: { type: 'line', color: '#2ca02c', strokeDash: [4, 3], interpolate: 'step-after' },
        encoding: { x, y, order: { field: 'x', type: 'quantitative' } },
      },
      {
        mark: { type: 'point', size: Math.PI * DOT_RADIUS ** 2, filled: true },
        encoding: {
          x,
          y,
          color: { field: 'front', type: 'nominal', title: null, scale: { domain: ['Pareto front', 'dominated'], range: ['#2ca02c', '#9e9e9e'] }, legend: { orient: 'bottom' } },
          tooltip: [{ field: 'id' }, { field: 'x', title: o.xTitle }, { field: 'top1pct', title: 'top-1 (%)', format: '.2f' }],
        },
      },
      ...labels,
    ],
  } as TopLevelSpec;
}

export interface ClassRow {
  variant: string;
  className: string;
  accuracy: number;
}

/** Per-class top-1, one group of bars per class, one bar per variant. */
export function perClassSpec(rows: readonly ClassRow[], classes: readonly string[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Per-class top-1',
    width: Math.max(480, Math.min(1000, classes.length * (new Set(rows.map((r) => r.variant)).size * 12 + 16))),
    height: 240,
    config: CONFIG,
    data: { values: rows.map((r) => ({ ...r, pct: r.accuracy * 100 })) },
    mark: 'bar',
    encoding: {
      x: { field: 'className', type: 'nominal', title: null, sort: [...classes], axis: { labelAngle: -30 } },
      xOffset: { field: 'variant', type: 'nominal' },
      y: { field: 'pct', type: 'quantitative', title: 'top-1 (%)', scale: { domain: [0, 100] } },
      color: { field: 'variant', type: 'nominal', title: 'variant' },
      tooltip: [{ field: 'variant' }, { field: 'className', title: 'class' }, { field: 'pct', title: 'top-1 (%)', format: '.1f' }],
    },
  } as TopLevelSpec;
}

/** Output SQNR per layer (only that layer quantized), in graph order; the worst fifth in red. */
export function sensitivitySpec(layers: readonly Pick<LayerSensitivity, 'layer' | 'score' | 'agreement'>[]): TopLevelSpec {
  const finite = layers.map((l) => l.score).filter(Number.isFinite);
  const cap = Math.max(10, ...finite);
  const worst = new Set([...layers].sort((a, b) => a.score - b.score).slice(0, Math.max(1, Math.ceil(layers.length / 5))).map((l) => l.layer));
  const values = layers.map((l, i) => ({
    layer: l.layer,
    order: i,
    sqnr: Number.isFinite(l.score) ? Math.max(0, l.score) : cap,
    agreement: l.agreement * 100,
    group: worst.has(l.layer) ? 'most sensitive fifth' : 'other layers',
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Quantization sensitivity: output SQNR with one layer in int8 (further left = more sensitive)',
    width: 420,
    height: { step: 14 } as never,
    config: CONFIG,
    data: { values },
    // Dots on an axis fitted to the values: bars from 0 dB left 42 and 56 dB looking alike.
    mark: { type: 'point', filled: true, size: 70 },
    encoding: {
      y: { field: 'layer', type: 'nominal', title: null, sort: { field: 'order', order: 'ascending' } as never, axis: { labelLimit: 260 } },
      x: { field: 'sqnr', type: 'quantitative', title: 'output SQNR (dB)', scale: { zero: false, nice: true } },
      color: { field: 'group', type: 'nominal', title: null, scale: { domain: ['most sensitive fifth', 'other layers'], range: ['#d62728', '#1f77b4'] } },
      tooltip: [{ field: 'layer' }, { field: 'sqnr', title: 'SQNR (dB)', format: '.1f' }, { field: 'agreement', title: 'top-1 agreement (%)', format: '.2f' }],
    },
  } as TopLevelSpec;
}

export interface CurveSeries {
  stage: string;
  history: readonly EpochJson[];
  /** Test top-1 and loss before the first step (a fine-tune's starting point): drawn at epoch 0. */
  start?: { test_top1: number; test_loss: number | null };
  /** Later starting points (an iterative prune's later cuts): drawn after their epoch's own point, so the line drops there. */
  cuts?: readonly { epoch: number; test_top1: number; test_loss: number | null }[];
}

/**
 * Losses three decades apart or more (a run that blew up: 2.7e19 beside 2.3) flatten every other line at 0
 * on a linear axis: they get a log one, its ticks in short form (they were cut to "5,000,000,000,000,…").
 */
function spansDecades(values: readonly number[]): boolean {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  return positive.length > 1 && Math.max(...positive) / Math.min(...positive) >= 1e3;
}

/** One line per training stage over its epochs: test top-1 or train loss. `legend` names what a line is. */
export function curvesSpec(series: readonly CurveSeries[], metric: 'test_top1' | 'train_loss' | 'test_loss', legend = 'stage'): TopLevelSpec {
  const accuracy = metric === 'test_top1';
  // A diverged epoch logs its loss as null (JSON has no NaN): a gap, not a point at 0.
  const scored = (score: { test_top1: number; test_loss: number | null } | undefined): number | null | undefined => (metric === 'train_loss' ? undefined : score?.[metric]);
  // `order` draws a cut after its epoch's own point (same x): the line falls straight down at the cut.
  const points = (s: CurveSeries): { epoch: number; value: number; order: number }[] => [
    ...(typeof scored(s.start) === 'number' ? [{ epoch: 0, value: scored(s.start)!, order: 0 }] : []),
    ...s.history.filter((e) => Number.isFinite(e[metric])).map((e) => ({ epoch: e.epoch, value: e[metric], order: 2 * e.epoch })),
    ...(s.cuts ?? []).filter((c) => typeof scored(c) === 'number').map((c) => ({ epoch: c.epoch, value: scored(c)!, order: 2 * c.epoch + 1 })),
  ].sort((a, b) => a.order - b.order);
  const values = series.flatMap((s) => points(s).map((p) => ({ stage: s.stage, epoch: p.epoch, value: accuracy ? p.value * 100 : p.value, order: p.order })));
  const title = { test_top1: 'Test top-1 per epoch', train_loss: 'Training loss per epoch', test_loss: 'Test loss per epoch' }[metric];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 340,
    height: 220,
    config: CONFIG,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: accuracy
        ? { field: 'value', type: 'quantitative', title: 'top-1 (%)', scale: { zero: false } }
        : { field: 'value', type: 'quantitative', title: spansDecades(values.map((v) => v.value)) ? 'loss (log scale)' : 'loss', scale: spansDecades(values.map((v) => v.value)) ? { type: 'log' } : { zero: false }, axis: { format: '.3~g' } },
      order: { field: 'order', type: 'quantitative' },
      // In the order given (slim curves' arguments, a run's stages), not alphabetical.
      color: { field: 'stage', type: 'nominal', title: legend, scale: { domain: series.map((s) => s.stage) } },
      tooltip: [{ field: 'stage', title: legend }, { field: 'epoch' }, { field: 'value', title: accuracy ? 'top-1 (%)' : 'loss', format: '.3f' }],
    },
  } as TopLevelSpec;
}

/**
 * Test top-1 and a loss side by side, one line per run (slim curves): the training loss, or the test loss
 * (cross-entropy for every run) where distilled runs, whose training loss is another function, are drawn
 * beside plain ones (a trial's KD run sat below plain training's on one axis, with the lower top-1).
 */
export function trainingCurvesSpec(series: readonly CurveSeries[], loss: 'train_loss' | 'test_loss' = 'train_loss'): TopLevelSpec {
  const panel = (metric: 'test_top1' | 'train_loss' | 'test_loss'): object => {
    const { $schema: _schema, config: _config, ...rest } = curvesSpec(series, metric, 'run') as unknown as Record<string, unknown>;
    return rest;
  };
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, hconcat: [panel('test_top1'), panel(loss)] } as TopLevelSpec;
}

export interface StageTime {
  stage: string;
  seconds: number;
  device: string;
}

const DEVICE_COLOURS: Record<string, string> = { cpu: '#1f77b4', cuda: '#ff7f0e' };

/** Wall seconds per stage, coloured by where it ran; the legend lists only the devices that ran one. */
export function stageTimeSpec(rows: readonly StageTime[]): TopLevelSpec {
  const devices = [...new Set(rows.map((r) => r.device))].sort();
  const scale = { domain: devices, range: devices.map((d) => DEVICE_COLOURS[d] ?? '#7f7f7f') };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Time per stage',
    width: 420,
    height: { step: 18 } as never,
    config: CONFIG,
    data: { values: rows.map((r, i) => ({ ...r, order: i })) },
    mark: 'bar',
    encoding: {
      y: { field: 'stage', type: 'nominal', title: null, sort: { field: 'order', order: 'ascending' } as never },
      x: { field: 'seconds', type: 'quantitative', title: 'seconds' },
      color: { field: 'device', type: 'nominal', title: 'device', scale },
      tooltip: [{ field: 'stage' }, { field: 'seconds', format: '.1f' }, { field: 'device' }],
    },
  } as TopLevelSpec;
}

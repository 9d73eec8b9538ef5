/**
 * Where each point's label goes in a scatter chart: right or left of its dot, above or below, so that no
 * label covers another label or another point's dot (a long name such as `m.pruned.int8.onnx` ran over
 * its neighbour's dot and label when every label sat right of its point). Worked out in an estimate of
 * the chart's pixels: linear scales over the domains the chart is given, a label as wide as its
 * characters at a sans-serif font's average advance.
 */

export type LabelSide = 'above-right' | 'below-right' | 'above-left' | 'below-left';

/** In order of preference: the first that costs nothing is taken. */
export const LABEL_SIDES: readonly LabelSide[] = ['above-right', 'below-right', 'above-left', 'below-left'];

/** The text marks' offsets from their point, in pixels (charts.ts draws them with these). */
export const LABEL_OFFSET = { dx: 6, above: -9, below: 12 } as const;

export interface LabelledPoint {
  id: string;
  x: number;
  y: number;
}

export interface PlotArea {
  width: number;
  height: number;
  /** The scales' domains, in data units (vega's `nice` may widen them a little: points only come closer). */
  xDomain: readonly [number, number];
  yDomain: readonly [number, number];
  fontSize: number;
  /** A dot's radius in pixels. */
  dotRadius: number;
}

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Average advance of a sans-serif character, as a fraction of the font size (generous: names are lowercase). */
const CHAR_WIDTH_EM = 0.56;

/** Exhaustive search up to this many points (4^8 = 65,536 layouts); greedy beyond. */
const EXHAUSTIVE_UP_TO = 8;

function overlap(a: Box, b: Box): number {
  return Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) * Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
}

/** The label's box for a point at pixel (px, py) on `side`. */
function labelBox(px: number, py: number, text: string, side: LabelSide, area: PlotArea): Box {
  const width = text.length * CHAR_WIDTH_EM * area.fontSize;
  const cy = py + (side.startsWith('above') ? LABEL_OFFSET.above : LABEL_OFFSET.below);
  const [x0, x1] = side.endsWith('right') ? [px + LABEL_OFFSET.dx, px + LABEL_OFFSET.dx + width] : [px - LABEL_OFFSET.dx - width, px - LABEL_OFFSET.dx];
  return { x0, x1, y0: cy - area.fontSize / 2, y1: cy + area.fontSize / 2 };
}

/** A drawn line's segment in data units (the Pareto front's steps), which a label had better not cross. */
export type Segment = readonly [{ x: number; y: number }, { x: number; y: number }];

/** Each point's label side, in the order of `points`; `lines`: horizontal and vertical segments drawn too. */
export function placeLabels(points: readonly LabelledPoint[], area: PlotArea, lines: readonly Segment[] = []): LabelSide[] {
  if (points.length === 0) return [];
  const { pixels, toPixel } = pixelScale(points, area);
  const dots = pixels.map(([px, py]) => ({ x0: px - area.dotRadius, x1: px + area.dotRadius, y0: py - area.dotRadius, y1: py + area.dotRadius }));
  // A line as a box one pixel either side of it: crossing one costs what covering 2 px of a dot does.
  const strokes = lines.map(([a, b]) => {
    const [[ax, ay], [bx, by]] = [toPixel(a), toPixel(b)];
    return { x0: Math.min(ax, bx) - 1, x1: Math.max(ax, bx) + 1, y0: Math.min(ay, by) - 1, y1: Math.max(ay, by) + 1 };
  });
  const plot: Box = { x0: 0, x1: area.width, y0: 0, y1: area.height };
  // What a label on each side costs on its own: the dots it covers, what sticks out of the plot, a
  // small preference order so that free labels keep one side.
  const boxes = pixels.map(([px, py], i) => LABEL_SIDES.map((side) => labelBox(px, py, points[i]!.id, side, area)));
  const own = boxes.map((sides, i) =>
    sides.map((box, s) => {
      const covered = dots.reduce((sum, dot, j) => sum + (j === i ? 0 : overlap(box, dot)), 0) + strokes.reduce((sum, line) => sum + overlap(box, line), 0);
      const outside = (box.x1 - box.x0) * (box.y1 - box.y0) - overlap(box, plot);
      return covered + outside + s * 0.01;
    }),
  );
  const pair = (i: number, si: number, j: number, sj: number): number => overlap(boxes[i]![si]!, boxes[j]![sj]!);
  const chosen = points.length <= EXHAUSTIVE_UP_TO ? bestLayout(own, pair) : greedyLayout(own, pair, pixels);
  return chosen.map((s) => LABEL_SIDES[s]!);
}

/** Every layout tried: the cheapest wins (ties: the earlier in preference order). */
function bestLayout(own: number[][], pair: (i: number, si: number, j: number, sj: number) => number): number[] {
  const n = own.length;
  const sides = LABEL_SIDES.length;
  let best: number[] = new Array<number>(n).fill(0);
  let bestCost = Infinity;
  const layout = new Array<number>(n).fill(0);
  const search = (i: number, cost: number): void => {
    if (cost >= bestCost) return;
    if (i === n) {
      bestCost = cost;
      best = [...layout];
      return;
    }
    for (let s = 0; s < sides; s++) {
      let added = own[i]![s]!;
      for (let j = 0; j < i; j++) added += pair(i, s, j, layout[j]!);
      layout[i] = s;
      search(i + 1, cost + added);
    }
  };
  search(0, 0);
  return best;
}

/** Left to right, each label on the cheapest side given those placed before it. */
function greedyLayout(own: number[][], pair: (i: number, si: number, j: number, sj: number) => number, pixels: readonly [number, number][]): number[] {
  const order = pixels.map((_, i) => i).sort((a, b) => pixels[a]![0] - pixels[b]![0]);
  const layout = new Array<number>(own.length).fill(0);
  const placed: number[] = [];
  for (const i of order) {
    const costs = own[i]!.map((c, s) => c + placed.reduce((sum, j) => sum + pair(i, s, j, layout[j]!), 0));
    layout[i] = costs.indexOf(Math.min(...costs));
    placed.push(i);
  }
  return layout;
}

/** Data to pixels over the scales' domains; y grows downwards. */
function pixelScale(points: readonly LabelledPoint[], area: PlotArea): { pixels: [number, number][]; toPixel: (p: { x: number; y: number }) => [number, number] } {
  const axis = ([lo, hi]: readonly [number, number], length: number): ((v: number) => number) => (hi > lo ? (v) => ((v - lo) / (hi - lo)) * length : () => length / 2);
  const x = axis(area.xDomain, area.width);
  const y = axis(area.yDomain, area.height);
  const toPixel = (p: { x: number; y: number }): [number, number] => [x(p.x), area.height - y(p.y)];
  return { pixels: points.map(toPixel), toPixel };
}

/**
 * The data's range widened by `padding` pixels at each end of `length` (what vega's scale padding does),
 * but never past the bounds a quantity has (a size below 0 KiB, a top-1 above 100 %).
 */
export function paddedDomain(values: readonly number[], length: number, padding: number, bounds: readonly [number, number]): [number, number] {
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const span = hi - lo || Math.abs(hi) * 0.2 || 1;
  const pad = (span * padding) / Math.max(1, length - 2 * padding);
  return [Math.max(bounds[0], lo - pad), Math.min(bounds[1], hi + pad)];
}

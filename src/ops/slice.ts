import { intsAttr } from './attrs.js';
import { defineOp, OpError, type KnownValue, type OpContext } from './op-def.js';
import { takeKnown } from './shared/known.js';
import { input, knownInts, normalizeAxes, typeOf, unknownDim } from './shared/shapes.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { single, STATIC_SHAPE_FIX } from '../engine/lowering.js';
import { equalPartTies, samePorts } from '../compress/prune/rules.js';
import { entryAt, FOLD_HINT, forSampleCounts } from '../compress/prune/shape-expr.js';
import type { ChannelContext, ChannelLink } from '../compress/prune/channel-rule.js';
import { int64, makeTensor, toNumbers, type Tensor } from '../onnx/tensor.js';
import { attributesToInputs, intsInput } from './shared/upgrade.js';

/** Opsets < 10 give starts/ends/axes as attributes; from 10 they (and steps) are inputs 1-4. */
export interface SliceAttrs {
  starts?: number[];
  ends?: number[];
  axes?: number[];
}

interface SliceParams {
  starts: number[];
  ends: number[];
  axes: number[];
  steps: number[];
}

export const slice = defineOp<SliceAttrs>({
  opType: 'Slice',
  domain: '',
  summary: 'a strided sub-range along some axes (numpy x[start:end:step])',
  inputCount: [1, 5],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (opset >= 10) return {};
    const starts = intsAttr(node, 'starts');
    const ends = intsAttr(node, 'ends');
    if (!starts || !ends) throw new OpError('Slice before opset 10 requires attributes starts and ends');
    const axes = intsAttr(node, 'axes');
    return axes ? { starts, ends, axes } : { starts, ends };
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    const shape = x.type.shape;
    if (!shape) return [typeOf(x.type.dtype)];
    const params = sliceParams(ctx, shape.length);
    if (!params) return [typeOf(x.type.dtype, shape.map((_, i) => unknownDim(ctx, 0, i)))];
    const out = [...shape];
    params.axes.forEach((axis, k) => {
      const d = shape[axis]!;
      const [start, end, step] = [params.starts[k]!, params.ends[k]!, params.steps[k]!];
      if (typeof d === 'number') out[axis] = sliceLength(d, start, end, step);
      // On a symbolic axis only the whole-axis slice keeps the symbol.
      else out[axis] = start === 0 && end >= 2 ** 31 - 1 && step === 1 ? d : unknownDim(ctx, 0, axis);
    });
    return [typeOf(x.type.dtype, out)];
  },
  macs: () => 0,
  foldValues(ctx) {
    const known = ctx.inputs[0]?.known;
    if (!known) return [undefined];
    const params = sliceParams(ctx, known.dims.length);
    if (!params) return [undefined];
    let value: KnownValue = known;
    params.axes.forEach((axis, k) => {
      value = takeKnown(value, axis, sliceIndices(value.dims[axis]!, params.starts[k]!, params.ends[k]!, params.steps[k]!));
    });
    return [value];
  },
  lower(ctx) {
    const rank = ctx.inputs[0]?.type.shape?.length;
    if (rank === undefined) throw new OpError('Slice needs an input of known rank for training');
    const params = sliceParams(ctx, rank);
    if (!params) throw new OpError(`starts, ends, axes and steps must be constants for training; ${STATIC_SHAPE_FIX}`);
    // ONNX Runtime reads INT_MAX as "to the start" for a negative step, the spec as an empty slice: the
    // model would train one function and run another.
    params.steps.forEach((step, k) => {
      if (step < 0 && params.ends[k]! >= 2 ** 31 - 1) {
        throw new OpError(`a negative step with end ${params.ends[k]} reads differently in ONNX Runtime and the spec; re-export with end INT64_MIN (what torch.flip exports)`);
      }
    });
    // The plan holds int32: "to the end" (INT64_MAX) and "from the start" (INT64_MIN) mean the same clamped.
    const int32 = (v: number): number => Math.max(-(2 ** 31 - 1), Math.min(2 ** 31 - 1, v));
    const ints = params.axes.flatMap((axis, k) => [axis, int32(params.starts[k]!), int32(params.ends[k]!), int32(params.steps[k]!)]);
    return single('slice', { inputs: [ctx.node.inputs[0]!], ints });
  },
  quant: passThrough(),
  // Pruning: a slice of other axes passes channels through. One of the channel axis takes a run of them:
  // stored bounds are rewritten to the channels kept; bounds computed from Shape (torch's chunk) must
  // take part k of G equal parts, whose positions are then tied so that the parts stay equal.
  channels: {
    anyAxis: true,
    ports(ctx) {
      const cut = channelCut(ctx);
      if (typeof cut === 'string') return cut;
      if (!cut) return samePorts([0], [0], ctx.channelAxes[0]);
      const link = (fromStart: number, toStart: number, count: number): ChannelLink => ({ from: { side: 'in', slot: 0 }, to: { side: 'out', slot: 0 }, fromStart, toStart, count, span: 1 });
      const axis = ctx.channelAxes[0]!;
      const outputAxes = axis === 1 ? {} : { outputAxes: [axis] };
      if (cut.kind === 'stored') return { inputs: [0], outputs: [0], coupling: [link(cut.start, 0, cut.end - cut.start)], ...outputAxes };
      const part = cut.channels / cut.parts;
      return { inputs: [0], outputs: [0], coupling: [link(cut.from * part, 0, (cut.to - cut.from) * part)], ties: equalPartTies('in', cut.parts, part), ...outputAxes };
    },
    resize(ctx, keep) {
      const cut = channelCut(ctx);
      const kept = keep.inputs[0];
      if (!cut || typeof cut === 'string' || cut.kind !== 'stored' || !kept) return {};
      const start = kept.filter((c) => c < cut.start).length;
      const end = start + kept.filter((c) => c >= cut.start && c < cut.end).length;
      const rewrite = (slot: number, value: number): Tensor => {
        const t = ctx.inputs[slot]!.constant!;
        const values = toNumbers(t).map((v, i) => (i === cut.index ? value : v));
        return t.dtype === 'int32' ? makeTensor('int32', t.dims, Int32Array.from(values)) : int64(t.dims, values);
      };
      return { inputs: { 1: rewrite(1, start), 2: rewrite(2, end) } };
    },
  },
  upgrade(ctx) {
    if (ctx.opset >= 10) return [ctx.node];
    const { starts, ends, axes } = ctx.attrs;
    return [attributesToInputs(ctx.node, ['starts', 'ends', 'axes'], [intsInput(ctx, 'starts', starts), intsInput(ctx, 'ends', ends), intsInput(ctx, 'axes', axes)])];
  },
});

/**
 * How a Slice cuts the channel axis: not at all (undefined); [start, end) with both bounds stored; part
 * `from` … `to` of `parts` equal parts with bounds computed from the channel count; or why not (a string).
 */
type ChannelCut =
  | { kind: 'stored'; index: number; start: number; end: number }
  | { kind: 'parts'; channels: number; parts: number; from: number; to: number }
  | string
  | undefined;

function channelCut(ctx: ChannelContext<SliceAttrs>): ChannelCut {
  const shape = ctx.inputs[0]?.type.shape;
  if (!shape) return 'its input shape is not known';
  const axis = ctx.channelAxes[0]!;
  const params = sliceParams(ctx, shape.length);
  if (!params) return 'its starts, ends, axes or steps are not known statically';
  const index = params.axes.indexOf(axis);
  // Bounds computed from Shape on other axes must not follow a channel count: they would move with it.
  if (!ctx.inputs[1]?.constant || !ctx.inputs[2]?.constant) {
    for (const slot of [1, 2]) {
      if (ctx.inputs[slot]?.constant) continue;
      const entries = ctx.shapeExpr?.(ctx.node.inputs[slot]!);
      if (!entries || entries.length !== params.axes.length) return `its bounds are computed in a way pruning cannot follow${FOLD_HINT}`;
      if (entries.some((e, k) => k !== index && (e.kind === 'channels' || e.kind === 'mixed'))) return 'its bounds on another axis are computed from a channel count';
    }
  }
  if (index < 0) return undefined;
  const channels = shape[axis];
  if (typeof channels !== 'number') return 'its channel count is symbolic';
  if (params.steps[index] !== 1) return 'slices the channels with a step';
  if (ctx.opset < 10) return 'cuts the channels with attribute bounds (opset < 10)';
  if (ctx.inputs[1]?.constant && ctx.inputs[2]?.constant) {
    const [start, end] = sliceBounds(channels, params.starts[index]!, params.ends[index]!, 1);
    return { kind: 'stored', index, start, end: Math.max(start, end) };
  }
  // Computed bounds: find G and k0 < k1 with [start, end) = [k0·C/G, k1·C/G) whatever C (a multiple of G) is.
  const x = ctx.node.inputs[0]!;
  const [startEntry, endEntry] = [ctx.shapeExpr?.(ctx.node.inputs[1]!)?.[index], ctx.shapeExpr?.(ctx.node.inputs[2]!)?.[index]];
  if (!startEntry || !endEntry) return `its bounds on the channel axis are computed in a way pruning cannot follow${FOLD_HINT}`;
  for (let parts = 2; parts <= Math.min(channels, 16); parts++) {
    if (channels % parts !== 0) continue;
    const at = (c: number): [number, number] | undefined => {
      const [s, e] = [entryAt(startEntry, x, c), entryAt(endEntry, x, c)];
      return s === undefined || e === undefined ? undefined : sliceBounds(c, s, e, 1);
    };
    const here = at(channels);
    if (!here) break;
    const [from, to] = [(here[0] * parts) / channels, (here[1] * parts) / channels];
    if (!Number.isInteger(from) || !Number.isInteger(to) || to <= from) continue;
    const follows = forSampleCounts((m) => {
      const b = at(parts * m);
      return b !== undefined && b[0] === from * m && b[1] === to * m;
    });
    if (follows) return { kind: 'parts', channels, parts, from, to };
  }
  return `its bounds on the channel axis are computed in a way pruning cannot follow${FOLD_HINT}`;
}

/** Starts/ends/axes/steps with axes normalized; undefined when an input's contents are not known. */
function sliceParams(ctx: OpContext<SliceAttrs>, rank: number): SliceParams | undefined {
  const fromInputs = ctx.opset >= 10;
  const starts = fromInputs ? knownInts(ctx, 1) : ctx.attrs.starts;
  const ends = fromInputs ? knownInts(ctx, 2) : ctx.attrs.ends;
  if (fromInputs) {
    input(ctx, 1);
    input(ctx, 2);
  }
  const axes = fromInputs ? (ctx.inputs[3] ? knownInts(ctx, 3) : undefined) : ctx.attrs.axes;
  const steps = fromInputs && ctx.inputs[4] ? knownInts(ctx, 4) : undefined;
  if (!starts || !ends || (fromInputs && ctx.inputs[3] && !axes) || (ctx.inputs[4] && !steps)) return undefined;
  const n = starts.length;
  const allAxes = axes ?? Array.from({ length: n }, (_, i) => i);
  const allSteps = steps ?? new Array<number>(n).fill(1);
  if (ends.length !== n || allAxes.length !== n || allSteps.length !== n) {
    throw new OpError(`starts, ends, axes and steps must have the same length, got ${n}, ${ends.length}, ${allAxes.length}, ${allSteps.length}`);
  }
  if (allSteps.some((s) => s === 0)) throw new OpError('steps must not be 0');
  return { starts, ends, axes: normalizeAxes(allAxes, rank), steps: allSteps };
}

/** Start and end of numpy's x[start:end:step] on an axis of length `dim`, clamped the way ONNX does. */
function sliceBounds(dim: number, start: number, end: number, step: number): [number, number] {
  const resolve = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v < 0 ? v + dim : v));
  return step > 0 ? [resolve(start, 0, dim), resolve(end, 0, dim)] : [resolve(start, 0, dim - 1), resolve(end, -1, dim - 1)];
}

/** How many entries x[start:end:step] has (computed, so huge axes cost nothing). */
export function sliceLength(dim: number, start: number, end: number, step: number): number {
  const [s, e] = sliceBounds(dim, start, end, step);
  return Math.max(0, Math.ceil((e - s) / step));
}

/** The indices x[start:end:step] picks; for folding small known values. */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  const [s] = sliceBounds(dim, start, end, step);
  return Array.from({ length: sliceLength(dim, start, end, step) }, (_, i) => s + i * step);
}

import type { Dim } from '../onnx/graph.js';
import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { floatAttr, intAttr, intsAttr, stringAttr } from './attrs.js';
import { defineOp, OpError, type OpContext } from './op-def.js';
import { input, normalizeAxes, typeOf, unknownDim, shapeOf } from './shared/shapes.js';
import { resampleTaps, type ResampleAxis } from './shared/resample.js';
import { single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { samePorts } from '../compress/prune/rules.js';
import { int64 } from '../onnx/tensor.js';

export type ResizeMode = 'nearest' | 'linear' | 'cubic';
export type CoordinateMode = 'half_pixel' | 'half_pixel_symmetric' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric' | 'tf_half_pixel_for_nn' | 'tf_crop_and_resize';
/** 'simple' is opset 10's rounding (floor when upsampling, ceil when downsampling), as ONNX Runtime reads it. */
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil' | 'simple';
export type AspectPolicy = 'stretch' | 'not_larger' | 'not_smaller';

export interface ResizeAttrs {
  mode: ResizeMode;
  coordinateMode: CoordinateMode;
  nearestMode: NearestMode;
  cubicCoeffA: number;
  excludeOutside: boolean;
  extrapolationValue: number;
  /** Opset 18: a downscale filters over the whole footprint (PIL's resize). */
  antialias: boolean;
  /** Opset 18: the axes scales/sizes are given for; all axes when absent. */
  axes?: number[];
  keepAspectRatioPolicy: AspectPolicy;
}

const MODES: readonly ResizeMode[] = ['nearest', 'linear', 'cubic'];
const COORDINATE_MODES: readonly CoordinateMode[] = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn', 'tf_crop_and_resize'];
const NEAREST_MODES: readonly NearestMode[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const POLICIES: readonly AspectPolicy[] = ['stretch', 'not_larger', 'not_smaller'];

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new OpError(`${what} '${value}' is not one of ${allowed.join(', ')}`);
  return value as T;
}

/** Input slots: opset 10 takes (X, scales); from 11, (X, roi, scales, sizes). */
const scalesSlot = (opset: number): number => (opset >= 11 ? 2 : 1);

/** The scales input's values, when given and constant; [] when omitted or empty (sizes are given instead). */
function constantScales<A>(ctx: OpContext<A>, opset: number): number[] | undefined {
  const facts = ctx.inputs[scalesSlot(opset)];
  if (!facts) return [];
  if (facts.type.dtype !== 'float32') throw new OpError(`scales ('${facts.name}') is ${facts.type.dtype}; ONNX takes float32`);
  const given = facts.constant ?? facts.literal;
  if (!given) return facts.type.shape?.[0] === 0 ? [] : undefined;
  return Array.from(given.data as Float32Array, Number);
}

/** The sizes input's entries (numbers, or symbols that follow a free dim), when given and known; [] when omitted. */
function knownSizes<A>(ctx: OpContext<A>, opset: number): Dim[] | undefined {
  if (opset < 11) return [];
  const facts = ctx.inputs[3];
  if (!facts) return [];
  if (facts.type.shape?.[0] === 0) return [];
  return facts.known?.values;
}

/**
 * Per axis of the input, the output length and the scale the coordinates are mapped with (ONNX:
 * the given scale, or output/input length when sizes are given), or undefined where not known.
 */
function resizedAxes<A extends ResizeAttrs>(ctx: OpContext<A>, shape: readonly Dim[]): { out: Dim; scale: number | undefined }[] | undefined {
  const rank = shape.length;
  const axes = ctx.attrs.axes ? normalizeAxes(ctx.attrs.axes, rank) : shape.map((_, i) => i);
  const scales = constantScales(ctx, ctx.opset);
  const sizes = knownSizes(ctx, ctx.opset);
  if (scales === undefined || sizes === undefined) return undefined;
  if (scales.length > 0 && sizes.length > 0) throw new OpError('scales and sizes are both given; ONNX takes one of them');
  if (scales.length === 0 && sizes.length === 0) throw new OpError('neither scales nor sizes is given');
  const given = scales.length > 0 ? scales : sizes;
  if (given.length !== axes.length) throw new OpError(`${scales.length > 0 ? 'scales' : 'sizes'} has ${given.length} values for ${axes.length} axes`);
  const result = shape.map((d) => ({ out: d, scale: 1 as number | undefined }));
  if (scales.length > 0) {
    axes.forEach((axis, k) => {
      const s = scales[k]!;
      if (!(s > 0)) throw new OpError(`scales [${scales.join(', ')}] must be positive`);
      const d = shape[axis]!;
      // ONNX Runtime: floor(length × scale) in float32.
      result[axis] = { out: s === 1 ? d : typeof d === 'number' ? Math.floor(Math.fround(Math.fround(s) * d)) : unknownDim(ctx, 0, axis), scale: s };
    });
    return result;
  }
  const policy = ctx.attrs.keepAspectRatioPolicy;
  if (policy !== 'stretch') {
    // One scale for every given axis, the smallest (not_larger) or largest (not_smaller) of sizes / length.
    if (axes.some((axis, k) => typeof shape[axis] !== 'number' || typeof sizes[k] !== 'number')) return undefined;
    const ratios = axes.map((axis, k) => (sizes[k] as number) / (shape[axis] as number));
    const s = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
    axes.forEach((axis) => {
      result[axis] = { out: Math.round(s * (shape[axis] as number)), scale: s };
    });
    return result;
  }
  axes.forEach((axis, k) => {
    const size = sizes[k]!;
    const d = shape[axis]!;
    if (typeof size === 'number' && size < 0) throw new OpError(`sizes [${sizes.join(', ')}] must not be negative`);
    result[axis] = { out: size, scale: typeof size === 'number' && typeof d === 'number' ? size / d : size === d ? 1 : undefined };
  });
  return result;
}

export const resize = defineOp<ResizeAttrs>({
  opType: 'Resize',
  domain: '',
  summary: 'resample spatial axes (nearest, linear, cubic; F.interpolate); scales or sizes',
  inputCount: [1, 4],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const mode = oneOf(stringAttr(node, 'mode', 'nearest'), opset >= 11 ? MODES : MODES.slice(0, 2), 'mode');
    if (opset < 11) {
      // Opset 10: asymmetric coordinates; ONNX Runtime rounds nearest down when upsampling, up when downsampling.
      return { mode, coordinateMode: 'asymmetric', nearestMode: 'simple', cubicCoeffA: -0.75, excludeOutside: false, extrapolationValue: 0, antialias: false, keepAspectRatioPolicy: 'stretch' };
    }
    const coordinateMode = oneOf(stringAttr(node, 'coordinate_transformation_mode', 'half_pixel'), COORDINATE_MODES, 'coordinate_transformation_mode');
    if (coordinateMode === 'half_pixel_symmetric' && opset < 19) throw new OpError('coordinate_transformation_mode half_pixel_symmetric needs opset 19');
    if (coordinateMode === 'tf_half_pixel_for_nn' && opset >= 13) throw new OpError('coordinate_transformation_mode tf_half_pixel_for_nn was removed in opset 13');
    const axes = opset >= 18 ? intsAttr(node, 'axes') : undefined;
    return {
      mode,
      coordinateMode,
      nearestMode: oneOf(stringAttr(node, 'nearest_mode', 'round_prefer_floor'), NEAREST_MODES, 'nearest_mode'),
      cubicCoeffA: floatAttr(node, 'cubic_coeff_a', -0.75),
      excludeOutside: intAttr(node, 'exclude_outside', 0) !== 0,
      extrapolationValue: floatAttr(node, 'extrapolation_value', 0),
      antialias: opset >= 18 && intAttr(node, 'antialias', 0) !== 0,
      ...(axes ? { axes } : {}),
      keepAspectRatioPolicy: opset >= 18 ? oneOf(stringAttr(node, 'keep_aspect_ratio_policy', 'stretch'), POLICIES, 'keep_aspect_ratio_policy') : 'stretch',
    };
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    const shape = x.type.shape;
    if (!shape) return [typeOf(x.type.dtype)];
    const axes = resizedAxes(ctx, shape);
    return [typeOf(x.type.dtype, axes ? axes.map((a) => a.out) : shape.map((_, i) => unknownDim(ctx, 0, i)))];
  },
  macs: () => 0,
  // scales is tensor(float) in every opset (roi follows X from opset 11).
  float32Inputs: (opset) => [scalesSlot(opset)],
  // Every axis kept at its length: nearest, linear and cubic then read each element where it is.
  passesThrough(ctx) {
    const shape = ctx.inputs[0]?.type.shape;
    if (!shape || ctx.attrs.coordinateMode === 'tf_crop_and_resize') return undefined;
    const axes = resizedAxes(ctx, shape);
    return axes?.every((a, i) => a.out === shape[i] && a.scale === 1) ? 0 : undefined;
  },
  // Pruning: channels pass through unless the channel axis itself is resized.
  channels: {
    ports(ctx) {
      const shape = ctx.inputs[0]?.type.shape;
      if (!shape) return 'its input rank is unknown';
      const axes = resizedAxes(ctx, shape);
      if (!axes) return 'its scales or sizes are computed at run time';
      if (axes[1]?.out !== shape[1]) return 'resizes the channel axis';
      return samePorts([0], [0]);
    },
    // A stored sizes input spells out the channel count: it follows the kept channels.
    resize(ctx, keep) {
      const sizes = ctx.opset >= 11 ? ctx.inputs[3]?.constant : undefined;
      const kept = keep.outputs[0]?.length;
      const rank = ctx.inputs[0]?.type.shape?.length;
      if (!sizes || kept === undefined || rank === undefined) return {};
      const entry = ctx.attrs.axes ? normalizeAxes(ctx.attrs.axes, rank).indexOf(1) : 1;
      if (entry < 0 || entry >= sizes.data.length) return {};
      const values = Array.from(sizes.data as BigInt64Array, Number);
      values[entry] = kept;
      return { inputs: { 3: int64([values.length], values) } };
    },
  },
  // int8 in, int8 out at one scale (ONNX Runtime's QDQ Resize): a resample of the quantized values. Not
  // cubic: ONNX Runtime runs an int8 Resize channels-last, where its cubic kernel refuses the model.
  quant: { mark: (ctx) => (ctx.attrs.mode === 'cubic' ? undefined : passThrough<ResizeAttrs>().mark(ctx)) },
  // Opset 10's (X, scales) with asymmetric coordinates, as opset 11+ spells it. Its nearest rounding is
  // floor when upsampling; a nearest downscale rounds differently in ONNX Runtime and has no exact rewrite.
  upgrade(ctx) {
    if (ctx.opset >= 11) return [ctx.node];
    const scales = constantScales(ctx, ctx.opset);
    if (ctx.attrs.mode === 'nearest' && !(scales && scales.length > 0 && scales.every((v) => v >= 1))) {
      throw new OpError('an opset 10 nearest Resize that does not upsample has no exact opset 13 form');
    }
    const { node } = ctx;
    return [{
      ...node,
      inputs: [node.inputs[0]!, '', node.inputs[1] ?? ''],
      attributes: {
        ...node.attributes,
        coordinate_transformation_mode: { type: 'string', value: 'asymmetric' },
        ...(ctx.attrs.mode === 'nearest' ? { nearest_mode: { type: 'string', value: 'floor' } } : {}),
      },
    }];
  },
  lower(ctx) {
    const { attrs } = ctx;
    if (!FLOAT_DTYPES.has(input(ctx, 0).type.dtype)) throw new OpError(`a Resize of ${input(ctx, 0).type.dtype} values is not supported for training`);
    if (attrs.coordinateMode === 'tf_crop_and_resize') throw new OpError("coordinate_transformation_mode tf_crop_and_resize (TensorFlow's) is not supported for training");
    const shape = shapeOf(ctx, 0);
    const axes = resizedAxes(ctx, shape);
    if (!axes) throw new OpError('its scales or sizes must be constants for training (export with a fixed image size)');
    if (attrs.antialias && axes.some((a) => a.scale !== undefined && a.scale < 1)) throw new OpError('an antialiased downscale (antialias=1) is not supported for training');
    const resampled: ResampleAxis[] = [];
    axes.forEach(({ out, scale }, axis) => {
      const length = shape[axis]!;
      if (out === length && scale === 1) return;
      if (typeof length !== 'number' || typeof out !== 'number' || scale === undefined) {
        throw new OpError(`axis ${axis} is resized from ${length} to ${out}, which must be fixed for training (export with a fixed image size)`);
      }
      const taps = resampleTaps({ ...attrs, length, out, scale });
      if (taps) resampled.push({ axis, ...taps });
    });
    if (resampled.length === 0) return single('identity', { inputs: [ctx.node.inputs[0]!] });
    return single('resample', {
      inputs: [ctx.node.inputs[0]!],
      ints: [resampled.length, ...resampled.flatMap((a) => [a.axis, a.out, a.taps, ...a.index])],
      floats: resampled.flatMap((a) => a.weights),
    });
  },
});

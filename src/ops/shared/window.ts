import type { Dim, Node } from '../../onnx/graph.js';
import { intAttr, intsAttr, stringAttr } from '../attrs.js';
import { OpError, type OpContext } from '../op-def.js';
import { unknownDim } from './shapes.js';

/**
 * Sliding windows shared by Conv and the pools: attribute parsing and the one output-size rule
 * (explicit pads, auto_pad, ceil_mode, dilations).
 */

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
const AUTO_PADS: readonly AutoPad[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** Window attributes as written; per-axis lists are undefined where the file leaves the default. */
export interface WindowAttrs {
  autoPad: AutoPad;
  kernelShape?: number[];
  strides?: number[];
  /** [x1_begin, x2_begin, ..., x1_end, x2_end, ...] as ONNX lays them out. */
  pads?: number[];
  dilations?: number[];
  ceilMode: boolean;
}

/** Every per-axis list filled in for `spatialRank` axes. */
export interface Window {
  autoPad: AutoPad;
  kernel: number[];
  strides: number[];
  padsBegin: number[];
  padsEnd: number[];
  dilations: number[];
  ceilMode: boolean;
}

export function parseWindowAttrs(node: Node, options: { ceilMode?: boolean } = {}): WindowAttrs {
  const autoPad = stringAttr(node, 'auto_pad', 'NOTSET') as AutoPad;
  if (!AUTO_PADS.includes(autoPad)) {
    throw new OpError(`auto_pad '${autoPad}' is not one of ${AUTO_PADS.join(', ')}`);
  }
  const attrs: WindowAttrs = { autoPad, ceilMode: options.ceilMode === true && intAttr(node, 'ceil_mode', 0) !== 0 };
  for (const [key, name] of [['kernelShape', 'kernel_shape'], ['strides', 'strides'], ['pads', 'pads'], ['dilations', 'dilations']] as const) {
    const value = intsAttr(node, name);
    if (value) attrs[key] = value;
  }
  attrs.strides?.forEach((s) => { if (s < 1) throw new OpError(`strides must be positive, got [${attrs.strides!.join(', ')}]`); });
  attrs.dilations?.forEach((d) => { if (d < 1) throw new OpError(`dilations must be positive, got [${attrs.dilations!.join(', ')}]`); });
  attrs.kernelShape?.forEach((k) => { if (k < 1) throw new OpError(`kernel_shape must be positive, got [${attrs.kernelShape!.join(', ')}]`); });
  attrs.pads?.forEach((p) => { if (p < 0) throw new OpError(`pads must not be negative, got [${attrs.pads!.join(', ')}]`); });
  return attrs;
}

/** Fill defaults and check list lengths against the spatial rank (kernel from weights for Conv). */
export function resolveWindow(attrs: WindowAttrs, spatialRank: number, kernelFromWeights?: number[]): Window {
  const ones = new Array<number>(spatialRank).fill(1);
  const kernel = attrs.kernelShape ?? kernelFromWeights;
  if (!kernel) throw new OpError('kernel_shape is required');
  const check = (name: string, list: readonly number[], length: number): void => {
    if (list.length !== length) {
      throw new OpError(`${name} has ${list.length} values [${list.join(', ')}], expected ${length} for ${spatialRank} spatial axes`);
    }
  };
  check('kernel_shape', kernel, spatialRank);
  const strides = attrs.strides ?? ones;
  check('strides', strides, spatialRank);
  const dilations = attrs.dilations ?? ones;
  check('dilations', dilations, spatialRank);
  // The spec forbids both at once and ORT refuses such a model; say so rather than pick one.
  if (attrs.autoPad !== 'NOTSET' && attrs.pads?.some((p) => p !== 0)) {
    throw new OpError(`pads [${attrs.pads.join(', ')}] cannot be combined with auto_pad ${attrs.autoPad}; remove one of them`);
  }
  const pads = attrs.autoPad === 'NOTSET' && attrs.pads ? attrs.pads : new Array<number>(2 * spatialRank).fill(0);
  check('pads', pads, 2 * spatialRank);
  return {
    autoPad: attrs.autoPad,
    kernel,
    strides,
    padsBegin: pads.slice(0, spatialRank),
    padsEnd: pads.slice(spatialRank),
    dilations,
    ceilMode: attrs.ceilMode,
  };
}

/**
 * Output length of one spatial axis. This is ONNX's rule plus PyTorch's (and ORT's) ceil_mode guard: a
 * window that would start in the end padding is dropped.
 */
export function windowOutputDim(options: {
  input: number;
  kernel: number;
  stride: number;
  dilation: number;
  padBegin: number;
  padEnd: number;
  autoPad: AutoPad;
  ceilMode: boolean;
}): number {
  const { input, kernel, stride, dilation, autoPad, ceilMode } = options;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(input / stride);
  const [padBegin, padEnd] = autoPad === 'VALID' ? [0, 0] : [options.padBegin, options.padEnd];
  const span = dilation * (kernel - 1) + 1;
  const room = input + padBegin + padEnd - span;
  if (room < 0) {
    throw new OpError(`a window of ${span} (kernel ${kernel}, dilation ${dilation}) does not fit an input of ${input} padded by ${padBegin}+${padEnd}`);
  }
  let out = (ceilMode ? Math.ceil(room / stride) : Math.floor(room / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= input + padBegin) out--;
  return out;
}

/** Spatial output dims for input spatial dims; a symbolic input gives a fresh dim unless the window is the identity. */
export function windowOutputShape<A>(ctx: OpContext<A>, spatial: readonly Dim[], window: Window, firstAxis: number): Dim[] {
  return spatial.map((dim, i) => {
    const kernel = window.kernel[i]!;
    const stride = window.strides[i]!;
    const dilation = window.dilations[i]!;
    if (typeof dim === 'string') {
      const same = window.autoPad.startsWith('SAME') || (window.padsBegin[i]! + window.padsEnd[i]! === dilation * (kernel - 1));
      return same && stride === 1 ? dim : unknownDim(ctx, 0, firstAxis + i);
    }
    return windowOutputDim({
      input: dim,
      kernel,
      stride,
      dilation,
      padBegin: window.padsBegin[i]!,
      padEnd: window.padsEnd[i]!,
      autoPad: window.autoPad,
      ceilMode: window.ceilMode,
    });
  });
}

import type { Dim, Node } from '../../onnx/graph.js';
import type { DType } from '../../onnx/dtype.js';
import { intAttr, intsAttr } from '../attrs.js';
import { defineOp, OpError, UPGRADE_OPSET, type OpDef, type OpDefExtras } from '../op-def.js';
import { attributesToInputs, intsInput } from './upgrade.js';
import { constantInts, single, type LowerContext, type Lowering } from '../../engine/lowering.js';
import { input, knownInts, normalizeAxes, requireDtype, requireRank, typeOf, unknownDim } from './shapes.js';

export interface ReduceAttrs {
  keepDims: boolean;
  /** The `axes` attribute, for opsets before the axes became an input. */
  axes?: number[];
  /** With no axes: true = identity, false = reduce every axis (the default). */
  noopWithEmptyAxes: boolean;
}

/**
 * Reductions (ReduceMean, ...). `axesInputSince` is the opset where `axes` moved from an attribute
 * to optional input 1 (13 for ReduceSum, 18 for the others).
 */
export function reduceOp(
  options: {
    opType: string;
    summary: string;
    dtypes: ReadonlySet<DType>;
    axesInputSince: number;
  } & OpDefExtras<ReduceAttrs>,
): OpDef<ReduceAttrs> {
  const { opType, summary, dtypes, axesInputSince, ...extras } = options;
  return defineOp<ReduceAttrs>({
    opType,
    domain: '',
    summary,
    inputCount: [1, 2],
    outputCount: [1, 1],
    parseAttrs(node: Node, opset: number) {
      const attrs: ReduceAttrs = {
        keepDims: intAttr(node, 'keepdims', 1) !== 0,
        noopWithEmptyAxes: opset >= axesInputSince && intAttr(node, 'noop_with_empty_axes', 0) !== 0,
      };
      const axes = opset < axesInputSince ? intsAttr(node, 'axes') : undefined;
      if (axes) attrs.axes = axes;
      return attrs;
    },
    inferTypes(ctx) {
      const dtype = requireDtype(ctx, 0, dtypes);
      const shape = input(ctx, 0).type.shape;
      let axes = ctx.attrs.axes;
      if (ctx.opset >= axesInputSince && ctx.inputs[1]) {
        requireRank(ctx, 1, [1]);
        axes = knownInts(ctx, 1);
        if (!axes) {
          // Which axes is unknown: with keepdims the rank survives, nothing else does.
          if (!shape || !ctx.attrs.keepDims) return [typeOf(dtype)];
          return [typeOf(dtype, shape.map((_, i) => unknownDim(ctx, 0, i)))];
        }
      }
      if (!shape) return [typeOf(dtype)];
      if (!axes || axes.length === 0) {
        if (ctx.attrs.noopWithEmptyAxes) return [typeOf(dtype, [...shape])];
        axes = shape.map((_, i) => i);
      }
      const reduced = new Set(normalizeAxes(axes, shape.length));
      const out: Dim[] = [];
      shape.forEach((d, i) => {
        if (!reduced.has(i)) out.push(d);
        else if (ctx.attrs.keepDims) out.push(1);
      });
      return [typeOf(dtype, out)];
    },
    macs: () => 0,
    upgrade: (ctx) =>
      ctx.opset >= axesInputSince || axesInputSince > UPGRADE_OPSET ? [ctx.node] : [attributesToInputs(ctx.node, ['axes'], [intsInput(ctx, 'axes', ctx.attrs.axes)])],
    ...extras,
  });
}

/** The reductions the engine's `reduce` kernel computes, by its function code (native/src/kernels.cc). */
export const REDUCE_FUNCTIONS = ['mean', 'sum', 'max', 'min', 'l1', 'l2', 'sum_square', 'prod', 'log_sum_exp', 'log_sum'] as const;
export type ReduceFunction = (typeof REDUCE_FUNCTIONS)[number];

/** The training lowering of a reduction: the kernel gets every reduced axis listed, normalized. */
export function reduceLowering(fn: ReduceFunction, axesInputSince: number): (ctx: LowerContext<ReduceAttrs>) => Lowering {
  return (ctx) => {
    const rank = ctx.inputs[0]?.type.shape?.length;
    if (rank === undefined) throw new OpError(`${ctx.node.opType} needs an input of known rank for training`);
    const axes = ctx.opset >= axesInputSince && ctx.inputs[1] ? constantInts(ctx, 1, 'axes') : ctx.attrs.axes ?? [];
    const x = ctx.node.inputs[0]!;
    if (axes.length === 0 && ctx.attrs.noopWithEmptyAxes) return single('identity', { inputs: [x] });
    const reduced = axes.length === 0 ? Array.from({ length: rank }, (_, k) => k) : normalizeAxes(axes, rank);
    return single('reduce', { inputs: [x], ints: [REDUCE_FUNCTIONS.indexOf(fn), ctx.attrs.keepDims ? 1 : 0, ...reduced] });
  };
}

import type { Dim, Node } from '../../onnx/graph.js';
import type { DType } from '../../onnx/dtype.js';
import { intAttr, intsAttr } from '../attrs.js';
import { defineOp, type OpDef, type OpDefExtras } from '../op-def.js';
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
    ...extras,
  });
}

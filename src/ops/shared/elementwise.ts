import type { Node } from '../../onnx/graph.js';
import { FLOAT_DTYPES } from '../../onnx/dtype.js';
import { defineOp, type OpDef } from '../op-def.js';
import { broadcastShapes, input, requireDtype, sameDtype, typeOf } from './shapes.js';

/**
 * Unary elementwise ops on float tensors (Relu, Sigmoid, ...): output type = input type.
 * `parseAttrs` reads the op's own attributes; ops without any pass `() => ({})`.
 */
export function unaryFloatOp<A>(options: {
  opType: string;
  summary: string;
  parseAttrs: (node: Node, opset: number) => A;
  inputCount?: readonly [number, number];
}): OpDef<A> {
  return defineOp<A>({
    opType: options.opType,
    domain: '',
    summary: options.summary,
    inputCount: options.inputCount ?? [1, 1],
    outputCount: [1, 1],
    parseAttrs: options.parseAttrs,
    inferTypes(ctx) {
      requireDtype(ctx, 0, FLOAT_DTYPES);
      const x = input(ctx, 0);
      return [typeOf(x.type.dtype, x.type.shape)];
    },
    macs: () => 0,
  });
}

/** Binary arithmetic with numpy broadcasting (Add, Sub, Mul, Div). */
export function binaryArithmeticOp(options: {
  opType: string;
  summary: string;
  apply: (a: number, b: number) => number;
}): OpDef<Record<string, never>> {
  return defineOp({
    opType: options.opType,
    domain: '',
    summary: options.summary,
    inputCount: [2, 2],
    outputCount: [1, 1],
    parseAttrs: () => ({}),
    inferTypes(ctx) {
      const dtype = sameDtype(ctx);
      const a = input(ctx, 0).type.shape;
      const b = input(ctx, 1).type.shape;
      return [typeOf(dtype, a && b ? broadcastShapes(a, b) : undefined)];
    },
    macs: () => 0,
    foldValues(ctx, outputs) {
      // Shape arithmetic (e.g. H*W computed from a Shape node) folds when both sides are numbers.
      const a = ctx.inputs[0]?.known;
      const b = ctx.inputs[1]?.known;
      const shape = outputs[0]?.shape;
      if (!a || !b || !shape || shape.some((d) => typeof d !== 'number')) return [undefined];
      const n = (shape as number[]).reduce((p, d) => p * d, 1);
      if (a.values.length !== n && a.values.length !== 1) return [undefined];
      if (b.values.length !== n && b.values.length !== 1) return [undefined];
      const values: number[] = [];
      for (let i = 0; i < n; i++) {
        const x = a.values[a.values.length === 1 ? 0 : i];
        const y = b.values[b.values.length === 1 ? 0 : i];
        if (typeof x !== 'number' || typeof y !== 'number') return [undefined];
        values.push(options.apply(x, y));
      }
      return [{ dims: shape as number[], values }];
    },
  });
}

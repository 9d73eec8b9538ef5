import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { countElements, input, mergeDims, requireDtype, requireMinRank, requireRank, sameDtype, typeOf } from './shared/shapes.js';
import { parseWindowAttrs, resolveWindow, windowOutputShape, type WindowAttrs } from './shared/window.js';
import { explicitPads, single, windowInts } from '../engine/lowering.js';

export interface ConvAttrs extends WindowAttrs {
  group: number;
}

/** X [N, C, D1..Dn] * W [M, C/group, k1..kn] (+ B [M]) → [N, M, O1..On], for n = 1, 2, 3. */
export const conv = defineOp<ConvAttrs>({
  opType: 'Conv',
  domain: '',
  summary: 'N-d convolution with groups, strides, dilations, pads / auto_pad and optional bias',
  inputCount: [2, 3],
  outputCount: [1, 1],
  parseAttrs(node) {
    const group = intAttr(node, 'group', 1);
    if (group < 1) throw new OpError(`group must be positive, got ${group}`);
    return { ...parseWindowAttrs(node), group };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    sameDtype(ctx);
    const x = requireMinRank(ctx, 0, 3);
    const w = requireRank(ctx, 1, [x.length]);
    const { group } = ctx.attrs;
    const [n, c] = [x[0]!, x[1]!];
    const [m, cPerGroup] = [w[0]!, w[1]!];
    if (typeof m === 'number' && m % group !== 0) {
      throw new OpError(`weight '${input(ctx, 1).name}' has ${m} output channels, not divisible by group ${group}`);
    }
    if (typeof c === 'number' && typeof cPerGroup === 'number' && c !== cPerGroup * group) {
      throw new OpError(
        `input '${input(ctx, 0).name}' has ${c} channels but weight '${input(ctx, 1).name}' expects ${cPerGroup} × group ${group} = ${cPerGroup * group}`,
      );
    }
    const b = ctx.inputs[2];
    if (b) {
      const bias = requireRank(ctx, 2, [1]);
      mergeDims(bias[0]!, m, `bias '${b.name}' length vs output channels`);
    }
    const kernel = w.slice(2);
    if (kernel.some((k) => typeof k !== 'number') && !ctx.attrs.kernelShape) {
      throw new OpError(`weight '${input(ctx, 1).name}' has symbolic spatial dims [${kernel.join(', ')}]; give kernel_shape`);
    }
    const declared = ctx.attrs.kernelShape;
    if (declared && kernel.some((k, i) => typeof k === 'number' && k !== declared[i])) {
      throw new OpError(`kernel_shape [${declared.join(', ')}] does not match weight '${input(ctx, 1).name}' spatial dims [${kernel.join(', ')}]`);
    }
    const window = resolveWindow(ctx.attrs, x.length - 2, kernel as number[]);
    return [typeOf(dtype, [n, m, ...windowOutputShape(ctx, x.slice(2), window, 2)])];
  },
  // Each output element sums over (C / group) input channels × the kernel window.
  macs(ctx, outputs) {
    const w = input(ctx, 1).type.shape ?? [];
    return countElements(outputs[0]?.shape) * countElements(w.slice(1));
  },
  lower(ctx) {
    const x = requireMinRank(ctx, 0, 3);
    const kernel = (input(ctx, 1).type.shape ?? []).slice(2) as number[];
    const window = explicitPads(ctx, resolveWindow(ctx.attrs, x.length - 2, kernel));
    return single(
      'conv',
      { ints: [...windowInts(window, { kernel: false, dilations: true }), ctx.attrs.group] },
      { params: ctx.node.inputs.slice(1) },
    );
  },
});

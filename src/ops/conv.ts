import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { intAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { countElements, input, mergeDims, requireDtype, requireMinRank, requireRank, sameDtype, typeOf } from './shared/shapes.js';
import { parseWindowAttrs, resolveWindow, windowOutputShape, type WindowAttrs } from './shared/window.js';
import { explicitPads, single, windowInts } from '../engine/lowering.js';
import { ACTIVATION, isConstantFloat, isFloat32 } from '../compress/quantize/pattern.js';
import { equalPartTies, foldShiftIntoBias, samePorts } from '../compress/prune/rules.js';

export interface ConvAttrs extends WindowAttrs {
  group: number;
}

/** One filter per input channel, one output per group: channels pass straight through. */
function isDepthwise(weightDims: readonly number[], group: number): boolean {
  return weightDims[1] === 1 && weightDims[0] === group;
}

/** Depthwise with a channel multiplier (groups = C, 2C or more outputs): input channel c makes outputs c·m … c·m + m − 1. */
function depthwiseMultiplier(weightDims: readonly number[], group: number): number | undefined {
  const m = weightDims[0]! / group;
  return group > 1 && weightDims[1] === 1 && Number.isInteger(m) && m > 1 ? m : undefined;
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
  // QLinearConv: uint8/int8 input, int8 weight per output channel, int32 bias with scale s_x·s_w.
  quant: {
    mark(ctx) {
      const hasBias = ctx.inputs[2] !== undefined;
      if (!isFloat32(ctx, 0) || !isConstantFloat(ctx, 1) || (hasBias && !isConstantFloat(ctx, 2))) return undefined;
      return {
        inputs: [ACTIVATION, { role: 'weight', axis: 0 }, ...(hasBias ? [{ role: 'bias', input: 0, weight: 1 } as const] : [])],
        outputs: [ACTIVATION],
      };
    },
  },
  // Pruning: output channels are rows of W (and the bias), input channels its columns. A depthwise conv
  // ties each output channel to its input channel, so it passes channels through and shrinks its group.
  // A grouped conv (ResNeXt, RegNet) keeps its groups equal: position j of every group goes together, on
  // the input (W's column j serves every group) and on the output.
  channels: {
    ports(ctx) {
      const w = ctx.inputs[1]?.constant;
      if (!w) return 'its weight is computed, not stored (a quantized model?); prune before quantizing';
      const group = ctx.attrs.group;
      if (group === 1) return { inputs: [0], outputs: [0], coupling: 'independent' };
      if (isDepthwise(w.dims, group)) return samePorts([0], [0]);
      // Each input channel goes with its own outputs (MobileNet's depthwise ×2): whole blocks are cut.
      const m = depthwiseMultiplier(w.dims, group);
      if (m) return { inputs: [0], outputs: [0], coupling: [{ from: { side: 'in', slot: 0 }, to: { side: 'out', slot: 0 }, fromStart: 0, toStart: 0, count: group, span: m }] };
      return { inputs: [0], outputs: [0], coupling: 'independent', ties: [...equalPartTies('in', group, w.dims[1]!), ...equalPartTies('out', group, w.dims[0]! / group)] };
    },
    params(ctx) {
      const w = ctx.inputs[1]?.constant;
      const grouped = w !== undefined && ctx.attrs.group > 1 && !isDepthwise(w.dims, ctx.attrs.group) && !depthwiseMultiplier(w.dims, ctx.attrs.group);
      return [
        { slot: 1, port: { side: 'out', slot: 0 }, axis: 0, role: 'weight' },
        ...(ctx.attrs.group === 1 ? [{ slot: 1, port: { side: 'in', slot: 0 }, axis: 1, role: 'weight' } as const] : []),
        ...(grouped ? [{ slot: 1, port: { side: 'in', slot: 0 }, axis: 1, role: 'weight', period: w.dims[1]! } as const] : []),
        ...(ctx.inputs[2] ? [{ slot: 2, port: { side: 'out', slot: 0 }, axis: 0, role: 'bias' } as const] : []),
      ];
    },
    resize(ctx, keep) {
      const w = ctx.inputs[1]?.constant;
      if (!w || ctx.attrs.group === 1) return {};
      if (isDepthwise(w.dims, ctx.attrs.group)) return keep.outputs[0] ? { attributes: { group: { type: 'int', value: keep.outputs[0].length } } } : {};
      return depthwiseMultiplier(w.dims, ctx.attrs.group) && keep.inputs[0] ? { attributes: { group: { type: 'int', value: keep.inputs[0].length } } } : {};
    },
    // A removed input channel's mean contribution Σ W[o, c, …]·mean[c] moves into the bias.
    compensate: (ctx, shift, keepOut) =>
      ctx.inputs[1]?.constant?.dtype !== 'float32'
        ? {}
        : foldShiftIntoBias({ weight: ctx.inputs[1].constant, outAxis: 0, inAxis: 1, bias: ctx.inputs[2]?.constant, slot: 2, groups: ctx.attrs.group }, shift, keepOut),
  },
});

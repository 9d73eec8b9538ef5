import { FLOAT_DTYPES } from '../onnx/dtype.js';
import type { Dim } from '../onnx/graph.js';
import { floatAttr, intAttr, normalizeAxis } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { broadcastShapes, input, requireDtype, requireMinRank, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { samePorts } from '../compress/prune/rules.js';
import type { ChannelParam } from '../compress/prune/channel-rule.js';

export interface LayerNormalizationAttrs {
  /** First normalized axis; every axis from it to the last is normalized together. May be negative. */
  axis: number;
  epsilon: number;
  /** ONNX data type code of the Mean / InvStdDev outputs (1 float32, 16 bfloat16). */
  stashType: number;
}

/**
 * Y = (X − mean) / sqrt(var + ε) · Scale + B, the statistics over axes [axis, rank). Opset 17; torch
 * exports nn.LayerNorm (ConvNeXt's channels-last norm, transformers) as this. Optional outputs Mean and
 * InvStdDev keep X's rank with the normalized axes set to 1.
 */
export const layerNormalization = defineOp<LayerNormalizationAttrs>({
  opType: 'LayerNormalization',
  domain: '',
  summary: 'normalization over the trailing axes from `axis` on, then scale and shift (nn.LayerNorm)',
  inputCount: [2, 3],
  outputCount: [1, 3],
  parseAttrs(node) {
    const epsilon = floatAttr(node, 'epsilon', 1e-5);
    if (!(epsilon >= 0)) throw new OpError(`epsilon must be non-negative, got ${epsilon}`);
    const stashType = intAttr(node, 'stash_type', 1);
    if (stashType !== 1 && stashType !== 16) throw new OpError(`stash_type must be 1 (float) or 16 (bfloat16), got ${stashType}`);
    return { axis: intAttr(node, 'axis', -1), epsilon, stashType };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    for (const k of [1, 2]) if (ctx.inputs[k]) requireDtype(ctx, k, new Set([dtype]));
    const x = input(ctx, 0).type.shape;
    const statsDtype = ctx.attrs.stashType === 16 ? 'bfloat16' : 'float32';
    if (!x) return [typeOf(dtype), ...ctx.node.outputs.slice(1).map(() => typeOf(statsDtype))];
    const rank = requireMinRank(ctx, 0, 1).length;
    const axis = normalizeAxis(ctx.attrs.axis, rank);
    // Scale and B broadcast to X unidirectionally (the spec's function body multiplies them with the
    // normalized X): leading axes of size 1 are allowed, anything that would enlarge X is not.
    for (const k of [1, 2]) {
      const shape = ctx.inputs[k]?.type.shape;
      if (!shape) continue;
      const what = `'${input(ctx, k).name}' [${shape.join(', ')}] vs the input [${x.join(', ')}]`;
      let merged: Dim[];
      try {
        merged = broadcastShapes(x, shape);
      } catch {
        throw new OpError(`${what}: does not broadcast`);
      }
      if (merged.length !== x.length || merged.some((d, i) => typeof d === 'number' && typeof x[i] === 'number' && d !== x[i])) {
        throw new OpError(`${what}: would enlarge the output`);
      }
    }
    const stats = x.map((d, i) => (i < axis ? d : 1));
    return [typeOf(dtype, [...x]), ...ctx.node.outputs.slice(1).map(() => typeOf(statsDtype, [...stats]))];
  },
  macs: () => 0,
  lower(ctx) {
    const rank = ctx.inputs[0]?.type.shape?.length;
    if (rank === undefined) throw new OpError('LayerNormalization needs an input of known rank for training');
    if (ctx.inputs[0]!.type.dtype !== 'float32') throw new OpError('the engine trains float32 LayerNormalization only');
    const [, scale, bias] = ctx.node.inputs;
    const outputs = [0, 1, 2].map((k) => ctx.node.outputs[k] ?? '');
    return single(
      'layer_norm',
      { inputs: [ctx.node.inputs[0]!, scale!, bias ?? ''], outputs, ints: [normalizeAxis(ctx.attrs.axis, rank)], floats: [ctx.attrs.epsilon] },
      { params: [scale!, ...(bias ? [bias] : [])] },
    );
  },
  // Pruning: channels pass through on whatever axis they are. On a normalized axis (ConvNeXt's
  // channels-last LayerNorm) the statistics are then taken over the channels kept — as Torch-Pruning
  // does — and Scale / B are sliced with them.
  channels: {
    anyAxis: true,
    ports(ctx) {
      const x = ctx.inputs[0]?.type.shape;
      if (!x) return 'its input rank is not known';
      const channelAxis = ctx.channelAxes[0]!;
      const extra = ctx.node.outputs.slice(1).some(Boolean);
      if (extra && channelAxis >= normalizeAxis(ctx.attrs.axis, x.length)) return 'writes Mean / InvStdDev reduced over the channel axis';
      const outputs = ctx.node.outputs.map((_, i) => i).filter((i) => ctx.node.outputs[i]);
      return samePorts([0], outputs, channelAxis);
    },
    params(ctx) {
      const x = ctx.inputs[0]?.type.shape;
      if (!x) return [];
      const channelAxis = ctx.channelAxes[0]!;
      if (channelAxis < normalizeAxis(ctx.attrs.axis, x.length)) return [];
      const params: ChannelParam[] = [];
      for (const [slot, role] of [[1, 'scale'], [2, 'bias']] as const) {
        const shape = ctx.inputs[slot]?.type.shape;
        const axis = shape ? channelAxis - (x.length - shape.length) : -1;
        if (shape && axis >= 0 && shape[axis] === x[channelAxis] && x[channelAxis] !== 1) params.push({ slot, port: { side: 'out', slot: 0 }, axis, role });
      }
      return params;
    },
  },
});

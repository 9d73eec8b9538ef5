import { FLOAT_DTYPES } from '../onnx/dtype.js';
import { floatAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, mergeDims, requireDtype, requireMinRank, requireRank, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { toNumbers, type Tensor } from '../onnx/tensor.js';
import type { Graph, GraphIndex, Node } from '../onnx/graph.js';
import { samePorts, vectorParams } from '../compress/prune/rules.js';

export interface InstanceNormalizationAttrs {
  epsilon: number;
}

const allEqual = (t: Tensor | undefined, v: number): boolean => t !== undefined && FLOAT_DTYPES.has(t.dtype) && toNumbers(t).every((x) => x === v);

/**
 * torch's GroupNorm export: Reshape → InstanceNormalization(scale all 1, B all 0, constants) → Reshape;
 * GroupNorm's own affine is the Mul and Add after. PyTorch has no parameters for those 1s and 0s: they
 * stay constants in training (only an InstanceNorm2d's own affine trains) and are not counted.
 */
function groupNormCore(o: { input?: Node | undefined; readers: readonly Node[]; scale?: Tensor | undefined; bias?: Tensor | undefined }): boolean {
  return o.input?.opType === 'Reshape' && o.readers.length > 0 && o.readers.every((r) => r.opType === 'Reshape') && allEqual(o.scale, 1) && allEqual(o.bias, 0);
}

/**
 * Whether `node` is the InstanceNormalization of a torch.onnx GroupNorm (its scale and B stored 1s and
 * 0s), also in an int8 model, where QuantizeLinear → DequantizeLinear pairs stand between it and its Reshapes.
 */
export function isGroupNormCore(node: Node, graph: Graph, index: GraphIndex): boolean {
  const [x, scale, bias] = node.inputs;
  const writer = (v: string): Node | undefined => {
    const p = index.producer.get(v);
    const q = p?.opType === 'DequantizeLinear' ? index.producer.get(p.inputs[0] ?? '') : undefined;
    return q?.opType === 'QuantizeLinear' ? index.producer.get(q.inputs[0] ?? '') : p;
  };
  const readers = (v: string): Node[] => index.consumersOf(v).flatMap((r) => (r.opType === 'QuantizeLinear' || r.opType === 'DequantizeLinear' ? readers(r.outputs[0] ?? '') : [r]));
  // Stored, or behind the Cast an fp16-weights model reads it through.
  const stored = (v: string | undefined): Tensor | undefined => {
    const p = v ? index.producer.get(v) : undefined;
    return v ? (graph.initializers.get(v) ?? (p?.opType === 'Cast' || p?.opType === 'Identity' ? stored(p.inputs[0]) : undefined)) : undefined;
  };
  return node.opType === 'InstanceNormalization' && groupNormCore({ input: writer(x ?? ''), readers: readers(node.outputs[0] ?? ''), scale: stored(scale), bias: stored(bias) });
}

/**
 * Y = scale · (X − mean) / sqrt(var + ε) + B, the statistics per sample and channel over the spatial
 * axes. torch exports nn.InstanceNorm2d as this, and GroupNorm as Reshape → InstanceNormalization →
 * Reshape → Mul → Add.
 */
export const instanceNormalization = defineOp<InstanceNormalizationAttrs>({
  opType: 'InstanceNormalization',
  domain: '',
  summary: 'per-sample, per-channel normalization over the spatial axes, then scale and shift',
  inputCount: [3, 3],
  outputCount: [1, 1],
  parseAttrs(node) {
    const epsilon = floatAttr(node, 'epsilon', 1e-5);
    if (!(epsilon >= 0)) throw new OpError(`epsilon must be non-negative, got ${epsilon}`);
    return { epsilon };
  },
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, FLOAT_DTYPES);
    const x = requireMinRank(ctx, 0, 3);
    for (const i of [1, 2]) {
      requireDtype(ctx, i, new Set([dtype]));
      const v = requireRank(ctx, i, [1]);
      mergeDims(x[1]!, v[0]!, `'${input(ctx, i).name}' length vs the ${x[1]} channels of '${input(ctx, 0).name}'`);
    }
    return [typeOf(dtype, [...x])];
  },
  macs: () => 0,
  lower(ctx) {
    if (ctx.inputs[0]!.type.dtype !== 'float32') throw new OpError('the engine trains float32 InstanceNormalization only');
    const [, scale, bias] = ctx.node.inputs;
    const core = groupNormCore({ input: ctx.producer(ctx.node.inputs[0]!), readers: ctx.consumers(ctx.node.outputs[0]!), scale: ctx.inputs[1]?.constant, bias: ctx.inputs[2]?.constant });
    return single('instance_norm', { floats: [ctx.attrs.epsilon] }, core ? {} : { params: [scale!, bias!] });
  },
  // Pruning: channel i in is channel i out; scale and B are sliced with it. In a GroupNorm (channel =
  // group, see Reshape's normGroups) they are fixed 1s and 0s that say nothing about a group's importance.
  channels: {
    // Channels spread over the normalized axis of GroupNorm(1, C)'s [N, 1, C·H·W] are read, and it
    // normalizes over those kept. Channels on another axis of an image (after a Transpose) stop here.
    anyAxis: true,
    ports: (ctx) => {
      const axis = ctx.channelAxes[0]!;
      if (axis === 1) return samePorts([0], [0]);
      return ctx.inputs[0]?.type.shape?.[1] === 1 ? samePorts([0], [0], axis) : `it carries its channels on axis ${axis}, where it would normalize over them`;
    },
    params: (ctx) => {
      if (ctx.channelAxes[0] !== 1) return [];
      const fixed = allEqual(ctx.inputs[1]?.constant, 1) && allEqual(ctx.inputs[2]?.constant, 0);
      return vectorParams([{ slot: 1, role: fixed ? 'other' : 'scale' }, { slot: 2, role: fixed ? 'other' : 'bias' }]);
    },
  },
});

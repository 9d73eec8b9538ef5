/**
 * The per-op channel rule (STYLE.md §2): how channels — axis 1 of a value, or the axis a Transpose moved
 * them to — flow through one op, which
 * of its stored tensors are indexed by them, and what else changes when some are removed. Each op module
 * declares its rule as `channels` on its OpDef; an op without one is a hard boundary that pruning never
 * crosses. Rules describe, they do not act: the dependency graph, the importance criteria and the
 * physical removal are generic code in src/compress/prune that reads these descriptions, so a new op is
 * prunable (and scored by every criterion) as soon as its module has a rule.
 */
import type { Attribute, Node, ValueType } from '../../onnx/graph.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { OpContext } from '../../ops/op-def.js';
import type { ShapeExprOf } from './shape-expr.js';

/** What a rule sees: shape inference's context for the node plus its inferred output types. */
export interface ChannelContext<A> extends OpContext<A> {
  outputs: ValueType[];
  /**
   * Per input slot, the axis its value carries channels on, as the value's producer left it: 1 (NCHW)
   * unless a Transpose moved them (ConvNeXt's channels-last MLP). Rules without `anyAxis` never see
   * another axis on a port: the node becomes a boundary first.
   */
  channelAxes: readonly number[];
  /** Traces small integer inputs computed from Shape (shape-expr.ts); absent outside the dependency graph. */
  shapeExpr?: ShapeExprOf;
  /** The node that writes a value (undefined for inputs and stored tensors); absent outside the dependency graph. */
  producer?: (value: string) => Node | undefined;
  /** The nodes that read a value; absent outside the dependency graph. */
  consumers?: (value: string) => readonly Node[];
  /** A stored tensor (initializer) by value name; absent outside the dependency graph. */
  stored?: (value: string) => Tensor | undefined;
}

/** An input or output slot of the node. */
export interface SlotRef {
  side: 'in' | 'out';
  slot: number;
}

/**
 * Channels tied across the node: channel `fromStart + i` of `from` is channels
 * `toStart + i·span … toStart + i·span + span − 1` of `to`, for i < count. Concat and Split shift
 * (start offsets); Flatten spreads one channel over H·W features (span).
 */
export interface ChannelLink {
  from: SlotRef;
  to: SlotRef;
  fromStart: number;
  toStart: number;
  count: number;
  span: number;
}

/**
 * The node's channel ports: data inputs and outputs whose channel axis (1, or where `channelAxes` /
 * `outputAxes` say) carries channels that the op reads or writes. An input slot that is not listed
 * does not depend on the channel count (a shape, pads, a
 * scalar, a tensor broadcast along axis 1). Coupling says how input channels relate to output channels:
 * - 'independent': outputs have channels of their own (Conv, Gemm) — pruning one side leaves the other;
 * - 'same': channel i of every port is the same channel (BatchNormalization, Relu, Add, depthwise Conv);
 * - links: explicit index maps (Concat, Split, Flatten).
 */
export interface ChannelPorts {
  inputs: number[];
  outputs: number[];
  coupling: 'independent' | 'same' | ChannelLink[];
  /** Per output slot, the axis the written value carries channels on; 1 where not given. */
  outputAxes?: number[];
  /**
   * Channels that must go together whatever the coupling: a grouped convolution ties position j of
   * every group (channels j, a + j, 2a + j, …) so that its groups stay equal.
   */
  ties?: ChannelLink[];
  /**
   * Values elsewhere in the graph with the same channels as a port, one to one: a target computed from
   * `Shape(value)` sizes the port after pruning, so both must lose the same channels.
   */
  sameChannels?: { value: string; port: SlotRef }[];
  /**
   * The outputs' channels are copies of one value (Expand spreading it over the channel axis): they follow
   * whatever channels they meet, and name no group (a group's root is a layer that makes its channels).
   */
  spread?: boolean;
}

/**
 * What a stored tensor is to importance criteria: 'weight' (conv / linear weights: L1, L2, Taylor),
 * 'scale' (normalization γ: BN-γ), 'bias', 'statistic' (running mean / variance), 'other'.
 */
export type ParamRole = 'weight' | 'scale' | 'bias' | 'statistic' | 'other';

/**
 * A constant input indexed by the channels of one port: removing channel c there removes slice c of
 * the tensor along `axis`. Only initializer inputs qualify.
 */
export interface ChannelParam {
  slot: number;
  port: SlotRef;
  axis: number;
  role: ParamRole;
  /**
   * The axis indexes channel c mod `period`: a grouped convolution's weight holds the position within
   * the group on axis 1 (its ports tie the positions of every group, so all groups keep the same ones).
   */
  period?: number;
}

/** Channels kept per port, ascending; undefined where a port keeps all of them. */
export interface ChannelKeep {
  inputs: (readonly number[] | undefined)[];
  outputs: (readonly number[] | undefined)[];
}

/** Changes beyond sliced params: attributes (null removes one) and constant inputs (a new slot may be appended). */
export interface NodeEdit {
  attributes?: Record<string, Attribute | null>;
  inputs?: Record<number, Tensor>;
  /**
   * A node put after output `slot`, reading it and `operand`: what keeps a reduction over the channels
   * what it was when the removed ones were zeros (a mean's count, a max's zero); the bias a MatMul has
   * no slot for (ChannelRule.compensate).
   */
  append?: { slot: number; opType: 'Mul' | 'Max' | 'Add'; operand: Tensor };
}

export interface ChannelRule<A> {
  /**
   * The rule follows channels on any axis (`ctx.channelAxes`, `ChannelPorts.outputAxes`): elementwise
   * ops, Transpose, MatMul over the last axis, LayerNormalization, the reductions, Slice, Reshape.
   * Without it, channels that reach an input port on an axis other than 1 leave that input whole (an op
   * with channels of its own, Conv or Gemm) or make the node a boundary.
   */
  anyAxis?: boolean;
  /** The ports and their coupling, or why channels cannot be pruned through this node (it becomes a boundary). */
  ports(ctx: ChannelContext<A>): ChannelPorts | string;
  /** Stored tensors sliced with their port's channels; also what importance criteria score. */
  params?(ctx: ChannelContext<A>): ChannelParam[];
  /** Attribute or shape-constant changes when ports lose channels (Conv group, Split sizes, Reshape target). */
  resize?(ctx: ChannelContext<A>, keep: ChannelKeep): NodeEdit;
  /**
   * For ops with independent outputs (Conv, Gemm): fold a constant shift of input 0 — `shift[c]` added
   * to every element of channel c — into the bias, so that removed input channels can be replaced by
   * their mean activation instead of by zero. Returns the new bias (already cut to `keepOut` when the
   * outputs lose channels too) as an input, or as an appended Add (MatMul), or {} when the op has
   * nowhere to put it.
   */
  compensate?(ctx: ChannelContext<A>, shift: Float64Array, keepOut: readonly number[] | undefined): NodeEdit;
}

import type { Dim, Node, ValueType } from '../onnx/graph.js';
import type { Tensor } from '../onnx/tensor.js';
import type { LowerContext, Lowering } from '../engine/lowering.js';
import type { ChannelRule } from '../compress/prune/channel-rule.js';
import type { QuantPattern } from '../compress/quantize/pattern.js';

/**
 * Statically known contents of a small integer tensor (a shape, axes, indices), flattened in row-major
 * order. An entry is a number, or a symbol when it equals a free dimension (e.g. the batch size read by
 * a Shape node). This is what lets shape subgraphs that torch.onnx emits before Reshape be folded.
 */
export interface KnownValue {
  dims: number[];
  values: Dim[];
}

/** What inference knows about one input of a node. */
export interface InputFacts {
  name: string;
  type: ValueType;
  /** Set when the input is an initializer (Constant nodes become initializers before training and pruning). */
  constant?: Tensor;
  /** The tensor of a Constant node's output read here, as exported (a Resize's scales): what inference alone may read. */
  literal?: Tensor;
  /** Set when the contents are statically known (always for small integer constants). */
  known?: KnownValue;
}

export interface OpContext<A> {
  node: Node;
  attrs: A;
  /** Opset version of the node's domain in this graph. */
  opset: number;
  /** One entry per input slot; undefined where an optional input is omitted (''). */
  inputs: (InputFacts | undefined)[];
}

/** The opset `OpDef.upgrade` rewrites older nodes for: the first in which QDQ takes per-channel weights. */
export const UPGRADE_OPSET = 13;

/** What an op's `upgrade` gets: the node as inference saw it at its own (older) opset. */
export interface UpgradeContext<A> extends OpContext<A> {
  /** Adds an initializer named after `base` (made unique) and returns its name. */
  constant(base: string, value: Tensor): string;
  /** A value or node name based on `base` that nothing uses yet. */
  fresh(base: string): string;
}

/**
 * Everything slimkit knows about one op type. One module per op exports one OpDef; the registry keys
 * them by op type so attributes stay typed. Later features add their entries here (pruning channel
 * rules, quantization patterns, engine lowering) instead of in lists elsewhere.
 */
export interface OpDef<A> {
  opType: string;
  /** '' for ai.onnx. */
  domain: string;
  /** One line for `slim info` and docs. */
  summary: string;
  /** Allowed input count, [min, max], counting omitted optional inputs. */
  inputCount: readonly [number, number];
  outputCount: readonly [number, number];
  /** Attributes with the ONNX defaults filled in; throws OpError on values the spec forbids. */
  parseAttrs(node: Node, opset: number): A;
  /** Output types from input types. Throws OpError when the inputs cannot be valid. */
  inferTypes(ctx: OpContext<A>): ValueType[];
  /**
   * Multiply-accumulates of one forward pass. The convention is the number papers and torch profilers
   * report: only conv and linear layers count (Conv = output elements × Cin/group × kernel size;
   * Gemm/MatMul = M × N × K per batch entry); BatchNorm, activations, elementwise ops and pools are 0.
   * A symbolic dim (the batch) counts as 1, so the figure is per sample.
   */
  macs(ctx: OpContext<A>, outputs: ValueType[]): number;
  /** Static contents of outputs, for ops that appear in shape subgraphs (Shape, Gather, Concat, ...). */
  foldValues?(ctx: OpContext<A>, outputs: ValueType[]): (KnownValue | undefined)[];
  /** How the training engine runs this op (src/engine/lowering.ts); ops without it cannot be trained. */
  lower?(ctx: LowerContext<A>): Lowering;
  /** How channels flow through this op for structured pruning (src/compress/prune); without it the op is a hard boundary. */
  channels?: ChannelRule<A>;
  /** How this op is quantized: its QDQ pattern (src/compress/quantize/pattern.ts); without it the op stays float. */
  quant?: QuantPattern<A>;
  /**
   * The node rewritten for opset UPGRADE_OPSET (passes/upgrade-opset.ts), for ops whose form changed
   * between the node's opset and that one: attributes that became inputs, Softmax's axis. Absent: the
   * node means the same there as written. Throws OpError when no exact rewrite exists.
   */
  upgrade?(ctx: UpgradeContext<A>): Node[];
  /**
   * Why this node's output for one image depends on the other images run with it (a range measured
   * over the whole batch), or undefined. Such a model is evaluated and served one image per run, as a
   * device classifies it: batched, its top-1 would depend on the batch size (src/onnx/image-mixing.ts).
   */
  mixesImages?(node: Node, attrs: A): string | undefined;
  /**
   * The input this node hands on unchanged, element for element, given its constant inputs and
   * attributes (Identity; a Pad of zeros; Mul by ones; Add of zeros; Cast to the type it has), or
   * undefined. passes/remove-identity.ts removes such nodes; it also requires the output's type to equal
   * that input's, so an op whose only effect is a shape (Reshape, Expand) may answer 0 unconditionally
   * and a broadcast that grows the shape keeps the node.
   */
  passesThrough?(ctx: OpContext<A>): number | undefined;
  /**
   * Input slots whose type ONNX fixes as float32 whatever the data's (Resize's scales): an fp16
   * conversion leaves the constants read there float32.
   */
  float32Inputs?(opset: number): readonly number[];
}

/** The fields shape inference needs; everything else on an OpDef is a later feature's entry. */
type CoreField = 'opType' | 'domain' | 'summary' | 'inputCount' | 'outputCount' | 'parseAttrs' | 'inferTypes' | 'macs' | 'foldValues';

/**
 * OpDef fields beyond inference (engine lowering, channel rules, QDQ patterns). Generators for op
 * families (unaryFloatOp, binaryArithmeticOp, reduceOp) accept them and pass them through, so an op
 * module made by a generator gains such an entry the same way a hand-written one does.
 */
export type OpDefExtras<A> = Partial<Omit<OpDef<A>, CoreField>>;

/** A problem with one node; inference adds the node's name and the file. */
export class OpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OpError';
  }
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}

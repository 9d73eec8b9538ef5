import type { Node } from '../onnx/graph.js';
import { add } from './add.js';
import { averagePool } from './average-pool.js';
import { batchNormalization } from './batch-normalization.js';
import { cast } from './cast.js';
import { clip } from './clip.js';
import { concat } from './concat.js';
import { constant } from './constant.js';
import { constantOfShape } from './constant-of-shape.js';
import { conv } from './conv.js';
import { dequantizeLinear } from './dequantize-linear.js';
import { div } from './div.js';
import { dropout } from './dropout.js';
import { dynamicQuantizeLinear } from './dynamic-quantize-linear.js';
import { equal } from './equal.js';
import { erf } from './erf.js';
import { flatten } from './flatten.js';
import { gather } from './gather.js';
import { gemm } from './gemm.js';
import { globalAveragePool } from './global-average-pool.js';
import { globalMaxPool } from './global-max-pool.js';
import { hardSigmoid } from './hard-sigmoid.js';
import { hardSwish } from './hard-swish.js';
import { identity } from './identity.js';
import { layerNormalization } from './layer-normalization.js';
import { leakyRelu } from './leaky-relu.js';
import { matmul } from './matmul.js';
import { matmulInteger } from './matmul-integer.js';
import { maxPool } from './max-pool.js';
import { mul } from './mul.js';
import { abs } from './abs.js';
import { celu } from './celu.js';
import { elu } from './elu.js';
import { exp } from './exp.js';
import { log } from './log.js';
import { logSoftmax } from './log-softmax.js';
import { neg } from './neg.js';
import { pow } from './pow.js';
import { prelu } from './prelu.js';
import { reciprocal } from './reciprocal.js';
import { selu } from './selu.js';
import { softplus } from './softplus.js';
import { softsign } from './softsign.js';
import { sqrt } from './sqrt.js';
import { tanh } from './tanh.js';
import { reduceSum } from './reduce-sum.js';
import { reduceMax } from './reduce-max.js';
import { reduceMin } from './reduce-min.js';
import { reduceL1 } from './reduce-l1.js';
import { reduceL2 } from './reduce-l2.js';
import { reduceSumSquare } from './reduce-sum-square.js';
import { reduceProd } from './reduce-prod.js';
import { reduceLogSumExp } from './reduce-log-sum-exp.js';
import { reduceLogSum } from './reduce-log-sum.js';
import { instanceNormalization } from './instance-normalization.js';
import { expand } from './expand.js';
import { where } from './where.js';
import { max } from './max.js';
import { min } from './min.js';
import { sum } from './sum.js';
import { mean } from './mean.js';
import type { OpDef } from './op-def.js';
import { pad } from './pad.js';
import { quantizeLinear } from './quantize-linear.js';
import { reduceMean } from './reduce-mean.js';
import { relu } from './relu.js';
import { reshape } from './reshape.js';
import { resize } from './resize.js';
import { shape } from './shape.js';
import { sigmoid } from './sigmoid.js';
import { slice } from './slice.js';
import { softmax } from './softmax.js';
import { split } from './split.js';
import { squeeze } from './squeeze.js';
import { sub } from './sub.js';
import { transpose } from './transpose.js';
import { unsqueeze } from './unsqueeze.js';

/**
 * Every op slimkit understands, keyed by ONNX op type (domain ai.onnx). A test checks that each
 * module in src/ops is listed here. An op that is not here is unsupported: validation names it.
 */
export const OPS = {
  Abs: abs,
  Add: add,
  AveragePool: averagePool,
  BatchNormalization: batchNormalization,
  Cast: cast,
  Celu: celu,
  Clip: clip,
  Concat: concat,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Conv: conv,
  DequantizeLinear: dequantizeLinear,
  Div: div,
  Dropout: dropout,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
  Elu: elu,
  Equal: equal,
  Erf: erf,
  Exp: exp,
  Expand: expand,
  Flatten: flatten,
  Gather: gather,
  Gemm: gemm,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  Identity: identity,
  InstanceNormalization: instanceNormalization,
  LayerNormalization: layerNormalization,
  LeakyRelu: leakyRelu,
  Log: log,
  LogSoftmax: logSoftmax,
  MatMul: matmul,
  MatMulInteger: matmulInteger,
  Max: max,
  MaxPool: maxPool,
  Mean: mean,
  Min: min,
  Mul: mul,
  Neg: neg,
  PRelu: prelu,
  Pad: pad,
  Pow: pow,
  QuantizeLinear: quantizeLinear,
  Reciprocal: reciprocal,
  ReduceL1: reduceL1,
  ReduceL2: reduceL2,
  ReduceLogSum: reduceLogSum,
  ReduceLogSumExp: reduceLogSumExp,
  ReduceMax: reduceMax,
  ReduceMean: reduceMean,
  ReduceMin: reduceMin,
  ReduceProd: reduceProd,
  ReduceSum: reduceSum,
  ReduceSumSquare: reduceSumSquare,
  Relu: relu,
  Reshape: reshape,
  Resize: resize,
  Selu: selu,
  Shape: shape,
  Sigmoid: sigmoid,
  Slice: slice,
  Softmax: softmax,
  Softplus: softplus,
  Softsign: softsign,
  Split: split,
  Sqrt: sqrt,
  Squeeze: squeeze,
  Sub: sub,
  Sum: sum,
  Tanh: tanh,
  Transpose: transpose,
  Unsqueeze: unsqueeze,
  Where: where,
} as const;

export type OpType = keyof typeof OPS;

/** The typed attributes of an op type, e.g. `AttrsOf<'Conv'>`. */
export type AttrsOf<T extends OpType> = (typeof OPS)[T] extends OpDef<infer A> ? A : never;

export function isKnownOp(opType: string, domain = ''): opType is OpType {
  return (domain === '' || domain === 'ai.onnx') && Object.hasOwn(OPS, opType);
}

/** The definition for a node, or undefined when slimkit does not support it. */
export function opDefFor(node: Pick<Node, 'opType' | 'domain'>): OpDef<unknown> | undefined {
  return isKnownOp(node.opType, node.domain) ? (OPS[node.opType] as OpDef<unknown>) : undefined;
}

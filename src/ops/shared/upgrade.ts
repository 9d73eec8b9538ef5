/** Helpers for the op modules' `upgrade` entries: attributes of older opsets that became inputs. */
import type { DType } from '../../onnx/dtype.js';
import type { Node } from '../../onnx/graph.js';
import { int64, makeTensor, numberToFloat16Bits, type Tensor } from '../../onnx/tensor.js';
import { OpError, type UpgradeContext } from '../op-def.js';

/** `node` without the attributes `drop`, and with `extra` appended to its inputs ('' for an omitted one). */
export function attributesToInputs(node: Node, drop: readonly string[], extra: readonly string[]): Node {
  const attributes = Object.fromEntries(Object.entries(node.attributes).filter(([name]) => !drop.includes(name)));
  const inputs = [...node.inputs, ...extra];
  while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs.pop();
  return { ...node, inputs, attributes };
}

/** An int64 vector input holding `values`, or '' when there are none. */
export function intsInput<A>(ctx: UpgradeContext<A>, what: string, values: readonly number[] | undefined): string {
  return values ? ctx.constant(`${ctx.node.name}_${what}`, int64([values.length], values)) : '';
}

/** A scalar of a float type (the type of the value it bounds or fills). */
export function floatScalar(dtype: DType, value: number): Tensor {
  if (dtype === 'float32') return makeTensor('float32', [], Float32Array.of(value));
  if (dtype === 'float64') return makeTensor('float64', [], Float64Array.of(value));
  if (dtype === 'float16') return makeTensor('float16', [], Uint16Array.of(numberToFloat16Bits(value)));
  throw new OpError(`cannot be rewritten for opset 13: a ${dtype} bound is not supported`);
}

import { floatAttr, floatsAttr, intAttr, intsAttr, tensorAttr } from './attrs.js';
import { float32, int64, makeTensor, type Tensor } from '../onnx/tensor.js';
import { defineOp, OpError } from './op-def.js';
import { knownFromTensor } from './shared/known.js';
import { typeOf } from './shared/shapes.js';

export interface ConstantAttrs {
  /** The value, whichever attribute held it (value, value_float(s), value_int(s), value_string(s)). */
  value: Tensor;
}

const VALUE_ATTRS = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings', 'sparse_value'];

export const constant = defineOp<ConstantAttrs>({
  opType: 'Constant',
  domain: '',
  summary: 'a tensor stored in the node',
  inputCount: [0, 0],
  outputCount: [1, 1],
  parseAttrs(node) {
    const given = VALUE_ATTRS.filter((name) => node.attributes[name]);
    if (given.length !== 1) {
      throw new OpError(`Constant needs exactly one of ${VALUE_ATTRS.join(', ')}; it has ${given.length ? given.join(', ') : 'none'}`);
    }
    const which = given[0]!;
    switch (which) {
      case 'value':
        return { value: tensorAttr(node, 'value')! };
      case 'value_float':
        return { value: float32([], [floatAttr(node, which, 0)]) };
      case 'value_floats': {
        const v = floatsAttr(node, which)!;
        return { value: float32([v.length], v) };
      }
      case 'value_int':
        return { value: int64([], [intAttr(node, which, 0)]) };
      case 'value_ints': {
        const v = intsAttr(node, which)!;
        return { value: int64([v.length], v) };
      }
      case 'value_string':
        return { value: makeTensor('string', [], [stringValue(node.attributes[which]?.value)]) };
      case 'value_strings': {
        const v = node.attributes[which]?.value;
        if (!Array.isArray(v)) throw new OpError('value_strings must be a list of strings');
        return { value: makeTensor('string', [v.length], v.map(stringValue)) };
      }
      default:
        throw new OpError('sparse_value constants are not supported; store the tensor densely');
    }
  },
  inferTypes: (ctx) => [typeOf(ctx.attrs.value.dtype, [...ctx.attrs.value.dims])],
  macs: () => 0,
  foldValues: (ctx) => [knownFromTensor(ctx.attrs.value)],
});

function stringValue(v: unknown): string {
  if (typeof v !== 'string') throw new OpError('string constants must hold strings');
  return v;
}

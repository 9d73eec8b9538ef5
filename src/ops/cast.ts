import type { Dim } from '../onnx/graph.js';
import { DTYPES, dtypeFromOnnx, FLOAT_DTYPES, INT_DTYPES, type DType } from '../onnx/dtype.js';
import { intAttr, stringAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import { input, typeOf } from './shared/shapes.js';
import { sameChannels } from '../compress/prune/rules.js';

export interface CastAttrs {
  to: DType;
}

/** Opset 1 named the target type as a string ("FLOAT", "INT64", ...): TensorProto.DataType names. */
const LEGACY_NAMES: Record<string, DType> = {
  FLOAT: 'float32', UINT8: 'uint8', INT8: 'int8', UINT16: 'uint16', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  STRING: 'string', BOOL: 'bool', FLOAT16: 'float16', DOUBLE: 'float64', UINT32: 'uint32', UINT64: 'uint64', BFLOAT16: 'bfloat16',
};

export const cast = defineOp<CastAttrs>({
  opType: 'Cast',
  domain: '',
  summary: 'convert the element type (torch emits it inside shape computations)',
  inputCount: [1, 1],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    if (!node.attributes['to']) throw new OpError('Cast requires attribute to');
    if (opset < 6 && node.attributes['to'].type === 'string') {
      const name = stringAttr(node, 'to', '');
      const to = LEGACY_NAMES[name];
      if (!to) throw new OpError(`to '${name}' is not a known type name`);
      return { to };
    }
    const code = intAttr(node, 'to', 0);
    const to = dtypeFromOnnx(code);
    if (!to) {
      const known = Object.entries(DTYPES).map(([n, d]) => `${d.onnx} (${n})`).join(', ');
      throw new OpError(`to ${code} is not an element type slimkit handles; known: ${known}`);
    }
    return { to };
  },
  inferTypes(ctx) {
    return [typeOf(ctx.attrs.to, input(ctx, 0).type.shape)];
  },
  macs: () => 0,
  passesThrough: (ctx) => (ctx.inputs[0]?.type.dtype === ctx.attrs.to ? 0 : undefined),
  // Casts between numeric types keep shape arithmetic (Shape → Cast → Div → Cast) foldable.
  foldValues(ctx) {
    const known = ctx.inputs[0]?.known;
    const to = ctx.attrs.to;
    if (!known) return [undefined];
    let values: Dim[];
    if (INT_DTYPES.has(to)) values = known.values.map((v) => (typeof v === 'number' ? Math.trunc(v) : v));
    else if (FLOAT_DTYPES.has(to)) values = known.values;
    else if (to === 'bool' && known.values.every((v) => typeof v === 'number')) values = known.values.map((v) => (v !== 0 ? 1 : 0));
    else return [undefined];
    return [{ dims: known.dims, values }];
  },
  channels: sameChannels(),
});

import { FLOAT_DTYPES, type DType } from '../onnx/dtype.js';
import { unaryFloatOp } from './shared/elementwise.js';
import { single } from '../engine/lowering.js';
import { sameChannels } from '../compress/prune/rules.js';

const SIGNED_NUMERIC: ReadonlySet<DType> = new Set([...FLOAT_DTYPES, 'int8', 'int16', 'int32', 'int64']);

export const neg = unaryFloatOp({
  opType: 'Neg',
  summary: '-x, elementwise',
  parseAttrs: () => ({}),
  lower: () => single('neg'),
  dtypes: () => SIGNED_NUMERIC,
  channels: sameChannels(),
  // Shape arithmetic: torch writes x[:, -(c // 2):] with a Neg.
  fold: (x) => 0 - x,
});

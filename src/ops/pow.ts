import { defineOp } from './op-def.js';
import { NUMERIC_DTYPES } from './shared/elementwise.js';
import { broadcastShapes, input, requireDtype, typeOf } from './shared/shapes.js';
import { single } from '../engine/lowering.js';
import { broadcastChannels } from '../compress/prune/rules.js';

/** x ^ y with numpy broadcasting; the exponent may have its own (numeric) type from opset 12. */
export const pow = defineOp<Record<string, never>>({
  opType: 'Pow',
  domain: '',
  summary: 'x ^ y, elementwise with numpy broadcasting (the output has x\'s type)',
  inputCount: [2, 2],
  outputCount: [1, 1],
  parseAttrs: () => ({}),
  inferTypes(ctx) {
    const dtype = requireDtype(ctx, 0, NUMERIC_DTYPES);
    requireDtype(ctx, 1, NUMERIC_DTYPES);
    const x = input(ctx, 0).type.shape;
    const y = input(ctx, 1).type.shape;
    return [typeOf(dtype, x && y ? broadcastShapes(x, y) : undefined)];
  },
  macs: () => 0,
  lower: () => single('pow'),
  channels: broadcastChannels('other'),
});

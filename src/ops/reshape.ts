import type { Dim } from '../onnx/graph.js';
import { intAttr, intsAttr } from './attrs.js';
import { defineOp, OpError } from './op-def.js';
import {
  divideProducts, input, isStatic, productDim, requireRank, symbolicProduct, typeOf, unknownDim,
} from './shared/shapes.js';
import { constantInts, single } from '../engine/lowering.js';
import { passThrough } from '../compress/quantize/pattern.js';
import { channelReshape } from '../compress/prune/rules.js';
import { entryAt, FOLD_HINT, forSampleCounts } from '../compress/prune/shape-expr.js';
import type { ChannelContext, ChannelLink, ChannelPorts } from '../compress/prune/channel-rule.js';
import { int64 } from '../onnx/tensor.js';

export interface ReshapeAttrs {
  /** Opset 14+: a 0 in the shape means size 0, not "copy the input dim". */
  allowZero: boolean;
  /** The `shape` attribute of opsets < 5; from 5 the shape is input 1. */
  shape?: number[];
}

export const reshape = defineOp<ReshapeAttrs>({
  opType: 'Reshape',
  domain: '',
  summary: 'same data, new shape (0 copies an input dim, -1 is inferred)',
  inputCount: [1, 2],
  outputCount: [1, 1],
  parseAttrs(node, opset) {
    const attrs: ReshapeAttrs = { allowZero: opset >= 14 && intAttr(node, 'allowzero', 0) !== 0 };
    const shape = opset < 5 ? intsAttr(node, 'shape') : undefined;
    if (shape) attrs.shape = shape;
    return attrs;
  },
  inferTypes(ctx) {
    const x = input(ctx, 0);
    let target: Dim[] | undefined = ctx.attrs.shape;
    if (ctx.opset >= 5) {
      const shapeInput = input(ctx, 1);
      if (shapeInput.type.dtype !== 'int64') throw new OpError(`shape '${shapeInput.name}' must be int64, got ${shapeInput.type.dtype}`);
      const [length] = requireRank(ctx, 1, [1]);
      target = shapeInput.known?.values;
      // Contents unknown but length known: the rank is all we can say.
      if (!target) {
        if (typeof length !== 'number') return [typeOf(x.type.dtype)];
        return [typeOf(x.type.dtype, Array.from({ length }, (_, i) => unknownDim(ctx, 0, i)))];
      }
    }
    if (!target) throw new OpError('Reshape before opset 5 requires attribute shape');
    return [typeOf(x.type.dtype, resolveShape(target, x.type.shape, { allowZero: ctx.attrs.allowZero, fresh: (i) => unknownDim(ctx, 0, i) }))];
  },
  macs: () => 0,
  // Only a shape changes: the pass removes it where the output's shape is the input's.
  passesThrough: () => 0,
  foldValues(ctx, outputs) {
    const known = ctx.inputs[0]?.known;
    const shape = outputs[0]?.shape;
    if (!known || !isStatic(shape)) return [undefined];
    return [{ dims: shape, values: known.values }];
  },
  lower(ctx) {
    const shape = ctx.attrs.shape ?? constantInts(ctx, 1, 'shape');
    return single('reshape', { inputs: [ctx.node.inputs[0]!], ints: [Number(ctx.attrs.allowZero), ...shape] });
  },
  quant: passThrough(),
  // Pruning: a flatten ([N, C, …] → [N, C·S]) or a reshape that keeps axes 0 and 1; a stored target's
  // channel entry is rewritten. Also a split of the channel axis into [G, C/G] and the merge of [A, B]
  // back into A·B (ShuffleNet's channel shuffle, around a Transpose): the positions of the G parts are
  // tied, and a target computed from Shape must follow the channel count (shape-expr.ts). And GroupNorm's
  // pair around InstanceNormalization, which prunes whole groups (normGroups).
  channels: {
    anyAxis: true,
    ports(ctx) {
      const form = reshapeForm(ctx);
      return typeof form === 'string' ? form : form.ports;
    },
    resize(ctx, keep) {
      const target = ctx.attrs.shape ?? ctx.inputs[1]?.known?.values;
      const kept = keep.outputs[0]?.length;
      const form = reshapeForm(ctx);
      // Only a stored entry that spells out the channel count is rewritten; a computed one follows by itself.
      if (!target || kept === undefined || typeof form === 'string' || !form.stored || form.entry === undefined || target[form.entry] === -1) return {};
      const shape = target.map((d, i) => (i === form.entry ? kept : Number(d)));
      return ctx.attrs.shape ? { attributes: { shape: { type: 'ints', value: shape } } } : { inputs: { 1: int64([shape.length], shape) } };
    },
  },
});

/** How channels pass one Reshape: its ports, the target entry that holds their count, and whether the target is stored. */
interface ReshapeForm {
  ports: ChannelPorts;
  entry?: number;
  stored: boolean;
}

/** The first form that fits — a reshape keeping the channel axis, a regroup of it, GroupNorm's pair — or why none does. */
function reshapeForm(ctx: ChannelContext<ReshapeAttrs>): ReshapeForm | string {
  const target = ctx.attrs.shape ?? ctx.inputs[1]?.known?.values;
  const stored = Boolean(ctx.attrs.shape || ctx.inputs[1]?.constant);
  let reason = `its input carries channels on axis ${ctx.channelAxes[0]}`;
  if (ctx.channelAxes[0] === 1) {
    const r = channelReshape(ctx, target, ctx.attrs.allowZero);
    if (typeof r !== 'string') {
      if (!r.rewrite) return { ports: r.ports, stored };
      if (stored) return { ports: r.ports, entry: 1, stored };
      // Computed from the Shape of a value with these channels (GroupNorm(C, C)'s way back in a free-size export).
      const follows = computedChannelSource(ctx, target!.length);
      if (!follows) return `its target shape is computed at run time${FOLD_HINT}`;
      return { ports: { ...r.ports, ...tiedTo(follows) }, entry: 1, stored };
    }
    reason = r;
  }
  const regroup = channelRegroup(ctx);
  if (typeof regroup !== 'string') return regroup;
  const groups = normGroups(ctx);
  if (groups === undefined) return `${reason}; ${regroup}`;
  return typeof groups === 'string' ? `${reason}; ${groups}` : groups;
}

/**
 * A split of the channel axis c into [G, C/G] (channels land on axis c + 1, the G parts' positions tied)
 * or a merge of [A, B] at c (channels on the outer axis c, each spreading over B entries): the ports,
 * the target entry that holds the channel count, and whether the target is stored (to be rewritten) —
 * else it is computed and must follow the channel count by itself. Or why not.
 */
function channelRegroup(ctx: ChannelContext<ReshapeAttrs>): ReshapeForm | string {
  const x = ctx.inputs[0]?.type.shape;
  const y = ctx.outputs[0]?.shape;
  const c = ctx.channelAxes[0]!;
  const target = ctx.attrs.shape ?? ctx.inputs[1]?.known?.values;
  if (!x || !y || !target) return 'its shapes or target are not known statically';
  const same = (a: readonly Dim[], b: readonly Dim[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
  const split = y.length === x.length + 1 && same(x.slice(0, c), y.slice(0, c)) && same(x.slice(c + 1), y.slice(c + 2));
  const merge = y.length === x.length - 1 && same(x.slice(0, c), y.slice(0, c)) && same(x.slice(c + 2), y.slice(c + 1));
  if (!split && !merge) return 'not a split or merge of the channel axis';
  const [outer, inner] = split ? [y[c], y[c + 1]] : [x[c], x[c + 1]];
  if (typeof outer !== 'number' || typeof inner !== 'number') return 'its channel dims are symbolic';
  // The entry that changes with the channels; the others must not (no -1 among them: it would).
  const entry = split ? c + 1 : c;
  const follows = (count: (m: number) => number): string | undefined => {
    if (target.some((d, i) => d === -1 && i !== entry)) return 'a -1 elsewhere in its target would absorb the pruned channels';
    if (split && target[c] !== outer) return 'its number of parts is not a stored constant';
    if (ctx.attrs.shape || ctx.inputs[1]?.constant) return undefined;
    // Computed: the channel entry follows the count (or is a constant -1), every other entry is independent
    // of any channel count — a number of parts computed from the channels would shrink with them.
    const entries = ctx.shapeExpr?.(ctx.node.inputs[1]!);
    const cannot = `its target is computed in a way pruning cannot follow${FOLD_HINT}`;
    if (!entries || entries.length !== target.length) return cannot;
    const ok = entries.every((e, i) => {
      if (i !== entry) return e.kind === 'const' || e.kind === 'other';
      if (target[entry] === -1) return e.kind === 'const' && e.value === -1;
      return forSampleCounts((m) => entryAt(e, ctx.node.inputs[0]!, count(m)) === m * (split ? 1 : inner));
    });
    return ok ? undefined : cannot;
  };
  // Split: the input's channel count is G·m for m positions; merge: the input's channels are A positions.
  const why = follows(split ? (m) => outer * m : (m) => m);
  if (why) return why;
  const axisOut = split ? c + 1 : c;
  const outputAxes = axisOut === 1 ? {} : { outputAxes: [axisOut] };
  const stored = Boolean(ctx.attrs.shape || ctx.inputs[1]?.constant);
  const io = (fromStart: number, toStart: number, count: number, span: number): ChannelLink => ({ from: { side: 'in', slot: 0 }, to: { side: 'out', slot: 0 }, fromStart, toStart, count, span });
  const links = split ? Array.from({ length: outer }, (_, g) => io(g * inner, 0, inner, 1)) : [io(0, 0, outer, inner)];
  return { ports: { inputs: [0], outputs: [0], coupling: links, ...outputAxes }, entry, stored };
}

/**
 * torch.onnx's GroupNorm: [N, C, …] → [N, G, −1] → InstanceNormalization → back to [N, C, …]. Channel g
 * of the grouped value is channels g·a … g·a + a − 1 (a = C / G) of the plain one, so pruning removes
 * whole groups: GroupNorm(G, C) becomes GroupNorm(G′, G′·a). The groups kept see exactly the channels
 * they saw before, so their statistics do not move — unlike pruning a few channels out of every group,
 * which shifts every group's mean and variance. Undefined when the shapes are not such a pair at all.
 */
function normGroups(ctx: ChannelContext<ReshapeAttrs>): ReshapeForm | string | undefined {
  const x = ctx.inputs[0]?.type.shape;
  const y = ctx.outputs[0]?.shape;
  const target = ctx.attrs.shape ?? ctx.inputs[1]?.known?.values;
  const axis = ctx.channelAxes[0];
  if (!x || !y || !target || x[0] !== y[0] || typeof x[1] !== 'number' || typeof y[1] !== 'number') return undefined;
  // Into groups: fewer entries on axis 1, each a run of channels; back: more. (A Conv1d's [N, C, L] has
  // rank 3 on both sides: the counts tell the way.) Back from one group, the channels arrive spread
  // over axis 2 (below).
  const fold = y.length === 3 && x.length >= 3 && axis === 1 && y[1] < x[1] && x[1] % y[1] === 0;
  const unfold = !fold && x.length === 3 && y.length >= 3 && ((axis === 1 && x[1] < y[1] && y[1] % x[1] === 0) || (axis === 2 && x[1] === 1));
  if (!fold && !unfold) return undefined;
  const [groups, channels] = fold ? [y[1], x[1]] : [x[1], y[1]];
  const stored = Boolean(ctx.attrs.shape || ctx.inputs[1]?.constant);
  const into = (from: 'in' | 'out', count: number, span: number): ChannelLink => ({
    from: { side: from, slot: 0 }, to: { side: from === 'in' ? 'out' : 'in', slot: 0 }, fromStart: 0, toStart: 0, count, span,
  });
  if (fold) {
    // The entry after the groups takes any size (-1): each group keeps its own. The group count is
    // rewritten, so it must be stored — or, for one group, a computed constant.
    if (target[1] !== groups || target[2] !== -1) return `its target is not [N, ${groups}, -1], the form GroupNorm's split into groups takes`;
    const entries = stored ? undefined : ctx.shapeExpr?.(ctx.node.inputs[1]!);
    if (!stored && (groups !== 1 || !entries?.slice(1).every((e) => e.kind === 'const'))) return `its target shape is computed at run time${FOLD_HINT}`;
    if (groups > 1) return { ports: { inputs: [0], outputs: [0], coupling: [into('out', groups, channels / groups)] }, entry: 1, stored };
    // GroupNorm(1, C) normalizes each sample over all its channels, as a LayerNorm over C, H, W: it has
    // no groups to drop, so channels go one at a time and it normalizes over those kept (as
    // LayerNormalization does here). Channel c is the c-th run of H·W entries on axis 2 of [N, 1, C·H·W].
    const span = spatialSize(x);
    if (span === undefined) return 'its height and width are not static';
    return { ports: { inputs: [0], outputs: [0], coupling: [into('in', channels, span)], outputAxes: [2] }, stored };
  }
  // Back: the channel entry is rewritten (stored), inferred (-1), or computed from the Shape of the value
  // the groups were made from (a free-size export) — then those channels are tied to the output's. A -1
  // elsewhere (a free height) resolves as before once the channel entry holds the count kept.
  let follows: string | undefined;
  if (!stored && target[1] !== -1) {
    follows = computedChannelSource(ctx, target.length);
    if (!follows) return `its target shape is computed in a way pruning cannot follow${FOLD_HINT}`;
  }
  const span = groups === 1 ? spatialSize(y) : channels / groups;
  if (span === undefined) return 'its height and width are not static';
  const link = groups === 1 ? into('out', channels, span) : into('in', groups, span);
  return { ports: { inputs: [0], outputs: [0], coupling: [link], ...tiedTo(follows) }, entry: 1, stored };
}

/** The output's channels tied to those of `value`, whose Shape the target is computed from (none when undefined). */
function tiedTo(value: string | undefined): Pick<ChannelPorts, 'sameChannels'> {
  return value ? { sameChannels: [{ value, port: { side: 'out', slot: 0 } }] } : {};
}

/** H·W (the product of the axes after the channels) when static. */
function spatialSize(shape: readonly Dim[]): number | undefined {
  const rest = shape.slice(2);
  return rest.every((d): d is number => typeof d === 'number') ? rest.reduce((a, b) => a * b, 1) : undefined;
}

/** The value whose channel count a computed target's channel entry (1) reads, every other entry independent of any channel count. */
function computedChannelSource(ctx: ChannelContext<ReshapeAttrs>, length: number): string | undefined {
  const entries = ctx.shapeExpr?.(ctx.node.inputs[1]!);
  const e = entries?.[1];
  if (!entries || entries.length !== length || e?.kind !== 'channels') return undefined;
  if (!entries.every((d, i) => i === 1 || d.kind === 'const' || d.kind === 'other')) return undefined;
  return forSampleCounts((m) => entryAt(e, e.of, m) === m) ? e.of : undefined;
}

/** Apply Reshape's 0 and -1 rules to `target` for an input of shape `from` (undefined: unknown). */
function resolveShape(
  target: readonly Dim[],
  from: readonly Dim[] | undefined,
  options: { allowZero: boolean; fresh: (axis: number) => string },
): Dim[] {
  let inferAt = -1;
  const out = target.map((d, i): Dim => {
    if (typeof d === 'string') return d;
    if (d === -1) {
      if (inferAt >= 0) throw new OpError(`shape [${target.join(', ')}] has more than one -1`);
      inferAt = i;
      return d;
    }
    if (d < -1 || !Number.isInteger(d)) throw new OpError(`shape [${target.join(', ')}] has invalid entry ${d}`);
    if (d === 0 && !options.allowZero) {
      if (!from) return options.fresh(i);
      if (i >= from.length) throw new OpError(`shape [${target.join(', ')}] copies dim ${i} (a 0), but the input has rank ${from.length}`);
      return from[i]!;
    }
    return d;
  });
  if (options.allowZero && inferAt >= 0 && target.includes(0)) {
    throw new OpError(`shape [${target.join(', ')}] has both 0 and -1, which allowzero=1 forbids`);
  }
  const total = from && symbolicProduct(from);
  if (inferAt >= 0) {
    const rest = symbolicProduct(out.filter((_, i) => i !== inferAt));
    const quotient = total && divideProducts(total, rest);
    if (quotient && !Number.isInteger(quotient.factor)) {
      throw new OpError(`cannot reshape [${from!.join(', ')}] to [${target.join(', ')}]: the element count does not divide`);
    }
    out[inferAt] = quotient ? productDim(quotient, options.fresh(inferAt)) : options.fresh(inferAt);
  } else if (total && total.symbols.length === 0) {
    const count = symbolicProduct(out);
    if (count.symbols.length === 0 && count.factor !== total.factor) {
      throw new OpError(`cannot reshape [${from!.join(', ')}] (${total.factor} elements) to [${out.join(', ')}] (${count.factor} elements)`);
    }
  }
  return out;
}

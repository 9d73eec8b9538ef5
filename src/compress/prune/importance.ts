/**
 * Importance criteria: functions of a group returning one score per group channel (root coordinates).
 * They read only the group's params and their roles (channel-rule.ts), never op types, so a new op
 * with a channel rule is scored by every criterion. Higher scores are kept.
 */
import { toNumbers, type Tensor } from '../../onnx/tensor.js';
import { Random } from '../../util/random.js';
import { accumulate, type Group } from './group.js';

export type ImportanceName = 'l1' | 'l2' | 'bn' | 'taylor' | 'random';
export const IMPORTANCE_NAMES: readonly ImportanceName[] = ['l1', 'l2', 'bn', 'taylor', 'random'];

export interface ImportanceContext {
  /** ∂loss/∂initializer by name (summed over a few batches): what Taylor needs. */
  gradients?: ReadonlyMap<string, Float32Array>;
  /** Seed of the random baseline. */
  seed?: number;
}

/** Scores per group channel, or undefined when the criterion has nothing to score this group with. */
export type Importance = (group: Group, ctx: ImportanceContext) => Float64Array | undefined;

function floats(t: Tensor): ArrayLike<number> {
  return t.dtype === 'float32' || t.dtype === 'float64' ? (t.data as Float32Array) : toNumbers(t);
}

/** Per index along `axis`: the sum of f(value, flat index) over the slice. */
export function sliceSums(t: Tensor, axis: number, f: (v: number, i: number) => number): Float64Array {
  const n = t.dims[axis]!;
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = floats(t);
  const out = new Float64Array(n);
  for (let i = 0; i < data.length; i++) out[Math.floor(i / inner) % n]! += f(data[i]!, i);
  return out;
}

/** Σ|w| (p = 1) or √Σw² (p = 2) over every weight the channel owns, across the whole group. */
function magnitude(p: 1 | 2): Importance {
  return (group) => {
    const scores = new Float64Array(group.size);
    let any = false;
    for (const gp of group.params) {
      if (gp.param.role !== 'weight') continue;
      any = true;
      accumulate(group, gp.value, sliceSums(gp.tensor, gp.param.axis, p === 1 ? Math.abs : (v) => v * v), scores, gp.param.period);
    }
    if (!any) return undefined;
    if (p === 2) for (let i = 0; i < scores.length; i++) scores[i] = Math.sqrt(scores[i]!);
    return scores;
  };
}

/** |γ| of the normalization layers in the group (network slimming); undefined where BN was folded away. */
const bnScale: Importance = (group) => {
  const scores = new Float64Array(group.size);
  let any = false;
  for (const gp of group.params) {
    if (gp.param.role !== 'scale') continue;
    any = true;
    accumulate(group, gp.value, sliceSums(gp.tensor, gp.param.axis, Math.abs), scores, gp.param.period);
  }
  return any ? scores : undefined;
};

/**
 * First-order Taylor (Molchanov et al. 2019): the loss change from removing a channel ≈ |Σ w·∂L/∂w|
 * over each param slice the channel owns, summed over the group's weights, scales and biases.
 */
const taylor: Importance = (group, ctx) => {
  const grads = ctx.gradients;
  if (!grads) throw new Error('Taylor importance needs gradients (ImportanceContext.gradients)');
  const scores = new Float64Array(group.size);
  let any = false;
  for (const gp of group.params) {
    const g = grads.get(gp.name);
    if (!g || gp.param.role === 'statistic' || gp.param.role === 'other') continue;
    any = true;
    const s = sliceSums(gp.tensor, gp.param.axis, (v, i) => v * g[i]!);
    accumulate(group, gp.value, s.map(Math.abs), scores, gp.param.period);
  }
  return any ? scores : undefined;
};

/** Uniform random scores, seeded per group: the baseline every criterion should beat. */
const random: Importance = (group, ctx) => {
  const rng = new Random(((ctx.seed ?? 0) * 7919 + group.id) >>> 0);
  return Float64Array.from({ length: group.size }, () => rng.nextUint32() / 2 ** 32);
};

export const IMPORTANCE: Record<ImportanceName, Importance> = {
  l1: magnitude(1),
  l2: magnitude(2),
  bn: bnScale,
  taylor,
  random,
};

export interface GroupScores {
  scores: Float64Array[];
  /** Roots of groups the criterion could not score, scored by L2 instead. */
  fallbacks: string[];
}

/** Scores for every group; groups the criterion cannot score (no BN left, say) fall back to L2. */
export function scoreGroups(groups: readonly Group[], importance: ImportanceName, ctx: ImportanceContext = {}): GroupScores {
  const fallbacks: string[] = [];
  const scores = groups.map((g) => {
    const s = IMPORTANCE[importance](g, ctx);
    if (s) return s;
    fallbacks.push(g.root.node.name);
    return IMPORTANCE.l2(g, ctx) ?? new Float64Array(g.size);
  });
  return { scores, fallbacks };
}

/**
 * Structured pruning end to end: dependency graph → importance → the smallest pruning fraction that
 * meets the target (a channel ratio, a MAC budget, or a measured latency) → physical removal → a
 * validated, smaller dense Graph with the numbers to report.
 */
import { checkOptionNames, type OptionNames } from '../../util/option-names.js';
import { inputError, option, usageError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { inferShapes } from '../../onnx/shape-inference.js';
import { validateGraph } from '../../onnx/validate.js';
import { fixWeightsAsConstants } from '../../passes/fix-weights.js';
import { untieIdentityWeights } from '../../passes/untie-weights.js';
import { computesShapes, foldShapeSubgraphs } from '../../passes/fold-shapes.js';
import { constantsToInitializers } from '../../passes/constants.js';
import { keptChannels, removeChannels } from './apply.js';
import { renormalizeChannels } from './renormalize.js';
import { channelMeans, readValues, type Calibration } from './calibrate.js';
import { buildDependencyGraph, type Boundary, type DependencyGraph } from './dependency-graph.js';
import { preferredChannelMultiple } from './hardware.js';
import { scoreGroups, type ImportanceName } from './importance.js';
import { pinImageSize } from '../../onnx/image-input.js';
import { nodesNamed, unknownName } from './names.js';
import { planFromCounts, planRemoval, refill, roundStep, type Plan, type PlanOptions, type Scope } from './plan.js';

export type Target =
  /** Remove this fraction of every group's channels (global scope: of all channels). */
  | { kind: 'ratio'; value: number }
  /** Keep at most this fraction of the model's MACs. */
  | { kind: 'macs'; value: number }
  /** Reach at most this fraction of the measured batch-1 latency. */
  | { kind: 'latency'; value: number };

export interface StructuredOptions {
  target: Target;
  importance?: ImportanceName;
  scope?: Scope;
  /** Kept channel counts are multiples of this; 1 turns rounding off; default 'auto' (this CPU's fastest, hardware.ts). */
  roundTo?: number | 'auto';
  /** Most any group may lose; default 0.9. */
  maxRatio?: number;
  /** Node names left as they are: every group they read or write keeps all its channels. */
  keep?: readonly string[];
  /** Ratios for single groups, by the name of a node writing the group's channels (e.g. its root conv). */
  layerRatios?: Readonly<Record<string, number>>;
  /** For the random criterion. */
  seed?: number;
  /**
   * The graph's shape computations were folded before its free height and width were pinned
   * (pinForPruning): folding again would store the pinned size in them.
   */
  shapesFolded?: boolean;
  /** For Taylor: ∂loss/∂initializer by name. */
  gradients?: ReadonlyMap<string, Float32Array>;
  /**
   * Channels each group keeps, by its label (groupLabels), in the group's channel units (a grouped conv's
   * positions), rounded to the nearest rounding step: no search; a group not named keeps all. Iterative pruning
   * passes each step's share of the one-shot widths, so K steps end at the widths one cut would make.
   */
  keptByGroup?: ReadonlyMap<string, number>;
  /**
   * Images to measure mean activations on: removed channels are then replaced by their means (folded
   * into the next Conv / Gemm bias) instead of by zero. Recommended without fine-tuning.
   */
  calibration?: Calibration;
  /** With calibration: replace removed channels by their calibrated means, folded into the readers' biases. Default true. */
  compensate?: boolean;
  /**
   * With calibration: bring every Conv downstream of a removal back to its calibrated per-channel mean and
   * spread (renormalize.ts). Default true.
   */
  renormalize?: boolean;
  /** Batch-1 latency in ms of a graph (required for a 'latency' target). */
  measureLatency?: (graph: Graph) => Promise<number>;
  onStep?: (step: SearchStep) => void;
}

export interface SearchStep {
  p: number;
  macs: number;
  latencyMs?: number;
}

export interface GroupSummary {
  /** The group's root node. */
  root: string;
  /** Its name in reports: the root's, numbered where a root's channels split into several groups (groupLabels). */
  label: string;
  opType: string;
  channelsBefore: number;
  channelsAfter: number;
  /** The root's channels that go together: 1, or a norm group's (GroupNorm) or one position in every group of a grouped conv. */
  unit: number;
  /** Values (activations) whose channels the group spans. */
  values: number;
  /** Nodes that read or write the group's channels. */
  nodes: number;
}

export interface StructuredResult {
  graph: Graph;
  /** The pruning fraction chosen. */
  p: number;
  /** The channel multiple kept counts were rounded to. */
  roundTo: number;
  macsBefore: number;
  macsAfter: number;
  groups: GroupSummary[];
  boundaries: Boundary[];
  /** Groups the chosen criterion could not score (scored by L2 instead). */
  fallbacks: string[];
  /** Whether removed channels were replaced by their calibrated means (folded into biases). */
  compensated: boolean;
  /**
   * Weights several layers read (a Conv applied twice) that pruning cut differently for each: the model
   * now stores `copies` of them, and fine-tuning trains each apart.
   */
  untied: { weight: string; copies: number }[];
  /** With calibration: the Convs given back their calibrated output statistics (renormalize.ts). */
  renormalized: string[];
  /** With calibration: layers that lost input channels but could not take their means (they read zeros). */
  uncompensated: string[];
  search: SearchStep[];
  latency?: { beforeMs: number; afterMs: number };
  /**
   * Per `keep` name, the other weighted layers (Conv, Gemm, MatMul) that keep all their channels with it:
   * keeping a layer keeps every group it reads or writes, and in a residual stage that is the stage.
   */
  keptWith: { name: string; groups: number; layers: string[] }[];
}

/**
 * The graph pruning works on. Weights listed as inputs too would keep their old shapes in the input
 * list: constants first. Weights torch.onnx merged through Identity nodes become each layer's own
 * again, so each can be sliced. Shape computations that depend on nothing but the batch (a
 * squeeze-excitation's `view(b, c)` and `expand_as`, a channel shuffle's view) become constants, which
 * pruning rewrites, instead of run-time arithmetic it may not follow.
 */
export function asPruningSeesIt(graph: Graph, o: { foldShapes?: boolean } = {}): Graph {
  // Constant nodes as initializers: the channel rules read a Slice's bounds, a Split's sizes and a
  // Reshape's target only from stored tensors (torch.onnx writes them as Constant nodes when nothing
  // else is folded), and the folded shape computations are read through them.
  const fixed = constantsToInitializers(untieIdentityWeights(fixWeightsAsConstants(graph)));
  return o.foldShapes !== false && computesShapes(fixed) ? foldShapeSubgraphs(fixed, { keepDataArithmetic: true }) : fixed;
}

/**
 * A model with a free height and width is pruned at one size (a MAC target counts real pixels) and
 * written with its free input back. Its shape computations are folded before the size is pinned, so
 * those that read the height or width stay computed and the written model runs at every size; prune
 * it with `shapesFolded`.
 */
export function pinForPruning(graph: Graph, size: readonly [number, number]): Graph {
  return pinImageSize(asPruningSeesIt(graph), size);
}

/**
 * Removes whole channels to meet `options.target` (a fraction of channels, of MACs, or of measured latency):
 * channels that must go together (a residual sum, a depthwise Conv, a Concat) go together, ranked by
 * `importance` (default L2 of the weights). The result runs as it is; fine-tune it (trainModel) to win back
 * top-1.
 */
const STRUCTURED_OPTIONS = {
  target: true, importance: true, scope: true, roundTo: true, maxRatio: true, keep: true, layerRatios: true, seed: true, shapesFolded: true,
  gradients: true, keptByGroup: true, calibration: true, compensate: true, renormalize: true, measureLatency: true, onStep: true,
} as const satisfies OptionNames<StructuredOptions>;

export async function pruneStructured(graph: Graph, options: StructuredOptions): Promise<StructuredResult> {
  checkOptionNames('pruneStructured', options, STRUCTURED_OPTIONS);
  const { target } = options ?? {};
  if (typeof target?.value !== 'number' || !['ratio', 'macs', 'latency'].includes(target.kind)) {
    throw usageError(`pruneStructured needs a target, got ${JSON.stringify(target) ?? 'none'}`, "pass target: { kind: 'macs', value: 0.5 } (keep half the MACs), { kind: 'ratio', value: 0.3 } (remove 30 % of the channels) or { kind: 'latency', value: 0.6 }");
  }
  const maxRatio = options.maxRatio ?? 0.9;
  if (!(target.value >= 0) || (target.kind === 'ratio' ? target.value >= 1 : target.value > 1)) {
    throw usageError(`${target.kind} target ${target.value} is out of range`, target.kind === 'ratio' ? 'give a fraction of channels to remove in [0, 1)' : `give the fraction to keep in (0, 1]`);
  }
  if (!(maxRatio > 0 && maxRatio < 1)) throw usageError(`max ratio ${maxRatio} is out of range`, 'give a fraction in (0, 1)');
  if (options.importance === 'taylor' && !options.gradients) {
    throw usageError('Taylor importance needs gradients of the loss', 'pass gradients (slim prune --importance taylor --data cifar10 takes them from the training engine)');
  }
  const fixed = asPruningSeesIt(graph, { foldShapes: !options.shapesFolded });
  const dep = buildDependencyGraph(fixed);
  const trivial = target.kind === 'ratio' ? target.value === 0 : target.value === 1;
  if (dep.groups.length === 0 && !trivial) {
    const b = dep.boundaries[0];
    const quantized = fixed.nodes.some((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
    throw inputError({
      problem: `the model has no channels that can be pruned${b ? ` (${dep.boundaries.length} boundary node(s), e.g. '${b.node}' (${b.opType}): ${b.reason})` : ''}`,
      // No boundary: nothing stops pruning but there is nothing between layers to cut (one Linear on the
      // pixels); --analyze would list nothing (a trial was sent to an empty listing).
      fix: quantized
        ? 'prune the float model before quantizing'
        : b
          ? '`slim prune MODEL --analyze` lists the boundaries'
          : 'structured pruning removes channels one layer writes and another reads, and the only channels here are the input\'s and the scores\' (both keep their count) — --unstructured zeros weights of any layer',
    });
  }
  const { scores, fallbacks } = scoreGroups(dep.groups, options.importance ?? 'l2', {
    ...(options.gradients ? { gradients: options.gradients } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  const autoRound = options.roundTo === undefined || options.roundTo === 'auto';
  let planOptions: PlanOptions = {
    scope: options.scope ?? 'layer',
    roundTo: autoRound ? preferredChannelMultiple() : (options.roundTo as number),
    maxRatio,
    fixed: fixedRatios(dep, options),
  };
  const macsBefore = dep.facts.totalMacs;
  const search: SearchStep[] = [];
  const macsOf = (plan: Plan): number => inferShapes(removeChannels(dep, plan.removed, { shapesOnly: true })).totalMacs;
  const means = options.calibration && options.compensate !== false ? await channelMeans(fixed, readValues(dep), options.calibration) : undefined;
  // `uncompensated`: the layers of this cut that could not take the removed channels' means.
  type Built = { plan: Plan; graph: Graph; macs: number; uncompensated: string[] };
  const build = (plan: Plan): Built => {
    const uncompensated: string[] = [];
    const pruned = removeChannels(dep, plan.removed, means ? { means, onUncompensated: (node) => uncompensated.push(node) } : {});
    return { plan, graph: pruned, macs: inferShapes(pruned).totalMacs, uncompensated };
  };
  const evaluate = (p: number): Built => build(planRemoval(dep, scores, p, planOptions));

  let chosen: Built;
  let latency: StructuredResult['latency'];
  const labels = groupLabels(dep);
  if (options.keptByGroup) {
    const given = options.keptByGroup;
    const kept = dep.groups.map((g, i) => {
      const k = given.get(labels[i]!);
      if (k === undefined) return g.size;
      // To the nearest step (the one-shot widths are multiples already): rounding up left every narrow
      // group whole until the last step.
      const step = roundStep(g, planOptions.roundTo);
      return Math.min(g.size, Math.max(step, Math.round(k / step) * step));
    });
    const all = dep.groups.reduce((a, g) => a + g.size, 0);
    chosen = build(planFromCounts(dep, scores, kept, all ? 1 - kept.reduce((a, b) => a + b, 0) / all : 0));
    record(search, options, { p: chosen.plan.p, macs: chosen.macs });
  } else if (target.kind === 'ratio') {
    chosen = evaluate(target.value);
    // As for a MAC target: a multiple no group is wide enough to lose channels at removes nothing.
    while (autoRound && target.value > 0 && planOptions.roundTo > 1 && chosen.macs >= macsBefore) {
      planOptions = { ...planOptions, roundTo: planOptions.roundTo / 2 };
      chosen = evaluate(target.value);
    }
    record(search, options, { p: target.value, macs: chosen.macs });
  } else if (target.kind === 'macs') {
    const goal = target.value * macsBefore;
    const sized = (p: number): { plan: Plan; macs: number } => {
      const plan = planRemoval(dep, scores, p, planOptions);
      return { plan, macs: macsOf(plan) };
    };
    // The CPU's preferred multiple (auto) can leave narrow layers (a DenseNet's growth of 12, Inception's
    // 8-wide branches) unprunable: then halve it until the target is reached (the result says which).
    while (autoRound && planOptions.roundTo > 1 && sized(maxRatio).macs > goal) planOptions = { ...planOptions, roundTo: planOptions.roundTo / 2 };
    const found = bisect(sized, maxRatio, (r) => r.macs <= goal, (p, r) => record(search, options, { p, macs: r.macs }), () =>
      outOfReach(`MAC target ${target.value}`, sized(maxRatio).macs / macsBefore, planOptions, dep),
    );
    const kept = refill(dep, found.plan.kept, planOptions, (k) => macsOf(planFromCounts(dep, scores, k, found.plan.p)) <= goal);
    chosen = build(planFromCounts(dep, scores, kept, found.plan.p));
  } else {
    const measure = options.measureLatency;
    if (!measure) throw usageError('a latency target needs a way to measure latency', 'pass measureLatency');
    const beforeMs = await measure(fixed);
    const goal = target.value * beforeMs;
    const timed = async (p: number): Promise<Built & { ms: number }> => {
      const r = evaluate(p);
      const ms = await measure(r.graph);
      record(search, options, { p, macs: r.macs, latencyMs: ms });
      return { ...r, ms };
    };
    const result = await bisectAsync(timed, maxRatio, (r) => r.ms <= goal);
    if (!result) {
      const most = search[search.length - 1]!;
      throw usageError(
        `latency target ${target.value} is out of reach: pruning every group by up to ${Math.round(maxRatio * 100)} % gives ${(most.latencyMs! / beforeMs).toFixed(2)}× the latency`,
        `raise the target or --max-ratio${planOptions.roundTo > 1 ? `, or lower --round-to (now ${planOptions.roundTo})` : ''}`,
      );
    }
    chosen = result;
    latency = { beforeMs, afterMs: result.ms };
  }

  const renormalized = options.calibration && options.renormalize !== false ? await renormalizeChannels(fixed, chosen.graph, keptChannels(dep, chosen.plan.removed), options.calibration) : undefined;
  if (renormalized) chosen = { ...chosen, graph: renormalized.graph };
  // The result must be a model every later step accepts; a failure here is a bug in a channel rule.
  const facts = validateGraph(chosen.graph);
  return {
    graph: chosen.graph,
    p: chosen.plan.p,
    roundTo: planOptions.roundTo,
    macsBefore,
    macsAfter: facts.totalMacs,
    groups: dep.groups.map((g, i) => ({
      root: g.root.node.name,
      label: labels[i]!,
      opType: g.root.node.opType,
      channelsBefore: g.rootChannels,
      channelsAfter: (chosen.plan.kept[i]! * g.rootChannels) / g.size,
      unit: g.rootChannels / g.size,
      values: g.members.size,
      nodes: g.nodes.length,
    })),
    boundaries: dep.boundaries,
    fallbacks,
    compensated: means !== undefined,
    uncompensated: chosen.uncompensated,
    renormalized: renormalized?.layers ?? [],
    untied: untiedWeights(fixed, chosen.graph),
    search,
    ...(latency ? { latency } : {}),
    keptWith: keptWith(dep, options.keep ?? []),
  };
}

const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/**
 * A note for a kept layer whose channels other layers share (a pruning trial's --keep of one conv kept 14
 * nodes' channels without a word); none when it kept nothing else. `instead`: a narrower way, when there is one.
 */
export function keptWithNote(k: StructuredResult['keptWith'][number], flag: string, instead?: string): string | undefined {
  if (k.layers.length === 0) return undefined;
  const shown = k.layers.slice(0, 4).join(', ') + (k.layers.length > 4 ? ', …' : '');
  return `note: ${flag} ${k.name} keeps whole the ${k.groups === 1 ? 'channel group' : `${k.groups} channel groups`} it reads and writes, and so ${k.layers.length} other layer(s) reading or writing ${k.groups === 1 ? 'it' : 'them'} keep those channels too (${shown})${instead ? ` — ${instead}` : ''}`;
}

function keptWith(dep: DependencyGraph, keep: readonly string[]): StructuredResult['keptWith'] {
  const numbered = numberedGroups(dep);
  const opType = new Map(dep.graph.nodes.map((n) => [n.name, n.opType]));
  return keep.map((name) => {
    const { groups, named } = groupsKeptBy(dep, name, numbered);
    const layers = [...new Set(groups.flatMap((g) => g.nodes))].filter((n) => !named.includes(n) && WEIGHTED.has(opType.get(n) ?? ''));
    return { name, groups: groups.length, layers };
  });
}

/**
 * Initializers read by several nodes of `before` whose readers in `after` read different tensors.
 * `after` is removeChannels' output: its nodes are `before`'s in order, with appended ones between.
 */
/** The names removeChannels gives the nodes it appends (apply.ts appendAfter). */
const APPENDED_NODE = /\.pruned_(mul|max|add)(_\d+)?$/;

export function untiedWeights(before: Graph, after: Graph): { weight: string; copies: number }[] {
  // Nodes matched by position once the appended ones are left out: names are optional in ONNX.
  const matched = after.nodes.filter((n) => !APPENDED_NODE.test(n.name));
  const readers = new Map<string, { at: number; slot: number }[]>();
  before.nodes.forEach((node, at) => {
    node.inputs.forEach((v, slot) => {
      if (before.initializers.has(v)) readers.set(v, [...(readers.get(v) ?? []), { at, slot }]);
    });
  });
  const untied: { weight: string; copies: number }[] = [];
  for (const [weight, list] of readers) {
    if (list.length < 2) continue;
    const now = new Set(list.map(({ at, slot }) => matched[at]?.inputs[slot]).filter((v) => v !== undefined));
    if (now.size > 1) untied.push({ weight, copies: now.size });
  }
  return untied;
}

function record(search: SearchStep[], options: StructuredOptions, step: SearchStep): void {
  search.push(step);
  options.onStep?.(step);
}

/** Group ids held at a fixed ratio: 0 for groups a kept node touches, the given ratio for named ones. */
/**
 * Each group's name: its root node's, numbered (#1, #2, …, by the first channel each covers) where one
 * node's channels fall into several groups — a channel shuffle splits a Conv's output so — so that the
 * report's rows, and the first and last step of an iterative prune, are told apart.
 */
export function groupLabels(dep: DependencyGraph): string[] {
  const firstChannel = (g: DependencyGraph['groups'][number]): number => (g.members.get(g.root.value) ?? []).findIndex((c) => c >= 0);
  const byRoot = new Map<string, DependencyGraph['groups'][number][]>();
  for (const g of dep.groups) byRoot.set(g.root.node.name, [...(byRoot.get(g.root.node.name) ?? []), g]);
  return dep.groups.map((g) => {
    const shared = byRoot.get(g.root.node.name)!;
    if (shared.length === 1) return g.root.node.name;
    const order = [...shared].sort((a, b) => firstChannel(a) - firstChannel(b));
    return `${g.root.node.name} #${order.indexOf(g) + 1}`;
  });
}

type Group = DependencyGraph['groups'][number];

/** A numbered group label (`--analyze`'s 'Conv #2': one of the groups a node's channels split into) names that group alone. */
function numberedGroups(dep: DependencyGraph): Map<string, Group> {
  return new Map(groupLabels(dep).map((label, i) => [label, dep.groups[i]!] as const).filter(([label]) => label.includes(' #')));
}

/** The groups a `keep` name keeps whole: every group its nodes read or write, or the numbered group it names. */
function groupsKeptBy(dep: DependencyGraph, name: string, numbered: Map<string, Group>): { groups: Group[]; named: string[] } {
  const group = numbered.get(name);
  if (group) return { groups: [group], named: [] };
  const named = nodesNamed(dep.graph, name);
  return { groups: dep.groups.filter((g) => g.nodes.some((n) => named.includes(n))), named };
}

function fixedRatios(dep: DependencyGraph, options: StructuredOptions): Map<number, number> {
  const fixed = new Map<number, number>();
  const labelled = numberedGroups(dep);
  for (const name of [...(options.keep ?? []), ...Object.keys(options.layerRatios ?? {})]) {
    if (nodesNamed(dep.graph, name).length === 0 && !labelled.has(name)) throw unknownName(dep.graph, name);
  }
  // A layer ratio applies to the channels the node writes (a conv's filters), not to those it reads.
  for (const [name, ratio] of Object.entries(options.layerRatios ?? {})) {
    if (!(ratio >= 0 && ratio < 1)) throw usageError(`ratio ${ratio} for '${name}' is out of range`, 'give a fraction in [0, 1)');
    const group = labelled.get(name);
    if (group) {
      fixed.set(group.id, ratio);
      continue;
    }
    const named = new Set(nodesNamed(dep.graph, name));
    const outputs = dep.graph.nodes.filter((n) => named.has(n.name)).flatMap((n) => n.outputs);
    for (const g of dep.groups) if (outputs.some((v) => g.members.has(v))) fixed.set(g.id, ratio);
  }
  for (const name of options.keep ?? []) for (const g of groupsKeptBy(dep, name, labelled).groups) fixed.set(g.id, 0);
  return fixed;
}

function outOfReach(what: string, reached: number, o: PlanOptions, dep: DependencyGraph): never {
  const fixes = ['raise the target', `raise ${option('--max-ratio')}`, ...(o.roundTo > 1 ? [`lower ${option('--round-to')} (now ${o.roundTo})`] : [])];
  const knobs = `${fixes.slice(0, -1).join(', ')} or ${fixes[fixes.length - 1]}`;
  const b = dep.boundaries[0];
  // Boundaries first where they exist: no knob prunes through them (GroupNorm's Reshapes, say).
  throw usageError(
    `${what} is out of reach: pruning every group by up to ${Math.round(o.maxRatio * 100)} % keeps ${(reached * 100).toFixed(1)} % of the MACs`,
    b ? `${dep.boundaries.length} boundary node(s) keep their channels, e.g. '${b.node}' (${b.opType}): ${b.reason} (slim prune --analyze lists them all); else ${knobs}` : knobs,
  );
}

/** The smallest p in [0, maxRatio] whose result satisfies `ok` (results are monotone in p). */
function bisect<R>(evaluate: (p: number) => R, maxRatio: number, ok: (r: R) => boolean, onStep: (p: number, r: R) => void, fail: () => never): R {
  const at = (p: number): R => {
    const r = evaluate(p);
    onStep(p, r);
    return r;
  };
  const zero = at(0);
  if (ok(zero)) return zero;
  let hi = maxRatio;
  let best = at(hi);
  if (!ok(best)) fail();
  let lo = 0;
  while (hi - lo > 1e-3) {
    const mid = (lo + hi) / 2;
    const r = at(mid);
    if (ok(r)) {
      hi = mid;
      best = r;
    } else lo = mid;
  }
  return best;
}

/** bisect for measured targets: fewer, costlier steps; undefined when even maxRatio misses. */
async function bisectAsync<R>(evaluate: (p: number) => Promise<R>, maxRatio: number, ok: (r: R) => boolean): Promise<R | undefined> {
  let hi = maxRatio;
  let best = await evaluate(hi);
  if (!ok(best)) return undefined;
  let lo = 0;
  for (let i = 0; i < 7; i++) {
    const mid = (lo + hi) / 2;
    const r = await evaluate(mid);
    if (ok(r)) {
      hi = mid;
      best = r;
    } else lo = mid;
  }
  return best;
}

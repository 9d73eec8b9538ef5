/**
 * Pruning with training in the loop. Structured: prune a step of the way to the target, fine-tune,
 * repeat (each step scores channels on weights that recovered from the previous cut). Unstructured:
 * gradual magnitude pruning (Zhu & Gupta 2017) — sparsity rises along a cubic schedule, masks are
 * recomputed each epoch and hold pruned weights at zero while the rest train.
 */
import { usageError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import type { FineTuner } from './finetune.js';
import { pruneStructured, type StructuredOptions, type StructuredResult } from './structured.js';
import { pruneUnstructured, type UnstructuredOptions, type UnstructuredResult } from './unstructured.js';

export interface StepRecord {
  step: number;
  macs: number;
  sparsity?: number;
  testAccuracy?: number;
  seconds: number;
}

export interface IterativeOptions {
  tuner: FineTuner;
  /** Prune-and-fine-tune rounds; default 1. */
  steps?: number;
  /** Fine-tuning epochs in all (spread over the steps); 0 prunes in steps without training. */
  epochs: number;
  /** Distill from the unpruned model while fine-tuning. */
  distill?: boolean;
  /** Taylor importance: gradients are taken afresh before every step, over this many batches (default 16). */
  gradientBatches?: number;
  /** After each step, with the model so far (the CLI saves it, so a crash loses at most one step). */
  onStep?: (record: StepRecord, graph: Graph) => void | Promise<void>;
}

/**
 * Each group's channels before and after one cut to `options.target`, and the kept counts of step i of
 * K: an equal share of the cut per step (rounded up to the cut's rounding step), the last step exactly
 * the one-shot widths. Found without calibration: the widths depend on the scores and the MACs alone.
 */
async function widthSchedule(graph: Graph, options: StructuredOptions): Promise<{ roundTo: number; keptAt: (i: number, steps: number) => Map<string, number> }> {
  const { calibration: _measured, onStep: _said, ...search } = options;
  const oneShot = await pruneStructured(graph, search);
  return {
    roundTo: oneShot.roundTo,
    keptAt: (i, steps) => new Map(oneShot.groups.map((g) => {
      const before = g.channelsBefore / g.unit;
      const after = g.channelsAfter / g.unit;
      return [g.label, after + Math.ceil(((before - after) * (steps - i)) / steps)] as const;
    })),
  };
}

/** Epochs of step i (1-based) when `epochs` are spread over `steps`: the remainder goes to the last ones. */
export function epochsForStep(epochs: number, steps: number, i: number): number {
  return Math.floor((epochs * i) / steps) - Math.floor((epochs * (i - 1)) / steps);
}

export async function pruneStructuredIteratively(
  graph: Graph,
  options: StructuredOptions,
  loop: IterativeOptions,
): Promise<StructuredResult & { steps: StepRecord[]; testAccuracy?: number }> {
  const steps = loop.steps ?? 1;
  const { target } = options;
  if (!Number.isInteger(steps) || steps < 1) throw usageError(`steps must be a whole number ≥ 1, got ${steps}`);
  if (steps > 1 && target.kind === 'latency') {
    throw usageError('iterative pruning takes a MAC or channel-ratio target', 'use --target-macs or --ratio with --steps, or --steps 1');
  }
  const records: StepRecord[] = [];
  let current = graph;
  let first: StructuredResult | undefined;
  let last: StructuredResult | undefined;
  const untied = new Map<string, number>();
  const uncompensated = new Set<string>();
  const renormalized = new Set<string>();
  let accuracy: number | undefined;
  // The widths one cut would make, found once on the unpruned model: every step takes its share of each
  // group's cut toward them. (Each step searching its own target re-rounded at every step: narrow groups
  // never lost a channel and the wide ones took the whole cut — 2.7× fewer parameters at the same MACs,
  // and --ratio 0.5 in 3 steps removed 20 %.)
  const firstGradients = options.importance === 'taylor' ? await loop.tuner.gradients(current, { batches: loop.gradientBatches ?? 16 }) : undefined;
  const schedule = steps > 1 ? await widthSchedule(graph, { ...options, ...(firstGradients ? { gradients: firstGradients } : {}) }) : undefined;
  for (let i = 1; i <= steps; i++) {
    const start = performance.now();
    const gradients = i === 1 ? firstGradients : options.importance === 'taylor' ? await loop.tuner.gradients(current, { batches: loop.gradientBatches ?? 16 }) : undefined;
    const stepTarget: StructuredOptions = schedule ? { ...options, roundTo: schedule.roundTo, keptByGroup: schedule.keptAt(i, steps) } : options;
    last = await pruneStructured(current, { ...stepTarget, ...(gradients ? { gradients } : {}) });
    first ??= last;
    for (const u of last.untied) untied.set(u.weight, Math.max(untied.get(u.weight) ?? 0, u.copies));
    for (const node of last.uncompensated) uncompensated.add(node);
    for (const node of last.renormalized) renormalized.add(node);
    current = last.graph;
    const epochs = epochsForStep(loop.epochs, steps, i);
    if (epochs > 0) {
      const tuned = await loop.tuner.finetune(current, { epochs, ...(loop.distill ? { teacher: graph } : {}) });
      current = tuned.graph;
      accuracy = tuned.testAccuracy;
    }
    const record: StepRecord = { step: i, macs: last.macsAfter, ...(accuracy !== undefined ? { testAccuracy: accuracy } : {}), seconds: (performance.now() - start) / 1000 };
    records.push(record);
    await loop.onStep?.(record, current);
  }
  return {
    ...last!,
    graph: current,
    macsBefore: first!.macsBefore,
    // Group channel counts before: from the first step; after: from the last.
    groups: last!.groups.map((g) => ({ ...g, channelsBefore: first!.groups.find((f) => f.label === g.label)?.channelsBefore ?? g.channelsBefore })),
    steps: records,
    untied: [...untied].map(([weight, copies]) => ({ weight, copies })),
    uncompensated: [...uncompensated],
    renormalized: [...renormalized],
    ...(accuracy !== undefined ? { testAccuracy: accuracy } : {}),
  };
}

/** Sparsity at epoch e (1-based) of `epochs`: cubic ramp over the first 3/4 of them, then flat. */
export function gradualSparsity(final: number, epoch: number, epochs: number): number {
  const ramp = Math.max(1, Math.ceil(epochs * 0.75));
  const t = Math.min(1, epoch / ramp);
  return final * (1 - (1 - t) ** 3);
}

export async function pruneUnstructuredGradually(
  graph: Graph,
  options: UnstructuredOptions,
  loop: IterativeOptions,
): Promise<UnstructuredResult & { steps: StepRecord[]; testAccuracy?: number }> {
  if (options.nm || loop.epochs < 1) {
    // N:M has no schedule (the pattern is all or nothing); without epochs there is nothing to spread.
    const pruned = pruneUnstructured(graph, options);
    if (loop.epochs < 1) return { ...pruned, steps: [] };
    const tuned = await loop.tuner.finetune(pruned.graph, { epochs: loop.epochs, masks: pruned.masks, ...(loop.distill ? { teacher: graph } : {}) });
    const record: StepRecord = { step: 1, macs: 0, sparsity: pruned.sparsity, ...(tuned.testAccuracy !== undefined ? { testAccuracy: tuned.testAccuracy } : {}), seconds: tuned.seconds };
    await loop.onStep?.(record, tuned.graph);
    return { ...pruned, graph: tuned.graph, steps: [record], ...(tuned.testAccuracy !== undefined ? { testAccuracy: tuned.testAccuracy } : {}) };
  }
  const records: StepRecord[] = [];
  let current = graph;
  let result: UnstructuredResult | undefined;
  let accuracy: number | undefined;
  for (let e = 1; e <= loop.epochs; e++) {
    const start = performance.now();
    const sparsity = gradualSparsity(options.sparsity ?? 0, e, loop.epochs);
    result = pruneUnstructured(current, { ...options, sparsity });
    const tuned = await loop.tuner.finetune(result.graph, { epochs: 1, masks: result.masks, ...(loop.distill ? { teacher: graph } : {}) });
    current = tuned.graph;
    accuracy = tuned.testAccuracy;
    const record: StepRecord = { step: e, macs: 0, sparsity, ...(accuracy !== undefined ? { testAccuracy: accuracy } : {}), seconds: (performance.now() - start) / 1000 };
    records.push(record);
    await loop.onStep?.(record, current);
  }
  // Masked weights stayed zero in training; the final masks describe the returned graph.
  return { ...result!, graph: current, steps: records, ...(accuracy !== undefined ? { testAccuracy: accuracy } : {}) };
}

/**
 * How a model was made, as slimkit records it in metadata_props: one JSON record per step (built from
 * the zoo, trained, distilled, pruned, quantized, quantization-aware trained) and `slimkit.history`, every
 * step in the order it was made. The order matters to a reader: a training record's test top-1 is the
 * trained model's, not the one a later pruning or quantization made of it.
 */
import type { Graph } from './graph.js';

export const STEP_KEYS = ['slimkit.zoo', 'slimkit.training', 'slimkit.distillation', 'slimkit.pruning', 'slimkit.quantization', 'slimkit.qat'] as const;
export type StepKey = (typeof STEP_KEYS)[number];

/**
 * Every step in the order it was made: a JSON array of {"step": key, ...record}. A step made twice (a
 * fine-tune after pruning) is listed twice; the record under its own key is the latest.
 */
export const HISTORY_KEY = 'slimkit.history';

export interface StepRecord {
  key: StepKey;
  /** The record as written; an unreadable one is {} (a reader should still see that the step happened). */
  record: Record<string, unknown>;
}

/** `metadata` with `record` under `key`, and the step added to the end of the history. */
export function withStepRecord(metadata: Readonly<Record<string, string>>, key: StepKey, record: object): Record<string, string> {
  const history = [...modelSteps(metadata), { key, record: { ...record } as Record<string, unknown> }];
  return { ...metadata, [key]: JSON.stringify(record), [HISTORY_KEY]: JSON.stringify(stepsAsJson(history)) };
}

/** Steps as the history and `slim info --json` write them: `step` names the record (zoo, training, …), the rest is the record. */
export function stepsAsJson(steps: readonly StepRecord[]): Record<string, unknown>[] {
  return steps.map(({ key, record }) => ({ step: key.replace(/^slimkit\./, ''), ...record }));
}

/** `graph` with `record` under `key`, last in its history. */
export function withStep(graph: Graph, key: StepKey, record: object): Graph {
  return { ...graph, metadata: withStepRecord(graph.metadata, key, record) };
}

/**
 * `graph` with `extra` added to its last `key` step (under the key and in the history): what was measured
 * of the step's model once it was written, e.g. the int8 top-1 `slim quantize --eval` scored. Unchanged
 * when the model records no such step.
 */
export function withLastStepAmended(graph: Graph, key: StepKey, extra: object): Graph {
  const steps = modelSteps(graph.metadata);
  const at = steps.map((s) => s.key).lastIndexOf(key);
  if (at < 0) return graph;
  const record = { ...steps[at]!.record, ...extra };
  const history = steps.map((s, i) => (i === at ? { key, record } : s));
  return { ...graph, metadata: { ...graph.metadata, [key]: JSON.stringify(record), [HISTORY_KEY]: JSON.stringify(stepsAsJson(history)) } };
}

/**
 * The steps a model records, in the order they were made. The last of each kind reads the record under
 * its own key (a later pass may have amended it: the int8 layout re-laid for another CPU). Records
 * written before the history was kept (or by a tool that dropped it) come first, in the order slimkit's
 * commands run: zoo, training, distillation, pruning, quantization, QAT.
 */
export function modelSteps(metadata: Readonly<Record<string, string>>): StepRecord[] {
  const listed = recordedHistory(metadata);
  const unlisted = STEP_KEYS.filter((k) => metadata[k] !== undefined && !listed.some((s) => s.key === k));
  const steps = [...unlisted.map((key) => ({ key, record: {} })), ...listed];
  return steps.map((s, i) => {
    const last = !steps.slice(i + 1).some((later) => later.key === s.key);
    const current = metadata[s.key];
    return last && current !== undefined ? { key: s.key, record: parseRecord(current) } : s;
  });
}

function recordedHistory(metadata: Readonly<Record<string, string>>): StepRecord[] {
  const text = metadata[HISTORY_KEY];
  if (text === undefined) return [];
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return [];
    const { step, ...record } = entry as Record<string, unknown>;
    const key = `slimkit.${String(step)}`;
    return (STEP_KEYS as readonly string[]).includes(key) ? [{ key: key as StepKey, record }] : [];
  });
}

function parseRecord(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

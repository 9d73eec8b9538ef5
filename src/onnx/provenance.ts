/**
 * How a model was made, as slimkit records it in metadata_props: one JSON record per step (built from
 * the zoo, trained, distilled, pruned, quantized, quantization-aware trained) and `slimkit.history`, the
 * step keys in the order they were last written. The order matters to a reader: a training record's
 * test top-1 is the trained model's, not the one a later pruning or quantization made of it.
 */
import type { Graph } from './graph.js';

export const STEP_KEYS = ['slimkit.zoo', 'slimkit.training', 'slimkit.distillation', 'slimkit.pruning', 'slimkit.quantization', 'slimkit.qat'] as const;
export type StepKey = (typeof STEP_KEYS)[number];

/** The step keys in the order their records were last written (a JSON array of keys). */
export const HISTORY_KEY = 'slimkit.history';

export interface StepRecord {
  key: StepKey;
  /** The record as written; an unreadable one is {} (a reader should still see that the step happened). */
  record: Record<string, unknown>;
}

/** `metadata` with `record` under `key`, that step moved to the end of the history. */
export function withStepRecord(metadata: Readonly<Record<string, string>>, key: StepKey, record: object): Record<string, string> {
  const order = recordedOrder(metadata).filter((k) => k !== key && metadata[k] !== undefined);
  return { ...metadata, [key]: JSON.stringify(record), [HISTORY_KEY]: JSON.stringify([...order, key]) };
}

/** `graph` with `record` under `key`, last in its history. */
export function withStep(graph: Graph, key: StepKey, record: object): Graph {
  return { ...graph, metadata: withStepRecord(graph.metadata, key, record) };
}

/**
 * The steps a model records, in the order they were made. Records written before the history was kept
 * (or by a tool that dropped it) follow in the order slimkit's commands run: zoo, training, distillation,
 * pruning, quantization, QAT.
 */
export function modelSteps(metadata: Readonly<Record<string, string>>): StepRecord[] {
  const present = STEP_KEYS.filter((k) => metadata[k] !== undefined);
  const listed = recordedOrder(metadata).filter((k) => present.includes(k));
  const order = [...listed, ...present.filter((k) => !listed.includes(k))];
  return order.map((key) => ({ key, record: parseRecord(metadata[key]!) }));
}

function recordedOrder(metadata: Readonly<Record<string, string>>): StepKey[] {
  const text = metadata[HISTORY_KEY];
  if (text === undefined) return [];
  try {
    const list: unknown = JSON.parse(text);
    if (!Array.isArray(list)) return [];
    return [...new Set(list.filter((k): k is StepKey => (STEP_KEYS as readonly unknown[]).includes(k)))];
  } catch {
    return [];
  }
}

function parseRecord(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

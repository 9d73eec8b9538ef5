/** What a stage executor gets and gives back. Executors are plain async functions, one file per kind. */
import type { Graph } from '../../onnx/graph.js';
import type { Progress } from '../../util/terminal.js';
import type { RunData } from '../data.js';
import type { StageResults } from '../manifest.js';
import type { Recipe } from '../recipe.js';
import type { ArtifactRef } from '../store.js';

/** A model of the run that later stages can start from. */
export interface Variant {
  id: string;
  kind: keyof StageResults;
  from?: string;
  model: ArtifactRef;
  trainable?: ArtifactRef;
}

export interface StageContext {
  recipe: Recipe;
  runDir: string;
  /** Scratch folder of this stage (training checkpoints): kept after a crash, removed on success. */
  workDir: string;
  device: 'cpu' | 'cuda';
  threads?: number;
  data: () => Promise<RunData>;
  /**
   * The graph of a variant: its trainable form when it has one and `trainable` is asked for; with
   * `batches`, for stages that feed batches, a model exported for one batch size has its batch freed.
   */
  graphOf: (id: string, form: 'model' | 'trainable', use?: { batches?: boolean; trains?: boolean }) => Promise<Graph>;
  variants: ReadonlyMap<string, Variant>;
  /** `slim` as a command line (the bench stage runs `slim bench` itself). */
  slimCommand: readonly string[];
  log: (line: string) => void;
  progress: (label: string, total: number, unit?: string) => Progress;
}

export interface StageOutput<K extends keyof StageResults> {
  /** The deployable model (BatchNormalization folded). */
  model?: Graph;
  /** The model before folding, when later stages may train it. */
  trainable?: Graph;
  result: StageResults[K];
  gpuSeconds: number;
}

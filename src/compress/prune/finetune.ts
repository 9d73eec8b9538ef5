/**
 * What pruning needs from training, as one small interface: fine-tune a (pruned or masked) graph, and
 * the loss gradients Taylor importance scores with. `engineFineTuner` implements it over slimkit's
 * LibTorch engine (src/engine); the engine is imported lazily, so pruning without training never loads
 * the native addon.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointMismatch } from '../../engine/resume.js';
import { batches } from '../../data/batches.js';
import { imageSizeOf, type ImageSet, type Normalization } from '../../data/types.js';
import type { AutocastName } from '../../engine/native.js';
import type { EpochRecord, TrainProgress } from '../../engine/train.js';
import type { Graph } from '../../onnx/graph.js';
import { makeTensor } from '../../onnx/tensor.js';
import { hasBatchNorm, withTrainingBatchNorm } from '../../engine/reinsert-batchnorm.js';
import { foldBatchNorm } from '../../passes/index.js';
import { normalizationOf } from '../../zoo/metadata.js';
import { freeImageSize, pinImageSize } from '../../onnx/image-input.js';

export interface FineTuneOptions {
  epochs: number;
  /** 0/1 per element by initializer name: masked weights stay zero through training (unstructured pruning). */
  masks?: ReadonlyMap<string, Float32Array>;
  /** Distill from this model (the unpruned one) while training. */
  teacher?: Graph;
}

export interface FineTuneResult {
  graph: Graph;
  /** Test top-1 after the last epoch, when the tuner evaluates. */
  testAccuracy?: number;
  seconds: number;
  /** Its epochs, when the tuner trains in the engine (a run report draws them). */
  history?: EpochRecord[];
  /** Test top-1 before its first step (not when it resumed from a checkpoint). */
  startAccuracy?: number;
}

export interface FineTuner {
  finetune(graph: Graph, options: FineTuneOptions): Promise<FineTuneResult>;
  /** ∂(mean cross-entropy)/∂initializer, summed over `batches` training batches. */
  gradients(graph: Graph, options: { batches: number }): Promise<Map<string, Float32Array>>;
}

export interface EngineTunerOptions {
  data: { train: ImageSet; test: ImageSet };
  device?: 'cpu' | 'cuda';
  /** Forward-pass autocast (the engine's default: bf16 on CUDA, none on CPU). */
  autocast?: AutocastName;
  /** Default 128. */
  batch?: number;
  /** Peak learning rate; default finetuneLr of the graph trained (fine-tuning, not training from scratch). */
  lr?: number;
  threads?: number;
  trainLimit?: number;
  testLimit?: number;
  seed?: number;
  normalization?: Normalization;
  /**
   * A model without BatchNormalization (a BN-folded export) is fine-tuned with BN re-inserted after its
   * Convs, initialised from calibration statistics so it starts as the same function, and folded again
   * afterwards (default true; false trains the folded weights directly).
   */
  reinsertBatchNorm?: boolean;
  /**
   * Checkpoint every epoch of the n-th fine-tuning into `<checkpointDir>/finetune-<n>` and resume from it:
   * pruning is deterministic, so a rerun after a crash reaches the same graphs and continues where the
   * killed run stopped (finished fine-tunings are read back, not redone).
   */
  checkpointDir?: string;
  /**
   * Append every fine-tuning's epochs to one JSON-lines log, as one run of `epochs` epochs in all: each
   * fine-tuning after the first is a phase (`finetune-<n>`) whose records count on from the ones before.
   */
  log?: { file: string; epochs: number };
  /** A fine-tuning continued from its checkpoint: after how many epochs. */
  onResumed?: (epochs: number) => void;
  /**
   * The graphs given here are a free-size model pinned to the data's height and width (pinForPruning):
   * each trains with them free again — the engine folds the shape computations that read them at the
   * data's size — and comes back pinned, so the model written still computes them and runs at every size.
   */
  freeImageSize?: boolean;
  /** A checkpoint that belonged to other cuts (or, in a recipe, other settings) was discarded (why). */
  onDiscarded?: (why: string) => void;
  /** A checkpoint of other settings is refused, not discarded (`slim prune --resume`); one of other cuts still starts over. */
  refuseChangedSettings?: boolean;
  /** The command's settings a checkpoint must share (TrainOptions.resumeKey), e.g. the input model file. */
  resumeKey?: Record<string, unknown>;
  /** The command, recorded in checkpoints (TrainOptions.command). */
  command?: string;
  /** The pruned model's test top-1 before its first fine-tuning step (TrainOptions.scoreStart). */
  onStartScored?: (top1: number) => void;
  /** After each fine-tuning epoch: its record (TrainOptions.onEpoch). */
  onEpoch?: (e: EpochRecord) => void;
  onProgress?: (p: Pick<TrainProgress, 'phase' | 'epoch' | 'epochs' | 'step' | 'stepsPerEpoch' | 'loss' | 'accuracy' | 'evaluated'>) => void;
}

/**
 * The default fine-tuning learning rate: 0.01 with BatchNormalization, 0.005 without. A BN-folded export
 * (what torch.onnx writes) has nothing that rescales its updates: on the PyTorch-trained ResNet18-CIFAR
 * (90.56 %) SGD at 0.02 took the loss from 0.17 to 4.8 in four steps. The tuner therefore re-inserts BN
 * (reinsertBatchNorm, the default) and trains at 0.01: pruned to 50 % MACs in 2 cuts with 3 CPU epochs it
 * ended at 89.20 %, against 87.29 % for the folded weights at 0.005 (their best of 0.002–0.02).
 */
export function finetuneLr(graph: Graph): number {
  return hasBatchNorm(graph) ? 0.01 : 0.005;
}

export function engineFineTuner(o: EngineTunerOptions): FineTuner {
  const normalizationFor = (graph: Graph): Normalization => o.normalization ?? normalizationOf(graph);
  let calls = 0;
  const logged = { epochs: 0, steps: 0 };
  return {
    async finetune(graph, f) {
      const call = ++calls;
      const checkpointDir = o.checkpointDir ? path.join(o.checkpointDir, `finetune-${call}`) : undefined;
      // One fine-tuning of all the epochs logs as a plain run; several as phases of one.
      const phased = o.log !== undefined && f.epochs < o.log.epochs;
      const logPhase = phased ? { name: `finetune-${call}`, epochsBefore: logged.epochs, stepsBefore: logged.steps, epochs: o.log!.epochs, last: logged.epochs + f.epochs >= o.log!.epochs } : undefined;
      const { trainModel } = await import('../../engine/train.js');
      const input = o.freeImageSize ? freeImageSize(graph) : graph;
      const start = o.reinsertBatchNorm === false
        ? { graph: input, inserted: 0 }
        : await withTrainingBatchNorm(input, o.data.train, { normalization: normalizationFor(graph), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) });
      const trained = start.graph;
      const train = (resume: boolean): ReturnType<typeof trainModel> => trainModel({
        graph: trained,
        origin: graph,
        data: o.data,
        epochs: f.epochs,
        batch: o.batch ?? 128,
        lr: o.lr ?? finetuneLr(trained),
        schedule: 'cosine',
        normalization: normalizationFor(graph),
        ...(o.device ? { device: o.device } : {}),
        ...(o.autocast ? { autocast: o.autocast } : {}),
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.trainLimit !== undefined ? { trainLimit: o.trainLimit } : {}),
        ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(f.masks ? { masks: f.masks } : {}),
        ...(f.teacher ? { teacher: { graph: f.teacher } } : {}),
        ...(o.onProgress ? { onProgress: (p) => o.onProgress!(p) } : {}),
        ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}),
        ...(checkpointDir ? { checkpointDir, resume } : {}),
        ...(o.resumeKey ? { resumeKey: o.resumeKey } : {}),
        ...(o.command ? { command: o.command } : {}),
        // The pruned model before fine-tuning: what the fine-tune recovers from.
        scoreStart: true,
        ...(o.onStartScored ? { onStartScored: o.onStartScored } : {}),
        ...(o.onResumed ? { onResumed: o.onResumed } : {}),
        ...(o.log ? { log: o.log.file } : {}),
        ...(logPhase ? { logPhase } : {}),
      });
      let r;
      try {
        r = await train(true);
      } catch (e) {
        // A checkpoint of other cuts (another machine's rounding, gradients of a Taylor ranking on CUDA)
        // is thrown away and the fine-tuning starts over, rather than failing every rerun; in a recipe so
        // is one of other settings (an edited option: the stage's own scratch). `slim prune --resume`
        // refuses changed settings: the checkpoint is the user's, and a typo must not destroy it.
        if (!checkpointDir || !o.onDiscarded || !(e instanceof CheckpointMismatch)) throw e;
        if (o.refuseChangedSettings && !e.keys.every((k) => k === 'startWeights')) throw e;
        o.onDiscarded?.(e.parts.problem);
        await rm(checkpointDir, { recursive: true, force: true });
        r = await train(false);
      }
      logged.epochs += f.epochs;
      logged.steps += r.steps;
      const tuned = start.inserted > 0 ? foldBatchNorm(r.graph) : r.graph;
      return { graph: o.freeImageSize ? pinImageSize(tuned, imageSizeOf(o.data.train)) : tuned, testAccuracy: r.testAccuracy, seconds: r.seconds, history: r.history, ...(r.startAccuracy !== undefined ? { startAccuracy: r.startAccuracy } : {}) };
    },

    async gradients(graph, { batches: count }) {
      const { EnginePlan } = await import('../../engine/plan.js');
      const plan = EnginePlan.create(graph, { imageSize: imageSizeOf(o.data.train), ...(o.device ? { device: o.device } : {}), ...(o.threads !== undefined ? { threads: o.threads } : {}) });
      // The plan backpropagates from its first output: the logits, or the probabilities of a final Softmax.
      const probabilities = plan.compiled.outputs[0]?.name !== plan.compiled.logits.name;
      const sums = new Map<string, Float32Array>();
      let done = 0;
      for (const b of batches(o.data.train, { batchSize: o.batch ?? 128, normalization: normalizationFor(graph), shuffleSeed: o.seed ?? 0, dropLast: true })) {
        if (done++ >= count) break;
        const images = makeTensor('float32', b.dims, b.images);
        const [out] = plan.forward(images);
        plan.probe(images, crossEntropyGrad(out!.data, b.labels, probabilities), false);
        for (const name of plan.paramNames) {
          const g = plan.grad(name);
          if (!g) continue;
          const sum = sums.get(name);
          if (sum) for (let i = 0; i < g.length; i++) sum[i]! += g[i]!;
          else sums.set(name, Float32Array.from(g));
        }
      }
      return sums;
    },
  };
}

/**
 * d(mean cross-entropy)/d(output) for a batch: softmax(logits) − onehot(label), over the batch size; for
 * probability outputs (a final Softmax), −1/(B·p_label) at the label and 0 elsewhere.
 */
export function crossEntropyGrad(output: Float32Array, labels: ArrayLike<number>, probabilities: boolean): Float32Array {
  const batch = labels.length;
  const classes = output.length / batch;
  const grad = new Float32Array(output.length);
  for (let b = 0; b < batch; b++) {
    const row = output.subarray(b * classes, (b + 1) * classes);
    const label = labels[b]!;
    if (probabilities) {
      grad[b * classes + label] = -1 / (batch * Math.max(row[label]!, 1e-12));
      continue;
    }
    const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    for (let c = 0; c < classes; c++) grad[b * classes + c] = (Math.exp(row[c]! - max) / sum - (c === label ? 1 : 0)) / batch;
  }
  return grad;
}

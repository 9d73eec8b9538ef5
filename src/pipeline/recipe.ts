/**
 * The recipe: one YAML file that names the data, the starting model and the stages (train → distill →
 * prune → fine-tune → quantize → bench → deploy) of a run. These zod schemas are the single source of
 * truth for what a recipe may say; `parse.ts` turns their issues into errors that point at the line.
 *
 * Every stage is a one-key map, `- <kind>: { id?, from?, ...options }`. A stage that makes a model is a
 * *variant* of the run; `from` names the variant it starts from (default: the one made just before).
 */
import type { ResizeMode } from '../data/image-folder.js';
import { z } from 'zod';
import { ZOO } from '../zoo/index.js';
import { TARGETS } from '../deploy/config.js';
import { BENCH_TARGETS } from '../runtime/benchmark-web.js';
import { CALIBRATION_METHODS } from '../compress/quantize/types.js';
import { QAT_DEFAULTS } from '../compress/qat/defaults.js';
import { IMPORTANCE_NAMES } from '../compress/prune/importance.js';

export const STAGE_KINDS = ['train', 'distill', 'prune', 'finetune', 'quantize', 'bench', 'deploy'] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

/** Stages whose output is a model (a variant of the run). */
export const MODEL_STAGES: ReadonlySet<StageKind> = new Set(['train', 'distill', 'prune', 'finetune', 'quantize']);

/** What each field means, shown as the "what to do" half of a validation error. */
export const FIELD_HELP: Readonly<Record<string, string>> = {
  name: "a folder-safe run name (letters, digits, '.', '_', '-'); the run goes to runs/<name>",
  description: 'free text shown at the top of the report',
  seed: 'a whole number ≥ 0',
  device: "'cpu' or 'cuda'",
  threads: 'CPU threads for training and ONNX Runtime, a whole number ≥ 1',
  gpu_price_per_hour: 'price of one GPU-hour for the cost column, a number ≥ 0',
  dataset: "'cifar10', or a folder with train/ and test/ subfolders of class folders",
  dir: 'the folder with the CIFAR-10 binary files (default: --data-dir, $SLIM_DATA_DIR, else a download; `slim demo` also looks in ../shared/data/cifar10)',
  train_per_class: 'training images per class, drawn at random (seeded): a whole number ≥ 1; leave it out for the whole split',
  test_limit: 'evaluate on N test images: CIFAR-10\'s first N (the images `slim bench --data cifar10 --limit N` uses), a folder\'s N taken across its classes',
  resize: "how a folder's images are brought to the model's input: shorter-side (the shorter side to the input, then the centre; default), N (the shorter side to N, then the centre: torchvision's Resize(256) + CenterCrop(224)) or stretch; recorded in every model of the run, so deploy resizes as it trained",
  new_head: "true: a fresh classifier for the data's classes (transfer learning from a model trained on others, e.g. ImageNet's 1,000)",
  freeze_backbone: 'true: train only the classifier; every other layer keeps its weights, BatchNormalization its running statistics',
  freeze: "layers to keep as they are while the rest trains: PyTorch module names or globs, e.g. [conv1, layer1] or ['layer1.*'] (`slim info MODEL --layers` lists them)",
  image_size: "a zoo model's [height, width] (default: its stem's, 32×32 for CIFAR stems), or a model file's whose height and width are free (default: what it records, else 32×32): an image folder's images are resized to it, and every model of the run records it",
  mean: "a model file's per-channel mean of pixels scaled to 0..1, [r, g, b] or [v]: what it was trained with (recorded in the run's models); give std too",
  std: "a model file's per-channel std, [r, g, b] or [v]; give mean too",
  zoo: `one of ${Object.keys(ZOO).join(', ')}`,
  file: 'an .onnx file, relative to the recipe',
  width: 'channel width multiplier, a number > 0 (0.25 = a quarter of the channels)',
  classes: 'number of output classes, a whole number ≥ 2 (default: the data set’s)',
  channels: 'image channels of a zoo model: 3 (RGB, default) or 1 (grayscale: image folders are read as luma)',
  id: "a name for the stage and its model: letters, digits, '.', '_', '-', starting with a letter or digit (default: the stage's kind; a deploy stage's target)",
  from: 'the id of an earlier stage that makes a model',
  teacher: 'the id of an earlier stage whose model teaches this one',
  student: 'the model to train: { zoo: NAME, width: W } (default: the model of `from`)',
  epochs: 'passes over the training images, a whole number ≥ 1',
  batch: 'images per step, a whole number ≥ 1',
  lr: 'peak learning rate, a number > 0',
  optimizer: "'sgd' or 'adamw'",
  momentum: 'SGD momentum in [0, 1)',
  weight_decay: 'a number ≥ 0',
  schedule: "'onecycle', 'cosine' or 'constant'",
  warmup: 'a fraction of all steps in [0, 1)',
  label_smoothing: 'a number in [0, 1)',
  augment: "true or 'crop' (random crop of the image padded by 4, + flip), 'resized-crop' (RandomResizedCrop + flip, for photos) or false",
  eval_limit: 'test images scored after every epoch (or by the max_drop search), a whole number ≥ 1',
  autocast: "'none' or 'bf16' ('fp16' is refused: the engine has no loss scaling)",
  channels_last: 'true or false (CUDA memory layout)',
  temperature: 'distillation temperature, a number > 0 and ≤ 100',
  alpha: "weight of the labels' cross-entropy, in [0, 1] (1 − alpha weighs the teacher's soft targets; 1 trains on the labels alone)",
  structured: 'remove whole channels: { target_macs: 0.5 } or { ratio: 0.3 }',
  unstructured: "zero single weights: { sparsity: 0.8 } or { nm: '2:4' }",
  target_macs: 'the fraction of MACs to keep, in (0, 1]',
  ratio: 'the fraction of channels to remove, in [0, 1)',
  sparsity: 'the fraction of weights to zero, in [0, 1)',
  nm: "keep N of every M weights, written 'N:M' with 1 ≤ N < M (e.g. '2:4')",
  importance: `one of ${IMPORTANCE_NAMES.join(', ')}`,
  scope: "'layer' or 'global'",
  round_to: "kept channel counts are multiples of this: a whole number ≥ 1, or 'auto'",
  max_ratio: 'the most of any channel group that may go, in (0, 1)',
  keep: 'a list of node names to leave as they are',
  compensate: 'true: replace removed channels by their mean activation (needs no training); false: drop them',
  renormalize: "true: give each Conv after a cut its output channels' calibrated mean and spread back (as re-estimating BatchNorm statistics does); false: leave them as cut",
  calib_samples: 'images to measure mean activations on, a whole number ≥ 1',
  finetune: 'train after pruning: { epochs: 2, lr: 0.01 }',
  steps: 'prune-and-fine-tune rounds, a whole number ≥ 1',
  distill: 'true: fine-tune against the unpruned model as a teacher',
  distill_from: 'the id of an earlier stage whose model teaches this one while it trains',
  mode: "'static' (int8, calibrated), 'dynamic', 'fp16' or 'fp16-weights'",
  method: `one of ${CALIBRATION_METHODS.join(', ')}, or auto (build all four, keep the one whose outputs match fp32 best on held-out training images)`,
  percentile: 'share of values kept inside the range, in percent (0, 100]',
  samples: 'calibration images, a whole number ≥ 1',
  per_tensor: 'true: one weight scale per tensor instead of per channel',
  activation_type: "'uint8' (asymmetric) or 'int8' (symmetric)",
  reduce_range: 'true: 7-bit weights for CPUs without VNNI',
  bias_correction: 'true or false',
  equalize: 'true: cross-layer equalization before calibration',
  keep_first: 'true: keep the first weighted layer in float',
  keep_last: 'true: keep the last weighted layer in float',
  exclude: 'a list of node names to keep in float',
  max_drop: 'largest top-1 drop allowed, in points (> 0): the most sensitive layers stay float until it holds on every other test image; the drop on the others is recorded (held_out)',
  sensitivity: 'true: measure every layer’s quantization sensitivity for the report',
  qat: 'quantization-aware training after calibration: { epochs: 2 } (lr: 0.001 by default; QAT starts from a trained model)',
  cpu: "the CPU the int8 Conv weights are laid out for: 'auto' ('amx' on a CPU with AMX, else 'generic': it never picks 'avx2', for the model usually runs on another CPU), 'amx' (Intel AMX-INT8), 'generic' or 'avx2' (x64 without VNNI: uint8 weights; with mode: dynamic, its MatMul/Gemm weights too)",
  learnable_scales: 'true: QAT learns the quantization scales too (LSQ)',
  variants: 'a list of stage ids whose models are benchmarked (default: every model of the run)',
  runs: 'timed runs of one image per model, a whole number ≥ 50 (below 100, p99 is the slowest run)',
  warmup_runs: 'untimed runs first, a whole number ≥ 0',
  variant: 'the id of the stage whose model is deployed (default: the last model)',
  target: `deploy: one of ${TARGETS.join(', ')}; bench: 'host' (onnxruntime-node on this machine, the default) or 'web' (onnxruntime-web's WebAssembly in headless Chromium, as the web bundle runs)`,
};

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const posInt = z.number().int().min(1);
const nonNegInt = z.number().int().min(0);
const positive = z.number().gt(0);
const unitOpen = z.number().min(0).lt(1);
const stageId = z.string().regex(ID_PATTERN);

const channels = z.union([z.literal(1), z.literal(3)]);

const imageSize = z.tuple([z.number().int().min(1), z.number().int().min(1)]);

const ZooModel = z.strictObject({
  zoo: z.enum(Object.keys(ZOO) as [keyof typeof ZOO, ...(keyof typeof ZOO)[]]),
  width: positive.default(1),
  classes: z.number().int().min(2).optional(),
  seed: nonNegInt.optional(),
  channels: channels.optional(),
  image_size: imageSize.optional(),
});

/** The starting model: a zoo architecture (trained by a later stage) or an ONNX file (a variant itself). */
const ModelSchema = z
  .strictObject({
    zoo: ZooModel.shape.zoo.optional(),
    file: z.string().min(1).optional(),
    width: positive.optional(),
    classes: z.number().int().min(2).optional(),
    seed: nonNegInt.optional(),
    channels: channels.optional(),
    image_size: imageSize.optional(),
    id: stageId.optional(),
    mean: z.array(z.number().min(0, 'a mean of pixels scaled to 0..1: from 0 to 1').max(1, 'a mean of pixels scaled to 0..1, from 0 to 1 (in 0..255 units? divide by 255, and std too)')).min(1).max(3).optional(),
    std: z.array(positive.max(1, 'a standard deviation of pixels scaled to 0..1, at most 1 (in 0..255 units? divide by 255, and mean too)')).min(1).max(3).optional(),
  })
  .superRefine((m, ctx) => {
    if (Boolean(m.zoo) === Boolean(m.file)) ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of `zoo: NAME` or `file: MODEL.onnx`' });
    if ((m.mean === undefined) !== (m.std === undefined)) ctx.addIssue({ code: 'custom', path: [m.mean ? 'mean' : 'std'], message: `give mean and std together (torchvision's ImageNet models: mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225])` });
    if (m.zoo && m.mean !== undefined) ctx.addIssue({ code: 'custom', path: ['mean'], message: 'mean and std describe a model file; a zoo model is trained with the statistics it records' });
    if (m.file) {
      // image_size too, for a file with a free height and width: checked against the file when it is read.
      for (const key of ['width', 'classes', 'seed', 'channels'] as const) {
        if (m[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to zoo models, not to a model file` });
      }
    } else if (m.id !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'id names a model file; a zoo model becomes a variant only once a stage trains it' });
    }
  });

const DataSchema = z.strictObject({
  dataset: z.string().min(1).default('cifar10'),
  dir: z.string().min(1).optional(),
  train_per_class: posInt.optional(),
  test_limit: posInt.optional(),
  resize: z.union([z.enum(['shorter-side', 'stretch']), posInt]).optional(),
});

const common = {
  id: stageId.optional(),
  from: stageId.optional(),
};

const trainingFields = {
  epochs: posInt,
  batch: posInt.default(128),
  lr: positive.optional(),
  optimizer: z.enum(['sgd', 'adamw']).default('sgd'),
  momentum: unitOpen.optional(),
  weight_decay: z.number().min(0).optional(),
  warmup: unitOpen.optional(),
  label_smoothing: unitOpen.default(0),
  augment: z.union([z.boolean(), z.enum(['crop', 'resized-crop'])]).default(true),
  eval_limit: posInt.optional(),
  device: z.enum(['cpu', 'cuda']).optional(),
  autocast: z.enum(['none', 'bf16']).optional(),
  channels_last: z.boolean().optional(),
};

export const TrainStage = z.strictObject({
  ...common,
  ...trainingFields,
  schedule: z.enum(['onecycle', 'cosine', 'constant']).default('onecycle'),
  // No defaults: a recipe without them keeps the stage key it had.
  new_head: z.boolean().optional(),
  freeze_backbone: z.boolean().optional(),
  freeze: z.array(z.string().min(1)).min(1).optional(),
});

/** Fine-tuning: training from a model that is already trained, with a gentler default schedule. */
export const FinetuneStage = z.strictObject({
  ...common,
  ...trainingFields,
  lr: positive.default(0.01),
  schedule: z.enum(['onecycle', 'cosine', 'constant']).default('cosine'),
  distill_from: stageId.optional(),
  temperature: positive.max(100).default(4),
  alpha: z.number().min(0).max(1).default(0.5),
  freeze: z.array(z.string().min(1)).min(1).optional(),
});

export const DistillStage = z
  .strictObject({
    ...common,
    ...trainingFields,
    schedule: z.enum(['onecycle', 'cosine', 'constant']).default('onecycle'),
    teacher: stageId,
    student: ZooModel.optional(),
    temperature: positive.max(100).default(4),
    alpha: z.number().min(0).max(1).default(0.5),
  })
  .superRefine((s, ctx) => {
    // A zoo student starts from its own weights: a `from` would be read by nothing.
    if (s.student && s.from !== undefined) ctx.addIssue({ code: 'custom', path: ['from'], message: 'is not read when the stage has a zoo `student` (it starts from its own weights): drop `from`, or drop `student` to train the model of `from` further' });
  });

const NM_PATTERN = /^(\d+):(\d+)$/;

export const PruneStage = z
  .strictObject({
    ...common,
    structured: z
      .strictObject({ target_macs: z.number().gt(0).max(1).optional(), ratio: unitOpen.optional() })
      .superRefine((s, ctx) => {
        if ((s.target_macs === undefined) === (s.ratio === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of target_macs or ratio' });
      })
      .optional(),
    unstructured: z
      .strictObject({ sparsity: unitOpen.optional(), nm: z.string().optional() })
      .superRefine((s, ctx) => {
        if ((s.sparsity === undefined) === (s.nm === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of sparsity or nm' });
        const m = s.nm === undefined ? null : NM_PATTERN.exec(s.nm);
        if (s.nm !== undefined && !(m && Number(m[1]) >= 1 && Number(m[1]) < Number(m[2]))) {
          ctx.addIssue({ code: 'custom', path: ['nm'], message: `'${s.nm}' is not an N:M pattern with 1 ≤ N < M` });
        }
      })
      .optional(),
    importance: z.enum(IMPORTANCE_NAMES as unknown as [string, ...string[]]).default('l2'),
    scope: z.enum(['layer', 'global']).default('layer'),
    round_to: z.union([posInt, z.literal('auto')]).default('auto'),
    max_ratio: z.number().gt(0).lt(1).default(0.9),
    keep: z.array(z.string().min(1)).optional(),
    compensate: z.boolean().default(true),
    renormalize: z.boolean().default(true),
    calib_samples: posInt.default(256),
    finetune: z
      .strictObject({
        epochs: posInt,
        steps: posInt.default(1),
        lr: positive.default(0.01),
        batch: posInt.default(128),
        distill: z.boolean().default(false),
        device: z.enum(['cpu', 'cuda']).optional(),
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    if (Boolean(p.structured) === Boolean(p.unstructured)) ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of `structured: {...}` or `unstructured: {...}`' });
    if (p.unstructured && p.importance !== 'l2' && p.importance !== 'l1') ctx.addIssue({ code: 'custom', path: ['importance'], message: 'unstructured pruning ranks weights by magnitude: l1 or l2' });
    // Every step fine-tunes at least an epoch: else some cuts follow each other with nothing between them.
    if (p.finetune && p.finetune.steps > p.finetune.epochs) ctx.addIssue({ code: 'custom', path: ['finetune', 'steps'], message: `${p.finetune.steps} steps over ${p.finetune.epochs} epoch(s) would cut ${p.finetune.steps - p.finetune.epochs} time(s) with no fine-tuning after: give epochs ≥ steps` });
    if (p.importance === 'taylor' && !p.finetune) ctx.addIssue({ code: 'custom', path: ['importance'], message: 'taylor importance needs gradients: add `finetune: { epochs: N }`, or use l2' });
  });

/** Keys of a quantize stage that mean something in each mode besides static (which takes them all). */
const MODE_KEYS: Record<string, readonly string[]> = {
  dynamic: ['per_tensor', 'reduce_range', 'cpu', 'exclude'],
  fp16: [],
  'fp16-weights': [],
};
/** Calibration and int8 keys: written for a mode that ignores them, they would do nothing, silently. */
const STATIC_ONLY = ['method', 'percentile', 'samples', 'per_tensor', 'activation_type', 'reduce_range', 'bias_correction', 'equalize', 'keep_first', 'keep_last', 'exclude', 'max_drop', 'sensitivity', 'cpu', 'qat'];

const QuantizeFields = z
  .strictObject({
    ...common,
    mode: z.enum(['static', 'dynamic', 'fp16', 'fp16-weights']).default('static'),
    method: z.enum([...CALIBRATION_METHODS, 'auto'] as unknown as [string, ...string[]]).default('auto'),
    percentile: z.number().gt(0).max(100).default(99.999),
    samples: posInt.default(512),
    per_tensor: z.boolean().default(false),
    activation_type: z.enum(['uint8', 'int8']).default('uint8'),
    reduce_range: z.boolean().default(false),
    bias_correction: z.boolean().default(true),
    equalize: z.boolean().default(false),
    keep_first: z.boolean().default(false),
    keep_last: z.boolean().default(false),
    exclude: z.array(z.string().min(1)).default([]),
    max_drop: positive.optional(),
    eval_limit: posInt.default(2000),
    sensitivity: z.boolean().default(false),
    cpu: z.enum(['auto', 'amx', 'generic', 'avx2']).default('auto'),
    qat: z
      .strictObject({
        epochs: posInt,
        lr: positive.default(QAT_DEFAULTS.lr),
        batch: posInt.default(QAT_DEFAULTS.batch),
        learnable_scales: z.boolean().default(false),
        distill: z.boolean().default(QAT_DEFAULTS.distill),
        eval_limit: posInt.optional(),
        device: z.enum(['cpu', 'cuda']).optional(),
      })
      .optional(),
  })
  ;

/** The stage as written (before defaults) decides what was set: a key the mode ignores is an error. */
export const QuantizeStage = z
  .unknown()
  .superRefine((raw, ctx) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
    const written = raw as Record<string, unknown>;
    const mode = typeof written['mode'] === 'string' ? written['mode'] : 'static';
    const applies = MODE_KEYS[mode];
    if (!applies) return; // an unknown mode: the schema says which there are
    for (const key of STATIC_ONLY) {
      if (written[key] !== undefined && !applies.includes(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to mode: static (calibrated int8), not ${mode}${applies.length ? ` (which takes ${applies.join(', ')})` : ''}: drop it` });
      }
    }
  })
  .pipe(QuantizeFields);

export const BenchStage = z.strictObject({
  id: stageId.optional(),
  variants: z.array(stageId).min(1).optional(),
  runs: z.number().int().min(50).default(100),
  warmup_runs: nonNegInt.default(10),
  batch: posInt.default(32),
  threads: posInt.optional(),
  // No default: a recipe without it keeps the stage key it had.
  target: z.enum(BENCH_TARGETS).optional(),
});

export const DeployStage = z.strictObject({
  id: stageId.optional(),
  variant: stageId.optional(),
  target: z.enum(TARGETS),
  name: z.string().regex(ID_PATTERN).optional(),
});

export const STAGE_SCHEMAS = {
  train: TrainStage,
  distill: DistillStage,
  prune: PruneStage,
  finetune: FinetuneStage,
  quantize: QuantizeStage,
  bench: BenchStage,
  deploy: DeployStage,
} as const satisfies Record<StageKind, z.ZodType>;

/** Everything but the stages, which parse.ts validates one by one (a one-key map each). */
export const RecipeHead = z.strictObject({
  name: z.string().regex(ID_PATTERN),
  description: z.string().optional(),
  seed: nonNegInt.default(0),
  device: z.enum(['cpu', 'cuda']).default('cpu'),
  threads: posInt.optional(),
  gpu_price_per_hour: z.number().min(0).default(2.5),
  data: DataSchema.default({ dataset: 'cifar10' }),
  model: ModelSchema,
  stages: z.array(z.unknown()).min(1),
});

export type TrainSpec = z.output<typeof TrainStage>;
export type FinetuneSpec = z.output<typeof FinetuneStage>;
export type DistillSpec = z.output<typeof DistillStage>;
export type PruneSpec = z.output<typeof PruneStage>;
export type QuantizeSpec = z.output<typeof QuantizeStage>;
export type BenchSpec = z.output<typeof BenchStage>;
export type DeploySpec = z.output<typeof DeployStage>;
export type ZooModelSpec = z.output<typeof ZooModel>;
export type DataSpec = z.output<typeof DataSchema>;
export type ModelSpec = z.output<typeof ModelSchema>;

export interface StageSpecs {
  train: TrainSpec;
  distill: DistillSpec;
  prune: PruneSpec;
  finetune: FinetuneSpec;
  quantize: QuantizeSpec;
  bench: BenchSpec;
  deploy: DeploySpec;
}

/** One stage after validation: its kind, its resolved id and input, its options with defaults. */
export type Stage = { [K in StageKind]: { kind: K; id: string; from?: string; spec: StageSpecs[K]; line: number } }[StageKind];

export interface Recipe {
  file: string;
  /** Folder the recipe's relative paths start from. */
  baseDir: string;
  name: string;
  description?: string;
  seed: number;
  device: 'cpu' | 'cuda';
  threads?: number;
  gpuPricePerHour: number;
  data: DataSpec;
  model: ModelSpec;
  stages: Stage[];
  /** The recipe text, as read (kept in the run manifest). */
  text: string;
}

/** The id of the implicit variant a recipe's `model: { file }` makes. */
export function sourceId(model: ModelSpec): string | undefined {
  return model.file ? (model.id ?? 'input') : undefined;
}

/** data.resize as a resize mode: a number is the shorter side before the centre crop. */
export function recipeResize(data: Recipe['data']): ResizeMode | undefined {
  return typeof data.resize === 'number' ? { shorterSide: data.resize } : data.resize;
}

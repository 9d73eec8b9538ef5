/**
 * A model's recorded steps (onnx/provenance.ts) in words, for `slim info`: one line per step, in the
 * order they were made. A top-1 recorded by a step is said to be of the model before any later step that
 * changed its weights, so a quantized model's file does not pass its float parent's top-1 off as its own.
 */
import { modelSteps, stepsAsJson, type StepKey, type StepRecord } from '../onnx/provenance.js';
import { formatCount, formatPercent } from './format.js';

/** The recorded steps as JSON, as the history holds them. */
export function stepsJson(metadata: Readonly<Record<string, string>>): Record<string, unknown>[] {
  return stepsAsJson(modelSteps(metadata));
}

/** "1. built from the zoo: …" — one line per recorded step, numbered in the order they were made. */
export function stepLines(metadata: Readonly<Record<string, string>>): string[] {
  const steps = modelSteps(metadata);
  return steps.map((s, i) => {
    const later = steps.slice(i + 1).map(weightChange).filter((w): w is string => w !== undefined);
    // Training a model an earlier step trained or pruned is fine-tuning it.
    const tuned = steps.slice(0, i).some((e) => e.key === 'slimkit.training' || e.key === 'slimkit.pruning');
    return `${i + 1}. ${describe(s, later.length ? ` (the model before ${inWords([...new Set(later)])})` : '', tuned)}`;
  });
}

/** "a", "a and b", "a, b and c". */
const inWords = (items: readonly string[]): string => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`);

/** What a later step did to the weights a recorded top-1 was measured on, or undefined when it left them. */
function weightChange({ key, record }: StepRecord): string | undefined {
  // Distillation is recorded with its training, which says it.
  const changes: Partial<Record<StepKey, string>> = { 'slimkit.training': 'further training', 'slimkit.pruning': 'pruning', 'slimkit.qat': 'quantization-aware training' };
  if (key === 'slimkit.quantization') return record['mode'] === 'fp16' || record['mode'] === 'fp16-weights' ? 'float16 conversion' : 'quantization';
  return changes[key];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** ": test top-1 66.85 % on cifar10/test" when the record has one. */
function top1Text(r: Record<string, unknown>, before: string, label = 'test top-1'): string {
  const top1 = num(r['test_top1']);
  if (top1 === undefined) return '';
  const from = num(r['top1_before']);
  const images = num(r['eval_images']);
  const on = [images !== undefined ? `${images.toLocaleString('en')} images` : undefined, text(r['data'])].filter(Boolean).join(' of ');
  return `: ${label} ${from !== undefined ? `${formatPercent(from)} → ` : ''}${formatPercent(top1)}${on ? ` on ${on}` : ''}${before}`;
}

/** "a new classifier head for 5 classes (replacing one for 10)": slim train --new-head. */
function headText(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const classes = num(o['classes']);
  const replaced = num(o['replaced']);
  return `a new classifier head${classes !== undefined ? ` for ${classes} classes` : ''}${replaced !== undefined ? ` (replacing one for ${replaced})` : ''}`;
}

/** "backbone frozen" or "conv1, layer1 frozen": slim train --freeze-backbone / --freeze. */
function frozenText(v: unknown): string | undefined {
  if (v === 'backbone') return 'backbone frozen';
  return Array.isArray(v) && v.length ? `${v.map(String).join(', ')} frozen` : undefined;
}

/** What `slim quantize --eval` scored of the written model (a step's `scored`), as ONNX Runtime runs it. */
interface Scored {
  top1: number;
  images?: number;
  data?: string;
  /**
   * An int8 model scored on an x64 CPU whose int8 sums saturate: its top-1 on exact int8 kernels (arm64,
   * VNNI or AMX x64, the browser), where `top1` is that CPU's.
   */
  exactKernels?: number;
}

function scoredOf(r: Record<string, unknown>): Scored | undefined {
  const s = r['scored'];
  if (typeof s !== 'object' || s === null) return undefined;
  const o = s as Record<string, unknown>;
  const top1 = num(o['top1']);
  if (top1 === undefined) return undefined;
  const images = num(o['images']);
  const data = text(o['data']);
  const exactKernels = num(o['top1_exact_kernels']);
  return { top1, ...(images !== undefined ? { images } : {}), ...(data ? { data } : {}), ...(exactKernels !== undefined ? { exactKernels } : {}) };
}

const onText = (images: number | undefined, data: string | undefined): string =>
  [images !== undefined ? `${images.toLocaleString('en')} images` : undefined, data].filter(Boolean).join(' of ');

function scoredText(r: Record<string, unknown>, before: string, lead = ': '): string {
  const s = scoredOf(r);
  if (!s) return '';
  const on = onText(s.images, s.data);
  const exact = s.exactKernels !== undefined ? `; ${formatPercent(s.exactKernels)} on exact int8 kernels: arm64, VNNI x64, the browser` : '';
  return `${lead}top-1 ${formatPercent(s.top1)}${on ? ` on ${on}` : ''} (ONNX Runtime${exact ? ' on an x64 CPU whose int8 sums saturate' : ''}${exact})${before}`;
}

/**
 * The top-1 a model's file records of itself: its last step's (training's or pruning's test top-1,
 * quantization's score once written), or none when the last step changed the weights without scoring
 * them — an earlier step's top-1 is of another model. For a bundle to state what it was measured at.
 */
export function ownTop1(metadata: Readonly<Record<string, string>>): Scored | undefined {
  const last = modelSteps(metadata).at(-1);
  if (!last) return undefined;
  const r = last.record;
  if (last.key === 'slimkit.quantization' || last.key === 'slimkit.qat') return scoredOf(r);
  if (last.key !== 'slimkit.training' && last.key !== 'slimkit.pruning') return undefined;
  const top1 = num(r['test_top1']);
  if (top1 === undefined) return undefined;
  const images = num(r['eval_images']);
  const data = text(r['data']);
  return { top1, ...(images !== undefined ? { images } : {}), ...(data ? { data } : {}) };
}

function describe({ key, record: r }: StepRecord, before: string, tuned: boolean): string {
  switch (key) {
    case 'slimkit.zoo': {
      const width = num(r['width']);
      return `built from the zoo: ${text(r['name']) ?? '?'}${width !== undefined && width !== 1 ? `, width ${width}` : ''}${num(r['classes']) !== undefined ? `, ${r['classes']} classes` : ''}${num(r['seed']) !== undefined ? `, seed ${r['seed']}` : ''}`;
    }
    case 'slimkit.training': {
      const epochs = num(r['epochs']);
      const how = [num(r['batch']) !== undefined ? `batch ${r['batch']}` : undefined, text(r['device']), headText(r['new_head']), frozenText(r['frozen'])].filter(Boolean).join(', ');
      const images = num(r['train_images']);
      const from = text(r['from']);
      return `${tuned || from ? 'fine-tuned' : 'trained'}${from ? ` from ${from}` : ''}${epochs !== undefined ? ` ${plural(epochs, 'epoch')}` : ''}${images !== undefined ? ` on ${images.toLocaleString('en')} images` : ''}${how ? ` (${how})` : ''}${top1Text(r, before)}`;
    }
    case 'slimkit.distillation': {
      const teacherTop1 = num(r['teacher_top1']);
      const settings = [num(r['temperature']) !== undefined ? `temperature ${r['temperature']}` : undefined, num(r['alpha']) !== undefined ? `alpha ${r['alpha']}` : undefined, r['cached_teacher'] === true ? 'cached teacher logits' : undefined].filter(Boolean);
      const images = num(r['eval_images']);
      return `distilled from ${text(r['teacher']) ?? 'a teacher'}${teacherTop1 !== undefined ? ` (teacher top-1 ${formatPercent(teacherTop1)}${images !== undefined ? ` on ${images.toLocaleString('en')} test images` : ''})` : ''}${settings.length ? `, ${settings.join(', ')}` : ''}`;
    }
    case 'slimkit.pruning':
      return `pruned ${pruningText(r)}${top1Text(r, before)}`;
    case 'slimkit.quantization':
      return `${quantizationText(r)}${scoredText(r, before)}`;
    case 'slimkit.qat': {
      const epochs = num(r['epochs']);
      const how = [r['learnable_scales'] === true ? 'learnable scales' : undefined, num(r['bn_live_epochs']) !== undefined ? `BatchNorm live for ${plural(r['bn_live_epochs'] as number, 'epoch')}` : undefined, r['distilled'] === true ? 'distilled' : undefined].filter(Boolean);
      const engine = num(r['engine_top1']);
      const images = num(r['eval_images']);
      return `quantization-aware training${epochs !== undefined ? ` for ${plural(epochs, 'epoch')}` : ''}${how.length ? ` (${how.join(', ')})` : ''}${engine !== undefined ? `: engine top-1 ${formatPercent(engine)}${images !== undefined ? ` on ${images.toLocaleString('en')} test images` : ''} (fake-quantized, as trained)` : ''}${scoredText(r, before, engine !== undefined ? '; ' : ': ')}`;
    }
  }
}

function pruningText(r: Record<string, unknown>): string {
  const target = r['target'] as { kind?: unknown; value?: unknown } | undefined;
  const flags: Record<string, string> = { ratio: '--ratio', macs: '--target-macs', latency: '--target-latency' };
  const asked = r['mode'] === 'structured'
    ? `structured${target && typeof target.kind === 'string' ? `, ${flags[target.kind] ?? target.kind} ${String(target.value)}` : ''}${text(r['importance']) ? `, ${String(r['importance'])} importance` : ''}`
    : `unstructured${text(r['nm']) ? `, ${String(r['nm'])} sparsity` : num(r['sparsity']) !== undefined ? `, ${formatPercent(r['sparsity'] as number, 1)} zeros` : ''}`;
  const from = [num(r['params_before']) !== undefined ? `${formatCount(r['params_before'] as number)} params` : undefined, num(r['macs_before']) !== undefined ? `${formatCount(r['macs_before'] as number)} MACs` : undefined].filter(Boolean);
  const finetune = num(r['finetune_epochs']);
  const renormalized = num(r['renormalized_layers']);
  const images = num(r['finetune_images']);
  return `(${asked})${from.length ? ` from ${from.join(', ')}` : ''}${renormalized ? `, ${plural(renormalized, 'layer')} after the cuts renormalized` : ''}${finetune ? `, fine-tuned ${plural(finetune, 'epoch')}${images !== undefined ? ` on ${images.toLocaleString('en')} images` : ''}${r['distilled'] === true ? ' distilling the unpruned model' : ''}` : ''}`;
}

function quantizationText(r: Record<string, unknown>): string {
  const mode = text(r['mode']) ?? 'static';
  if (mode === 'fp16') return 'converted to float16';
  if (mode === 'fp16-weights') return 'weights stored as float16 (computed in float32)';
  const cpu = text(r['cpu']) ? `, int8 layout for cpu ${String(r['cpu'])}` : '';
  if (mode === 'dynamic') return `quantized (dynamic int8): weights ${text(r['weights']) ?? '?'}${num(r['quantized_nodes']) !== undefined ? ` in ${plural(r['quantized_nodes'] as number, 'MatMul/Gemm layer')}` : ''}, activations at run time${cpu}`;
  const method = text(r['method']);
  const extras = [r['bias_correction'] === true ? 'bias correction' : undefined, r['equalize'] === true ? 'cross-layer equalization' : undefined].filter(Boolean);
  const images = num(r['calibration_images']);
  return `quantized (static int8${method ? `, ${method}${num(r['percentile']) !== undefined ? ` ${String(r['percentile'])}` : ''} calibration${images !== undefined ? ` on ${images.toLocaleString('en')} images` : ''}` : ''}): activations ${text(r['activations']) ?? '?'}, weights ${text(r['weights']) ?? '?'}${extras.length ? `, ${extras.join(', ')}` : ''}${cpu}`;
}

/**
 * slim.json: everything a bundle needs besides the model — preprocessing, labels, the model's I/O
 * names — written by `slim deploy`, read by the device code, `slim serve` and the web page. Plain data
 * with a hand-written check (no schema library on the device) that names the field that is wrong.
 */
import { inputError } from '../errors.js';

export const CONFIG_FILE = 'slim.json';
export const MODEL_FILE = 'model.onnx';

export const TARGETS = ['linux-arm64', 'linux-x64', 'web'] as const;
export type Target = (typeof TARGETS)[number];

export interface Preprocess {
  /** [height, width] the image is brought to. */
  size: [number, number];
  /** torchvision's Resize(shorter side) + CenterCrop, or a plain stretch. */
  /** 'shorter-side', 'stretch', or the shorter side scaled to a size before the centre crop (ResizeMode). */
  resize: 'shorter-side' | 'stretch' | { shorterSide: number };
  /** How the model takes the image: planar (PyTorch's) or channels-last (a model that preprocesses raw pixels). */
  layout: 'NCHW' | 'NHWC';
  /** RGB planes, or one luma plane (PIL's convert('L')) for a model that takes grayscale images. */
  channels: 'RGB' | 'grayscale';
  /**
   * x = (pixel · scale − mean[c]) / std[c], one entry per channel. A model that takes uint8 pixels gets
   * them as decoded, and its bundle says so: scale 1, mean 0, std 1 (the values are not used for it).
   */
  scale: number;
  mean: number[];
  std: number[];
}

export interface ModelConfig {
  file: string;
  sha256: string;
  bytes: number;
  input: string;
  inputType: 'float32' | 'uint8';
  /** The batch size the model fixes, when it fixes one (then at most that many images per run). */
  fixedBatch?: number;
  /**
   * The model's result for one image depends on the others run with it (dynamic quantization measures
   * one range over the batch): the server runs one image per run, so each answer is the image's own.
   */
  oneImagePerRun?: boolean;
  output: string;
  /** 'logits' get a softmax; 'probabilities' (the graph ends in Softmax) are reported as they are. */
  outputKind: 'logits' | 'probabilities';
  /** The top-1 the model's file records of itself as it is (report/provenance.ts ownTop1), when it does. */
  top1?: { value: number; images?: number; data?: string; exactKernels?: number };
  /** Why a top-1 the model records is not stated: the bundle feeds it other preprocessing than it was measured with. */
  top1Note?: string;
  /** How it was made: the steps its file records, in words (`slim info`'s lines). */
  made?: string[];
}

export interface BundleConfig {
  format: 'slimkit-bundle';
  formatVersion: 1;
  name: string;
  target: Target;
  model: ModelConfig;
  preprocess: Preprocess;
  /** Class names, index = output index. */
  labels: string[];
  createdBy: { slimkit: string; onnxruntime: string; sharp: string };
}

type Check = (ok: boolean, where: string, expected: string) => void;

/** Parse and check slim.json text. Errors name the file and the field. */
export function parseBundleConfig(text: string, file: string): BundleConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw inputError({ file, problem: `is not valid JSON (${(e as Error).message})`, fix: 'rewrite it with `slim deploy`' });
  }
  const check: Check = (ok, where, expected) => {
    if (!ok) throw inputError({ file, where, problem: `expected ${expected}`, fix: 'rewrite the bundle with `slim deploy`' });
  };
  const c = raw as BundleConfig;
  check(isObject(c) && c.format === 'slimkit-bundle', 'format', '"slimkit-bundle"');
  check(c.formatVersion === 1, 'formatVersion', '1 (this bundle was made by a newer slimkit)');
  check(typeof c.name === 'string', 'name', 'a string');
  check((TARGETS as readonly unknown[]).includes(c.target), 'target', TARGETS.join(' | '));
  const m = c.model;
  check(isObject(m), 'model', 'an object');
  check(typeof m.file === 'string' && isPlainFileName(m.file), 'model.file', 'a file name inside the bundle (no folders)');
  check(typeof m.sha256 === 'string' && /^[0-9a-f]{64}$/.test(m.sha256), 'model.sha256', 'a hex SHA-256');
  check(isCount(m.bytes), 'model.bytes', 'a byte count');
  check(typeof m.input === 'string' && typeof m.output === 'string', 'model.input/output', 'tensor names');
  check(m.inputType === 'float32' || m.inputType === 'uint8', 'model.inputType', '"float32" or "uint8"');
  check(m.fixedBatch === undefined || (isCount(m.fixedBatch) && m.fixedBatch >= 1), 'model.fixedBatch', 'a whole number ≥ 1');
  check(m.oneImagePerRun === undefined || typeof m.oneImagePerRun === 'boolean', 'model.oneImagePerRun', 'true or false');
  check(m.outputKind === 'logits' || m.outputKind === 'probabilities', 'model.outputKind', '"logits" or "probabilities"');
  check(m.top1 === undefined || (isObject(m.top1) && typeof m.top1.value === 'number' && m.top1.value >= 0 && m.top1.value <= 1 && (m.top1.exactKernels === undefined || (typeof m.top1.exactKernels === 'number' && m.top1.exactKernels >= 0 && m.top1.exactKernels <= 1))), 'model.top1', '{"value": a fraction, "images": N, "data": NAME, "exactKernels": a fraction}');
  check(m.top1Note === undefined || typeof m.top1Note === 'string', 'model.top1Note', 'a sentence');
  check(m.made === undefined || (Array.isArray(m.made) && m.made.every((l) => typeof l === 'string')), 'model.made', 'a list of lines');
  const p = c.preprocess;
  check(isObject(p), 'preprocess', 'an object');
  check(Array.isArray(p.size) && p.size.length === 2 && p.size.every((v) => isCount(v) && v >= 1), 'preprocess.size', '[height, width]');
  check(p.resize === 'shorter-side' || p.resize === 'stretch' || (isObject(p.resize) && isCount(p.resize.shorterSide) && p.resize.shorterSide >= Math.max(...(p.size as number[]))), 'preprocess.resize', '"shorter-side", "stretch" or {"shorterSide": N} with N at least the size');
  check((p.layout === 'NCHW' || p.layout === 'NHWC') && (p.channels === 'RGB' || p.channels === 'grayscale'), 'preprocess.layout/channels', '"NCHW" or "NHWC", and "RGB" or "grayscale"');
  check(typeof p.scale === 'number' && p.scale > 0, 'preprocess.scale', 'a positive number');
  const channels = channelCount(p);
  for (const k of ['mean', 'std'] as const) {
    check(Array.isArray(p[k]) && p[k].length === channels && p[k].every((v) => typeof v === 'number' && Number.isFinite(v)), `preprocess.${k}`, channels === 1 ? 'one number (grayscale)' : 'three numbers (RGB)');
  }
  check(p.std.every((v) => v !== 0), 'preprocess.std', 'non-zero values');
  check(Array.isArray(c.labels) && c.labels.length >= 1 && c.labels.every((l) => typeof l === 'string'), 'labels', 'a list of class names');
  check(isObject(c.createdBy), 'createdBy', 'an object');
  return c;
}

/** Planes per image: 3 for RGB, 1 for grayscale. */
export function channelCount(p: Pick<Preprocess, 'channels'>): 1 | 3 {
  return p.channels === 'grayscale' ? 1 : 3;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** A bare file name: no separators, no dot-dot, no control characters — it can only name a file in the bundle. */
export function isPlainFileName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= 255 && !/[/\\\u0000-\u001f]/.test(name) && name !== '.' && name !== '..';
}

/**
 * Recipe text → a validated Recipe, or one RecipeError listing every problem as
 * `file:line:col: path: what is wrong — what to do`. zod checks the values; this module finds each
 * issue's place in the YAML (the yaml package keeps source ranges) and adds the cross-stage checks
 * zod cannot see (unique ids, `from` naming an earlier model).
 */
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { SlimError } from '../errors.js';
import { describeBinaryFile } from '../onnx/io.js';
import { closest } from '../util/suggest.js';
import {
  FIELD_HELP,
  MODEL_STAGES,
  RecipeHead,
  sourceId,
  STAGE_KINDS,
  STAGE_SCHEMAS,
  type Recipe,
  type Stage,
  type StageKind,
} from './recipe.js';

export interface RecipeIssue {
  line: number;
  col: number;
  /** Where in the recipe, e.g. `stages[2].prune.structured.target_macs`. */
  path: string;
  problem: string;
  fix?: string;
}

const MAX_LISTED_ISSUES = 5;

export class RecipeError extends SlimError {
  readonly issues: RecipeIssue[];
  constructor(file: string, issues: RecipeIssue[]) {
    const one = (i: RecipeIssue): string => `${file}:${i.line}:${i.col}: ${i.path ? `${i.path}: ` : ''}${i.problem}${i.fix ? ` — ${i.fix}` : ''}`;
    // The first few: a file that is not a recipe at all would otherwise list thousands.
    const listed = issues.slice(0, MAX_LISTED_ISSUES).map(one).join('; ');
    const more = issues.length > MAX_LISTED_ISSUES ? `; … and ${issues.length - MAX_LISTED_ISSUES} more` : '';
    const problem = issues.length === 1 ? one(issues[0]!) : `${issues.length} problems in the recipe: ${listed}${more}`;
    super({ problem }, 'input');
    this.issues = issues;
  }
}

type PathKey = string | number;

export async function loadRecipe(file: string): Promise<Recipe> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'the recipe does not exist' : code === 'EISDIR' ? 'is a folder, not a recipe' : `cannot read the recipe (${code ?? (e as Error).message})`;
    throw new SlimError({ file, problem, fix: 'check the path (recipes/demo.yaml is an example)' }, 'input');
  }
  // A model or an image given by mistake: YAML is text.
  if (bytes.includes(0) || !isUtf8(bytes)) {
    throw new SlimError({ file, problem: `is ${describeBinaryFile(bytes) ?? 'a binary file'}, not a YAML recipe`, fix: 'slim run takes a recipe such as recipes/demo.yaml; models go to slim eval, bench, quantize, prune or deploy' }, 'input');
  }
  return parseRecipe(bytes.toString('utf8'), file);
}

export function parseRecipe(text: string, file: string): Recipe {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): { line: number; col: number } => lines.linePos(offset);
  if (doc.errors.length > 0) {
    throw new RecipeError(
      file,
      doc.errors.map((e) => ({ ...at(e.pos[0]), path: '', problem: `YAML syntax: ${e.message.split('\n')[0]}`, fix: 'fix the YAML (indentation, a missing colon or quote)' })),
    );
  }
  const value: unknown = doc.toJS();
  const issues: RecipeIssue[] = [];
  const locate = (p: PathKey[], key?: string): { line: number; col: number } => at(offsetOf(doc, p, key));
  const add = (p: PathKey[], problem: string, fix?: string, key?: string): void => {
    issues.push({ ...locate(p, key), path: renderPath(key ? [...p, key] : p), problem, ...(fix ? { fix } : {}) });
  };

  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    add([], 'a recipe is a YAML map with name, model and stages', 'start from recipes/demo.yaml');
    throw new RecipeError(file, issues);
  }
  const head = RecipeHead.safeParse(value);
  if (!head.success) for (const issue of head.error.issues) reportZod(issue, [], RecipeHead, value, add);

  const rawStages = (value as Record<string, unknown>)['stages'];
  const stages: Stage[] = [];
  if (Array.isArray(rawStages)) {
    rawStages.forEach((item, i) => {
      const stage = parseStage(item, i, add, (p) => locate(p).line);
      if (stage) stages.push(stage);
    });
  }
  if (head.success && issues.length === 0) checkGraph(stages, head.data.model, add);
  if (issues.length > 0) throw new RecipeError(file, issues);
  const h = head.data!;
  return {
    file,
    baseDir: path.dirname(path.resolve(file)),
    name: h.name,
    ...(h.description !== undefined ? { description: h.description } : {}),
    seed: h.seed,
    device: h.device,
    ...(h.threads !== undefined ? { threads: h.threads } : {}),
    gpuPricePerHour: h.gpu_price_per_hour,
    data: h.data,
    model: h.model,
    stages,
    text,
  };
}

type Add = (p: PathKey[], problem: string, fix?: string, key?: string) => void;

function parseStage(item: unknown, i: number, add: Add, lineOf: (p: PathKey[]) => number): Stage | undefined {
  const here: PathKey[] = ['stages', i];
  const kinds = STAGE_KINDS.join(', ');
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    add(here, 'a stage is a one-key map such as `- train: { epochs: 8 }`', `use one of ${kinds}`);
    return undefined;
  }
  const keys = Object.keys(item);
  if (keys.length !== 1) {
    add(here, keys.length === 0 ? 'the stage is empty' : `a stage has one key (its kind), this one has ${keys.length}: ${keys.join(', ')}`, 'indent the options under the kind, e.g. `- prune:` then `    structured: { target_macs: 0.5 }`');
    return undefined;
  }
  const kind = keys[0]!;
  if (!(STAGE_KINDS as readonly string[]).includes(kind)) {
    const guess = closest(kind, STAGE_KINDS);
    add(here, `unknown stage '${kind}'`, guess ? `did you mean '${guess}'? (stages: ${kinds})` : `use one of ${kinds}`, kind);
    return undefined;
  }
  const k = kind as StageKind;
  const options = (item as Record<string, unknown>)[kind] ?? {};
  const schema = STAGE_SCHEMAS[k];
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportZod(issue, [...here, kind], schema, options, add);
    return undefined;
  }
  const spec = parsed.data as { id?: string; from?: string; target?: string };
  // A deploy stage is named by its target unless given an id: its bundle is <run>/deploy/linux-arm64, not
  // <run>/deploy/deploy, and two targets need no ids to be told apart.
  const id = spec.id ?? (k === 'deploy' && spec.target ? spec.target : k);
  return { kind: k, id, ...(spec.from ? { from: spec.from } : {}), spec, line: lineOf(here) } as Stage;
}

/** Cross-stage rules: ids are unique; `from`, `teacher`, `variant(s)` name earlier models. */
function checkGraph(stages: Stage[], model: Recipe['model'], add: Add): void {
  const models: string[] = [];
  const source = sourceId(model);
  if (source) models.push(source);
  const seen = new Set<string>(models);
  const refer = (i: number, kind: string, key: PathKey[], id: string): void => {
    if (models.includes(id)) return;
    const problem = seen.has(id) ? `stage '${id}' does not make a model` : `no earlier stage has id '${id}'`;
    add(['stages', i, kind, ...key], problem, models.length ? `use one of: ${[...new Set(models)].join(', ')}` : 'put a stage that makes a model (train, distill, …) first');
  };
  stages.forEach((s, i) => {
    if (seen.has(s.id)) {
      add(['stages', i, s.kind], `two stages are called '${s.id}'`, `give this one its own id, e.g. \`id: ${s.id}-2\``, s.spec.id !== undefined ? 'id' : undefined);
    }
    if (s.from) refer(i, s.kind, ['from'], s.from);
    if (s.kind === 'distill') refer(i, s.kind, ['teacher'], s.spec.teacher);
    if (s.kind === 'finetune' && s.spec.distill_from) refer(i, s.kind, ['distill_from'], s.spec.distill_from);
    if (s.kind === 'bench') s.spec.variants?.forEach((v, j) => refer(i, s.kind, ['variants', j], v));
    if (s.kind === 'deploy' && s.spec.variant) refer(i, s.kind, ['variant'], s.spec.variant);
    if (s.kind === 'train' && s.spec.freeze && s.spec.freeze_backbone) {
      add(['stages', i, s.kind], 'freeze_backbone already keeps every layer but the classifier as it is', 'drop freeze, or name the layers to keep with freeze alone', 'freeze');
    }
    if (s.kind === 'train' && s.spec.freeze && !s.from && models.length === 0) {
      add(['stages', i, s.kind], `keeps layers of a trained model, and this stage builds ${model.zoo ?? 'its model'} fresh from the zoo (random weights)`, 'drop freeze here; use it on a later stage that starts from a trained model', 'freeze');
    }
    // Quantizing or pruning an int8 (or fp16) model is refused by slim quantize and slim prune; in a recipe
    // it failed deep inside its stage (a trial's fp16 stage after an int8 one, `from` left to default).
    const input = s.kind === 'quantize' || s.kind === 'prune' ? (s.from ?? models.at(-1)) : undefined;
    const made = input ? stages.find((t) => t.id === input) : undefined;
    if (made?.kind === 'quantize') {
      const float = models.filter((id) => stages.find((t) => t.id === id)?.kind !== 'quantize').at(-1);
      add(['stages', i, s.kind], `${s.kind === 'quantize' ? 'quantizes' : 'prunes'} '${input}', which stage '${input}' quantized already${s.from ? '' : ' (`from` left out: the stage before)'}`, float ? `give it \`from: ${float}\`, the float model` : 'give it `from:` a float model', s.from ? 'from' : undefined);
    }
    const needsModel = s.kind === 'bench' || s.kind === 'deploy' || s.kind === 'quantize' || s.kind === 'prune';
    if (needsModel && !s.from && models.length === 0 && !(s.kind === 'deploy' && s.spec.variant)) {
      add(['stages', i], `${s.kind} has no model to work on`, 'train one in an earlier stage, or start from `model: { file: MODEL.onnx }`', s.kind);
    }
    seen.add(s.id);
    if (MODEL_STAGES.has(s.kind)) models.push(s.id);
  });
}

/** What a key that is not the recipe's means, where spelling distance does not find it: a CLI flag's name, a model file where a zoo model goes. */
function unknownKeyHint(key: string, at: readonly PathKey[], allowed: readonly string[]): string | undefined {
  if (key === 'lsq' && allowed.includes('learnable_scales')) return "did you mean 'learnable_scales'? (the CLI's --lsq)";
  if (key === 'file' && at.at(-1) === 'student') return "a recipe's student is a zoo model ({ zoo: NAME, width: W }); to distill into a model file, leave student out and give the stage `from:` the stage that makes it (the recipe's model: { file } is one)";
  return undefined;
}

/** One zod issue → one RecipeIssue (unknown keys: one per key, at the key, with a "did you mean"). */
function reportZod(issue: z.core.$ZodIssue, base: PathKey[], schema: z.ZodType, value: unknown, add: Add): void {
  const p = [...base, ...(issue.path as PathKey[])];
  const field = [...issue.path].reverse().find((k): k is string => typeof k === 'string');
  const help = field ? FIELD_HELP[field] : undefined;
  const got = valueAt(value, issue.path as PathKey[]);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = keysAt(schema, issue.path as PathKey[]);
      for (const key of issue.keys) {
        const guess = closest(key, allowed);
        add(p, `unknown key '${key}'`, unknownKeyHint(key, p, allowed) ?? (guess ? `did you mean '${guess}'?` : `allowed here: ${allowed.join(', ')}`), key);
      }
      return;
    }
    case 'invalid_type':
      if (got === undefined) add(p, 'is missing', help ? `add it: ${help}` : undefined);
      else add(p, `expected ${article(issue.expected)}, got ${describe(got)}`, help);
      return;
    case 'too_small':
      add(p, issue.origin === 'array' ? `needs at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}` : `must be ${issue.inclusive ? '≥' : '>'} ${issue.minimum}, got ${describe(got)}`, help);
      return;
    case 'too_big':
      add(p, `must be ${issue.inclusive ? '≤' : '<'} ${issue.maximum}, got ${describe(got)}`, help);
      return;
    case 'invalid_value': {
      const allowed = issue.values.map((v) => String(v));
      // A required choice left out ("nothing is not allowed" said it backwards).
      if (got === undefined) {
        add(p, 'is missing', `add it: one of ${allowed.join(', ')}`);
        return;
      }
      const guess = typeof got === 'string' ? closest(got, allowed) : undefined;
      add(p, `${describe(got)} is not allowed`, `${guess ? `did you mean '${guess}'? ` : ''}use one of ${allowed.join(', ')}`);
      return;
    }
    case 'invalid_format':
      add(p, `${describe(got)} is not a valid ${field ?? 'value'}`, help);
      return;
    case 'invalid_union':
      add(p, `${describe(got)} is not allowed`, help);
      return;
    default:
      add(p, issue.message, help);
  }
}

function renderPath(p: PathKey[]): string {
  return p.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');
}

function article(type: string): string {
  if (type === 'int') return 'a whole number';
  if (type === 'object') return 'a map';
  if (type === 'array') return 'a list';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 37)}…` : v}'`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return String(v);
}

function valueAt(value: unknown, p: readonly PathKey[]): unknown {
  let v = value;
  for (const k of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PathKey, unknown>)[k];
  }
  return v;
}

/** The keys a (strict) object schema allows at `p`, unwrapping optional / default / array. */
function keysAt(schema: z.ZodType, p: readonly PathKey[]): string[] {
  let s: unknown = schema;
  const def = (x: unknown): { type: string; innerType?: unknown; element?: unknown; shape?: Record<string, unknown>; in?: unknown; out?: unknown } =>
    (x as { def: { type: string } }).def;
  const unwrap = (): void => {
    for (let d = def(s); ['optional', 'default', 'nullable', 'pipe', 'prefault'].includes(d.type); d = def(s)) {
      // A pipe that checks the raw value first (z.unknown() → the object schema) names its keys on the out side.
      s = d.type === 'pipe' && def(d.in).type === 'unknown' ? d.out : (d.innerType ?? d.in);
    }
  };
  for (const k of p) {
    unwrap();
    const d = def(s);
    if (typeof k === 'number' && d.type === 'array') s = d.element;
    else if (typeof k === 'string' && d.type === 'object' && d.shape?.[k]) s = d.shape[k];
    else return [];
  }
  unwrap();
  const d = def(s);
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}

/** Source offset of the value at `p` (or of `key` inside the map at `p`); the nearest ancestor when absent. */
function offsetOf(doc: Document, p: readonly PathKey[], key?: string): number {
  let node: YamlNode | null | undefined = doc.contents;
  let offset = node?.range?.[0] ?? 0;
  const steps = key === undefined ? p : [...p, key];
  for (const [i, k] of steps.entries()) {
    const isKeyStep = key !== undefined && i === steps.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((item) => (isScalar(item.key) ? String(item.key.value) : String(item.key)) === String(k));
      if (!pair) break;
      if (isKeyStep && isScalar(pair.key)) return pair.key.range?.[0] ?? offset;
      node = pair.value as YamlNode | null;
      offset = node?.range?.[0] ?? (isScalar(pair.key) ? (pair.key.range?.[0] ?? offset) : offset);
    } else if (isSeq(node) && typeof k === 'number') {
      node = node.items[k] as YamlNode | undefined;
      if (!node) break;
      offset = node.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  return offset;
}


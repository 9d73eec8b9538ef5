/**
 * Output paths checked before the work that fills them: a command that calibrates, trains or prunes for
 * minutes should not fail at the end on a missing folder, nor write over the model it read.
 */
import { QAT_PHASE_FOLDERS } from '../compress/qat/phases.js';
import { accessSync, closeSync, constants, openSync, readdirSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { usageError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { ZOO } from '../zoo/index.js';
import { linkTarget, sameFile, specialFileKind } from '../util/files.js';
import { imageKindText, sniffImage } from '../serve/sniff.js';

const statOf = (p: string): Stats | undefined => {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
};

function checkParent(target: string, flag: string): void {
  const parent = path.dirname(path.resolve(target));
  const info = statOf(parent);
  if (!info) throw usageError(`${flag} ${target}: the folder ${parent} does not exist`, `create it first (mkdir -p ${parent}) or write elsewhere`);
  if (!info.isDirectory()) throw usageError(`${flag} ${target}: ${parent} is not a folder`, 'give a path inside a folder');
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw usageError(`${flag} ${target}: cannot write in ${parent}`, 'write somewhere you have write permission');
  }
}

/** Extensions that name something other than an ONNX model: a model written there is a mistyped flag or path. */
const NOT_MODEL_EXTENSIONS: Readonly<Record<string, string>> = {
  '.txt': 'a text file', '.log': 'a log', '.md': 'a Markdown file', '.csv': 'a CSV table', '.json': 'a JSON file',
  '.jsonl': 'a JSON-lines log', '.yaml': 'a YAML file', '.yml': 'a YAML file', '.html': 'a web page', '.svg': 'an SVG picture',
  '.png': 'a PNG image', '.jpg': 'a JPEG image', '.jpeg': 'a JPEG image', '.webp': 'a WebP image',
  '.pt': 'a PyTorch file', '.pth': 'a PyTorch file', '.tflite': 'a TensorFlow Lite model', '.pb': 'a TensorFlow graph',
};

/**
 * A file a command will write: not a folder, its folder exists and is writable, and it is none of the
 * `inputs` (a quantized or pruned model written over its source loses the source).
 */
export function checkOutputFile(file: string, flag: string, inputs: readonly (string | undefined)[] = [], o: { model?: boolean } = {}): void {
  const info = statOf(file);
  if (info?.isDirectory()) throw usageError(`${flag} ${file} is a folder`, `give a file path, e.g. ${path.join(file, 'model.onnx')}`);
  const special = info ? specialFileKind(info) : undefined;
  if (special) throw usageError(`${flag} ${file} is ${special}, not a file: slimkit writes a file beside it and renames it into place, which would replace it`, 'give a file path');
  for (const input of inputs) {
    if (input && sameFile(input, file)) throw usageError(`${flag} ${file} is the input model: writing it would replace the model it is made from`, `write to another file, e.g. ${suffixed(file)}`);
  }
  // A model replaces an earlier model; anything else there (an image of the data set, notes) is not ours to replace.
  const asOnnx = path.join(path.dirname(file), `${path.parse(file).name}.onnx`);
  const other = o.model && info?.isFile() && info.size > 0 ? notAModel(file) : undefined;
  if (other) throw usageError(`${flag} ${file} exists and is ${other}, not an ONNX model: writing the model would replace it`, `give a new path, e.g. ${asOnnx} (or delete the file first, if it should go)`);
  const named = o.model ? NOT_MODEL_EXTENSIONS[path.extname(file).toLowerCase()] : undefined;
  if (named) throw usageError(`${flag} ${file} names ${named}, but what is written there is an ONNX model`, `give a .onnx path, e.g. ${asOnnx}`);
  checkParent(file, flag);
}

/** The first bytes of a file (fewer when it is shorter). */
function readHead(file: string, bytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    return buffer.subarray(0, readSync(fd, buffer, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * What an existing file is when it is not an ONNX model, else undefined. A ModelProto starts with its
 * field 1, ir_version (tag byte 0x08): every ONNX writer (protobuf's, protobufjs, slimkit's) writes fields
 * in number order.
 */
function notAModel(file: string): string | undefined {
  let head: Buffer;
  try {
    head = readHead(file, 512);
  } catch {
    return undefined;
  }
  if (head[0] === 0x08) return undefined;
  const image = sniffImage(head);
  if (image) return imageKindText(image);
  return head.every((c) => c === 0x09 || c === 0x0a || c === 0x0d || (c >= 0x20 && c !== 0x7f)) ? 'a text file' : 'another kind of file';
}

/**
 * A folder a command will create or fill: not an existing file, and somewhere writable. `parents`: the
 * missing folders above it are created too (a run folder under runs/); else its parent must exist, as
 * for -o files (a typo in a bundle's path should not grow a new tree).
 */
export function checkOutputDir(dir: string, flag: string, o: { parents?: boolean } = {}): void {
  const info = statOf(dir);
  if (info && !info.isDirectory()) throw usageError(`${flag} ${dir} is a file, not a folder`, 'give a folder path (it is created when missing)');
  // A new folder named like a file (deploy -o bundle.zip made a folder called bundle.zip).
  const fileLike = /(\.tar\.gz|\.(zip|tar|tgz|gz|json|jsonl|txt|svg|html|md))$/i.exec(dir)?.[0];
  if (!info && fileLike) {
    const folder = dir.slice(0, -fileLike.length);
    const archive = /^\.(zip|tar|tgz|gz|tar\.gz)$/i.test(fileLike);
    throw usageError(`${flag} ${dir} names a ${fileLike} file, but what is written there is a folder`, `give a folder name, e.g. ${folder}${archive ? ` (then pack it yourself: tar czf ${folder}.tar.gz -C ${folder} .)` : ''}`);
  }
  if (!info) checkParent(o.parents ? realParent(dir) : dir, flag);
  else {
    // An existing folder on a read-only disk failed only after an epoch of training.
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw usageError(`${flag} ${dir}: cannot write in it (read-only, or no permission)`, 'give a folder you can write in');
    }
  }
}

/** `dir` itself when its parent exists, else the nearest missing ancestor (mkdir -p creates the rest). */
function realParent(dir: string): string {
  let current = path.resolve(dir);
  while (!statOf(path.dirname(current)) && path.dirname(current) !== current) current = path.dirname(current);
  try {
    return path.join(realpathSync(path.dirname(current)), path.basename(current));
  } catch {
    return current;
  }
}

/** train and distill: the model written, its checkpoints and its log. */
export function checkTrainingOutputs(o: { out: string; checkpointDir?: string; log?: string; resume?: boolean | string }, inputs: readonly string[]): void {
  // Zoo names are not files; an input that is a file must not be overwritten.
  checkOutputFile(o.out, '--out', inputs.filter((i) => i.endsWith('.onnx')), { model: true });
  if (o.checkpointDir) checkCheckpointDir(o.checkpointDir, o.resume);
  if (o.log) checkLogFile(o.log, [...inputs, o.out]);
  checkDistinctOutputs([['--out', o.out], ['--checkpoint-dir', o.checkpointDir], ['--log', o.log]]);
}

/**
 * Outputs of one command that name the same path: a checkpoint folder made where the model is then
 * written failed only at the end of training.
 */
export function checkDistinctOutputs(outputs: readonly (readonly [string, string | undefined])[]): void {
  const given = outputs.filter((o): o is readonly [string, string] => o[1] !== undefined);
  for (const [i, [flag, file]] of given.entries()) {
    const other = given.slice(i + 1).find(([, f]) => path.resolve(f) === path.resolve(file));
    if (!other) continue;
    const example = [flag, other[0]].includes('--checkpoint-dir') ? `, e.g. --checkpoint-dir ${path.join(path.dirname(file), 'checkpoints')}` : '';
    throw usageError(`${flag} and ${other[0]} are both ${file}`, `give each its own path${example}`);
  }
}

/**
 * A --log: lines are appended to it, so it must not be a model the command reads or writes, nor any
 * other file that is not a JSON-lines log already (appending would damage it).
 */
export function checkLogFile(file: string, models: readonly (string | undefined)[]): void {
  const info = statOf(file);
  if (info?.isDirectory()) throw usageError(`--log ${file} is a folder`, `give a file path, e.g. ${path.join(file, 'train.jsonl')}`);
  const special = info ? specialFileKind(info) : undefined;
  if (special) throw usageError(`--log ${file} is ${special}, not a file`, 'give a file path, e.g. train.jsonl');
  // A symlink counts as where it points, even before that file exists (an -o model written later).
  const target = linkTarget(file);
  for (const model of models) {
    if (model && (sameFile(model, file) || sameFile(model, target))) {
      throw usageError(`--log ${file} is also a model file of this command: the log's lines would be appended to the model`, 'give the log a file of its own, e.g. train.jsonl');
    }
  }
  if (info?.isFile() && info.size > 0 && !startsWithRecord(file)) {
    throw usageError(`--log ${file} exists and is not a JSON-lines log: the log's lines would be appended to it`, 'give a new file, e.g. train.jsonl (or an earlier run\'s log to add to it)');
  }
  checkParent(file, '--log');
}

/** Whether a file's first line is one JSON object, as every line of a JSON-lines log is (a pretty-printed document is not). */
function startsWithRecord(file: string): boolean {
  try {
    const line = readHead(file, 64 * 1024).toString('utf8').split('\n')[0]!;
    const record: unknown = JSON.parse(line);
    return typeof record === 'object' && record !== null && !Array.isArray(record);
  } catch {
    return false;
  }
}

/** A --checkpoint-dir: a folder, and without --resume not one holding an earlier run's checkpoint (a new run would replace it at its first epoch). */
export function checkCheckpointDir(dir: string, resume: boolean | string | undefined): void {
  checkOutputDir(dir, '--checkpoint-dir');
  const last = latestCheckpoint(dir);
  if (!resume && last) {
    throw usageError(`--checkpoint-dir ${dir} holds the checkpoint of an earlier run (${last})`, 'add --resume to continue that run, or give another --checkpoint-dir (or delete the file) to start a new one');
  }
}


/** The last.ckpt files in `dir` and in its phases' folders, newest first. */
export function checkpointsIn(dir: string): string[] {
  const found = [path.join(dir, 'last.ckpt'), ...QAT_PHASE_FOLDERS.map((n) => path.join(dir, n, 'last.ckpt'))].filter((f) => statOf(f)?.isFile());
  return found.sort((a, b) => statOf(b)!.mtimeMs - statOf(a)!.mtimeMs);
}

/** The newest last.ckpt in `dir` or in a phase's folder in it. */
export function latestCheckpoint(dir: string): string | undefined {
  return checkpointsIn(dir)[0];
}

function suffixed(file: string): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.out${ext || '.onnx'}`;
}

/**
 * A --model / --student that is not a zoo name must be a model file: an .onnx, or any file that exists
 * (read as ONNX, which names a PyTorch checkpoint or TorchScript archive as such and says how to export).
 */
export function checkModelFile(file: string, flag: string): void {
  if (file.endsWith('.onnx') || isFile(file)) return;
  throw usageError(`${flag} '${file}' is neither a zoo model nor a model file`, `${isFile(`${file}.onnx`) ? `did you mean '${file}.onnx'? ` : didYouMean(file, [...Object.keys(ZOO), ...onnxFilesBeside(file)])}pass an .onnx file, or a zoo name (\`slim zoo --list\`)`);
}

/** The .onnx files in the folder `file` names (as `file` spells its folder): what a misspelt model file meant. */
function onnxFilesBeside(file: string): string[] {
  const dir = path.dirname(file);
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.onnx')).map((n) => (dir === '.' && !file.startsWith('./') ? n : path.join(dir, n)));
  } catch {
    return [];
  }
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

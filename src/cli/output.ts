import { log } from '../util/terminal.js';

/** Options every command takes. */
export interface CommonOptions {
  json?: boolean;
  debug?: boolean;
}

/**
 * With --json, exactly one JSON document goes to stdout; otherwise the human rendering. Logs and
 * progress always go to stderr so stdout stays parseable.
 */
export function printResult(options: CommonOptions, value: unknown, human: () => string): void {
  if (options.json) process.stdout.write(`${jsonText(value)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/**
 * Indented JSON with each array of numbers on one line: a confusion matrix of 1,000 classes was a
 * million lines, one number each.
 */
export function jsonText(value: unknown): string {
  const scalar = '(?:null|true|false|-?[\\d.eE+-]+)';
  // Line breaks only: a JSON string holds none, so text such as "[ 1 ]" inside one is never touched.
  return JSON.stringify(value, null, 2).replace(new RegExp(`\\[\\n\\s*(${scalar}(?:,\\n\\s*${scalar})*)\\n\\s*\\]`, 'g'), (_, inner: string) => `[${inner.split(/,\n\s*/).join(', ')}]`);
}

/**
 * The stderr note for a model loaded with ops slimkit has no definition for (loadModelForRuntime).
 * `ortError`: ONNX Runtime was asked and cannot load the model either (what it said). `macsCounted`,
 * for a command that shows MACs: whether the other ops' were counted, those ops' output shapes
 * measured (withOpaqueFacts).
 */
export function logUnknownOps(file: string, ops: readonly string[], o: { ortError?: string; macsCounted?: boolean } = {}): void {
  if (ops.length === 0) return;
  const them = ops.length > 1 ? 'them' : 'it';
  if (o.ortError !== undefined) {
    log(`${file}: neither slimkit nor ONNX Runtime knows ${ops.length > 1 ? 'ops' : 'op'} ${ops.join(', ')} (ONNX Runtime: ${o.ortError}); no command can run this model — re-export it without ${them} (a torch.onnx export with operator_export_type=ONNX_ATEN_FALLBACK writes ATen nodes, for example)`);
    return;
  }
  const macs = o.macsCounted === undefined ? '' : o.macsCounted ? ` (MACs count the other ops only)` : ', but MACs are unknown';
  log(`${file}: slimkit has no definition for ${ops.length > 1 ? 'ops' : 'op'} ${ops.join(', ')}; ONNX Runtime runs ${them}, so eval, bench and deploy work${macs}; quantize leaves ${them} float, and prune and train cannot take this model`);
}

import cliProgress from 'cli-progress';

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
  if (options.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * The stderr note for a model loaded with ops slimkit has no definition for (loadModelForRuntime).
 * `ortError`: ONNX Runtime was asked and cannot load the model either (what it said).
 */
export function logUnknownOps(file: string, ops: readonly string[], ortError?: string): void {
  if (ops.length === 0) return;
  const them = ops.length > 1 ? 'them' : 'it';
  if (ortError !== undefined) {
    log(`${file}: neither slimkit nor ONNX Runtime knows ${ops.length > 1 ? 'ops' : 'op'} ${ops.join(', ')} (ONNX Runtime: ${ortError}); no command can run this model — re-export it without ${them} (a torch.onnx export with operator_export_type=ONNX_ATEN_FALLBACK writes ATen nodes, for example)`);
    return;
  }
  log(`${file}: slimkit has no definition for ${ops.length > 1 ? 'ops' : 'op'} ${ops.join(', ')}; ONNX Runtime runs ${ops.length > 1 ? 'them' : 'it'}, so eval, bench and deploy work, but MACs are unknown and quantize, prune and train cannot take this model`);
}

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * A progress bar on stderr. On a terminal it redraws in place; elsewhere (CI logs, pipes) it prints a
 * line at most every 5 seconds so long runs still show life without flooding the log.
 */
export function progress(label: string, total: number, unit = 'items'): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percent}% | {value}/{total} ${unit} | {rate} {phase}| ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const start = performance.now();
    bar.start(total, 0, { rate: '', phase: '' });
    return {
      update(done, fields) {
        const seconds = (performance.now() - start) / 1000;
        bar.update(done, { rate: seconds > 0 && unit !== '%' ? `${(done / seconds).toFixed(0)} ${unit}/s` : '', ...fields });
      },
      stop: () => bar.stop(),
    };
  }
  // Without a terminal: a line every 5 s, and one (not one per update) when the total is first reached.
  let last = performance.now();
  let reachedTotal = false;
  return {
    update(done, fields) {
      const now = performance.now();
      const firstAtTotal = done >= total && !reachedTotal;
      if (!firstAtTotal && now - last < 5000) return;
      reachedTotal ||= done >= total;
      last = now;
      const extra = fields ? ` ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
      log(`${label}: ${done}/${total} ${unit}${extra}`);
    },
    stop() {},
  };
}

/**
 * Where slimkit talks to the person running it: log lines and progress bars on stderr, so that stdout
 * stays the command's result (parseable with --json). The CLI and the pipeline both use it.
 */
import cliProgress from 'cli-progress';

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  /** A line that stays (an epoch's result) above the bar, which goes on below it. */
  note(message: string): void;
  stop(): void;
}

/** The bar's line: cli-progress fills in each {token} it knows (an unknown one is printed as it is). */
export function barFormat(label: string, unit: string): string {
  return `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} {phase}| ETA {eta_formatted}`;
}

/**
 * Progress of work that is usually quick (decoding an image folder): nothing until it has run 1 s in a
 * terminal (10 s into a log), then a bar. `update` takes the total too, which may change between loads.
 */
export function lazyProgress(label: string, unit: string): { update(done: number, total: number): void; stop(): void } {
  const start = performance.now();
  let bar: Progress | undefined;
  let barTotal = 0;
  return {
    update(done, total) {
      if (bar && total !== barTotal) {
        bar.stop();
        bar = undefined;
      }
      if (!bar) {
        if (done >= total || performance.now() - start < (process.stderr.isTTY ? 1000 : 10_000)) return;
        // The bar starts where the work is, and its rate counts from the work's start, not the bar's.
        bar = progress(label, total, unit, { done, since: start });
        barTotal = total;
      }
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
}

/**
 * A progress bar on stderr. On a terminal it redraws in place; elsewhere (CI logs, pipes) it prints a
 * line at most every 5 seconds so long runs still show life without flooding the log. `done` and `since`:
 * work already done when the bar appears, and when it began (performance.now()), for the rate.
 */
export function progress(label: string, total: number, unit = 'items', o: { done?: number; since?: number } = {}): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: barFormat(label, unit),
        stream: process.stderr,
        // Not hidden: Ctrl-C kills a command without a handler before the bar could show it again.
        hideCursor: false,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const start = o.since ?? performance.now();
    bar.start(total, o.done ?? 0, { rate: '', phase: '' });
    return {
      update(done, fields) {
        const seconds = (performance.now() - start) / 1000;
        bar.update(done, { rate: seconds > 0 && unit !== '%' ? `${(done / seconds).toFixed(0)} ${unit}/s` : '', ...fields });
      },
      note(message) {
        // Clear the bar's line, keep the message, draw the bar again under it.
        process.stderr.write(`\r\x1b[2K${message}\n`);
        // Forced: the bar's text is unchanged, so a plain render (all its typings declare) draws nothing.
        (bar as unknown as { render(force: boolean): void }).render(true);
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
    note: log,
    stop() {},
  };
}

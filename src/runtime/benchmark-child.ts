/**
 * Entry of the process `benchmarkInChild` forks: one request in, progress messages and one result (or
 * error) out, then exit. Reads the model from its file so the parent's copy never counts here.
 */
import { SlimError } from '../errors.js';
import { benchmark } from './benchmark.js';
import type { ChildMessage, ChildRequest } from './benchmark-isolated.js';

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

if (!process.send) {
  console.error('benchmark-child: run by benchmarkInChild (src/runtime/benchmark-isolated.ts), not directly');
  process.exit(2);
}

process.once('message', async ({ file, options }: ChildRequest) => {
  let reply: ChildMessage;
  try {
    const result = await benchmark(file, {
      ...options,
      onProgress: (done, total, phase) => process.send!({ type: 'progress', done, total, phase } satisfies ChildMessage),
    });
    reply = { type: 'result', result };
  } catch (e) {
    reply = e instanceof SlimError
      ? { type: 'slim-error', parts: e.parts, kind: e.kind }
      : { type: 'crash', message: e instanceof Error ? e.message : String(e), ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) };
  }
  await send(reply);
  process.disconnect();
});

/**
 * Entry of a process `benchmarkInChildren` forks: opens one model's timer and runs what the parent asks,
 * one request and one reply at a time, until 'finish' (the parent kills it to stop early). Reads the
 * model from its file so the parent's copy never counts here.
 */
import { SlimError } from '../errors.js';
import { openTimer, type ModelTimer } from './benchmark.js';
import type { ChildReply, ChildRequest } from './benchmark-isolated.js';

function send(reply: ChildReply): Promise<void> {
  return new Promise((resolve) => process.send!(reply, () => resolve()));
}

if (!process.send) {
  console.error('benchmark-child: run by benchmarkInChildren (src/runtime/benchmark-isolated.ts), not directly');
  process.exit(2);
}

let timer: ModelTimer | undefined;

async function answer(request: ChildRequest): Promise<ChildReply> {
  if (request.type === 'open') {
    timer = await openTimer(request.file, request.options);
    return { type: 'opened', batch: timer.batch, throughputBatch: timer.throughputBatch, threads: timer.threads };
  }
  if (!timer) throw new Error(`'${request.type}' before 'open'`);
  switch (request.type) {
    case 'warmup':
      await timer.warmup(request.runs);
      return { type: 'done' };
    case 'time':
      return { type: 'samples', samplesMs: await timer.timeRuns(request.runs, request.rewarm) };
    case 'throughput':
      return { type: 'throughput', ...(await timer.timeThroughput(request.seconds, request.rewarm)) };
    case 'quiesce':
      await timer.quiesce();
      return { type: 'done' };
    case 'finish':
      return { type: 'finished', peak: await timer.finish() };
  }
}

process.on('message', async (request: ChildRequest) => {
  let reply: ChildReply;
  try {
    reply = await answer(request);
  } catch (e) {
    reply = e instanceof SlimError
      ? { type: 'slim-error', parts: e.parts, kind: e.kind }
      : { type: 'crash', message: e instanceof Error ? e.message : String(e), ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) };
  }
  await send(reply);
  // After its last reply (or a failed open) the process has nothing left to do.
  if (request.type === 'finish' || reply.type === 'slim-error' || reply.type === 'crash') process.disconnect();
});

// The parent is gone (stopped by a signal, killed): nothing reads what this process would go on
// measuring, and it would load the machine for the next benchmark.
process.on('disconnect', () => process.exit(0));

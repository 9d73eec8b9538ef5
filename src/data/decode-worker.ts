/**
 * A decoding thread of the pool in decode-pool.ts: it decodes and resizes the images it is sent and
 * sends their pixels back (moved, not copied). An unreadable image is answered with its reason; any
 * other failure (sharp cannot load) with the error's message, which the pool raises as it is.
 */
import { parentPort } from 'node:worker_threads';
import { SlimError } from '../errors.js';
import { decodeImage } from './image-folder.js';
import type { DecodeReply, DecodeTask } from './decode-pool.js';

const port = parentPort!;
port.on('message', (task: DecodeTask) => {
  decodeImage(task.file, task.size, task.mode, task.channels).then(
    (image) => port.postMessage({ id: task.id, pixels: image.pixels } satisfies DecodeReply, [image.pixels.buffer as ArrayBuffer]),
    (e: unknown) => {
      const reply: DecodeReply = e instanceof SlimError && e.parts.file === task.file
        ? { id: task.id, unreadable: e.parts.problem }
        : { id: task.id, failed: e instanceof Error ? e.message : String(e) };
      port.postMessage(reply);
    },
  );
});

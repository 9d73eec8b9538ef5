/**
 * Runs a ClassifyServer until SIGTERM or SIGINT, then shuts it down gracefully and releases the model.
 * The one lifecycle for `slim serve` and a bundle's server.js (systemd stops units with SIGTERM).
 */
import type { Classifier } from './classifier.js';
import { createClassifyServer, type ServerOptions } from './server.js';

export interface RunServerOptions extends Omit<ServerOptions, 'classifier'> {
  classifier: Classifier;
  port: number;
  host: string;
  /** Called once listening, with the URL (e.g. to print it). */
  onListening?(url: string): void;
}

/** Resolves after a signal-triggered shutdown has finished; rejects when listening fails. */
export async function runServer(options: RunServerOptions): Promise<void> {
  const { classifier, port, host, onListening, ...serverOptions } = options;
  const server = createClassifyServer({ classifier, ...serverOptions });
  let address;
  try {
    address = await server.listen(port, host);
  } catch (e) {
    await classifier.close();
    throw e;
  }
  onListening?.(address.url);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      // The handlers go with this first signal: a second Ctrl-C stops the process at once, as said here.
      options.log?.(`${options.program ?? 'slim serve'}: ${signal} received${signal === 'SIGINT' ? ' (Ctrl-C again stops at once, cutting the requests in flight)' : ''}`);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      server.shutdown().then(resolve, resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await classifier.close();
}

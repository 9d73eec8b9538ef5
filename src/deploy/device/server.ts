#!/usr/bin/env node
/**
 * `node server.js`: checks that the bundle's native modules (onnxruntime-node, sharp) are installed and
 * built for this machine, then loads the command (server-main.ts). They are imported only after the
 * check, so a missing `sh install.sh` or a bundle installed for another CPU gets a one-line answer
 * instead of Node's module-not-found trace.
 */
import { bundleDir, launch } from './common.js';
import { SERVER_HELP } from './help.js';

const dir = bundleDir(import.meta.url);
launch('server', SERVER_HELP, async () => (await import('./server-main.js')).main(dir), { checkNative: dir });

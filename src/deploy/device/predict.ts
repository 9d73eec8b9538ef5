#!/usr/bin/env node
/**
 * `node predict.js`: checks that the bundle's native modules (onnxruntime-node, sharp) are installed and
 * built for this machine, then loads the command (predict-main.ts). They are imported only after the
 * check, so a missing `sh install.sh` or a bundle installed for another CPU gets a one-line answer
 * instead of Node's module-not-found trace.
 */
import { bundleDir, launch } from './common.js';
import { PREDICT_HELP } from './help.js';

const dir = bundleDir(import.meta.url);
launch('predict', PREDICT_HELP, async () => (await import('./predict-main.js')).main(dir), { checkNative: dir });

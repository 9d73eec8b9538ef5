#!/usr/bin/env node
/**
 * `node doctor.js`: the device's CPU features, threads, versions and advice. It runs without the native
 * modules too (it reports them as not loadable), so nothing is checked before it loads.
 */
import { bundleDir, launch } from './common.js';

const dir = bundleDir(import.meta.url);
launch('doctor', undefined, async () => (await import('./doctor-main.js')).main(dir));

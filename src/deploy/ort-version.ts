/**
 * ORT's version behind a module of its own, so doctor can load it with a dynamic import (a runtime that
 * fails to load is reported, not fatal) without pulling the rest of ort.ts's exports into the bundle.
 */
export { ortVersion } from '../runtime/ort.js';

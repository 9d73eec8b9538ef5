import { attr, type Node } from '../onnx/graph.js';
import type { Tensor } from '../onnx/tensor.js';
import { OpError } from './op-def.js';

/** Typed attribute readers with ONNX defaults. A wrong attribute type is an OpError, not a crash. */

function read<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new OpError((e as Error).message);
  }
}

export function intAttr(node: Node, name: string, fallback: number): number {
  return read(() => attr(node, name, 'int')) ?? fallback;
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  return read(() => attr(node, name, 'float')) ?? fallback;
}

export function stringAttr(node: Node, name: string, fallback: string): string {
  return read(() => attr(node, name, 'string')) ?? fallback;
}

export function intsAttr(node: Node, name: string): number[] | undefined {
  return read(() => attr(node, name, 'ints'));
}

export function floatsAttr(node: Node, name: string): number[] | undefined {
  return read(() => attr(node, name, 'floats'));
}

export function tensorAttr(node: Node, name: string): Tensor | undefined {
  return read(() => attr(node, name, 'tensor'));
}

export function requireAttr<T>(value: T | undefined, node: Node, name: string): T {
  if (value === undefined) throw new OpError(`${node.opType} requires attribute '${name}'`);
  return value;
}

/** Resolve a possibly negative axis against `rank`, as ONNX specifies. */
export function normalizeAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new OpError(`${what} ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

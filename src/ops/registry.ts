import type { Node } from '../onnx/graph.js';
import type { OpDef } from './op-def.js';
import { relu } from './relu.js';

/**
 * Every op slimkit understands, keyed by ONNX op type (domain ai.onnx). A test checks that each
 * module in src/ops is listed here. An op that is not here is unsupported: validation names it.
 */
export const OPS = {
  Relu: relu,
} as const;

export type OpType = keyof typeof OPS;

export function isKnownOp(opType: string, domain = ''): opType is OpType {
  return (domain === '' || domain === 'ai.onnx') && Object.hasOwn(OPS, opType);
}

/** The definition for a node, or undefined when slimkit does not support it. */
export function opDefFor(node: Pick<Node, 'opType' | 'domain'>): OpDef<unknown> | undefined {
  return isKnownOp(node.opType, node.domain) ? (OPS[node.opType] as OpDef<unknown>) : undefined;
}

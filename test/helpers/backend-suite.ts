/** ONNX's backend test cases as Debian's libonnx-testdata (ONNX 1.12) installs them. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelProto } from '../../src/onnx/proto.js';

export const BACKEND_ROOT = '/usr/include/onnx/backend/test/data';
/** `node` is the suite the task names; the other folders add older-opset PyTorch exports for free. */
const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'];

export interface BackendCase {
  /** suite/name, e.g. node/test_slice_neg_steps. */
  id: string;
  dir: string;
}

export const backendSuitePresent = (): boolean => existsSync(join(BACKEND_ROOT, 'node'));

/**
 * Every case, split by whether `accept` takes all of its nodes' (op type, domain) pairs. The op types
 * are read from the raw proto, before decoding, so a case with an op slimkit does not know costs nothing.
 */
export function backendCases(accept: (opType: string, domain: string) => boolean): { accepted: BackendCase[]; rejected: number } {
  const accepted: BackendCase[] = [];
  let rejected = 0;
  for (const suite of SUITES) {
    const base = join(BACKEND_ROOT, suite);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const dir = join(base, name);
      if (!existsSync(join(dir, 'model.onnx'))) continue;
      const nodes = ModelProto.decode(readFileSync(join(dir, 'model.onnx'))).graph?.node ?? [];
      if (nodes.every((n) => accept(n.op_type ?? '', n.domain ?? ''))) accepted.push({ id: `${suite}/${name}`, dir });
      else rejected++;
    }
  }
  return { accepted, rejected };
}

/** deploy: a `slim deploy` bundle of one variant, written to `<run>/deploy/<stage id>/`. */
import path from 'node:path';
import { deploy } from '../../deploy/bundle.js';
import { formatBytes } from '../../report/format.js';
import type { DeploySpec } from '../recipe.js';
import { MODELS } from '../store.js';
import type { StageContext, StageOutput } from './context.js';

export async function runDeploy(ctx: StageContext, spec: DeploySpec, id: string, variant: string): Promise<StageOutput<'deploy'>> {
  const out = path.join(ctx.runDir, 'deploy', id);
  const r = await deploy({
    model: path.join(ctx.runDir, MODELS, `${variant}.onnx`),
    target: spec.target,
    out,
    force: true,
    labels: [...(await ctx.data()).train.classes],
    name: spec.name ?? `${ctx.recipe.name}-${variant}`,
    log: (line) => ctx.log(`  ${line}`),
  });
  ctx.log(`  ${spec.target} bundle: ${path.relative(process.cwd(), out)} (${r.files.length} files, ${formatBytes(r.totalBytes)})`);
  return {
    result: { variant, target: spec.target, out: path.relative(ctx.runDir, out), files: r.files.length, total_bytes: r.totalBytes, model_bytes: r.model.bytes, model_sha256: r.model.sha256 },
    gpuSeconds: 0,
  };
}

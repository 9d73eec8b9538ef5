/**
 * Mean activation per channel of the values that Conv / Gemm layers read, over a few calibration
 * images run through ONNX Runtime: what a removed channel is replaced by (apply.ts, RemoveOptions.means).
 */
import type { Graph } from '../../onnx/graph.js';
import { channelMoments, type ChannelStatsOptions } from '../../runtime/channel-stats.js';
import type { DependencyGraph } from './dependency-graph.js';
import { portValue } from './node.js';

export type Calibration = ChannelStatsOptions;

/** The values whose channels Conv / Gemm read (in-ports of ops with independent outputs) in some group. */
export function readValues(dep: DependencyGraph): string[] {
  const values = new Set<string>();
  for (const d of dep.nodes) {
    if (d.ports?.coupling !== 'independent' || !d.rule?.compensate) continue;
    for (const slot of d.ports.inputs) {
      const v = portValue(d, 'in', slot);
      // Means are taken on axis 1 (channelMoments): a channels-last value (ConvNeXt's MLP) is not compensated.
      if (v && dep.spaces.get(v)?.axis === 1 && dep.groups.some((g) => g.members.has(v))) values.add(v);
    }
  }
  return [...values];
}

/** Per value, the mean over images and positions of each channel (axis 1: Conv and Gemm read them there). */
export async function channelMeans(graph: Graph, values: readonly string[], c: Calibration): Promise<Map<string, Float64Array>> {
  const moments = await channelMoments(graph, values, c);
  return new Map([...moments].map(([name, m]) => [name, m.mean]));
}

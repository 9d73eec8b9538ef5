import type { Node } from '../../onnx/graph.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { ChannelParam } from './channel-rule.js';

/** A stored tensor sliced with a group's channels: where it is, and which value's channels index it. */
export interface GroupParam {
  node: Node;
  param: ChannelParam;
  /** The initializer's name and contents. */
  name: string;
  tensor: Tensor;
  /** The value whose channels index the tensor along `param.axis`. */
  value: string;
}

/**
 * Channels that must be pruned together: removing group channel i removes, in every member value, the
 * channels mapped to i — and with them the matching slices of every param. Coordinates are the root's:
 * group channel i is output channel i of the root (the first Conv/Gemm, in topological order, that
 * writes these channels), so importance scores line up with the layer a user knows.
 */
export interface Group {
  id: number;
  root: { node: Node; value: string };
  /** Group channels: what importance scores and plans count. */
  size: number;
  /**
   * The root's channels in the group: `size`, or a multiple of it where channels are tied (a grouped
   * conv ties position j of every group into one group channel). What reports call the group's channels.
   */
  rootChannels: number;
  /** Per member value: for each of its channels, the group channel it belongs to (−1: another group's). */
  members: Map<string, Int32Array>;
  /** Per group channel, the dependency graph's component id. */
  components: Int32Array;
  params: GroupParam[];
  /** Names of the nodes that read or write the group's channels. */
  nodes: string[];
}

/**
 * Per-channel sums of a member's statistic, into group coordinates: out[group channel] += stat[channel].
 * With `period` (ChannelParam.period) the statistic is per position within a group, shared by the
 * channels at that position in every group: each gets its share, so the group channel gets it once.
 */
export function accumulate(group: Group, value: string, stat: ArrayLike<number>, out: Float64Array, period?: number): void {
  const map = group.members.get(value);
  if (!map) return;
  const share = period === undefined ? 1 : period / map.length;
  for (let c = 0; c < map.length; c++) {
    const g = map[c]!;
    if (g >= 0) out[g]! += (period === undefined ? stat[c]! : stat[c % period]!) * share;
  }
}

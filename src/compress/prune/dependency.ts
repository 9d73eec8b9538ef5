import type { ChannelLink } from './channel-rule.js';
import { portValue, type DepNode } from './node.js';

/**
 * "Pruning channels of `from` prunes channels of `to`": channel `fromStart + i` of value `from` is
 * channels `toStart + i·span … toStart + i·span + span − 1` of value `to`, for i < count, because node
 * `node` couples them. Plain data. Torch-Pruning also keeps edges from a layer's output to the next
 * layer's input; here every port that reads or writes a value shares that value's channels, so those
 * edges are implicit and only couplings inside ops are listed.
 */
export interface Dependency {
  node: string;
  from: string;
  to: string;
  fromStart: number;
  toStart: number;
  count: number;
  span: number;
}

/**
 * The dependencies a node declares through its ports. `channels(value)` gives a value's channel
 * count, or undefined when it has no channel axis (such ports are skipped).
 */
export function nodeDependencies(dep: DepNode, channels: (value: string) => number | undefined): Dependency[] {
  const ports = dep.ports;
  if (!ports) return [];
  // 'independent' adds nothing between inputs and outputs; ties hold whatever the coupling.
  const links: ChannelLink[] = [...(ports.ties ?? [])];
  if (ports.coupling === 'same') {
    const all = [
      ...ports.inputs.map((slot) => ({ side: 'in' as const, slot })),
      ...ports.outputs.map((slot) => ({ side: 'out' as const, slot })),
    ].filter((ref) => channels(portValue(dep, ref.side, ref.slot) ?? '') !== undefined);
    const [first, ...rest] = all;
    for (const to of rest) {
      const count = channels(portValue(dep, first!.side, first!.slot)!)!;
      links.push({ from: first!, to, fromStart: 0, toStart: 0, count, span: 1 });
    }
  } else if (ports.coupling !== 'independent') {
    links.push(...ports.coupling);
  }
  const out: Dependency[] = [];
  for (const link of links) {
    const from = portValue(dep, link.from.side, link.from.slot);
    const to = portValue(dep, link.to.side, link.to.slot);
    if (!from || !to || channels(from) === undefined || channels(to) === undefined) continue;
    out.push({ node: dep.node.name, from, to, fromStart: link.fromStart, toStart: link.toStart, count: link.count, span: link.span });
  }
  // Counts that differ are left to the dependency graph, which freezes both values.
  for (const same of ports.sameChannels ?? []) {
    const to = portValue(dep, same.port.side, same.port.slot);
    const count = to === undefined ? undefined : channels(to);
    if (to && count !== undefined) out.push({ node: dep.node.name, from: same.value, to, fromStart: 0, toStart: 0, count, span: 1 });
  }
  return out;
}

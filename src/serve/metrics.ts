/**
 * A tiny Prometheus registry: counters and histograms with labels, gauges read at scrape time, and the
 * text exposition format 0.0.4. Small enough to read whole; no client library on the device.
 */

export type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

const num = (v: number): string => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');
const key = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort());

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.values.get(k) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(k, entry);
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }
  lines(name: string): string[] {
    return [...this.values.values()].map((e) => `${name}${labelText(e.labels)} ${num(e.value)}`);
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly buckets: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
  lines(name: string): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${name}_bucket${labelText(s.labels, ['le', num(b)])} ${s.counts[i]}`));
      out.push(`${name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
      out.push(`${name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      out.push(`${name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly families: Family[] = [];

  counter(name: string, help: string): Counter {
    const c = new Counter();
    this.families.push({ name, help, type: 'counter', render: () => c.lines(name) });
    return c;
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const h = new Histogram(buckets);
    this.families.push({ name, help, type: 'histogram', render: () => h.lines(name) });
    return h;
  }

  /** A gauge whose value(s) are read when scraped. */
  gauge(name: string, help: string, read: () => number | { labels: Labels; value: number }[]): void {
    this.families.push({
      name,
      help,
      type: 'gauge',
      render: () => {
        const v = read();
        return typeof v === 'number' ? [`${name} ${num(v)}`] : v.map((e) => `${name}${labelText(e.labels)} ${num(e.value)}`);
      },
    });
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families) {
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.render());
    }
    return `${out.join('\n')}\n`;
  }
}

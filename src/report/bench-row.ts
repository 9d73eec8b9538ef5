import type { BenchTarget } from '../runtime/benchmark-web.js';

/** One row of the comparison: the seed article's size / latency / accuracy table, measured. */
export interface BenchRow {
  file: string;
  size_bytes: number;
  gzip_bytes: number;
  params: number;
  nonzero_params: number;
  /** Per image; null when the input's H×W is free and no size is known, or ops slimkit has no definition for could not be measured. */
  macs: number | null;
  /** Ops slimkit has no definition for, whose MACs `macs` leaves out; absent when there are none. */
  macs_without_ops?: string[];
  latency_ms: { p50: number; p90: number; p99: number; mean: number };
  /** Images per latency run: 1, or the batch a model exported for one batch size takes. */
  latency_batch: number;
  /** Timed latency runs (--runs; with auto, chosen from the warm-up); absent in older manifests. */
  latency_runs?: number;
  /** Untimed runs before them (--warmup); absent in older manifests. */
  warmup_runs?: number;
  throughput_ips: number;
  throughput_batch: number;
  /** Peak resident memory of the process that ran the model; null in the browser (not measured). */
  peak_rss_bytes: number | null;
  threads: number;
  /** Absent in run manifests older than these two fields (they were measured on the host). */
  target?: BenchTarget;
  /** What ran the model, e.g. "onnxruntime-node 1.30.0" or "onnxruntime-web 1.30.0 (WebAssembly) in Chromium 156…". */
  runtime?: string;
  /** --target web: the largest difference between the browser's first output and onnxruntime-node's. */
  max_abs_diff_vs_node?: number;
  top1?: number;
  /**
   * On an x64 CPU whose int8 sums saturate: the int8 model's top-1 on exact kernels (its weights as
   * uint8: what arm64, VNNI x64 and the browser compute). Absent where `top1` is exact already.
   */
  top1_exact_kernels?: number;
  eval_images?: number;
  /** Which of the eval images it got right, one bit each (report/paired.ts); absent in older manifests. */
  correct?: string;
  /** The same on exact int8 kernels, beside `top1_exact_kernels` (run benches; absent in older manifests). */
  correct_exact_kernels?: string;
  /** Eval images the model scored NaN (counted wrong); absent when none. */
  nan_images?: number;
  /**
   * The p50 of each turn, in round order, when the models were timed in turns (report/latency-ratio.ts
   * compares by them); absent for one model and in older manifests.
   */
  turn_p50_ms?: number[];
}

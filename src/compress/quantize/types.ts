/** The typed options and results shared by the quantization modules. */
import type { CpuChoice } from './cpu.js';
import type { QuantType } from './math.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'percentile', 'entropy', 'mse'];

/** How activations are stored: uint8 asymmetric (default) or int8 symmetric. */
export interface ActivationFormat {
  type: 'uint8' | 'int8';
  symmetric: boolean;
}

export const UINT8_ASYMMETRIC: ActivationFormat = { type: 'uint8', symmetric: false };
export const INT8_SYMMETRIC: ActivationFormat = { type: 'int8', symmetric: true };

/** How calibration turns a tensor's histogram into a range. */
export interface CalibrationSettings {
  method: CalibrationMethod;
  /** percentile: the share of values kept inside the range, in percent (default 99.999). */
  percentile: number;
  /** Histogram bins per sign (default 4096); more bins, finer thresholds, more memory. */
  bins: number;
}

export const DEFAULT_CALIBRATION: CalibrationSettings = { method: 'percentile', percentile: 99.999, bins: 4096 };

export interface QuantizeOptions {
  activations: ActivationFormat;
  /** Weight element type; always symmetric (zero point 0), which integer kernels need. */
  weightType: Extract<QuantType, 'int8' | 'uint8'>;
  /** One scale per output channel (default) or one per weight tensor. */
  perChannel: boolean;
  /** 7-bit weights and activations for AVX2 CPUs without VNNI. */
  reduceRange: boolean;
  /** Node names to keep in float. */
  exclude: readonly string[];
  /** Keep the first / last weighted layer (Conv, Gemm, MatMul) in float. */
  keepFirst: boolean;
  keepLast: boolean;
  /**
   * The CPU the int8 Convs are laid out for (cpu.ts, pad-channels.ts, unsigned-layout.ts): 'amx' picks
   * ONNX Runtime's AMX GEMM kernels, 'generic' its VNNI / dot-product direct convolution, 'avx2' its
   * u8×u8 kernels (uint8 weights) for x64 without VNNI; 'auto' (default) this machine (amx or generic).
   * The model is the same either way (the same DequantizeLinear floats); where the kernels are exact it
   * computes the same outputs, and on x64 without VNNI only 'avx2' computes them exactly.
   */
  cpu: CpuChoice;
}

export const DEFAULT_QUANTIZE: QuantizeOptions = {
  activations: UINT8_ASYMMETRIC,
  weightType: 'int8',
  perChannel: true,
  reduceRange: false,
  exclude: [],
  keepFirst: false,
  keepLast: false,
  cpu: 'auto',
};

/** A calibrated range of one tensor (before the widening to hold 0). */
export interface TensorRange {
  min: number;
  max: number;
}

#!/usr/bin/env python3
"""ONNX Runtime's Python quantizer on a model, for bench/quantize-vs-ort.ts: the peer slimkit is measured against.

Static QDQ, per-channel, U8S8 (uint8 activations, int8 weights) — the configuration the issue quotes — with
the calibration images slimkit used (a raw float32 file written by the TypeScript side, NCHW, normalised).

  python3 bench/quantize-ort-python.py --model M.onnx --calib calib.f32 --count 512 --out DIR [--methods minmax,percentile,entropy]

Needs the `onnxruntime` Python package (not a slimkit dependency). Prints one JSON line: {method: {file, seconds}}.
"""
import argparse
import json
import os
import time

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class Reader(CalibrationDataReader):
    def __init__(self, images, input_name, batch):
        self.batches = [images[i:i + batch] for i in range(0, len(images), batch)]
        self.input_name = input_name
        self.index = 0

    def get_next(self):
        if self.index >= len(self.batches):
            return None
        self.index += 1
        return {self.input_name: self.batches[self.index - 1]}

    def rewind(self):
        self.index = 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', required=True)
    p.add_argument('--calib', required=True)
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--methods', default='minmax,percentile')
    p.add_argument('--batch', type=int, default=64)
    a = p.parse_args()
    model = onnx.load(a.model)
    input_name = model.graph.input[0].name
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]
    images = np.fromfile(a.calib, dtype=np.float32).reshape([a.count, *dims])
    pre = os.path.join(a.out, 'ort-preprocessed.onnx')
    quant_pre_process(a.model, pre)  # ORT's recommended step: shape inference + graph optimisation
    methods = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile, 'entropy': CalibrationMethod.Entropy}
    result = {}
    for name in a.methods.split(','):
        out = os.path.join(a.out, f'ort-{name}.onnx')
        t0 = time.time()
        quantize_static(pre, out, Reader(images, input_name, a.batch), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=methods[name])
        result[name] = {'file': out, 'seconds': time.time() - t0}
    print(json.dumps(result))


if __name__ == '__main__':
    main()

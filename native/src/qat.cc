#include "qat.h"

#include <stdexcept>

namespace slim {
namespace {

const at::Tensor& input(const Instr& i, RunState& s, size_t k) {
  if (k >= i.in.size() || i.in[k] < 0) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " is missing");
  const at::Tensor& t = s.slots[i.in[k]];
  if (!t.defined()) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " has not been computed");
  return t;
}

/** Smallest scale a learnable scale may take (also applied when the trained model is exported). */
constexpr double kMinScale = 1e-8;

}  // namespace

void fakeQuantLearnable(const Instr& i, RunState& s) {
  if (i.ints.size() != 4 || i.floats.size() != 1) throw std::runtime_error("node '" + i.node + "': fake_quant_lsq takes ints [perChannel, axis, qmin, qmax] and floats [gradFactor]");
  // Autocast may hand over bf16/fp16; quantization arithmetic runs in float32 as in ONNX Runtime.
  at::Tensor x = input(i, s, 0).to(at::kFloat);
  at::Tensor scale = input(i, s, 1).to(at::kFloat);
  at::Tensor zero = input(i, s, 2).to(at::kFloat).detach();
  bool perChannel = i.ints[0] != 0;
  double qmin = static_cast<double>(i.ints[2]), qmax = static_cast<double>(i.ints[3]);
  double g = i.floats[0];
  if (perChannel) {
    int64_t axis = i.ints[1] < 0 ? i.ints[1] + x.dim() : i.ints[1];
    if (axis < 0 || axis >= x.dim() || scale.numel() != x.size(axis)) {
      throw std::runtime_error("node '" + i.node + "': " + std::to_string(scale.numel()) + " scales for axis " + std::to_string(i.ints[1]) + " of a tensor of shape " + c10::str(x.sizes()));
    }
    std::vector<int64_t> shape(x.dim(), 1);
    shape[axis] = scale.numel();
    scale = scale.reshape(shape);
    zero = zero.reshape(shape);
  } else {
    if (scale.numel() != 1 || zero.numel() != 1) throw std::runtime_error("node '" + i.node + "': a per-tensor scale and zero point hold one value each");
    scale = scale.reshape({});
    zero = zero.reshape({});
  }
  at::Tensor sc = scale.clamp_min(kMinScale);
  // Value s, gradient g·∂/∂s: LSQ's gradient scale, which keeps scale updates in step with weight updates.
  if (g != 1) sc = sc * g + (sc - sc * g).detach();
  at::Tensor v = x / sc;
  at::Tensor rounded = v + (at::round(v) - v).detach();
  at::Tensor q = at::clamp(rounded + zero, qmin, qmax);
  s.slots[i.out.at(0)] = (q - zero) * sc;
}

}  // namespace slim

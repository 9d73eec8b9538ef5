// SyncBatchNorm as a plan kernel ("sync_batch_norm", same ints/floats as "batch_norm"). In training,
// per-channel mean and variance come from the whole global batch: each rank all-reduces its
// (count, Σx, Σx²) once in forward and (Σdy, Σdy·x̂) once in backward. Eval mode, and a process that
// is not part of a group, run plain batch norm.
//
// Gradient scale: each rank back-propagates the mean loss of its own shard, and the reducer later
// weights its gradients by share = n_rank / n_global. The backward sums are weighted by the same share,
// so dx comes out in the rank's own scale and the reducer's weighting makes the result exact even
// when shards differ in size.
#include <torch/csrc/autograd/custom_function.h>

#include "dist.h"
#include "kernels.h"

namespace slim {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> reduceDims(const at::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); d++) if (d != 1) dims.push_back(d);
  return dims;
}

/** [1, C, 1, ...] for broadcasting per-channel vectors against x. */
std::vector<int64_t> channelShape(const at::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return shape;
}

struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  // mean/invstd: global statistics (no gradient flows into them: backward accounts for them itself).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& mean, const at::Tensor& invstd, double total, double share) {
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["total"] = total;
    ctx->saved_data["share"] = share;
    ctx->saved_data["hasBias"] = bias.defined();
    auto shape = channelShape(x);
    at::Tensor scale = weight.defined() ? weight.to(at::kFloat) * invstd : invstd;
    at::Tensor shift = -mean * scale;
    if (bias.defined()) shift = shift + bias.to(at::kFloat);
    return (x.to(at::kFloat) * scale.view(shape) + shift.view(shape)).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    double total = ctx->saved_data["total"].toDouble();
    double share = ctx->saved_data["share"].toDouble();
    auto shape = channelShape(x);
    auto dims = reduceDims(x);
    int64_t c = x.size(1);
    at::Tensor dy = grads[0].to(at::kFloat);
    at::Tensor xhat = (x.to(at::kFloat) - mean.view(shape)) * invstd.view(shape);
    at::Tensor sumDy = dy.sum(dims);
    at::Tensor sumDyXhat = (dy * xhat).sum(dims);
    at::Tensor packed = at::cat({sumDy, sumDyXhat}).to(at::kDouble) * share;
    std::vector<at::Tensor> io{packed};
    dist::allreduceSum(io);
    // Back in this rank's own gradient scale: divide the global sums by share · total.
    at::Tensor a = (io[0].narrow(0, 0, c) / (share * total)).to(at::kFloat);
    at::Tensor b = (io[0].narrow(0, c, c) / (share * total)).to(at::kFloat);
    at::Tensor scale = weight.defined() ? weight.to(at::kFloat) * invstd : invstd;
    at::Tensor dx = (dy - a.view(shape) - xhat * b.view(shape)) * scale.view(shape);
    return {dx.to(x.scalar_type()),
            weight.defined() ? sumDyXhat.to(weight.scalar_type()) : at::Tensor(),
            ctx->saved_data["hasBias"].toBool() ? sumDy : at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

const at::Tensor& slotIn(const Instr& i, RunState& s, size_t k) {
  if (k >= i.in.size() || i.in[k] < 0 || !s.slots[i.in[k]].defined()) {
    throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " is missing");
  }
  return s.slots[i.in[k]];
}

at::Tensor slotOpt(const Instr& i, RunState& s, size_t k) {
  return k < i.in.size() && i.in[k] >= 0 ? s.slots[i.in[k]] : at::Tensor();
}

double floatAt(const Instr& i, size_t k) {
  if (k >= i.floats.size()) throw std::runtime_error("node '" + i.node + "': the plan passes too few float parameters");
  return i.floats[k];
}

}  // namespace

// in [x, scale, bias, runningMean, runningVar]; floats [eps, momentum (PyTorch sense)], as batch_norm.
void syncBatchNorm(const Instr& i, RunState& s) {
  const at::Tensor& x = slotIn(i, s, 0);
  at::Tensor weight = slotOpt(i, s, 1), bias = slotOpt(i, s, 2);
  at::Tensor runningMean = slotIn(i, s, 3), runningVar = slotIn(i, s, 4);
  double eps = floatAt(i, 0), momentum = floatAt(i, 1);
  at::Tensor y;
  if (!s.training || !dist::initialized() || dist::worldSize() == 1) {
    y = at::batch_norm(x, weight, bias, runningMean, runningVar, s.training, momentum, eps, /*cudnn_enabled=*/true);
  } else {
    int64_t c = x.size(1);
    at::Tensor mean, invstd;
    double total, share;
    {
      at::NoGradGuard noGrad;
      at::Tensor xf = x.detach().to(at::kFloat);
      auto [var, localMean] = at::var_mean(xf, reduceDims(x), /*unbiased=*/false, /*keepdim=*/false);
      double n = static_cast<double>(x.numel() / c);
      at::Tensor m = localMean.to(at::kDouble);
      // (n·mean, n·E[x²], n) per rank, summed: float64 keeps E[x²] − mean² from cancelling badly.
      at::Tensor packed = at::cat({m * n, (var.to(at::kDouble) + m * m) * n, at::full({1}, n, m.options())});
      std::vector<at::Tensor> io{packed};
      dist::allreduceSum(io);
      total = io[0][2 * c].item<double>();
      at::Tensor gmean = io[0].narrow(0, 0, c) / total;
      at::Tensor gvar = (io[0].narrow(0, c, c) / total - gmean * gmean).clamp_min(0);
      // Running statistics as PyTorch's SyncBatchNorm keeps them: the unbiased global variance.
      runningMean.mul_(1 - momentum).add_(gmean.to(runningMean.scalar_type()) * momentum);
      runningVar.mul_(1 - momentum).add_((gvar * (total / std::max(total - 1, 1.0))).to(runningVar.scalar_type()) * momentum);
      mean = gmean.to(at::kFloat);
      invstd = (gvar + eps).rsqrt().to(at::kFloat);
      share = n / total;
    }
    y = SyncBatchNormFn::apply(x, weight, bias, mean, invstd, total, share);
  }
  if (!i.out.empty() && i.out[0] >= 0) s.slots[i.out[0]] = std::move(y);
}

}  // namespace slim

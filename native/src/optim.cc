#include "optim.h"

#include <cmath>

namespace slim {

void Optimizer::configure(const OptimConfig& config, const std::vector<at::Tensor>& params) {
  at::NoGradGuard noGrad;
  config_ = config;
  configured_ = true;
  steps = 0;
  first.clear();
  second.clear();
  bool needsFirst = config.kind == OptimKind::AdamW || config.momentum != 0;
  for (const auto& p : params) {
    if (needsFirst) first.push_back(at::zeros_like(p));
    if (config.kind == OptimKind::AdamW) second.push_back(at::zeros_like(p));
  }
}

bool Optimizer::collect(std::vector<at::Tensor>& params, const std::vector<bool>& decay, Update& u) {
  if (!configured_) throw std::runtime_error("the optimizer is not configured: call setOptimizer before training");
  // Only parameters that received a gradient move (a frozen branch keeps its weights and state).
  std::vector<at::Tensor> gDecay;
  std::vector<size_t> decayIndex;
  for (size_t i = 0; i < params.size(); i++) {
    const at::Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    if (decay[i] && config_.weightDecay != 0) decayIndex.push_back(u.p.size());
    u.p.push_back(params[i]);
    u.g.push_back(grad);
    if (!first.empty()) u.m.push_back(first[i]);
    if (!second.empty()) u.v.push_back(second[i]);
  }
  if (u.p.empty()) return false;
  for (size_t k : decayIndex) {
    u.pDecay.push_back(u.p[k]);
    gDecay.push_back(u.g[k]);
  }
  // SGD folds weight decay into the gradient (AdamW decays the weights instead, in step()).
  if (config_.kind == OptimKind::Sgd && !gDecay.empty()) {
    auto decayed = at::_foreach_add(gDecay, u.pDecay, at::Scalar(config_.weightDecay));
    for (size_t j = 0; j < decayIndex.size(); j++) u.g[decayIndex[j]] = decayed[j];
  }
  steps++;
  return true;
}

std::vector<at::Tensor> Optimizer::sgdDirection(Update& u) {
  // PyTorch SGD: d = g + wd·p; buf = momentum·buf + d; d = nesterov ? d + momentum·buf : buf; p -= lr·d
  if (config_.momentum == 0) return u.g;
  at::_foreach_mul_(u.m, at::Scalar(config_.momentum));
  at::_foreach_add_(u.m, u.g, at::Scalar(1.0));
  return config_.nesterov ? at::_foreach_add(u.g, u.m, at::Scalar(config_.momentum)) : u.m;
}

void Optimizer::step(std::vector<at::Tensor>& params, const std::vector<bool>& decay, double lr) {
  at::NoGradGuard noGrad;
  Update u;
  if (!collect(params, decay, u)) return;
  if (config_.kind == OptimKind::Sgd) {
    at::_foreach_add_(u.p, sgdDirection(u), at::Scalar(-lr));
    return;
  }

  // AdamW (PyTorch): p *= 1 - lr·wd; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
  // p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
  if (!u.pDecay.empty()) at::_foreach_mul_(u.pDecay, at::Scalar(1 - lr * config_.weightDecay));
  at::_foreach_mul_(u.m, at::Scalar(config_.beta1));
  at::_foreach_add_(u.m, u.g, at::Scalar(1 - config_.beta1));
  at::_foreach_mul_(u.v, at::Scalar(config_.beta2));
  at::_foreach_addcmul_(u.v, u.g, u.g, at::Scalar(1 - config_.beta2));
  double t = static_cast<double>(steps);
  double correction1 = 1 - std::pow(config_.beta1, t);
  double correction2Sqrt = std::sqrt(1 - std::pow(config_.beta2, t));
  auto denom = at::_foreach_sqrt(u.v);
  at::_foreach_div_(denom, at::Scalar(correction2Sqrt));
  at::_foreach_add_(denom, at::Scalar(config_.eps));
  at::_foreach_addcdiv_(u.p, u.m, denom, at::Scalar(-lr / correction1));
}

void Optimizer::stepCapturable(std::vector<at::Tensor>& params, const std::vector<bool>& decay, const at::Tensor& negLr) {
  if (config_.kind != OptimKind::Sgd) throw std::runtime_error("a captured (CUDA graph) step supports SGD only; AdamW's bias correction changes every step");
  at::NoGradGuard noGrad;
  Update u;
  if (!collect(params, decay, u)) return;
  auto d = sgdDirection(u);
  // One addcmul per parameter: inside a CUDA graph the launches cost nothing, and _foreach with a
  // tensor learning rate is not in every LibTorch this builds against.
  for (size_t i = 0; i < u.p.size(); i++) u.p[i].addcmul_(d[i], negLr);
}

}  // namespace slim

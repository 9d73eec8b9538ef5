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

void Optimizer::step(std::vector<at::Tensor>& params, const std::vector<bool>& decay, double lr) {
  if (!configured_) throw std::runtime_error("the optimizer is not configured: call setOptimizer before training");
  at::NoGradGuard noGrad;
  // Only parameters that received a gradient move (a frozen branch keeps its weights and state).
  std::vector<at::Tensor> p, g, m, v, pDecay, gDecay;
  std::vector<size_t> decayIndex;
  for (size_t i = 0; i < params.size(); i++) {
    const at::Tensor& grad = params[i].grad();
    if (!grad.defined()) continue;
    if (decay[i] && config_.weightDecay != 0) decayIndex.push_back(p.size());
    p.push_back(params[i]);
    g.push_back(grad);
    if (!first.empty()) m.push_back(first[i]);
    if (!second.empty()) v.push_back(second[i]);
  }
  if (p.empty()) return;
  for (size_t k : decayIndex) {
    pDecay.push_back(p[k]);
    gDecay.push_back(g[k]);
  }
  steps++;
  const at::Scalar one(1.0);

  if (config_.kind == OptimKind::Sgd) {
    // PyTorch SGD: d = g + wd·p; buf = momentum·buf + d; d = nesterov ? d + momentum·buf : buf; p -= lr·d
    if (!gDecay.empty()) {
      auto decayed = at::_foreach_add(gDecay, pDecay, at::Scalar(config_.weightDecay));
      for (size_t j = 0; j < decayIndex.size(); j++) g[decayIndex[j]] = decayed[j];
    }
    if (config_.momentum != 0) {
      at::_foreach_mul_(m, at::Scalar(config_.momentum));
      at::_foreach_add_(m, g, one);
      g = config_.nesterov ? at::_foreach_add(g, m, at::Scalar(config_.momentum)) : m;
    }
    at::_foreach_add_(p, g, at::Scalar(-lr));
    return;
  }

  // AdamW (PyTorch): p *= 1 - lr·wd; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
  // p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
  if (!pDecay.empty()) at::_foreach_mul_(pDecay, at::Scalar(1 - lr * config_.weightDecay));
  at::_foreach_mul_(m, at::Scalar(config_.beta1));
  at::_foreach_add_(m, g, at::Scalar(1 - config_.beta1));
  at::_foreach_mul_(v, at::Scalar(config_.beta2));
  at::_foreach_addcmul_(v, g, g, at::Scalar(1 - config_.beta2));
  double t = static_cast<double>(steps);
  double correction1 = 1 - std::pow(config_.beta1, t);
  double correction2Sqrt = std::sqrt(1 - std::pow(config_.beta2, t));
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, at::Scalar(correction2Sqrt));
  at::_foreach_add_(denom, at::Scalar(config_.eps));
  at::_foreach_addcdiv_(p, m, denom, at::Scalar(-lr / correction1));
}

}  // namespace slim

// SGD (momentum, Nesterov, weight decay) and AdamW with PyTorch's update rules, as multi-tensor
// (_foreach) updates: one call per group instead of one per parameter, which is what lets CUDA runs
// beat eager PyTorch's per-parameter loop. On CPU the _foreach ops fall back to the same per-tensor math.
#pragma once

#include "common.h"

namespace slim {

enum class OptimKind : int32_t { Sgd = 0, AdamW = 1 };

struct OptimConfig {
  OptimKind kind = OptimKind::Sgd;
  double momentum = 0.9;
  bool nesterov = false;
  double weightDecay = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class Optimizer {
 public:
  /** Sets the rule and zeroes its state for `params` (zeros equal PyTorch's lazily cloned first buffers). */
  void configure(const OptimConfig& config, const std::vector<at::Tensor>& params);
  /** One update of every parameter that has a gradient; `decay[i]` says whether weight decay applies to params[i]. */
  void step(std::vector<at::Tensor>& params, const std::vector<bool>& decay, double lr);
  /**
   * The same SGD update with the learning rate read from a 0-dim device tensor holding −lr, so a CUDA
   * graph that captured it follows the schedule on replay (a Scalar would be baked into the graph).
   * SGD only: AdamW's bias correction changes every step.
   */
  void stepCapturable(std::vector<at::Tensor>& params, const std::vector<bool>& decay, const at::Tensor& negLr);

  const OptimConfig& config() const { return config_; }
  bool configured() const { return configured_; }
  /** Number of updates so far (AdamW's bias correction reads it; checkpoints save it). */
  int64_t steps = 0;
  /** Per parameter: SGD momentum buffer, or AdamW first moment. */
  std::vector<at::Tensor> first;
  /** Per parameter: AdamW second moment (empty for SGD). */
  std::vector<at::Tensor> second;

 private:
  /** The parameters that received a gradient, their gradients (decayed for SGD) and state; false when none did. */
  struct Update {
    std::vector<at::Tensor> p, g, m, v, pDecay;
  };
  bool collect(std::vector<at::Tensor>& params, const std::vector<bool>& decay, Update& u);
  /** SGD's step direction d (weight decay and momentum applied): the update is p −= lr·d. */
  std::vector<at::Tensor> sgdDirection(Update& u);

  OptimConfig config_;
  bool configured_ = false;
};

}  // namespace slim

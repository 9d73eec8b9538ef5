#include "train.h"

#include "distill.h"
#include "step_graph.h"

#include <ATen/autocast_mode.h>

namespace slim {
namespace {

/**
 * Mixed precision for one forward pass. The autocast state is thread-local, so it is set around each
 * forward on the thread that runs it; leaving clears the cast-weight cache, without which the next
 * step would reuse last step's casts and the weights would look frozen.
 */
class AutocastScope {
 public:
  explicit AutocastScope(const PlanConfig& config) : enabled_(config.autocast != Autocast::None), cuda_(config.device.is_cuda()) {
    if (!enabled_) return;
    at::ScalarType dtype = config.autocast == Autocast::BFloat16 ? at::kBFloat16 : at::kHalf;
#if SLIM_TORCH_AT_LEAST(2, 4)
    auto type = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_enabled(type, true);
#else
    if (cuda_) {
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(true);
    } else {
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(true);
    }
#endif
  }
  ~AutocastScope() {
    if (!enabled_) return;
#if SLIM_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, false);
#else
    if (cuda_) at::autocast::set_enabled(false);
    else at::autocast::set_cpu_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  bool cuda_;
};

at::Tensor forwardLogits(Plan& plan, const at::Tensor& images, bool training) {
  AutocastScope autocast(plan.config());
  return plan.run(plan.prepareInput(images), training).logits;
}

/** Evaluation runs in fp32 whatever the training precision: it scores what the written fp32 model does. */
at::Tensor evalLogits(Plan& plan, const at::Tensor& images) {
  return plan.run(plan.prepareInput(images), false).logits;
}

}  // namespace

at::Tensor stepLoss(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& o, Plan* teacher, at::Tensor& correct) {
  at::Tensor logits = forwardLogits(plan, images, true).to(at::kFloat);
  at::Tensor loss;
  if (teacher || o.targets.defined()) {
    at::Tensor target;
    if (o.targets.defined()) {
      target = cachedTargets(o.targets, logits);
    } else {
      at::NoGradGuard noGrad;
      target = forwardLogits(*teacher, images, false).to(at::kFloat);
    }
    // α·CE + (1 − α)·T²·KL(teacher_T ‖ student_T): see distill.h for why T².
    loss = distillationLoss(logits, labels, target, {o.temperature, o.alpha, o.labelSmoothing});
  } else {
    loss = at::cross_entropy_loss(logits, labels, {}, at::Reduction::Mean, -100, o.labelSmoothing);
  }
  correct = logits.detach().argmax(1).eq(labels).sum();
  return loss;
}

StepResult eagerTrainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& o, Plan* teacher) {
  if (o.seed >= 0) at::manual_seed(static_cast<uint64_t>(o.seed));
  at::Tensor correct;
  at::Tensor loss = stepLoss(plan, images, labels, o, teacher, correct);
  loss.backward();
  auto params = plan.params();
  plan.optimizer().step(params, plan.decayFlags(), o.lr);
  plan.applyMasks();
  plan.clearGrads();
  return {loss.item<double>(), correct.item<int64_t>(), images.size(0)};
}

StepResult trainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& o, Plan* teacher) {
  if (plan.config().cudaGraphs) return graphedTrainStep(plan, images, labels, o, teacher);
  return eagerTrainStep(plan, images, labels, o, teacher);
}

EvalResult evaluate(Plan& plan, const DataSet& data, int64_t batch, int64_t limit, bool keepLogits, int64_t first) {
  c10::InferenceMode inference;
  int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  first = std::min(std::max<int64_t>(first, 0), n);
  auto device = data.config().device;
  at::Tensor lossSum = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
  at::Tensor correct = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  std::vector<at::Tensor> kept;
  for (int64_t start = first; start < n; start += batch) {
    at::Tensor idx = at::arange(start, std::min(n, start + batch), at::TensorOptions().dtype(at::kLong).device(device));
    auto [images, labels] = data.batch(idx, at::Tensor());
    at::Tensor logits = evalLogits(plan, images).to(at::kFloat);
    lossSum += at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum);
    correct += logits.argmax(1).eq(labels).sum();
    if (keepLogits) kept.push_back(logits.cpu());
  }
  EvalResult r;
  r.lossSum = lossSum.item<double>();
  r.correct = correct.item<int64_t>();
  r.count = n - first;
  if (keepLogits && !kept.empty()) r.logits = at::cat(kept, 0).contiguous();
  return r;
}

ProbeResult probe(Plan& plan, const at::Tensor& x, const at::Tensor& outputGrad, bool training) {
  plan.clearGrads();
  at::Tensor input = plan.prepareInput(x).detach();
  input.set_requires_grad(true);
  at::Tensor output = plan.run(input, training).outputs.at(0);
  output.backward(outputGrad.to(output.device()).reshape(output.sizes()));
  return {output.detach(), input.grad()};
}

}  // namespace slim

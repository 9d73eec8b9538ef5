#include "distill.h"

#include <stdexcept>

namespace slim {

at::Tensor distillationLoss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& teacherLogits, const DistillLossOptions& o) {
  if (!(o.temperature > 0)) throw std::runtime_error("the distillation temperature must be positive, got " + std::to_string(o.temperature));
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw std::runtime_error("the distillation alpha must be in [0, 1], got " + std::to_string(o.alpha));
  if (teacherLogits.sizes() != logits.sizes()) {
    throw std::runtime_error("the teacher's logits have shape " + c10::str(teacherLogits.sizes()) + " but the student's have " + c10::str(logits.sizes()) +
                             ": teacher and student must predict the same classes");
  }
  at::Tensor s = logits.to(at::kFloat);
  at::Tensor t = teacherLogits.detach().to(s.device(), at::kFloat);
  at::Tensor hard = at::cross_entropy_loss(s, labels, {}, at::Reduction::Mean, -100, o.labelSmoothing);
  double temp = o.temperature;
  // kl_div(input = log q_student, target = log p_teacher, log_target) = Σ p (log p − log q).
  at::Tensor soft = at::kl_div(at::log_softmax(s / temp, 1), at::log_softmax(t / temp, 1), at::Reduction::Sum, /*log_target=*/true) /
                    static_cast<double>(s.size(0));
  return hard * o.alpha + soft * ((1 - o.alpha) * temp * temp);
}

at::Tensor cachedTargets(const at::Tensor& flat, const at::Tensor& logits) {
  if (flat.numel() != logits.numel()) {
    throw std::runtime_error("cached teacher logits hold " + std::to_string(flat.numel()) + " values, but the batch's logits are " +
                             c10::str(logits.sizes()) + ": the cache belongs to another model or data set");
  }
  return flat.to(logits.device(), at::kFloat).reshape(logits.sizes());
}

}  // namespace slim

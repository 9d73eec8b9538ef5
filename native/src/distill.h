// Knowledge distillation: the one definition of the distillation loss that every training step uses,
// whether the teacher's logits come from a teacher plan run on the batch or from a cached table.
#pragma once

#include "common.h"

namespace slim {

struct DistillLossOptions {
  double temperature = 4;
  /** Weight of the hard-label cross-entropy; 1 − alpha goes to the soft targets. */
  double alpha = 0.5;
  double labelSmoothing = 0;
};

/**
 * α·CE(student, labels) + (1 − α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), the KL summed over
 * classes and averaged over the batch (PyTorch's reduction="batchmean").
 *
 * Why T²: the soft-target gradient with respect to a student logit is (softmax(s/T) − softmax(t/T))/T,
 * and for T well above the logit spread that difference itself shrinks like 1/T, so the gradient falls
 * like 1/T². Multiplying by T² keeps the soft targets' share of the gradient the same whatever T is
 * (Hinton et al., 2015), so α means the same thing at T = 2 and at T = 8. Without it (as in the
 * article this project started from) raising T silently turns distillation off.
 *
 * `teacherLogits` carry no gradient (detached here).
 */
at::Tensor distillationLoss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& teacherLogits, const DistillLossOptions& o);

/**
 * Cached teacher logits for a batch, as passed from JS (flat float32, B×classes row-major), checked
 * against the student's logits and moved to their device.
 */
at::Tensor cachedTargets(const at::Tensor& flat, const at::Tensor& logits);

}  // namespace slim

// The hot path: one training step (forward, loss, backward, optimizer update, masks) and whole-set
// evaluation, entirely in native code. Callers get scalars back.
#pragma once

#include "data.h"
#include "plan.h"

namespace slim {

struct StepOptions {
  double lr = 0.1;
  double labelSmoothing = 0;
  /** ≥ 0: reseed LibTorch's generators first (dropout), so a resumed run replays the same masks. */
  int64_t seed = -1;
  /** Distillation: loss = α·CE + (1 − α)·T²·KL(teacher_T ‖ student_T). */
  double temperature = 1;
  double alpha = 1;
  /** Cached teacher logits for this batch (flat B×classes float32); distills without a teacher plan. */
  at::Tensor targets;
};

struct StepResult {
  double loss;
  int64_t correct;
  int64_t count;
};

/**
 * The differentiable part of a step: forward (autocast as configured), the loss (cross-entropy, or
 * distillation with a teacher or cached targets) and the count of correct top-1 predictions.
 */
at::Tensor stepLoss(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& options, Plan* teacher, at::Tensor& correct);

/** One eager update (the plan's gradients must be cleared), leaving them cleared again. */
StepResult eagerTrainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& options, Plan* teacher);

/**
 * One update on a batch already on the device. `teacher` (eval mode, no gradients) turns on distillation.
 * Goes through a captured CUDA graph when the plan was created with `cudaGraphs` (step_graph.h).
 */
StepResult trainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& options, Plan* teacher);

struct EvalResult {
  double lossSum = 0;
  int64_t correct = 0;
  int64_t count = 0;
  /** N×classes float32 on the CPU, when asked for. */
  at::Tensor logits;
};

/** Eval-mode pass over images `first` … `limit` − 1 (limit ≤ 0: to the end), in order, without augmentation, in fp32 (no autocast). */
EvalResult evaluate(Plan& plan, const DataSet& data, int64_t batch, int64_t limit, bool keepLogits, int64_t first = 0);

struct ProbeResult {
  at::Tensor output;
  at::Tensor inputGrad;
};

/**
 * For gradient checks: runs the plan on `x`, back-propagates `outputGrad` from the first graph output,
 * and leaves each parameter's gradient in place for reading.
 */
ProbeResult probe(Plan& plan, const at::Tensor& x, const at::Tensor& outputGrad, bool training);

}  // namespace slim

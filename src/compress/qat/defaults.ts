/**
 * QAT's defaults, in a module of their own so that recipe validation can name them without loading the
 * training engine. A small learning rate with cosine decay: QAT starts from a trained model and only has
 * to adapt it to the quantization grid. Distillation from the float model is the CLI's and the recipe's
 * default: on the PyTorch-trained ResNet18-CIFAR ×0.25 (1 epoch, CPU, 2 seeds) plain QAT ended 0.13 pt
 * below PTQ, distilled QAT 0.11–0.15 pt above it and above fp32.
 */
export const QAT_DEFAULTS = { batch: 128, lr: 1e-3, adamwLr: 1e-5, weightDecay: 5e-5, schedule: 'cosine', distill: true } as const;

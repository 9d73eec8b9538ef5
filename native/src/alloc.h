// Counts live CPU tensor allocations made through LibTorch's CPU allocator, so a test can check that a
// training step leaves no tensor behind (the native twin of TensorFlow.js's leak checks).
#pragma once

#include <cstdint>

namespace slim {

struct AllocStats {
  /** Allocations made since counting started that are still alive. */
  int64_t live;
  int64_t liveBytes;
  /** All allocations made since counting started. */
  int64_t total;
  bool counting;
};

/** Wraps the CPU allocator (once); tensors allocated before this are not counted. */
bool startAllocationCounting();
AllocStats allocationStats();

}  // namespace slim

#include "alloc.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstring>

namespace slim {
namespace {

std::atomic<int64_t> liveCount{0}, liveBytes{0}, totalCount{0};

struct Counted {
  c10::DataPtr inner;
  size_t bytes;
};

void releaseCounted(void* ctx) {
  auto* counted = static_cast<Counted*>(ctx);
  liveCount--;
  liveBytes -= static_cast<int64_t>(counted->bytes);
  delete counted;  // frees the wrapped allocation through its own deleter
}

/**
 * Delegates to the allocator it replaces. Both `allocate` signatures are declared (LibTorch 1.x has
 * a const one, 2.3+ a non-const one) and so is copy_data (pure virtual since 2.3), so one source
 * compiles against both without version checks.
 */
struct CountingAllocator final : c10::Allocator {
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr wrap(c10::DataPtr ptr, size_t n) const {
    void* data = ptr.get();
    c10::Device device = ptr.device();
    auto* counted = new Counted{std::move(ptr), n};
    liveCount++;
    totalCount++;
    liveBytes += static_cast<int64_t>(n);
    return c10::DataPtr(data, counted, &releaseCounted, device);
  }
  c10::DataPtr allocate(size_t n) const { return wrap(inner_->allocate(n), n); }
  c10::DataPtr allocate(size_t n) { return wrap(inner_->allocate(n), n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

 private:
  c10::Allocator* inner_;
};

CountingAllocator* installed = nullptr;

}  // namespace

bool startAllocationCounting() {
  if (installed) return true;
  c10::Allocator* current = c10::GetCPUAllocator();
  installed = new CountingAllocator(current);  // lives for the process: tensors may outlive any scope
  c10::SetCPUAllocator(installed, /*priority=*/UINT8_MAX);
  return c10::GetCPUAllocator() == installed;
}

AllocStats allocationStats() {
  return {liveCount.load(), liveBytes.load(), totalCount.load(), installed != nullptr};
}

}  // namespace slim

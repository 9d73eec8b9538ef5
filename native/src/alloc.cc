#include "alloc.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace slim {
namespace {

std::atomic<int64_t> liveCount{0}, liveBytes{0}, totalCount{0};

/**
 * Live allocations by data pointer. The context of each DataPtr is its data pointer, as LibTorch's
 * raw_allocate / raw_deallocate (used by oneDNN) require, so the wrapped originals live in this map.
 */
std::mutex mutex;
std::unordered_map<void*, std::pair<c10::DataPtr, size_t>>* live = nullptr;

void release(void* data) {
  std::pair<c10::DataPtr, size_t> entry;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = live->find(data);
    if (it == live->end()) return;
    entry = std::move(it->second);
    live->erase(it);
  }
  liveCount--;
  liveBytes -= static_cast<int64_t>(entry.second);
  // entry.first frees the allocation through the wrapped allocator's own deleter here.
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
    if (data == nullptr) return ptr;  // empty tensors: nothing to count
    c10::Device device = ptr.device();
    {
      std::lock_guard<std::mutex> lock(mutex);
      live->emplace(data, std::make_pair(std::move(ptr), n));
    }
    liveCount++;
    totalCount++;
    liveBytes += static_cast<int64_t>(n);
    return c10::DataPtr(data, data, &release, device);
  }
  c10::DataPtr allocate(size_t n) const { return wrap(inner_->allocate(n), n); }
  c10::DataPtr allocate(size_t n) { return wrap(inner_->allocate(n), n); }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

 private:
  c10::Allocator* inner_;
};

CountingAllocator* installed = nullptr;

}  // namespace

bool startAllocationCounting() {
  if (installed) return true;
  live = new std::unordered_map<void*, std::pair<c10::DataPtr, size_t>>();
  c10::Allocator* current = c10::GetCPUAllocator();
  installed = new CountingAllocator(current);  // lives for the process: tensors may outlive any scope
  c10::SetCPUAllocator(installed, /*priority=*/UINT8_MAX);
  return c10::GetCPUAllocator() == installed;
}

AllocStats allocationStats() {
  return {liveCount.load(), liveBytes.load(), totalCount.load(), installed != nullptr};
}

}  // namespace slim

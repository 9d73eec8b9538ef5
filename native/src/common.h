// Shared includes and helpers for the slimkit LibTorch addon. Only ATen is included (autograd works
// through ATen's Tensor methods); not <torch/torch.h>, which multiplies the build time.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard: ATen.h stopped including it in LibTorch 2.14
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

// Version checks for API differences between LibTorch 1.13 (Debian) and 2.x (pip, CUDA hosts).
#define SLIM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace slim {

/** The message of a LibTorch error without its C++ backtrace (the JS stack says where it came from). */
inline std::string torchMessage(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  // 1.13 appends "Exception raised from ..." lines; the first line is what users can act on.
  auto cut = msg.find("\nException raised from");
  return cut == std::string::npos ? msg : msg.substr(0, cut);
}

/**
 * Runs `fn`, turning LibTorch and standard exceptions into JS errors. Every entry point from JS goes
 * through this, so a shape mistake in a model never aborts the Node process.
 */
template <typename F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, torchMessage(e));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

/** Same, for code on a worker thread: returns the message instead of throwing into JS. */
template <typename F>
bool catchInto(std::string& error, F&& fn) {
  try {
    fn();
    return true;
  } catch (const c10::Error& e) {
    error = torchMessage(e);
  } catch (const std::exception& e) {
    error = e.what();
  }
  return false;
}

/** Sets the intra-op thread count on the calling thread (OpenMP keeps it per thread). */
void applyThreads();
void setThreads(int n);

// Typed-array conversions. Tensors are copied: JS memory never backs a LibTorch tensor, so no tensor
// lifetime depends on the JS garbage collector.
at::Tensor tensorFromTyped(const Napi::TypedArray& array, const std::vector<int64_t>& dims, at::ScalarType type);
/** A batch's augmentation (Int32Array, B×3 crop placements or B×5 resized-crop boxes; null/undefined: none) as int64. */
at::Tensor augFrom(const Napi::Value& v, int64_t batch);
Napi::Float32Array toFloat32Array(Napi::Env env, const at::Tensor& t);
std::vector<int64_t> intsFrom(const Napi::Value& value);

double numberOr(const Napi::Object& o, const char* key, double fallback);
bool boolOr(const Napi::Object& o, const char* key, bool fallback);

}  // namespace slim

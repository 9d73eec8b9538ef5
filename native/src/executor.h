// One dedicated thread runs every queued LibTorch job (training steps, evaluation) in order. A single
// thread keeps OpenMP's thread team warm between steps (libuv's pool would hop between threads, each
// with its own team) and makes jobs on the same plan sequential by construction.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common.h"

namespace slim {

/**
 * A queued job: `work` runs on the torch thread; `finally` and then `result` (or a rejection with the
 * error) run back on the JS thread.
 */
struct Job {
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env)> result;
  std::function<void()> finally;
  Napi::Promise::Deferred deferred;
  std::string error;
  /** JS objects the job uses (plans, data sets), kept alive until it is delivered. */
  std::vector<Napi::ObjectReference> keep;
  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

class Executor {
 public:
  explicit Executor(Napi::Env env);
  ~Executor();
  /** Queues `job` (takes ownership) and returns its promise. Call on the JS thread. */
  Napi::Promise submit(Job* job);

 private:
  void loop();
  static void deliver(Napi::Env env, Napi::Function, Executor* self, Job* job);

  Napi::ThreadSafeFunction tsfn_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  /** Jobs submitted and not yet delivered; the event loop is kept alive while > 0. */
  int pending_ = 0;
  std::thread thread_;
};

}  // namespace slim

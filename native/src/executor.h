// One dedicated thread runs all LibTorch work: queued jobs (training steps, evaluation) and the
// synchronous calls (plan building, forward passes, weight copies) alike. One thread keeps OpenMP to a
// single thread team: the JS thread itself never starts one, so no idle team spins on the two cores
// while steps run, and jobs on the same plan are sequential by construction.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

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
  /**
   * Runs `work` on the torch thread after the jobs queued before it, blocking the JS thread until it
   * is done; rethrows its error. For short synchronous calls.
   */
  void run(const std::function<void()>& work);

 private:
  void push(std::function<void()> task);
  void loop();
  static void deliver(Napi::Env env, Executor* self, Job* job);

  Napi::ThreadSafeFunction tsfn_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  /** Jobs submitted and not yet delivered; the event loop is kept alive while > 0. */
  int pending_ = 0;
  std::thread thread_;
};

/** The process's executor (created when the addon loads). */
Executor& torchThread();

class Plan;

/**
 * Queues `work` on the torch thread for a promise: refuses a plan already busy with a queued step,
 * marks `plans` busy until the job is delivered, keeps `users` (the JS objects the work reads) alive,
 * and settles with `result`.
 */
Napi::Value queuePlanJob(Napi::Env env, std::vector<Napi::Object> users, std::vector<Plan*> plans, std::function<void()> work,
                         std::function<Napi::Value(Napi::Env)> result);

}  // namespace slim

// Data-parallel training over torch.distributed's c10d: one process group per process (Gloo on CPU,
// NCCL on CUDA when this LibTorch has it), rendezvous through a TCPStore, and the helpers the reducer
// (dist_reducer.cc), SyncBatchNorm (dist_bn.cc) and the JS bindings (dist_addon.cc) share.
//
// Failure model: every collective is bounded by the group's timeout (a dead peer usually fails it at
// once: its sockets close). A heartbeat thread publishes "beat:step" for this rank in the store, so a
// rank that sees a collective fail can name the rank that stopped (diagnose()).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace slim {
namespace dist {

struct InitOptions {
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  /** Bounds the rendezvous and every collective. */
  std::chrono::milliseconds timeout{300000};
  /** "gloo" or "nccl". */
  std::string backend = "gloo";
  /** Gloo: the network interface to bind ($GLOO_SOCKET_IFNAME); empty: derived from the master address. */
  std::string interface;
};

/** What this LibTorch can do: Gloo (c10d + gloo headers at build time) and NCCL (CUDA builds). */
bool hasGloo();
bool hasNccl();

/** Rendezvous and creates the process group; throws with a message naming the rank and the address. */
void init(const InitOptions& options);
bool initialized();
int rank();
int worldSize();
std::string backend();
/** Drops the group after a clean finish (all collectives done). Error paths never call it: see dist_group.cc. */
void shutdown();

/** Synchronous collectives on the group (in place). Tensors must live where the backend wants them. */
void allreduceSum(std::vector<at::Tensor>& tensors);
void broadcast(std::vector<at::Tensor>& tensors, int root);
void barrier();

/** An in-flight collective (the reducer overlaps these with backward). */
class Pending {
 public:
  virtual ~Pending() = default;
  /** Blocks until done; throws the backend's error. */
  virtual void wait() = 0;
};
std::unique_ptr<Pending> allreduceSumAsync(at::Tensor& flat);

/** Published by the heartbeat so that peers can tell a stuck rank from a dead one. */
void setStep(int64_t step);

struct RankStatus {
  int rank;
  /** The heartbeat advanced during the probe. */
  bool alive;
  /** Last step the rank announced (-1: never). */
  int64_t step;
};
struct Diagnosis {
  /** False when the store (hosted by rank 0) could not be reached. */
  bool storeReachable = true;
  std::string storeError;
  std::vector<RankStatus> ranks;
};
/** Reads every rank's heartbeat twice, `probe` apart. */
Diagnosis diagnose(std::chrono::milliseconds probe);

}  // namespace dist

struct Instr;
struct RunState;
/** The "sync_batch_norm" plan kernel: batch statistics over all ranks in training (dist_bn.cc). */
void syncBatchNorm(const Instr& i, RunState& s);

}  // namespace slim

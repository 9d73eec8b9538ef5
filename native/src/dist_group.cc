// The process group: TCPStore rendezvous, Gloo (CPU) or NCCL (CUDA) from the LibTorch the engine links,
// the heartbeat, and failure diagnosis. Debian's libtorch 1.13 exports ProcessGroupGloo and TCPStore;
// its ProcessGroupGloo.hpp needs the gloo headers (Debian: libgloo-dev, the same gloo libtorch links).
// Without them the addon still builds and init() says what to install.
#include "dist.h"

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

#if __has_include(<torch/csrc/distributed/c10d/TCPStore.hpp>)
#define SLIM_HAS_C10D 1
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#if defined(SLIM_HAS_C10D) && __has_include(<gloo/context.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#define SLIM_HAS_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#if defined(SLIM_HAS_C10D) && defined(SLIM_WITH_CUDA) && __has_include(<nccl.h>) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#define SLIM_HAS_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace slim {
namespace dist {

bool hasGloo() {
#ifdef SLIM_HAS_GLOO
  return true;
#else
  return false;
#endif
}

bool hasNccl() {
#ifdef SLIM_HAS_NCCL
  return true;
#else
  return false;
#endif
}

#ifdef SLIM_HAS_C10D

namespace {

// LibTorch 2.x moved the collectives from ProcessGroup to Backend (ProcessGroupGloo/NCCL derive from it).
#if SLIM_TORCH_AT_LEAST(2, 0)
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

constexpr auto kBeat = std::chrono::milliseconds(1000);

struct State {
  InitOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> step{-1};
};

// Never freed: on an error path a group may still have a collective blocked on a dead peer, and its
// destructor would join that thread. Process exit reclaims everything instead.
State* state = nullptr;

State& current() {
  if (!state) throw std::runtime_error("distributed training is not initialized (call dist.init first)");
  return *state;
}

std::string heartbeatKey(int rank) { return "slim/heartbeat/" + std::to_string(rank); }

// TCPStoreOptions::useLibUV: absent in 1.13, true by default in 2.6 and 2.14 (Debian's headers). These
// find it by overload resolution, so every version builds.
template <typename Options>
auto useLibUv(const Options& so, int) -> decltype(bool(so.useLibUV)) { return so.useLibUV; }
template <typename Options>
bool useLibUv(const Options&, long) { return false; }
template <typename Options>
auto setUseLibUv(Options& so, bool on, int) -> decltype(so.useLibUV = on, void()) { so.useLibUV = on; }
template <typename Options>
void setUseLibUv(Options&, bool, long) {}

/**
 * The rendezvous connection (`rendezvous`: every rank counts itself in and waits for all, rank 0
 * serves), or an extra client for the heartbeat and diagnosis, which must not count itself in.
 */
c10::intrusive_ptr<c10d::TCPStore> connect(const InitOptions& o, bool rendezvous, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.masterPort);
  so.isServer = rendezvous && o.rank == 0;
  so.timeout = timeout;
  if (rendezvous) so.numWorkers = static_cast<std::size_t>(o.worldSize);
  so.waitWorkers = rendezvous;
  // USE_LIBUV=0 turns the libuv store backend off, as it does for PyTorch's own rendezvous.
  const char* env = std::getenv("USE_LIBUV");
  if (env && std::string(env) == "0") setUseLibUv(so, false, 0);
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);
  } catch (const std::exception& e) {
    // A PyTorch built without libuv (Debian's 2.x) refuses the default it asks for; its classic
    // backend serves the few keys a rendezvous and the heartbeats need just as well.
    if (!useLibUv(so, 0) || std::string(e.what()).find("libuv") == std::string::npos) throw;
    setUseLibUv(so, false, 0);
    return c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);
  }
}

std::string where(const InitOptions& o) { return o.masterAddr + ":" + std::to_string(o.masterPort); }

bool isLoopback(const std::string& addr) { return addr == "127.0.0.1" || addr == "localhost" || addr == "::1"; }

/** Publishes "beat:step" every second on its own store connection (TCPStore clients are not thread-safe). */
void startHeartbeat(State* s) {
  std::thread([s] {
    c10::intrusive_ptr<c10d::TCPStore> client;
    int64_t beat = 0;
    int failures = 0;
    // Three failed reconnects in a row: the store (rank 0) is gone, and this rank's next collective
    // fails on its own. Retrying would only spin in c10d's connect loop and flood stderr.
    while (!s->stopping && failures < 3) {
      try {
        if (!client) client = connect(s->options, false, std::chrono::milliseconds(5000));
        std::string value = std::to_string(++beat) + ":" + std::to_string(s->step.load());
        client->set(heartbeatKey(s->options.rank), std::vector<uint8_t>(value.begin(), value.end()));
        failures = 0;
      } catch (const std::exception&) {
        client.reset();
        failures++;
      }
      std::this_thread::sleep_for(kBeat);
    }
  }).detach();
}

#ifdef SLIM_HAS_GLOO
std::shared_ptr<::gloo::transport::Device> glooDevice(const InitOptions& o) {
  if (!o.interface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(o.interface);
  // On one machine, bind loopback: the default device resolves the hostname, which may be unroutable.
  if (isLoopback(o.masterAddr)) return c10d::ProcessGroupGloo::createDeviceForHostname(o.masterAddr == "::1" ? "::1" : "127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

class WorkPending : public Pending {
 public:
  explicit WorkPending(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  void wait() override { work_->wait(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

}  // namespace

void init(const InitOptions& o) {
  if (state) throw std::runtime_error("distributed training is already initialized in this process");
  if (o.worldSize < 1 || o.rank < 0 || o.rank >= o.worldSize) {
    throw std::runtime_error("RANK " + std::to_string(o.rank) + " is outside WORLD_SIZE " + std::to_string(o.worldSize));
  }
  if (o.masterPort < 1 || o.masterPort > 65535) throw std::runtime_error("MASTER_PORT " + std::to_string(o.masterPort) + " is not a TCP port");
  if (o.backend == "gloo" && !hasGloo()) {
    throw std::runtime_error("this training addon was built without Gloo (c10d's CPU backend): install the gloo headers "
                             "(Debian: apt install libgloo-dev) and rebuild with `npm run build:native`");
  }
  if (o.backend == "nccl" && !hasNccl()) {
    throw std::runtime_error("this training addon was built without NCCL: build it against a CUDA PyTorch whose nccl.h is "
                             "found (pip's nvidia-nccl), or train with --dist-backend gloo");
  }
  if (o.backend != "gloo" && o.backend != "nccl") throw std::runtime_error("unknown distributed backend '" + o.backend + "' (gloo or nccl)");

  auto s = std::make_unique<State>();
  s->options = o;
  c10::intrusive_ptr<c10d::TCPStore> store;
  const auto started = std::chrono::steady_clock::now();
  try {
    store = connect(o, true, o.timeout);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (o.rank == 0) {
      throw std::runtime_error("rank 0 could not host the rendezvous on " + where(o) + " or not every one of the " +
                               std::to_string(o.worldSize) + " ranks joined within " + std::to_string(o.timeout.count() / 1000) +
                               " s (" + msg.substr(0, msg.find('\n')) + ")");
    }
    throw std::runtime_error("rank " + std::to_string(o.rank) + " could not reach the rendezvous at " + where(o) + " within " +
                             std::to_string(o.timeout.count() / 1000) + " s (" + msg.substr(0, msg.find('\n')) + ")");
  }
  s->store = store;
  std::string hello = "0:-1";
  store->set(heartbeatKey(o.rank), std::vector<uint8_t>(hello.begin(), hello.end()));
  // Every rank's hello before the group forms: a rank that never comes is named, once --dist-timeout
  // has passed (forming the group would wait that long again and only say "Socket Timeout").
  std::vector<std::string> hellos;
  for (int r = 0; r < o.worldSize; r++) hellos.push_back(heartbeatKey(r));
  // What is left of --dist-timeout (rank 0's store may have spent it waiting for connections already).
  auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  try {
    store->wait(hellos, std::max(o.timeout - spent, std::chrono::milliseconds(1000)));
  } catch (const std::exception&) {
    std::string missing;
    int count = 0;
    for (int r = 0; r < o.worldSize; r++) {
      if (store->check({heartbeatKey(r)})) continue;
      missing += (count++ ? ", " : "") + std::to_string(r);
    }
    throw std::runtime_error((count == 1 ? "rank " : "ranks ") + missing + " of " + std::to_string(o.worldSize) + " never joined the rendezvous at " +
                             where(o) + " within " + std::to_string(o.timeout.count() / 1000) + " s");
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("slim/pg", store);
  try {
    if (o.backend == "gloo") {
#ifdef SLIM_HAS_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
      options->devices.push_back(glooDevice(o));
      options->threads = 2;
      s->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.worldSize, options);
#endif
    } else {
#ifdef SLIM_HAS_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = o.timeout;
      s->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, o.rank, o.worldSize, options);
#endif
    }
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw std::runtime_error("rank " + std::to_string(o.rank) + ": the " + o.backend + " process group did not form (" + msg.substr(0, msg.find('\n')) + ")");
  }
  state = s.release();
  startHeartbeat(state);
}

bool initialized() { return state != nullptr; }
int rank() { return state ? state->options.rank : 0; }
int worldSize() { return state ? state->options.worldSize : 1; }
std::string backend() { return state ? state->options.backend : ""; }

void shutdown() {
  if (!state) return;
  // Stop announcing; the group itself stays (see `state`): all collectives are done, the process ends.
  state->stopping = true;
  state = nullptr;
}

void allreduceSum(std::vector<at::Tensor>& tensors) {
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  current().group->allreduce(tensors, opts)->wait();
}

std::unique_ptr<Pending> allreduceSumAsync(at::Tensor& flat) {
  std::vector<at::Tensor> tensors{flat};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  return std::make_unique<WorkPending>(current().group->allreduce(tensors, opts));
}

void broadcast(std::vector<at::Tensor>& tensors, int root) {
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  current().group->broadcast(tensors, opts)->wait();
}

void barrier() { current().group->barrier()->wait(); }

void setStep(int64_t step) {
  if (state) state->step = step;
}

Diagnosis diagnose(std::chrono::milliseconds probe) {
  const State& s = current();
  Diagnosis d;
  auto read = [&](c10d::TCPStore& client) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (int r = 0; r < s.options.worldSize; r++) {
      std::string key = heartbeatKey(r);
      if (!client.check({key})) {
        out.emplace_back(-1, -1);
        continue;
      }
      auto bytes = client.get(key);
      std::string v(bytes.begin(), bytes.end());
      auto colon = v.find(':');
      out.emplace_back(std::stoll(v.substr(0, colon)), std::stoll(v.substr(colon + 1)));
    }
    return out;
  };
  try {
    auto client = connect(s.options, false, std::chrono::milliseconds(5000));
    auto before = read(*client);
    std::this_thread::sleep_for(probe);
    auto after = read(*client);
    for (int r = 0; r < s.options.worldSize; r++) {
      bool alive = r == s.options.rank || after[r].first != before[r].first;
      d.ranks.push_back({r, alive, r == s.options.rank ? s.step.load() : after[r].second});
    }
  } catch (const std::exception& e) {
    d.storeReachable = false;
    std::string msg = e.what();
    d.storeError = msg.substr(0, msg.find('\n'));
  }
  return d;
}

#else  // no c10d headers in this LibTorch

void init(const InitOptions&) {
  throw std::runtime_error("this LibTorch ships no torch.distributed (c10d) headers, so the addon was built without "
                           "distributed training; use a LibTorch with c10d (Debian libtorch-dev, pip torch)");
}
bool initialized() { return false; }
int rank() { return 0; }
int worldSize() { return 1; }
std::string backend() { return ""; }
void shutdown() {}
void allreduceSum(std::vector<at::Tensor>&) { throw std::runtime_error("distributed training is not available"); }
std::unique_ptr<Pending> allreduceSumAsync(at::Tensor&) { throw std::runtime_error("distributed training is not available"); }
void broadcast(std::vector<at::Tensor>&, int) { throw std::runtime_error("distributed training is not available"); }
void barrier() {}
void setStep(int64_t) {}
Diagnosis diagnose(std::chrono::milliseconds) { return {}; }

#endif

}  // namespace dist
}  // namespace slim

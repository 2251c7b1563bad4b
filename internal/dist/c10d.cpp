// c10d shim: rendezvous, bucketed all-reduce, broadcast and barrier on
// libtorch's own distributed engine (TCPStore + ProcessGroupGloo, or
// ProcessGroupNCCL when built against a CUDA libtorch that has it).
#include "c10d.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CLIPCAP_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

// GradBuckets: gradients living in flat all-reduce buckets (DDP's
// gradient_as_bucket_view), and the all-reduce of each bucket started from
// inside backward as soon as its last gradient is accumulated (DDP's
// overlap of communication with computation). Each bound parameter's .grad
// is a view of its bucket, so backward accumulates straight into the buffer
// the collective reduces: no packing copy before it, no unpacking after.
// Buckets hold the parameters in reverse order, the order backward produces
// their gradients, and start strictly in bucket order, so every rank issues
// the same sequence of collectives whatever its timing.
struct GradBuckets {
  std::vector<at::Tensor> params;  // bound, in the caller's order
  std::vector<const void *> where; // each one's .grad data pointer when bound
  std::vector<size_t> bucket_of, offset;
  std::vector<std::vector<size_t>> members; // parameter indices of each bucket
  std::vector<at::Tensor> flats;
  // Post-hooks on each parameter's gradient accumulator. A parameter holds
  // its accumulator only weakly: keeping them here keeps the hooks alive.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;

  std::mutex mu; // the hooks run on autograd's thread
  bool armed = false;        // the coming backward is the step's last: reduce
  std::vector<size_t> pending; // gradients each bucket still waits for
  size_t next = 0;           // first bucket not started
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::string hook_error;
};

struct cc_group {
  std::string backend;
  int rank = 0, world = 1;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  // unique_ptr: hooks hold its address, and the mutex cannot move.
  std::unique_ptr<GradBuckets> grads = std::make_unique<GradBuckets>();
};

namespace {

char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  std::memcpy(p, s.data(), s.size() + 1);
  return p;
}

// guard runs fn and turns any C++ exception into an error message: nothing
// may unwind into Go.
template <typename F> int guard(char **err, F fn) {
  try {
    fn();
    return 0;
  } catch (const c10::Error &e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception &e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return 1;
}

std::vector<at::Tensor> tensors(void **ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(*static_cast<at::Tensor *>(ts[i]));
  return out;
}

// bucket_members splits the tensors, taken in the order of `order` (indices
// into ts), into runs of one dtype and device of at most cap bytes (a single
// larger tensor is a run of its own): the indices of each bucket.
std::vector<std::vector<size_t>> bucket_members(const std::vector<at::Tensor> &ts, const std::vector<size_t> &order,
                                                int64_t cap) {
  std::vector<std::vector<size_t>> out;
  int64_t bytes = 0;
  for (size_t k : order) {
    const auto &t = ts[k];
    int64_t nb = t.numel() * t.element_size();
    bool fresh = out.empty() || bytes + nb > cap;
    if (!fresh) {
      const auto &head = ts[out.back()[0]];
      fresh = head.scalar_type() != t.scalar_type() || head.device() != t.device();
    }
    if (fresh) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(k);
    bytes += nb;
  }
  return out;
}

// A bucket of tensors to broadcast: flattened into one contiguous buffer
// unless it is a single contiguous tensor already.
struct Bucket {
  std::vector<at::Tensor> parts;
  at::Tensor flat;
};

std::vector<Bucket> buckets(const std::vector<at::Tensor> &ts, int64_t cap) {
  std::vector<size_t> order(ts.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::vector<Bucket> out;
  for (const auto &members : bucket_members(ts, order, cap)) {
    Bucket b;
    for (size_t k : members) b.parts.push_back(ts[k]);
    if (b.parts.size() == 1 && b.parts[0].is_contiguous()) {
      b.flat = b.parts[0];
    } else {
      std::vector<at::Tensor> flat;
      for (const auto &t : b.parts) flat.push_back(t.reshape({-1}));
      b.flat = at::cat(flat);
    }
    out.push_back(std::move(b));
  }
  return out;
}

// unpack copies a reduced bucket back into its tensors.
void unpack(Bucket &b) {
  if (b.parts.size() == 1 && b.flat.is_same(b.parts[0])) return;
  int64_t off = 0;
  for (auto &t : b.parts) {
    t.copy_(b.flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>> &works) {
  for (auto &w : works) w->wait();
}

// grads_bound reports whether params (those with a gradient) are exactly
// the ones g was bound to.
bool grads_bound(const GradBuckets &g, const std::vector<at::Tensor> &params) {
  if (g.params.size() != params.size()) return false;
  for (size_t i = 0; i < params.size(); i++)
    if (!params[i].is_same(g.params[i])) return false;
  return true;
}

void unhook(GradBuckets &g) {
  for (size_t i = 0; i < g.hook_keys.size(); i++) g.accumulators[i]->del_post_hook(g.hook_keys[i]);
  g.accumulators.clear();
  g.hook_keys.clear();
}

// repoint makes parameter i's .grad its bucket view again if something
// replaced it (autograd only does when the .grad was undefined), copying the
// gradient in first.
void repoint(GradBuckets &g, size_t i) {
  auto &p = g.params[i];
  auto view = g.flats[g.bucket_of[i]].narrow(0, g.offset[i], p.numel()).view(p.sizes());
  const auto &grad = p.grad();
  if (grad.defined() && grad.data_ptr() == g.where[i] && grad.is_contiguous()) return;
  if (grad.defined())
    view.copy_(grad);
  else
    view.zero_();
  p.mutable_grad() = view;
}

// start launches the all-reduce of bucket b.
void start(GradBuckets &g, c10d::ProcessGroup &pg, size_t b) {
  for (size_t i : g.members[b]) repoint(g, i);
  std::vector<at::Tensor> one{g.flats[b]};
  g.works.push_back(pg.allreduce(one));
}

// ready is parameter i's post-hook: its gradient is accumulated. The hook
// runs inside backward, where an exception would abort it with a less
// useful message: errors wait for cc_reduce_grads.
void ready(GradBuckets &g, c10d::ProcessGroup &pg, size_t i) {
  std::lock_guard<std::mutex> lock(g.mu);
  if (!g.armed || !g.hook_error.empty()) return;
  try {
    g.pending[g.bucket_of[i]]--;
    while (g.next < g.flats.size() && g.pending[g.next] == 0) start(g, pg, g.next++);
  } catch (const c10::Error &e) {
    g.hook_error = e.what_without_backtrace();
  } catch (const std::exception &e) {
    g.hook_error = e.what();
  }
}

// bind_grads moves the gradients of params into buckets of at most cap
// bytes, makes each .grad a view of its bucket and hooks each parameter's
// gradient accumulator. Autograd then accumulates into those views in place
// (it only replaces a .grad that is undefined), and zero_grad keeps them.
void bind_grads(cc_group *cg, const std::vector<at::Tensor> &params, int64_t cap) {
  auto &g = *cg->grads;
  unhook(g);
  g.params = params;
  size_t n = params.size();
  g.where.assign(n, nullptr);
  g.bucket_of.assign(n, 0);
  g.offset.assign(n, 0);
  // Backward produces the gradients roughly in reverse parameter order.
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; i++) order[i] = n - 1 - i;
  g.members = bucket_members(params, order, cap);
  g.flats.clear();
  for (size_t b = 0; b < g.members.size(); b++) {
    int64_t size = 0;
    for (size_t k : g.members[b]) {
      g.bucket_of[k] = b;
      g.offset[k] = size;
      size += params[k].numel();
    }
    g.flats.push_back(at::empty({size}, params[g.members[b][0]].grad().options()));
  }
  for (size_t i = 0; i < n; i++) {
    repoint(g, i);
    g.where[i] = g.params[i].grad().data_ptr();
  }
  for (size_t i = 0; i < n; i++) {
    auto acc = torch::autograd::impl::grad_accumulator(g.params[i]);
    if (!acc) throw std::runtime_error("internal: a parameter with a gradient has no gradient accumulator");
    auto &pg = *cg->pg;
    auto *gp = &g;
    g.hook_keys.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [gp, &pg, i](const torch::autograd::variable_list &outputs, const torch::autograd::variable_list &) {
          ready(*gp, pg, i);
          return outputs;
        })));
    g.accumulators.push_back(std::move(acc));
  }
  g.pending.assign(g.members.size(), 0);
  g.next = 0;
}

// rearm resets the per-step state: every bucket waits for all its gradients.
void rearm(GradBuckets &g, bool armed) {
  g.armed = armed;
  g.next = 0;
  for (size_t b = 0; b < g.members.size(); b++) g.pending[b] = g.members[b].size();
  g.works.clear();
  g.hook_error.clear();
}

} // namespace

int cc_expect_backward(cc_group *g, char **err) {
  return guard(err, [&] {
    auto &gb = *g->grads;
    std::lock_guard<std::mutex> lock(gb.mu);
    // Work left over from a step that failed half way must finish before
    // its buffers are reduced again.
    wait_all(gb.works);
    rearm(gb, !gb.params.empty());
  });
}

int cc_init(const char *backend, const char *addr, int port, int rank, int world, int64_t timeout_ms,
            cc_group **out, char **err) {
  return guard(err, [&] {
    auto g = new cc_group();
    g->backend = backend;
    g->rank = rank;
    g->world = world;
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = rank == 0;
    opts.numWorkers = world;
    // Rank 0 does not wait for the others in the constructor: the config
    // check right after rendezvous names a missing rank, this would not.
    opts.waitWorkers = false;
    opts.timeout = g->timeout;
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), opts);
    } catch (...) {
      delete g;
      throw;
    }
    *out = g;
  });
}

int cc_make_group(cc_group *g, const char *gloo_host, char **err) {
  return guard(err, [&] {
    // A prefix per group keeps these keys apart from clipcap's own.
    auto store = c10::make_intrusive<c10d::PrefixStore>("pg", g->store);
    if (g->backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
      if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (gloo_host[0] != 0) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(gloo_host));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, g->rank, g->world, opts);
      return;
    }
#ifdef CLIPCAP_NCCL
    if (g->backend == "nccl") {
      // NCCL applies the timeout only in blocking-wait mode; without it a
      // lost peer would hang the others instead of failing them.
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, g->rank, g->world, opts);
      return;
    }
#endif
    throw std::runtime_error("dist_backend " + g->backend + " is not available in this libtorch build (gloo" +
#ifdef CLIPCAP_NCCL
                             std::string(", nccl") +
#else
                             std::string("") +
#endif
                             " are)");
  });
}

int cc_store_set(cc_group *g, const char *key, const char *val, int64_t len, char **err) {
  return guard(err, [&] { g->store->set(key, std::vector<uint8_t>(val, val + len)); });
}

int cc_store_get(cc_group *g, const char *key, char **val, int64_t *len, char **err) {
  return guard(err, [&] {
    auto v = g->store->get(key);
    *val = static_cast<char *>(std::malloc(v.size() + 1));
    std::memcpy(*val, v.data(), v.size());
    *len = static_cast<int64_t>(v.size());
  });
}

int cc_store_check(cc_group *g, const char **keys, int n, int *present, char **err) {
  return guard(err, [&] {
    std::vector<std::string> ks(keys, keys + n);
    *present = g->store->check(ks) ? 1 : 0;
  });
}

int cc_reduce_grads(cc_group *g, void **params, int n, int64_t bucket_bytes, double *sums, int nsums, int *early,
                    char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    auto &gb = *g->grads;
    std::vector<at::Tensor> with;
    for (const auto &p : tensors(params, n))
      if (p.grad().defined()) with.push_back(p);
    std::lock_guard<std::mutex> lock(gb.mu);
    // Collectives started by the hooks come first, in bucket order, on
    // every rank alike.
    auto started = gb.next;
    *early = static_cast<int>(started);
    std::string hook_error = gb.hook_error;
    if (!hook_error.empty()) {
      wait_all(gb.works);
      rearm(gb, false);
      throw std::runtime_error(hook_error);
    }
    if (!grads_bound(gb, with)) {
      if (started > 0) {
        wait_all(gb.works);
        rearm(gb, false);
        throw std::runtime_error("internal: the set of parameters with a gradient changed after backward started reducing them");
      }
      bind_grads(g, with, bucket_bytes);
      rearm(gb, false);
    }
    for (; gb.next < gb.flats.size(); gb.next++) start(gb, *g->pg, gb.next);
    at::Tensor extra;
    if (nsums > 0) {
      auto dev = gb.flats.empty() ? at::Device(at::kCPU) : gb.flats[0].device();
      extra = at::from_blob(sums, {nsums}, at::kDouble).to(dev, /*non_blocking=*/false, /*copy=*/true);
      std::vector<at::Tensor> one{extra};
      gb.works.push_back(g->pg->allreduce(one));
    }
    wait_all(gb.works);
    rearm(gb, false);
    if (nsums > 0) {
      auto host = extra.cpu();
      std::memcpy(sums, host.data_ptr<double>(), sizeof(double) * nsums);
    }
  });
}

int cc_allreduce_sum(cc_group *g, void *t, char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> one{*static_cast<at::Tensor *>(t)};
    g->pg->allreduce(one)->wait();
  });
}

int cc_broadcast(cc_group *g, void **ts, int n, int root, int64_t bucket_bytes, char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    auto bs = buckets(tensors(ts, n), bucket_bytes);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    for (auto &b : bs) {
      std::vector<at::Tensor> one{b.flat};
      works.push_back(g->pg->broadcast(one, opts));
    }
    wait_all(works);
    for (auto &b : bs) unpack(b);
  });
}

int cc_barrier(cc_group *g, char **err) {
  return guard(err, [&] { g->pg->barrier()->wait(); });
}

void cc_shutdown(cc_group *g) {
  if (g == nullptr) return;
  try {
    {
      std::lock_guard<std::mutex> lock(g->grads->mu);
      g->grads->armed = false;
      unhook(*g->grads);
    }
    g->grads.reset();
    g->pg.reset();
    g->store.reset();
  } catch (...) {
  }
  delete g;
}

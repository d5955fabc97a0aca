#include "bench/allocation_counter.h"

#include <execinfo.h>
#include <link.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "fcabert/error.h"

// How an allocation is attributed to oneDNN: by the caller's own call stack, looked at only
// while a CountingScope is armed. The kernels keep no global state for the benchmark's sake
// (no "inside oneDNN" counter around each GEMM), so the cost of telling oneDNN's allocations
// apart (one backtrace() per allocation) is paid only in fcabert-bench's counting passes,
// never in a timed pass and never by the fcabert CLI or a library user.
//
// An allocation is oneDNN's when one of the innermost kStackFrames frames returns into the
// code of the loaded libdnnl shared object (its executable segments, found once with
// dl_iterate_phdr). What oneDNN's inline C++ API (dnnl.hpp) allocates is compiled into our own
// code and counts as ours (which is why kernels::Linear::forward uses the C API per call).

// The hooks replace glibc's entry points for the whole process, which a sanitizer's runtime
// also does: with one, this file only reports that it cannot count.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FCABERT_BENCH_ALLOCATION_HOOKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define FCABERT_BENCH_ALLOCATION_HOOKS 0
#endif
#endif
#ifndef FCABERT_BENCH_ALLOCATION_HOOKS
#define FCABERT_BENCH_ALLOCATION_HOOKS 1
#endif

namespace fcabert::bench {
namespace {

// Deep enough to get from the hook (backtrace's caller, the hook, malloc, operator new and a
// container's allocator) into oneDNN's own function; shallow enough to stay cheap.
constexpr int kStackFrames = 12;

struct CodeRange {
  uintptr_t begin = 0, end = 0;  // [begin, end)
};

// libdnnl's executable segments; written once before the first scope is armed, then only read.
struct OnednnCode {
  std::array<CodeRange, 8> ranges;
  int count = 0;
  bool contains(const void* address) const {
    const auto a = reinterpret_cast<uintptr_t>(address);
    for (int i = 0; i < count; ++i) {
      if (a >= ranges[i].begin && a < ranges[i].end) return true;
    }
    return false;
  }
};

OnednnCode g_onednn_code;
std::atomic<bool> g_armed{false};  // a CountingScope is alive
std::atomic<long long> g_total{0};
std::atomic<long long> g_in_onednn{0};

AllocationCounts current_counts() {
  return {g_total.load(std::memory_order_relaxed), g_in_onednn.load(std::memory_order_relaxed)};
}

// dl_iterate_phdr callback: the executable PT_LOAD segments of the object whose file name
// contains "dnnl" (libdnnl.so.2, or whatever version is loaded).
int collect_onednn_segments(dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "dnnl") == nullptr) return 0;
  auto& code = *static_cast<OnednnCode*>(data);
  for (int i = 0; i < info->dlpi_phnum && code.count < static_cast<int>(code.ranges.size()); ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_X) == 0) continue;
    const uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
    code.ranges[static_cast<size_t>(code.count++)] = {begin, begin + segment.p_memsz};
  }
  return code.count > 0 ? 1 : 0;  // found: stop iterating
}

// Once, before the first scope is armed: where libdnnl's code is, and backtrace() primed (its
// first call loads libgcc_s's unwinder, which allocates: that must not happen inside a hook).
void prepare_attribution() {
  dl_iterate_phdr(collect_onednn_segments, &g_onednn_code);
  void* frame[1];
  backtrace(frame, 1);
  if (g_onednn_code.count == 0) {
    spdlog::warn(
        "libdnnl is not among the loaded shared objects (linked statically?): allocations cannot "
        "be attributed to oneDNN, so forward_allocations_outside_onednn counts oneDNN's "
        "allocations too");
  }
}

#if FCABERT_BENCH_ALLOCATION_HOOKS
// Set while this thread is inside a hook, so that an allocation backtrace() itself makes is
// neither counted nor looked at (no recursion). Trivial and in the executable: reading it
// allocates nothing.
thread_local bool t_inside_hook = false;

bool called_from_onednn() {
  void* frames[kStackFrames];
  const int depth = backtrace(frames, kStackFrames);
  for (int i = 0; i < depth; ++i) {
    if (g_onednn_code.contains(frames[i])) return true;
  }
  return false;
}

// Called by every hook, first thing; does nothing unless a scope is armed.
void count_allocation() {
  if (!g_armed.load(std::memory_order_acquire) || t_inside_hook) return;
  t_inside_hook = true;
  g_total.fetch_add(1, std::memory_order_relaxed);
  if (called_from_onednn()) g_in_onednn.fetch_add(1, std::memory_order_relaxed);
  t_inside_hook = false;
}
#endif

}  // namespace

bool allocation_counting_available() { return FCABERT_BENCH_ALLOCATION_HOOKS != 0; }

CountingScope::CountingScope() {
  static std::once_flag prepared;
  if (allocation_counting_available()) std::call_once(prepared, prepare_attribution);
  if (g_armed.exchange(true, std::memory_order_acq_rel))
    throw Error("allocation counting is already armed (one CountingScope at a time)");
  start_ = current_counts();
}

CountingScope::~CountingScope() { g_armed.store(false, std::memory_order_release); }

AllocationCounts CountingScope::counts() const {
  const AllocationCounts now = current_counts();
  return {now.total - start_.total, now.in_onednn - start_.in_onednn};
}

}  // namespace fcabert::bench

#if FCABERT_BENCH_ALLOCATION_HOOKS
// ---- glibc's allocator behind counting entry points ----
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);

void* malloc(size_t size) {
  fcabert::bench::count_allocation();
  return __libc_malloc(size);
}
void* calloc(size_t count, size_t size) {
  fcabert::bench::count_allocation();
  return __libc_calloc(count, size);
}
void* realloc(void* p, size_t size) {
  fcabert::bench::count_allocation();
  return __libc_realloc(p, size);
}
void* memalign(size_t alignment, size_t size) {
  fcabert::bench::count_allocation();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(size_t alignment, size_t size) {
  fcabert::bench::count_allocation();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, size_t alignment, size_t size) {
  fcabert::bench::count_allocation();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif

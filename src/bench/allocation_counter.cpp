#include "bench/allocation_counter.h"

#include <atomic>
#include <cerrno>
#include <cstddef>

#include "fcabert/error.h"
#include "kernels/linear.h"

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

std::atomic<bool> g_armed{false};  // a CountingScope is alive
std::atomic<long long> g_total{0};
std::atomic<long long> g_in_onednn{0};

AllocationCounts current_counts() {
  return {g_total.load(std::memory_order_relaxed), g_in_onednn.load(std::memory_order_relaxed)};
}

#if FCABERT_BENCH_ALLOCATION_HOOKS
// Called by every hook, first thing.
void count_allocation() {
  if (!g_armed.load(std::memory_order_acquire)) return;
  g_total.fetch_add(1, std::memory_order_relaxed);
  if (kernels::onednn_calls_in_flight() > 0) g_in_onednn.fetch_add(1, std::memory_order_relaxed);
}
#endif

}  // namespace

bool allocation_counting_available() { return FCABERT_BENCH_ALLOCATION_HOOKS != 0; }

CountingScope::CountingScope() {
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

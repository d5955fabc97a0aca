#pragma once
// Shared OpenMP conventions for the kernels. Every kernel runs one flat parallel region on
// the calling thread's OpenMP thread count (set from LoadOptions::threads); none nests.
#include <omp.h>

#include <cstdint>

namespace fcabert::kernels {

// Below this many elements of elementwise work, waking the thread team costs more than it
// saves (a team fork/join is a few microseconds; a row of LayerNorm is ~100 ns).
inline constexpr int64_t kMinParallelElements = 1 << 14;

inline bool worth_parallel(int64_t elements) { return elements >= kMinParallelElements; }

// body(i) for every i in [0, n): statically split over the calling thread's OpenMP team when
// `parallel`, else a plain loop on the calling thread. Preferred over `omp parallel if(...)`:
// libgomp allocates a one-thread team for every serialized region, and the steady-state
// forward pass must not allocate.
template <typename Body>
inline void parallel_for(int64_t n, bool parallel, Body&& body) {
  if (parallel) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

// Sets the calling thread's OpenMP thread count, which both our kernels and oneDNN (built on
// OpenMP) read. The count is a per-thread setting, so a Session running on a new thread must
// set it again; the check keeps the common case to one call that reads a thread-local.
inline void use_threads(int threads) {
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
}

}  // namespace fcabert::kernels

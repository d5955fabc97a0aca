#pragma once
// fcabert-bench's heap allocation counter. This executable, and only it, defines the malloc
// family (allocation_counter.cpp: hooks that forward to glibc), so that its report can say
// how many allocations a steady-state forward pass makes and how many of them oneDNN makes.
// The fcabert CLI and the library allocate through glibc untouched.
#include <utility>

namespace fcabert::bench {

struct AllocationCounts {
  long long total = 0;  // calls to malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign
  // Of them, those made by oneDNN: with a frame in libdnnl's code near the top of the call
  // stack (allocation_counter.cpp). 0 when libdnnl is not a loaded shared object (a warning
  // says so).
  long long in_onednn = 0;
};

// Whether this build counts at all. It does not under a sanitizer: the sanitizer's runtime owns
// malloc and free, and hooks forwarding to glibc would hand it memory it never allocated.
bool allocation_counting_available();

// Counting armed, on every thread, for the lifetime of the scope; one scope at a time (a second
// one throws fcabert::Error). Allocations are counted only while a scope is armed.
class CountingScope {
 public:
  CountingScope();
  ~CountingScope();
  CountingScope(const CountingScope&) = delete;
  CountingScope& operator=(const CountingScope&) = delete;

  AllocationCounts counts() const;  // since the scope was armed

 private:
  AllocationCounts start_;
};

// What `work()` allocated, on any thread, while it ran.
template <class Work>
AllocationCounts count_allocations(Work&& work) {
  const CountingScope scope;
  std::forward<Work>(work)();
  return scope.counts();
}

}  // namespace fcabert::bench

#pragma once
// A grow-only, 64-byte aligned scratch buffer. Sessions reserve what a batch needs and
// reuse it for every later batch, so the forward pass never allocates per token; 64-byte
// alignment keeps AVX-512 loads and oneDNN's GEMM on full cache lines.
#include <cstddef>
#include <memory>
#include <new>

namespace fcabert::kernels {

template <typename T>
class GrowBuffer {
 public:
  GrowBuffer() = default;

  // Makes room for `count` elements and returns the start. Growing discards the old
  // contents (callers treat scratch as uninitialised); shrinking never happens.
  T* reserve(size_t count) {
    if (count > capacity_) {
      data_.reset(static_cast<T*>(::operator new (count * sizeof(T), std::align_val_t{kAlignment})));
      capacity_ = count;
    }
    return data_.get();
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }
  size_t bytes() const { return capacity_ * sizeof(T); }

  static constexpr size_t kAlignment = 64;

 private:
  struct AlignedDelete {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{kAlignment}); }
  };
  std::unique_ptr<T, AlignedDelete> data_;
  size_t capacity_ = 0;
};

}  // namespace fcabert::kernels

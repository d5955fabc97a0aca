#include "kernels/softmax.h"

#include "kernels/parallel.h"

namespace fcabert::kernels {

void softmax_rows(float* x, int64_t rows, int64_t count) {
  parallel_for(rows, worth_parallel(rows * count), [=](int64_t r) { softmax_row(x + r * count, count); });
}

}  // namespace fcabert::kernels

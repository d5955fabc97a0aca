#include "kernels/softmax.h"

#include "kernels/parallel.h"

namespace fcabert::kernels {

void softmax_rows(float* x, int64_t rows, int64_t count) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * count))
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * count, count);
}

}  // namespace fcabert::kernels

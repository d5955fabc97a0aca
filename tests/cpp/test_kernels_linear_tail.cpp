// The last rows of a fixed-shape call (fewer than the smallest chunk of 32) run padded to a
// multiple of 8 in MatmulBuffers::tail (include: src/kernels/linear.h). Padding must not show:
// every row comes out bit for bit as on a primitive made for the exact row count (a call
// without a tail buffer), for both reduced precisions, every epilogue and both outputs, and
// no row of y beyond the call's rows is written.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/linear.h"
#include "kernels_test_util.h"

namespace fcabert::kernels {
namespace {

using test_util::cpu_engine;
using test_util::random_values;

struct Case {
  Precision precision;
  Epilogue epilogue;
  Linear::Output output;
};

// y (as bytes, with two guard rows after the call's rows) from one forward of `rows` rows.
std::vector<unsigned char> run(const Linear& linear, const Case& c, const std::vector<float>& x, int64_t rows,
                               bool with_tail) {
  dnnl::stream stream(cpu_engine());
  const int64_t in = linear.in_features(), out = linear.out_features();
  const size_t out_bytes = c.output == Linear::Output::kBf16 ? 2 : 4;
  std::vector<unsigned char> y(static_cast<size_t>((rows + 2) * out) * out_bytes, 0xA5);
  if (c.epilogue == Epilogue::kAccumulate) {  // a residual in the call's rows
    const std::vector<float> residual = random_values(rows * out, 77);
    std::memcpy(y.data(), residual.data(), residual.size() * sizeof(float));
  }
  std::vector<unsigned char> converted(static_cast<size_t>(rows * in) * converted_input_bytes(c.precision));
  std::vector<float> per_feature(per_feature_floats(c.precision, out));
  std::vector<unsigned char> tail(tail_buffer_bytes(in, out), 0x5A);
  std::vector<unsigned char> scratchpad(linear.scratchpad_bytes());
  const MatmulBuffers buffers{converted.data(), per_feature.data(), with_tail ? tail.data() : nullptr};
  if (c.output == Linear::Output::kBf16) {
    linear.forward_to_bf16(stream, x.data(), rows, reinterpret_cast<uint16_t*>(y.data()), scratchpad.data(),
                           buffers);
  } else {
    linear.forward(stream, x.data(), rows, reinterpret_cast<float*>(y.data()), scratchpad.data(), buffers);
  }
  return y;
}

TEST(LinearTail, PaddedLastRowsGiveTheExactCountsResultsAndWriteNothingElse) {
  const int64_t in = 40, out = 24;
  const std::vector<float> w = random_values(in * out, 5), b = random_values(out, 6);
  const std::vector<Case> cases = {
      {Precision::kInt8, Epilogue::kNone, Linear::Output::kFp32},
      {Precision::kInt8, Epilogue::kGeluErf, Linear::Output::kBf16},
      {Precision::kInt8, Epilogue::kAccumulate, Linear::Output::kFp32},
      {Precision::kBf16, Epilogue::kNone, Linear::Output::kBf16},
      {Precision::kBf16, Epilogue::kGeluErf, Linear::Output::kFp32},
      {Precision::kBf16, Epilogue::kAccumulate, Linear::Output::kFp32},
  };
  int padded_calls = 0;
  for (const Case& c : cases) {
    const Linear linear(cpu_engine(), w.data(), b.data(), in, out, c.epilogue, c.precision,
                        Linear::RowPrimitives::kBest, c.output);
    if (!linear.fixed_shapes()) continue;  // no brgemm for this precision here: no tail either
    for (int64_t rows : {1, 5, 8, 13, 31, 32, 45, 256 + 3}) {
      SCOPED_TRACE(std::string(precision_name(c.precision)) + " epilogue " +
                   std::to_string(static_cast<int>(c.epilogue)) + " rows " + std::to_string(rows));
      const std::vector<float> x = random_values(rows * in, 900 + static_cast<uint32_t>(rows));
      const std::vector<unsigned char> padded = run(linear, c, x, rows, true);
      const std::vector<unsigned char> exact = run(linear, c, x, rows, false);
      ASSERT_EQ(padded, exact);  // the guard rows (0xA5) included: nothing written past the rows
      padded_calls += rows % 8 != 0;
    }
  }
  if (padded_calls == 0) GTEST_SKIP() << "oneDNN has no fixed-shape (brgemm) matmul on this CPU";
}

}  // namespace
}  // namespace fcabert::kernels

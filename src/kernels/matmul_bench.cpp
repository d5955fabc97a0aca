#include "kernels/matmul_bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>
#include <vector>

#include "fcabert/error.h"

namespace fcabert::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using Clock = std::chrono::steady_clock;

std::vector<float> random_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Calls `call` until min_seconds have passed and at least 5 times; median ms per call, and
// the process CPU seconds per call (mean) in cpu_seconds.
template <typename Call>
double median_call_ms(Call&& call, double min_seconds, int64_t& calls, double& cpu_seconds) {
  call();  // warm-up: JIT, first touch
  std::vector<double> ms;
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  while (ms.size() < 5 || std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    const auto t0 = Clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  calls = static_cast<int64_t>(ms.size());
  cpu_seconds = (process_cpu_seconds() - cpu_start) / static_cast<double>(calls);
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

MatmulBenchResult benchmark_matmul(int64_t m, int64_t k, int64_t n, Precision precision, bool engine_linear,
                                   double min_seconds) {
  MatmulBenchResult result;
  result.m = m, result.k = k, result.n = n, result.engine_linear = engine_linear;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const std::vector<float> x = random_values(static_cast<size_t>(m * k), 1);
  const std::vector<float> w = random_values(static_cast<size_t>(n * k), 2);
  const std::vector<float> b = random_values(static_cast<size_t>(n), 3);
  std::vector<float> y(static_cast<size_t>(m * n));
  double cpu_seconds = 0;
  if (engine_linear) {
    const Linear linear(engine, w.data(), b.data(), k, n, Epilogue::kNone, precision);
    std::vector<unsigned char> pad(linear.scratchpad_bytes());
    std::vector<unsigned char> converted(static_cast<size_t>(m * k) * converted_input_bytes(precision));
    std::vector<float> per_feature(per_feature_floats(precision, n));
    const MatmulBuffers buffers{converted.data(), per_feature.data()};
    result.implementation = linear.implementation();
    result.median_ms =
        median_call_ms([&] { linear.forward(stream, x.data(), m, y.data(), pad.data(), buffers); },
                       min_seconds, result.calls, cpu_seconds);
  } else {
    // int8's best case: u8 x s8 with no scales or zero point.
    const dt src_type = precision == Precision::kBf16   ? dt::bf16
                        : precision == Precision::kInt8 ? dt::u8
                                                        : dt::f32;
    const dt wei_type = precision == Precision::kInt8 ? dt::s8 : src_type;
    const dnnl::memory::desc src_desc({m, k}, src_type, tag::ab), wei_any({k, n}, wei_type, tag::any),
        bias_desc({1, n}, dt::f32, tag::ab), dst_desc({m, n}, dt::f32, tag::ab);
    dnnl::matmul::primitive_desc pd;
    try {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_desc, wei_any, bias_desc, dst_desc), engine);
    } catch (const dnnl::error& e) {
      throw Error(std::string("oneDNN has no matmul for the benchmark shapes: ") + e.what());
    }
    // Inputs converted to the primitive's types and layouts up front (not timed).
    dnnl::memory src(pd.src_desc(), engine), wei(pd.weights_desc(), engine),
        bias(bias_desc, engine, const_cast<float*>(b.data())), dst(dst_desc, engine, y.data());
    dnnl::memory user_x({{m, k}, dt::f32, tag::ab}, engine, const_cast<float*>(x.data()));
    dnnl::memory user_w({{k, n}, dt::f32, tag::ba}, engine, const_cast<float*>(w.data()));
    dnnl::reorder(user_x, src).execute(stream, user_x, src);
    dnnl::reorder(user_w, wei).execute(stream, user_w, wei);
    stream.wait();
    const dnnl::matmul primitive(pd);
    result.implementation = pd.impl_info_str();
    result.median_ms = median_call_ms(
        [&] {
          primitive.execute(
              stream,
              {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
          stream.wait();
        },
        min_seconds, result.calls, cpu_seconds);
  }
  result.gflops = 2.0 * static_cast<double>(m) * k * n / (result.median_ms * 1e6);
  result.gflops_per_cpu = 2.0 * static_cast<double>(m) * k * n / (cpu_seconds * 1e9);
  return result;
}

}  // namespace fcabert::kernels

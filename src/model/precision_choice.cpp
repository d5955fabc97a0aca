#include "model/precision_choice.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "kernels/linear.h"
#include "model/encoder_layer.h"

namespace fcabert::model {
namespace {

using Clock = std::chrono::steady_clock;

// One encoder layer's four GEMMs at `precisions`, with weights of the model's shapes. The
// values do not matter to the speed; small ones keep every product finite.
std::vector<kernels::Linear> layer_gemms(const dnnl::engine& engine, const BertConfig& config,
                                         const LayerPrecisions& precisions) {
  const int64_t d = config.hidden_size, f = config.intermediate_size;
  struct Shape {
    int64_t in, out;
    kernels::Epilogue epilogue;
    Precision precision;
    kernels::Int8Scales int8_scales = kernels::Int8Scales::kPerCall;
  };
  const Shape shapes[] = {
      {d, 3 * d, kernels::Epilogue::kNone, precisions.qkv},
      {d, d, kernels::Epilogue::kAccumulate, precisions.attention_output},
      {d, f, kernels::Epilogue::kGeluErf, precisions.intermediate},
      {f, d, kernels::Epilogue::kAccumulate, precisions.output, precisions.output_int8_scales}};
  std::vector<kernels::Linear> gemms;
  for (const Shape& s : shapes) {
    const std::vector<float> weight(static_cast<size_t>(s.in * s.out), 0.01f),
        bias(static_cast<size_t>(s.out), 0.f);
    gemms.emplace_back(engine, weight.data(), bias.data(), s.in, s.out, s.epilogue, s.precision,
                       kernels::Linear::RowPrimitives::kBest, kernels::Linear::Output::kFp32, s.int8_scales);
  }
  return gemms;
}

// Median wall time of running the four GEMMs once on kAutoRows rows, after a warm-up.
double time_layer_gemms(const dnnl::engine& engine, const BertConfig& config,
                        const LayerPrecisions& precisions) {
  const std::vector<kernels::Linear> gemms = layer_gemms(engine, config, precisions);
  const int64_t widest = std::max(3 * config.hidden_size, config.intermediate_size);
  std::vector<float> x(static_cast<size_t>(kAutoRows * widest), 0.5f), y(x.size(), 0.f);
  std::vector<unsigned char> converted(
      static_cast<size_t>(kAutoRows * precisions.converted_input_bytes_per_row(config)));
  std::vector<float> per_feature(kernels::per_feature_floats(Precision::kInt8, widest));
  std::vector<kernels::QuantizedU8> row_quantization(static_cast<size_t>(kAutoRows));
  std::vector<int32_t> products(static_cast<size_t>(kAutoRows * config.hidden_size));
  size_t pad_bytes = 0;
  for (const kernels::Linear& l : gemms) pad_bytes = std::max(pad_bytes, l.scratchpad_bytes());
  std::vector<unsigned char> pad(pad_bytes);
  dnnl::stream stream(engine);
  const kernels::MatmulBuffers buffers{converted.data(), per_feature.data(), nullptr, row_quantization.data(),
                                       products.data()};
  const auto run = [&] {
    for (const kernels::Linear& l : gemms)
      l.forward(stream, x.data(), kAutoRows, y.data(), pad.data(), buffers);
  };
  run();  // warm-up: first touch of the buffers and weights
  std::vector<double> ms;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

std::string timings_text(const std::vector<PrecisionTiming>& timings) {
  std::string text;
  for (const PrecisionTiming& t : timings) {
    char figure[64];
    std::snprintf(figure, sizeof figure, "%s%s %.2f ms", text.empty() ? "" : ", ",
                  precision_name(t.precision), t.layer_gemm_ms);
    text += figure;
  }
  return text;
}

}  // namespace

std::vector<Precision> auto_candidates(bool native_bf16) {
  std::vector<Precision> candidates{Precision::kFp32};
  if (native_bf16) candidates.push_back(Precision::kBf16);
  candidates.push_back(Precision::kInt8);
  return candidates;
}

Precision pick_fastest(const std::vector<PrecisionTiming>& timings) {
  if (timings.empty()) return Precision::kFp32;
  PrecisionTiming pick = timings.front();
  for (const PrecisionTiming& t : timings) {
    if (t.layer_gemm_ms <= kAutoMargin * pick.layer_gemm_ms) pick = t;
  }
  return pick.precision;
}

PrecisionChoice choose_precision(Precision requested, const BertConfig& config) {
  const bool native_bf16 = kernels::native_bf16_matmul();
  PrecisionChoice choice;
  choice.requested = requested;
  choice.precision = requested;
  if (requested == Precision::kAuto) {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    for (Precision candidate : auto_candidates(native_bf16)) {
      // The same GEMM-by-GEMM mix as BertClassifier builds for `candidate`.
      // (Only the GEMMs are timed, so the attention arithmetic does not matter here.)
      const LayerPrecisions precisions =
          LayerPrecisions::for_model(candidate, LayerPrecisions::int8_down_projection_here(), false);
      choice.timings.push_back({candidate, time_layer_gemms(engine, config, precisions)});
    }
    choice.precision = pick_fastest(choice.timings);
    choice.reason = std::string("auto: one layer's GEMMs on ") + std::to_string(kAutoRows) + " rows took " +
                    timings_text(choice.timings) + (native_bf16 ? "" : " (no native bf16 on this CPU)");
  } else {
    choice.reason = "requested";
  }
  return choice;
}

}  // namespace fcabert::model

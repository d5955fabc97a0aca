#include "cli/precision_option.h"

namespace fcabert::cli {

void add_precision_flag(CLI::App* command, std::string& precision) {
  command
      ->add_option("--precision", precision,
                   "GEMM arithmetic: fp32 (exact); bf16 (weights and GEMM inputs rounded to bf16, "
                   "fp32 accumulation; 2x fp32's GEMM rate on AMD Zen 5, 6x on an Intel Xeon with AMX, "
                   "slower than fp32 on an Intel Xeon without AMX, emulated without AVX512_BF16); int8 "
                   "(dynamic quantization: s8 "
                   "weights per output feature, u8 inputs per call; the FFN down-projection in bf16 "
                   "with AMX, else in int8 with one input scale per token); or auto (times one layer's GEMMs "
                   "in each at load, about 30 ms for MiniLM, and takes the fastest; logged, and named "
                   "in JSON reports). With AMX, bf16 and int8 also multiply attention's Q K^T and P V "
                   "in bf16. docs/PERF.md has the figures")
      ->check(CLI::IsMember({"fp32", "bf16", "int8", "auto"}))
      ->capture_default_str();
}

LoadOptions load_options(int threads, const std::string& precision) {
  LoadOptions options;
  options.threads = threads;
  options.precision = parse_precision(precision);
  return options;
}

}  // namespace fcabert::cli

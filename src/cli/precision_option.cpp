#include "cli/precision_option.h"

namespace fcabert::cli {

void add_precision_flag(CLI::App* command, std::string& precision) {
  command
      ->add_option("--precision", precision,
                   "GEMM arithmetic: fp32; bf16 (weights and GEMM inputs rounded to bf16, fp32 "
                   "accumulation; faster only with AMX); or int8 (dynamic quantization: s8 weights "
                   "per output feature, u8 inputs per call, VNNI; the FFN down-projection stays fp32)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
      ->capture_default_str();
}

LoadOptions load_options(int threads, const std::string& precision) {
  LoadOptions options;
  options.threads = threads;
  options.precision = parse_precision(precision);
  return options;
}

}  // namespace fcabert::cli

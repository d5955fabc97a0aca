#include "cli/precision_option.h"

namespace fcabert::cli {

void add_precision_flag(CLI::App* command, std::string& precision) {
  command
      ->add_option("--precision", precision,
                   "GEMM arithmetic: fp32, or bf16 (weights and GEMM inputs rounded to bf16, fp32 "
                   "accumulation; about 2x faster GEMMs on CPUs with AVX512_BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
}

LoadOptions load_options(int threads, const std::string& precision) {
  LoadOptions options;
  options.threads = threads;
  options.precision = parse_precision(precision);
  return options;
}

}  // namespace fcabert::cli

#pragma once
// The arithmetic precision of matrix products: what LoadOptions::precision chooses for the
// encoder, and what each kernel runs (src/kernels/linear.h). One enum for both levels.
#include <string>

namespace fcabert {

// The arithmetic of the encoder's matrix products; attention, LayerNorm, GELU, the pooler
// and the classifier stay fp32 in every case.
// - kBf16 stores the encoder weights as bf16 (rounded once at load) and rounds each GEMM's
//   input to bf16, accumulating in fp32. It is faster only where oneDNN has fast bf16
//   kernels (AMX); on AVX512_BF16 alone it measured slower than fp32 (docs/PERF.md).
// - kInt8 is dynamic quantization of three of each layer's four GEMMs (Q|K|V, attention
//   output, FFN up-projection): weights as s8 with a scale per output feature (once at
//   load), each GEMM's input as u8 with one scale and zero point per call, int32
//   accumulation (VNNI). The FFN down-projection stays fp32: its input carries BERT's
//   largest outliers. Results differ from fp32 by more than bf16's, and depend slightly on
//   which sequences share a batch (the input scale is per call); docs/PERF.md has the
//   accuracy measured.
// Where oneDNN has no implementation for the CPU, loading throws an Error.
enum class Precision { kFp32, kBf16, kInt8 };

// "fp32" / "bf16" / "int8", and back (throws fcabert::Error for any other name).
const char* precision_name(Precision precision);
Precision parse_precision(const std::string& name);

}  // namespace fcabert

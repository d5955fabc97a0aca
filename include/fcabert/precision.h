#pragma once
// The arithmetic precision of matrix products: what LoadOptions::precision chooses for the
// encoder, and what each kernel runs (src/kernels/linear.h). One enum for both levels.
#include <string>

namespace fcabert {

// The arithmetic of the encoder's matrix products; the softmax, LayerNorm, GELU, the pooler
// and the classifier stay fp32 in every case. With kBf16 and kInt8, attention's own products
// (Q K^T and P V) run in bf16 on AMX tiles where the CPU has AMX (fp32 accumulation; the
// softmax and FCA's token scores in fp32), and in fp32 elsewhere; Model::precision() names it
// ("attention bf16").
// - kBf16 stores the encoder weights as bf16 (rounded once at load) and rounds each GEMM's
//   input to bf16, accumulating in fp32. Its speed depends on the CPU (docs/PERF.md): oneDNN's
//   bf16 matmul peaked at 2x fp32 on an AMD EPYC Zen 5 (AVX512_BF16), at 0.6x on an Intel
//   Xeon with AVX512_BF16 but no AMX, and is emulated (slower) without AVX512_BF16.
// - kInt8 is dynamic quantization of the encoder's GEMMs: weights as s8 with a scale per
//   output feature (once at load), int32 accumulation (VNNI). Q|K|V, the attention output
//   and the FFN up-projection quantize their input as u8 with one scale and zero point per
//   call. The FFN down-projection, whose input carries BERT's largest outliers, runs in bf16
//   on a CPU with AMX and elsewhere in int8 with one scale and zero point per token, so that
//   an outlier token coarsens only its own steps (LayerPrecisions::for_model).
//   Results differ from fp32 by more than bf16's, and depend slightly on which sequences
//   share a batch (the per-call scales); docs/PERF.md has the accuracy measured.
// - kAuto is a request, not an arithmetic: Model::load times one encoder layer's GEMMs in
//   each precision the CPU runs natively and picks the fastest (Model::precision() says
//   which, and why; docs/PERF.md has the rule). It never reaches a kernel.
// Where oneDNN has no implementation for the CPU, loading throws an Error.
enum class Precision { kFp32, kBf16, kInt8, kAuto };

// "fp32" / "bf16" / "int8" / "auto", and back (throws fcabert::Error for any other name).
const char* precision_name(Precision precision);
Precision parse_precision(const std::string& name);

}  // namespace fcabert

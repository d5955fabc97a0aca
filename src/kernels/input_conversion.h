#pragma once
// The conversions of a GEMM's fp32 input into the types a lower-precision Linear multiplies:
// u8 with one scale and zero point per call (int8), or bf16. On an AMX CPU the GEMM itself is
// so fast that these passes are a third of an int8 Linear call, so each has an AVX-512
// version chosen at run time next to the portable one (input_conversion.cpp).
#include <cstdint>

namespace fcabert::kernels {

// One u8 quantization of an fp32 tensor: value ~= scale * (q - zero_point).
struct QuantizedU8 {
  float scale = 1.f;
  int32_t zero_point = 0;
};

// x[count] quantized to u8 over its own range (widened to include 0, so that 0 is exact),
// rounding to nearest (ties up). A NaN does not count towards the range and becomes 255 (the
// fp32 path would propagate it; the engine's inputs are finite embeddings); an infinity
// makes the scale infinite, so the GEMM's output turns non-finite rather than wrong. Parallel
// over the calling thread's OpenMP team for large counts.
QuantizedU8 quantize_u8(const float* x, int64_t count, uint8_t* out);

// Which code a conversion runs: kBest, the AVX-512 loop where the CPU has AVX-512 (else the
// portable one), is what the engine uses; kPortable forces the portable loop, so that tests
// can check that the two produce the same bytes.
enum class ConversionCode { kBest, kPortable };

QuantizedU8 quantize_u8(const float* x, int64_t count, uint8_t* out, ConversionCode code);

// x[rows, cols] quantized row by row, each row over its own range as quantize_u8 does for a
// whole tensor: row r ~= params[r].scale * (out[r, :] - params[r].zero_point). A row's codes
// then depend on that row alone, and one token's outliers coarsen only its own steps
// (int8 Linears with Int8Scales::kPerRow). Parallel over the calling thread's OpenMP team
// for large inputs.
void quantize_u8_rows(const float* x, int64_t rows, int64_t cols, uint8_t* out, QuantizedU8* params,
                      ConversionCode code = ConversionCode::kBest);

// x[count] rounded to nearest-even bf16 (the upper 16 bits of the fp32 pattern; a NaN stays
// a quiet NaN). Parallel over the calling thread's OpenMP team for large counts.
void to_bf16(const float* x, int64_t count, uint16_t* out);
void to_bf16(const float* x, int64_t count, uint16_t* out, ConversionCode code);

}  // namespace fcabert::kernels

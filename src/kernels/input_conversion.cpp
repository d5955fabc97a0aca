#include "kernels/input_conversion.h"

// GCC 12 (Debian 12's) warns -W(maybe-)uninitialized inside the AVX-512 intrinsics, whose
// "undefined" pass-through operands it mistakes for uninitialized reads (GCC bug 105593,
// fixed in GCC 13); the diagnostic state at the header's own lines is what counts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>

#include "format/bf16.h"
#include "kernels/parallel.h"

namespace fcabert::kernels {
namespace {

// The library is built for the baseline x86-64 ISA (SSE2). GCC's own vectorization of these
// loops fell short even when compiled for AVX-512 (target_clones): the range reduction stayed
// one vminss/vmaxss per element, the quantization 256-bit with spills; together they took
// 35% of an int8 384 -> 384 Linear call at 256 rows on an Intel Xeon with AMX (perf record,
// 2026-12-03). So each pass has a portable loop and an AVX-512 one, picked per call by
// __builtin_cpu_supports (a read of a flag libgcc sets once at start-up). Both compute the
// same values: the same operations in the same order, no FMA (tests compare their bytes).
#define FCABERT_AVX512 __attribute__((target("avx512f")))

bool use_avx512(ConversionCode code) {
  return code == ConversionCode::kBest && __builtin_cpu_supports("avx512f");
}

// ---- portable versions -----------------------------------------------------------------

// The range of x together with 0. A NaN compares false and leaves lo/hi unchanged.
void range_with_zero_portable(const float* x, int64_t count, float& lo, float& hi) {
  float low = 0.f, high = 0.f;
  for (int64_t i = 0; i < count; ++i) {
    low = x[i] < low ? x[i] : low;
    high = x[i] > high ? x[i] : high;
  }
  lo = low;
  hi = high;
}

// out = round(clamp(x * inverse + zero, 0, 255)), ties up: the half is added first and the
// sum clamped to [0, 255.5], so truncation rounds. The upper clamp keeps 255.5 when the
// comparison fails, so a NaN becomes 255 and never reaches the integer conversion.
inline uint8_t quantize_one(float x, float inverse, float zero) {
  const float product = x * inverse;  // separate statements: no FMA contraction
  const float rounded_up = product + zero + 0.5f;
  const float below_top = rounded_up < 255.5f ? rounded_up : 255.5f;
  const float clamped = below_top > 0.f ? below_top : 0.f;
  return static_cast<uint8_t>(static_cast<int32_t>(clamped));
}

void quantize_slice_portable(const float* x, int64_t count, float inverse, float zero, uint8_t* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = quantize_one(x[i], inverse, zero);
}

void to_bf16_portable(const float* x, int64_t count, uint16_t* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = format::f32_to_bf16(x[i]);
}

// ---- AVX-512 versions (16 lanes; the tail under a mask) --------------------------------

FCABERT_AVX512 inline __mmask16 tail_mask(int64_t remaining) {
  return static_cast<__mmask16>((1u << remaining) - 1u);
}

// vminps/vmaxps return their second operand when either is NaN: with the running value
// second, a NaN in x leaves it unchanged, as in the portable loop. Masked-off tail lanes load
// as 0, which the range includes anyway. Two accumulator pairs hide the instructions' latency.
FCABERT_AVX512 void range_with_zero_avx512(const float* x, int64_t count, float& lo, float& hi) {
  __m512 lo0 = _mm512_setzero_ps(), hi0 = _mm512_setzero_ps(), lo1 = lo0, hi1 = hi0;
  int64_t i = 0;
  for (; i + 32 <= count; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    lo0 = _mm512_min_ps(a, lo0), hi0 = _mm512_max_ps(a, hi0);
    lo1 = _mm512_min_ps(b, lo1), hi1 = _mm512_max_ps(b, hi1);
  }
  for (; i < count; i += 16) {
    const __m512 a = _mm512_maskz_loadu_ps(count - i >= 16 ? 0xFFFF : tail_mask(count - i), x + i);
    lo0 = _mm512_min_ps(a, lo0), hi0 = _mm512_max_ps(a, hi0);
  }
  lo = _mm512_reduce_min_ps(_mm512_min_ps(lo0, lo1));
  hi = _mm512_reduce_max_ps(_mm512_max_ps(hi0, hi1));
}

// quantize_one on 16 lanes, as int32 codes in [0, 255]: vminps(v, 255.5) returns 255.5 for
// a NaN v, as the portable select does.
FCABERT_AVX512 inline __m512i quantize_16(__m512 v, __m512 inverse, __m512 zero) {
  const __m512 rounded_up =
      _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(v, inverse), zero), _mm512_set1_ps(0.5f));
  const __m512 clamped =
      _mm512_max_ps(_mm512_min_ps(rounded_up, _mm512_set1_ps(255.5f)), _mm512_setzero_ps());
  return _mm512_cvttps_epi32(clamped);
}

FCABERT_AVX512 void quantize_slice_avx512(const float* x, int64_t count, float inverse, float zero,
                                          uint8_t* out) {
  const __m512 inverse16 = _mm512_set1_ps(inverse), zero16 = _mm512_set1_ps(zero);
  int64_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm512_cvtusepi32_epi8(quantize_16(_mm512_loadu_ps(x + i), inverse16, zero16)));
  if (i < count) {
    const __mmask16 mask = tail_mask(count - i);
    _mm512_mask_cvtusepi32_storeu_epi8(out + i, mask,
                                       quantize_16(_mm512_maskz_loadu_ps(mask, x + i), inverse16, zero16));
  }
}

// format::f32_to_bf16 on 16 lanes, in integer arithmetic on the bit patterns.
FCABERT_AVX512 inline __m512i bf16_16(__m512i bits) {
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), odd), 16);
  const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)),
                                                _mm512_set1_epi32(0x7F800000));
  return _mm512_mask_blend_epi32(nan, rounded, quiet_nan);
}

FCABERT_AVX512 void to_bf16_avx512(const float* x, int64_t count, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512i bits = _mm512_loadu_si512(x + i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(bf16_16(bits)));
  }
  if (i < count) {
    const __mmask16 mask = tail_mask(count - i);
    _mm512_mask_cvtepi32_storeu_epi16(out + i, mask, bf16_16(_mm512_maskz_loadu_epi32(mask, x + i)));
  }
}

// ---- dispatch ----------------------------------------------------------------------------

void range_with_zero(bool avx512, const float* x, int64_t count, float& lo, float& hi) {
  if (avx512) {
    range_with_zero_avx512(x, count, lo, hi);
  } else {
    range_with_zero_portable(x, count, lo, hi);
  }
}

void quantize_slice(bool avx512, const float* x, int64_t count, float inverse, float zero, uint8_t* out) {
  if (avx512) {
    quantize_slice_avx512(x, count, inverse, zero, out);
  } else {
    quantize_slice_portable(x, count, inverse, zero, out);
  }
}

void to_bf16_slice(bool avx512, const float* x, int64_t count, uint16_t* out) {
  if (avx512) {
    to_bf16_avx512(x, count, out);
  } else {
    to_bf16_portable(x, count, out);
  }
}

// body(begin, end) over `count` elements cut into one contiguous slice per thread of the
// calling thread's OpenMP team (one slice, inline, when the count is too small to share).
template <typename Body>
void for_each_slice(int64_t count, Body&& body) {
  const int64_t slices = worth_parallel(count) ? omp_get_max_threads() : 1;
  parallel_for(slices, slices > 1, [&](int64_t s) { body(count * s / slices, count * (s + 1) / slices); });
}

// The u8 quantization of values in [lo, hi] (lo <= 0 <= hi). All zeros: scale 1 is as good
// as any. An infinite range (an inf in x) gives an infinite scale, so the output turns
// NaN/inf instead of hiding the problem.
QuantizedU8 quantization_for_range(float lo, float hi) {
  QuantizedU8 q;
  q.scale = hi - lo > 0.f ? (hi - lo) / 255.f : 1.f;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.f, 255.f));
  return q;
}

}  // namespace

QuantizedU8 quantize_u8(const float* x, int64_t count, uint8_t* out) {
  return quantize_u8(x, count, out, ConversionCode::kBest);
}

QuantizedU8 quantize_u8(const float* x, int64_t count, uint8_t* out, ConversionCode code) {
  const bool avx512 = use_avx512(code);
  float lo = 0.f, hi = 0.f;  // the range always includes 0, so padding-free zeros stay exact
  if (worth_parallel(count)) {
#pragma omp parallel reduction(min : lo) reduction(max : hi)
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t begin = count * t / threads, end = count * (t + 1) / threads;
      float slice_lo = 0.f, slice_hi = 0.f;
      range_with_zero(avx512, x + begin, end - begin, slice_lo, slice_hi);
      lo = std::min(lo, slice_lo);
      hi = std::max(hi, slice_hi);
    }
  } else {
    range_with_zero(avx512, x, count, lo, hi);
  }
  const QuantizedU8 q = quantization_for_range(lo, hi);
  const float inverse = 1.f / q.scale;
  const float zero = static_cast<float>(q.zero_point);
  for_each_slice(count, [&](int64_t begin, int64_t end) {
    quantize_slice(avx512, x + begin, end - begin, inverse, zero, out + begin);
  });
  return q;
}

void quantize_u8_rows(const float* x, int64_t rows, int64_t cols, uint8_t* out, QuantizedU8* params,
                      ConversionCode code) {
  const bool avx512 = use_avx512(code);
  parallel_for(rows, worth_parallel(rows * cols), [&](int64_t r) {
    const float* row = x + r * cols;
    float lo = 0.f, hi = 0.f;
    range_with_zero(avx512, row, cols, lo, hi);
    params[r] = quantization_for_range(lo, hi);
    quantize_slice(avx512, row, cols, 1.f / params[r].scale, static_cast<float>(params[r].zero_point),
                   out + r * cols);
  });
}

void to_bf16(const float* x, int64_t count, uint16_t* out) { to_bf16(x, count, out, ConversionCode::kBest); }

void to_bf16(const float* x, int64_t count, uint16_t* out, ConversionCode code) {
  const bool avx512 = use_avx512(code);
  for_each_slice(
      count, [&](int64_t begin, int64_t end) { to_bf16_slice(avx512, x + begin, end - begin, out + begin); });
}

}  // namespace fcabert::kernels

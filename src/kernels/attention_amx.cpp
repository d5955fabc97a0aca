#include "kernels/attention_amx.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>

// The AMX code needs GCC's x86 intrinsics and Linux's permission call; elsewhere (clang's
// fuzz build, other systems) available() is false and the fp32 kernel runs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define FCABERT_HAVE_AMX_CODE 1
// GCC 12 warns -W(maybe-)uninitialized inside the AVX-512 intrinsics (GCC bug 105593); see
// kernels/input_conversion.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fcabert::kernels::amx {
namespace {

// One tile row holds 64 bytes: 32 bf16 values along the reduction dimension (in pairs, the
// layout tdpbf16ps multiplies) or 16 fp32 results. A tile has up to 16 rows.
constexpr int64_t kTileRows = 16;
constexpr int64_t kPairedValues = 32;  // bf16 values of the reduction per tile row

// Keys (and the probability columns) are padded to whole pairs of 16-key tiles.
int64_t key_stride(int64_t length) { return round_up(length, kPairedValues); }

// The work area of one head, carved out of `work` for a key stride S and head size d:
//   queries [S][d] bf16         Q scaled by 1/sqrt(d) (pack_head)
//   keys    [S/16][d/2][16] bf16 pairs: K^T, its head dimension in pairs (pack_head)
//   values  [S/2][d] bf16 pairs: V, its keys in pairs (pack_head)
//   probs16 [16][S] bf16        one query block's probabilities, for P V
//   probs   [16][S] fp32        the same block's scores, then probabilities
//   staged  [16][32] fp32       a query block's context for 32 head dimensions, unscaled
struct HeadWork {
  uint16_t* queries;
  uint32_t* keys;
  uint32_t* values;
  uint16_t* probs16;
  float* probs;
  float* staged;
};

size_t head_work_floats(int64_t stride, int64_t head_dim) {
  // Three [S][d] bf16 blocks, then [16][S] bf16 and fp32, then [16][32] fp32; every part a
  // multiple of 64 bytes because S is a multiple of 32.
  return static_cast<size_t>(3 * stride * head_dim / 2 + kTileRows * stride / 2 + kTileRows * stride +
                             kTileRows * kPairedValues);
}

#ifdef FCABERT_HAVE_AMX_CODE

// Everything below runs only where available() said yes, compiled for AMX and AVX-512 with
// AVX512_BF16 (which every AMX CPU has) for these functions alone; the library stays
// baseline x86-64. (GCC 12 refuses to inline the tile intrinsics into "arch=sapphirerapids".)
#define FCABERT_AMX                                                                          \
  __attribute__((                                                                            \
      target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,bmi," \
             "bmi2")))

HeadWork carve(float* work, int64_t stride, int64_t head_dim) {
  HeadWork w{};
  w.queries = reinterpret_cast<uint16_t*>(work);
  w.keys = reinterpret_cast<uint32_t*>(w.queries + stride * head_dim);
  w.values = w.keys + stride * head_dim / 2;
  w.probs16 = reinterpret_cast<uint16_t*>(w.values + stride * head_dim / 2);
  w.probs = reinterpret_cast<float*>(w.probs16 + kTileRows * stride);
  w.staged = w.probs + kTileRows * stride;
  return w;
}

// Linux keeps the 8 KiB tile state off until a process asks for it (arch_prctl,
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, kernel 5.16+); asking again is harmless.
bool tile_data_permitted() {
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// GCC 12's tileloadd and ldtilecfg intrinsics are asm statements that do not tell the compiler
// they read memory (only 8 bytes of the configuration), so it could still hold back stores
// they depend on. This barrier goes between writing a tile operand and loading it.
inline void memory_barrier_for_tiles() { __asm__ volatile("" ::: "memory"); }

// The ldtilecfg operand (Intel SDM, "Tile configuration"): palette 1, every tile used here
// 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0 and 1 accumulate two 16 x 16 fp32 blocks; tile 2 holds the left operand (16 rows of
// 32 bf16) and tiles 3 and 4 the two right operands (16 rows of 16 bf16 pairs).
FCABERT_AMX void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 5; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = kTileRows;
  }
  memory_barrier_for_tiles();
  _tile_loadconfig(&config);
}

FCABERT_AMX inline __m512i bf16_of(const float* x, __m512 scale) {
  const __m512 lo = _mm512_mul_ps(_mm512_loadu_ps(x), scale);
  const __m512 hi = _mm512_mul_ps(_mm512_loadu_ps(x + 16), scale);
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // 32 bf16, lo first
}

// Rows of the packed qkv ahead of the one being packed that are prefetched: consecutive rows
// are 3 * hidden floats apart, more than a page, which the hardware prefetchers do not follow;
// without it the packing waited on memory (a quarter of the kernel at 335 tokens).
constexpr int64_t kPrefetchRows = 6;

FCABERT_AMX inline void prefetch_head_row(const float* row, int64_t d) {
  for (int64_t c = 0; c < d; c += 16) _mm_prefetch(reinterpret_cast<const char*>(row + c), _MM_HINT_T0);
}

// The three operands of one head from the packed fp32 qkv rows, in one pass over them:
//   queries[i][c] = bf16(q_i[c] / sqrt(d)), rows from length to the next whole tile zero
//     (folding the scale in here saves a pass over the scores);
//   keys, 16-key blocks of d/2 tile rows: keys[(j / 16) * d/2 * 16 + p * 16 + j % 16] =
//     (bf16 k_j[2p], bf16 k_j[2p + 1]), so that each right operand of Q K^T is one contiguous
//     KiB; a key's pairs go out in one scatter; keys from length to S zero (score 0, which the
//     softmax masks);
//   values[p][c] = (bf16 v_2p[c], bf16 v_2p+1[c]), the right operand of P V with each tile row
//     one pair of keys; two value rows interleave 16-bit-wise, an odd last key pairs with zero
//     and the pairs up to S/2 are zero (their probabilities are 0, but 0 times whatever the
//     buffer held could be a NaN).
FCABERT_AMX void pack_head(const HeadView& head, float scale, int64_t stride, const HeadWork& w) {
  const int64_t d = head.head_dim, length = head.length, step = head.qkv_stride;
  const __m512 factor = _mm512_set1_ps(scale), one = _mm512_set1_ps(1.f);
  const __m512i pair_rows =
      _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
  // Word indices of (a[0], b[0], a[1], b[1], ...) over the concatenation a|b, for the low and
  // the high 16 words of each.
  alignas(64) uint16_t low[32], high[32];
  for (int i = 0; i < 16; ++i) {
    low[2 * i] = static_cast<uint16_t>(i), low[2 * i + 1] = static_cast<uint16_t>(32 + i);
    high[2 * i] = static_cast<uint16_t>(16 + i), high[2 * i + 1] = static_cast<uint16_t>(48 + i);
  }
  const __m512i low_words = _mm512_load_si512(low), high_words = _mm512_load_si512(high);
  const int64_t key_block = d / 2 * kTileRows;  // uint32 per 16-key block
  std::fill(w.keys + length / kTileRows * key_block, w.keys + stride / kTileRows * key_block, 0u);

  for (int64_t j = 0; j < length; j += 2) {
    for (int64_t ahead = j + kPrefetchRows; ahead < std::min(j + kPrefetchRows + 2, length); ++ahead) {
      prefetch_head_row(head.q + ahead * step, d);
      prefetch_head_row(head.k + ahead * step, d);
      prefetch_head_row(head.v + ahead * step, d);
    }
    const bool pair = j + 1 < length;
    for (int64_t c = 0; c < d; c += kPairedValues) {
      for (int64_t i = j; i < j + (pair ? 2 : 1); ++i) {
        _mm512_storeu_si512(w.queries + i * d + c, bf16_of(head.q + i * step + c, factor));
        uint32_t* block = w.keys + i / kTileRows * key_block + c / 2 * kTileRows + i % kTileRows;
        _mm512_i32scatter_epi32(block, pair_rows, bf16_of(head.k + i * step + c, one), 4);
      }
      const __m512i even = bf16_of(head.v + j * step + c, one);
      const __m512i odd = pair ? bf16_of(head.v + (j + 1) * step + c, one) : _mm512_setzero_si512();
      uint32_t* out = w.values + (j / 2) * d + c;
      _mm512_storeu_si512(out, _mm512_permutex2var_epi16(even, low_words, odd));
      _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi16(even, high_words, odd));
    }
  }
  std::fill(w.queries + length * d, w.queries + round_up(length, kTileRows) * d, uint16_t{0});
  std::fill(w.values + round_up(length, 2) / 2 * d, w.values + stride / 2 * d, 0u);
}

// probs[r][j] = q_(i0 + r) . k_j / sqrt(d) for one block of 16 queries and every key j < S,
// two 16-key blocks at a time. (Four at a time, in four accumulator tiles, measured no
// faster: the tile stores of the scores, not the products, set the pace.)
FCABERT_AMX void score_block(const HeadWork& w, int64_t i0, int64_t stride, int64_t d) {
  const int64_t key_block = d / 2 * kTileRows;  // uint32 per 16-key block of w.keys
  const uint16_t* queries = w.queries + i0 * d;
  for (int64_t j0 = 0; j0 < stride; j0 += 2 * kTileRows) {
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t c = 0; c < d; c += kPairedValues) {
      const uint32_t* keys = w.keys + j0 / kTileRows * key_block + c / 2 * kTileRows;
      _tile_loadd(2, queries + c, d * sizeof(uint16_t));
      _tile_loadd(3, keys, kTileRows * sizeof(uint32_t));
      _tile_loadd(4, keys + key_block, kTileRows * sizeof(uint32_t));
      _tile_dpbf16ps(0, 2, 3);
      _tile_dpbf16ps(1, 2, 4);
    }
    _tile_stored(0, w.probs + j0, stride * sizeof(float));
    _tile_stored(1, w.probs + j0 + kTileRows, stride * sizeof(float));
  }
}

// exp(x) on 16 lanes for x <= 0, by the method of kernels/exp.h (Cody-Waite reduction, a
// Taylor series) with the power of two applied by vscalefps. Degree 5, not 7: its truncation
// error (< 3e-6 relative) is far below the bf16 rounding (2e-3) of the values P V multiplies,
// and the two terms fewer made the kernel about 5% faster at 335 tokens. Arguments below -87,
// the masked padding's -inf among them, give exp(-87) ~ 1.6e-38 rather than 0; the callers
// zero the padding lanes.
FCABERT_AMX inline __m512 exp_nonpositive16(__m512 x) {
  const __m512 clamped = _mm512_max_ps(x, _mm512_set1_ps(-87.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), clamped);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440054690583e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 120.f);
  for (const float c : {1.f / 24.f, 1.f / 6.f, 0.5f, 1.f, 1.f}) {  // unrolled
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  }
  return _mm512_scalef_ps(p, n);
}

// Lanes of the 16 from j that hold keys (j < length).
FCABERT_AMX inline __mmask16 keys_from(int64_t j, int64_t length) {
  const int64_t left = length - j;
  return left >= 16  ? __mmask16{0xFFFF}
         : left <= 0 ? __mmask16{0}
                     : static_cast<__mmask16>((1u << left) - 1u);
}

// For one row of scores: e[j] = exp(score[j] - max) for the keys (0 in the padding up to
// stride, a multiple of 32), written to row16 in bf16 and, when `keep_fp32`, over the scores;
// returns 1 / sum e. The padding is masked in registers: filling it in memory first made the
// row's vector loads wait on the small stores (a failed store-to-load forward).
FCABERT_AMX inline float exponentiate_row(float* row, uint16_t* row16, int64_t length, int64_t stride,
                                          bool keep_fp32) {
  const __m512 minus_infinity = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 max0 = minus_infinity, max1 = minus_infinity;
  for (int64_t j = 0; j < stride; j += 32) {
    max0 = _mm512_max_ps(max0, _mm512_mask_loadu_ps(minus_infinity, keys_from(j, length), row + j));
    max1 = _mm512_max_ps(max1, _mm512_mask_loadu_ps(minus_infinity, keys_from(j + 16, length), row + j + 16));
  }
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(max0, max1)));
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  for (int64_t j = 0; j < stride; j += 32) {
    const __mmask16 keys0 = keys_from(j, length), keys1 = keys_from(j + 16, length);
    const __m512 e0 =
        _mm512_maskz_mov_ps(keys0, exp_nonpositive16(_mm512_sub_ps(_mm512_loadu_ps(row + j), max)));
    const __m512 e1 =
        _mm512_maskz_mov_ps(keys1, exp_nonpositive16(_mm512_sub_ps(_mm512_loadu_ps(row + j + 16), max)));
    _mm512_storeu_si512(row16 + j, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0)));
    if (keep_fp32) {
      _mm512_storeu_ps(row + j, e0);
      _mm512_storeu_ps(row + j + 16, e1);
    }
    sum0 = _mm512_add_ps(sum0, e0);
    sum1 = _mm512_add_ps(sum1, e1);
  }
  // sum >= 1: the max element contributes exp(0).
  return 1.f / _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}

// The softmax of the block's first `rows` rows, left unnormalized in bf16 for P V (each
// context row is divided by its sum afterwards, which saves a pass over the probabilities),
// and the FCA statistics from the normalized fp32 probabilities. The block's other rows
// (past the sequence) become zero.
FCABERT_AMX void normalize_block(const HeadView& head, const HeadWork& w, int64_t i0, int64_t rows,
                                 int64_t stride, float* inverse_sums) {
  const bool statistics = head.column_sums != nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w.probs + r * stride;
    const float inverse = exponentiate_row(row, w.probs16 + r * stride, head.length, stride, statistics);
    inverse_sums[r] = inverse;
    if (!statistics) continue;
#pragma omp simd
    for (int64_t j = 0; j < head.length; ++j) head.column_sums[j] += row[j] * inverse;
    head.diagonal[i0 + r] = row[i0 + r] * inverse;
  }
  std::fill(w.probs16 + rows * stride, w.probs16 + kTileRows * stride, uint16_t{0});
  memory_barrier_for_tiles();
}

// context rows i0 .. i0 + rows - 1 = (E V) / sum for the block, 32 head dimensions at a time:
// the tiles go to `staged` and are scaled row by row on their way out. (Splitting the keys
// over four accumulator tiles, for two independent chains, made it slower: two more tile
// stores per block.)
FCABERT_AMX void weigh_block(const HeadView& head, const HeadWork& w, int64_t i0, int64_t rows,
                             int64_t stride, const float* inverse_sums) {
  const int64_t d = head.head_dim;
  float* context = head.context + i0 * head.context_stride;
  for (int64_t c0 = 0; c0 < d; c0 += 2 * kTileRows) {
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t j = 0; j < stride; j += kPairedValues) {
      const uint32_t* values = w.values + (j / 2) * d + c0;
      _tile_loadd(2, w.probs16 + j, stride * sizeof(uint16_t));
      _tile_loadd(3, values, d * sizeof(uint32_t));
      _tile_loadd(4, values + kTileRows, d * sizeof(uint32_t));
      _tile_dpbf16ps(0, 2, 3);
      _tile_dpbf16ps(1, 2, 4);
    }
    _tile_stored(0, w.staged, kPairedValues * sizeof(float));
    _tile_stored(1, w.staged + kTileRows, kPairedValues * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 inverse = _mm512_set1_ps(inverse_sums[r]);
      float* out = context + r * head.context_stride + c0;
      const float* in = w.staged + r * kPairedValues;
      _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_loadu_ps(in), inverse));
      _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_loadu_ps(in + 16), inverse));
    }
  }
}

FCABERT_AMX void attend_head_amx(const HeadView& head, float* work) {
  const int64_t stride = key_stride(head.length);
  const HeadWork w = carve(work, stride, head.head_dim);
  pack_head(head, 1.f / std::sqrt(static_cast<float>(head.head_dim)), stride, w);
  if (head.column_sums) std::fill(head.column_sums, head.column_sums + head.length, 0.0);
  memory_barrier_for_tiles();
  // The tile configuration is per thread and oneDNN's AMX kernels set their own on the same
  // threads, so it is loaded for every head (a few dozen cycles) and released after.
  configure_tiles();
  for (int64_t i0 = 0; i0 < head.length; i0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, head.length - i0);
    score_block(w, i0, stride, head.head_dim);
    float inverse_sums[kTileRows];
    normalize_block(head, w, i0, rows, stride, inverse_sums);
    weigh_block(head, w, i0, rows, stride, inverse_sums);
  }
  _tile_release();
}

#endif  // FCABERT_HAVE_AMX_CODE

}  // namespace

bool available() {
#ifdef FCABERT_HAVE_AMX_CODE
  // Asked once per process: neither the CPU, oneDNN's ISA cap (read at its first use) nor
  // the granted permission changes while it runs. A constant, initialized thread-safely.
  static const bool usable =
      dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx && tile_data_permitted();
  return usable;
#else
  return false;
#endif
}

bool supports_head_dim(int64_t head_dim) { return head_dim > 0 && head_dim % kPairedValues == 0; }

size_t work_floats(int64_t max_length, int64_t head_dim) {
  return head_work_floats(key_stride(max_length), head_dim);
}

void attend_head(const HeadView& head, float* work) {
#ifdef FCABERT_HAVE_AMX_CODE
  attend_head_amx(head, work);
#else
  (void)head;
  (void)work;
  throw std::logic_error("amx::attend_head: built without the AMX kernel; check amx::available() first");
#endif
}

}  // namespace fcabert::kernels::amx

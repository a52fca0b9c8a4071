// int4 weights x int8 activations, with integer dot products (AVX512-VNNI or AVX2): llmlab::w4a8_mm.
//
// y[m, n] = sum_b  dw[n, b] * sum_{h in b} dx[m, h] * sum_{k in h} qw[n, k] * qx[m, k]   +   mw[n, b] * sx[m, b]
//
// b runs over blocks of 32 inputs, h over their two halves of 16. Weights: 4-bit codes qw in [0, 15] with a
// scale dw and a minimum mw per (row, block), value dw * qw + mw (llama.cpp's Q4_1). Activations: quantised
// here, per (row, half block), to int8 qx = round(x / dx) with dx = max|x| / 127; sx = sum_h dx[m, h] sum qx
// is the block's sum of the quantized x, so that y is exactly (dequantized x) . (dequantized w).
//
// Layout (made by llmlab.quant.w4a8._pack): rows in tiles of 16, so that one 512-bit register holds one
// 32-bit lane per row and `vpdpbusd` adds four u8 x s8 products into each of the 16 rows at once:
//   codes  (N/16, K/32, 4, 64) uint8: chunk c of a (tile, block) holds, for row r and j < 4, the byte
//          qw[r, 4c + j] | qw[r, 16 + 4c + j] << 4 at offset 4 r + j;
//   scales (N/16, K/32, 2, 16) float16: dw then mw of the tile's 16 rows for that block.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

// the widest path this build's -march allows: AVX512-VNNI, else AVX2 (most laptops), else one lane at a time
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define LLMLAB_VNNI 1
#define LLMLAB_AVX2 0
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define LLMLAB_VNNI 0
#define LLMLAB_AVX2 1
#else
#define LLMLAB_VNNI 0
#define LLMLAB_AVX2 0
#endif

namespace {

constexpr int64_t kBlock = 32, kHalf = 16;

// x (M, K) float -> qx (M, K) int8, dx (M, K/16) and sx (M, K/32) float
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* qx, float* dx, float* sx) {
  for (int64_t i = 0; i < M * K / kHalf; ++i) {
    const float* xh = x + i * kHalf;
    int8_t* q = qx + i * kHalf;
#if LLMLAB_VNNI  // a half block is one register of 16 floats
    const __m512 v = _mm512_loadu_ps(xh);
    const bool nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0;
    const float d = _mm512_reduce_max_ps(_mm512_abs_ps(v)) / 127.f;
    const float inv = d > 0.f ? 1.f / d : 0.f;
    const __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(inv)));  // rounds half to even
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qi));
    const int32_t sum = _mm512_reduce_add_epi32(qi);
#else
    float amax = 0.f;
    bool nan = false;
    for (int64_t k = 0; k < kHalf; ++k) {
      amax = std::max(amax, std::fabs(xh[k]));
      nan |= std::isnan(xh[k]);
    }
    const float d = amax / 127.f;
    const float inv = d > 0.f ? 1.f / d : 0.f;
    int32_t sum = 0;
    for (int64_t k = 0; k < kHalf; ++k) {
      q[k] = static_cast<int8_t>(std::nearbyint(xh[k] * inv));
      sum += q[k];
    }
#endif
    dx[i] = nan ? std::numeric_limits<float>::quiet_NaN() : d;  // max() skips NaN: a NaN input makes its row NaN
    sx[i / 2] = (i % 2 ? sx[i / 2] : 0.f) + dx[i] * static_cast<float>(sum);
  }
}

// the 4 activation bytes that chunk c's low nibbles (inputs 4c..4c+3 of block xb) and its high nibbles
// (16 + 4c..) multiply, each as one 32-bit word to broadcast to every row's lane
[[maybe_unused]] inline void activation_words(const int8_t* xb, int c, int32_t& lo, int32_t& hi) {
  std::memcpy(&lo, xb + 4 * c, 4);
  std::memcpy(&hi, xb + kHalf + 4 * c, 4);
}

#if LLMLAB_VNNI
// MB activation rows against one tile of 16 weight rows; out: row m's 16 results at out + m * N
template <int MB>
inline void tile_vnni(const uint8_t* codes, const at::Half* scales, const int8_t* qx, const float* dx,
                      const float* sx, int64_t K, int64_t N, float* out) {
  const int64_t KB = K / kBlock;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < KB; ++b) {
    const uint8_t* w = codes + b * 256;
    __m512i lo_acc[MB], hi_acc[MB];  // two chains: half the dependent vpdpbusd latency
    for (int m = 0; m < MB; ++m) lo_acc[m] = hi_acc[m] = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(w + 64 * c);
      const __m512i lo = _mm512_and_si512(v, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      for (int m = 0; m < MB; ++m) {
        int32_t xl, xh;
        activation_words(qx + m * K + b * kBlock, c, xl, xh);
        lo_acc[m] = _mm512_dpbusd_epi32(lo_acc[m], lo, _mm512_set1_epi32(xl));
        hi_acc[m] = _mm512_dpbusd_epi32(hi_acc[m], hi, _mm512_set1_epi32(xh));
      }
    }
    const at::Half* s = scales + b * 32;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16)));
    for (int m = 0; m < MB; ++m) {  // first half (low nibbles), then second half, each with its dx
      const float* d = dx + m * 2 * KB + 2 * b;
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo_acc[m]), _mm512_mul_ps(dw, _mm512_set1_ps(d[0])), acc[m]);
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi_acc[m]), _mm512_mul_ps(dw, _mm512_set1_ps(d[1])), acc[m]);
      acc[m] = _mm512_fmadd_ps(mw, _mm512_set1_ps(sx[m * KB + b]), acc[m]);
    }
  }
  for (int m = 0; m < MB; ++m) _mm512_storeu_ps(out + m * N, acc[m]);
}
#endif

#if LLMLAB_AVX2
// The same on 256-bit registers, a tile as two halves of 8 rows: `vpmaddubsw` multiplies uint8 by int8 and
// adds pairs into int16 (at most 2 * 15 * 127, no saturation), `vpmaddwd` by ones adds pairs into int32.
template <int MB>
inline void tile_avx2(const uint8_t* codes, const at::Half* scales, const int8_t* qx, const float* dx,
                      const float* sx, int64_t K, int64_t N, float* out) {
  const int64_t KB = K / kBlock;
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[MB][2];
  for (int m = 0; m < MB; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < KB; ++b) {
    const uint8_t* w = codes + b * 256;
    __m256i lo_acc[MB][2], hi_acc[MB][2];
    for (int m = 0; m < MB; ++m) lo_acc[m][0] = lo_acc[m][1] = hi_acc[m][0] = hi_acc[m][1] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 64 * c + 32 * half));
        const __m256i lo = _mm256_and_si256(v, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        for (int m = 0; m < MB; ++m) {
          int32_t xl, xh;
          activation_words(qx + m * K + b * kBlock, c, xl, xh);
          const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl)), ones);
          const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh)), ones);
          lo_acc[m][half] = _mm256_add_epi32(lo_acc[m][half], pl);
          hi_acc[m][half] = _mm256_add_epi32(hi_acc[m][half], ph);
        }
      }
    }
    const at::Half* s = scales + b * 32;
    for (int half = 0; half < 2; ++half) {
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 8 * half)));
      const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16 + 8 * half)));
      for (int m = 0; m < MB; ++m) {
        const float* d = dx + m * 2 * KB + 2 * b;
        __m256 a = acc[m][half];
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo_acc[m][half]), _mm256_mul_ps(dw, _mm256_set1_ps(d[0])), a);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi_acc[m][half]), _mm256_mul_ps(dw, _mm256_set1_ps(d[1])), a);
        acc[m][half] = _mm256_fmadd_ps(mw, _mm256_set1_ps(sx[m * KB + b]), a);
      }
    }
  }
  for (int m = 0; m < MB; ++m) {
    _mm256_storeu_ps(out + m * N, acc[m][0]);
    _mm256_storeu_ps(out + m * N + 8, acc[m][1]);
  }
}
#endif

// the same sum, one lane at a time: machines without AVX2 (the formula in PyTorch is w4a8._reference)
[[maybe_unused]] void tile_scalar(const uint8_t* codes, const at::Half* scales, const int8_t* qx, const float* dx,
                 const float* sx, int64_t M, int64_t K, int64_t N, float* out) {
  const int64_t KB = K / kBlock;
  for (int64_t m = 0; m < M; ++m) {
    for (int r = 0; r < 16; ++r) {
      float acc = 0.f;
      for (int64_t b = 0; b < KB; ++b) {
        int32_t lo = 0, hi = 0;
        for (int c = 0; c < 4; ++c)
          for (int j = 0; j < 4; ++j) {
            const uint8_t byte = codes[b * 256 + 64 * c + 4 * r + j];
            lo += (byte & 0x0F) * qx[m * K + b * kBlock + 4 * c + j];
            hi += (byte >> 4) * qx[m * K + b * kBlock + kHalf + 4 * c + j];
          }
        const float dw = scales[b * 32 + r], mw = scales[b * 32 + 16 + r];
        const float* d = dx + m * 2 * KB + 2 * b;
        acc += static_cast<float>(lo) * (dw * d[0]) + static_cast<float>(hi) * (dw * d[1]) + mw * sx[m * KB + b];
      }
      out[m * N + r] = acc;
    }
  }
}

// x (M, K) float32, codes (N/16, K/32, 4, 64) uint8, scales (N/16, K/32, 2, 16) float16 -> (M, N) float32
at::Tensor w4a8_mm(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scales) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "w4a8_mm: x must be a (M, K) float32 matrix");
  TORCH_CHECK(codes.dim() == 4 && codes.scalar_type() == at::kByte && codes.size(2) == 4 && codes.size(3) == 64,
              "w4a8_mm: codes must be (N/16, K/32, 4, 64) uint8");
  TORCH_CHECK(scales.dim() == 4 && scales.scalar_type() == at::kHalf && scales.size(2) == 2 && scales.size(3) == 16,
              "w4a8_mm: scales must be (N/16, K/32, 2, 16) float16");
  const int64_t M = x.size(0), K = x.size(1), tiles = codes.size(0), KB = codes.size(1), N = tiles * 16;
  TORCH_CHECK(K == KB * kBlock && scales.size(0) == tiles && scales.size(1) == KB,
              "w4a8_mm: x has ", K, " inputs, the codes ", KB * kBlock);
  const at::Tensor xc = x.contiguous(), wc = codes.contiguous(), sc = scales.contiguous();
  at::Tensor out = at::empty({M, N}, x.options());
  at::Tensor qx = at::empty({M, K}, x.options().dtype(at::kChar));
  at::Tensor stats = at::empty({3, M, KB}, x.options());
  float* dx = stats.data_ptr<float>();  // (M, 2 KB)
  float* sx = dx + 2 * M * KB;  // (M, KB)
  quantize_rows(xc.data_ptr<float>(), M, K, qx.data_ptr<int8_t>(), dx, sx);
  const uint8_t* w = wc.data_ptr<uint8_t>();
  const at::Half* s = sc.data_ptr<at::Half>();
  const int8_t* q = qx.data_ptr<int8_t>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const uint8_t* wt = w + t * KB * 256;
      const at::Half* st = s + t * KB * 32;
#if LLMLAB_VNNI
      int64_t m = 0;  // several activation rows at a time reuse each unpacked register of codes
      for (; m + 8 <= M; m += 8)
        tile_vnni<8>(wt, st, q + m * K, dx + 2 * m * KB, sx + m * KB, K, N, o + m * N + t * 16);
      for (; m + 4 <= M; m += 4)
        tile_vnni<4>(wt, st, q + m * K, dx + 2 * m * KB, sx + m * KB, K, N, o + m * N + t * 16);
      for (; m < M; ++m) tile_vnni<1>(wt, st, q + m * K, dx + 2 * m * KB, sx + m * KB, K, N, o + m * N + t * 16);
#elif LLMLAB_AVX2
      int64_t m = 0;  // 16 registers: two rows at a time
      for (; m + 2 <= M; m += 2)
        tile_avx2<2>(wt, st, q + m * K, dx + 2 * m * KB, sx + m * KB, K, N, o + m * N + t * 16);
      for (; m < M; ++m) tile_avx2<1>(wt, st, q + m * K, dx + 2 * m * KB, sx + m * KB, K, N, o + m * N + t * 16);
#else
      tile_scalar(wt, st, q, dx, sx, M, K, N, o + t * 16);
#endif
    }
  });
  return out;
}

std::string w4a8_isa() { return LLMLAB_VNNI ? "avx512-vnni" : LLMLAB_AVX2 ? "avx2" : "scalar"; }

}  // namespace

TORCH_LIBRARY(llmlab, m) {
  m.def("w4a8_mm(Tensor x, Tensor codes, Tensor scales) -> Tensor");
  m.def("w4a8_isa() -> str", &w4a8_isa);
}

TORCH_LIBRARY_IMPL(llmlab, CPU, m) { m.impl("w4a8_mm", &w4a8_mm); }

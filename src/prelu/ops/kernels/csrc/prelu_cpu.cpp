// PReLU / Leaky ReLU CPU kernels on torch's own intra-op pool (at::parallel_for) with at::vec.
//
// Registered as torch.ops.prelu_cpu.* and called by the autograd ops of prelu_autograd.cpp through
// kernels.h; built on first use by prelu/ops/kernels/extension.py.
// Every tensor is dense, and ``x``/``out`` (``grad``/``saved``/``grad_input``) share strides, so
// each is walked as one flat array in memory order (the Python side plans the walk):
//
//   rows   (kind 0): memory is R rows of ``length`` elements, slope r for row r;
//   period (kind 1): memory is rows of ``length`` elements, slope j for element j of every row.
//
// Math, per element with slope a (x == 0 and NaN take the negative branch, as F.prelu):
//   y = x > 0 ? x : a * x        dL/dx = x > 0 ? g : a * g        dL/da += x > 0 ? 0 : g * x
// The forward and dL/dx alone (input_gradient_out, when dL/da is not needed) are one select kernel.
// The selects are blends after the multiply, so NaN, +-inf and -0.0 come out as in aten's
// _prelu_kernel(_backward), and g = inf/NaN where x > 0 adds exactly 0 to dL/da.
//
// The slope gradient is summed from fixed blocks (rows: up to kChunk elements of one row; period:
// up to kChunk / length rows), each into its own float64 partial, and the partials are added in
// block order afterwards: the result depends on the shape only, never on the thread count. Within
// a block, runs of kRun terms per lane are added in the input's dtype and each run's sum in float64.
//
// From the output of an in-place call (slopes > 0), x = y / a where y <= 0, and each term is
// g * (y / a): scaled before it is summed, so it stays finite wherever g * x is. Where y / a is
// not finite although y came from a finite x (y = -inf with a > 1: the forward overflowed),
// x cannot be recovered and backward refuses rather than return a different number.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

namespace {

using at::vec::Vectorized;

constexpr int64_t kChunk = int64_t{1} << 15;  // elements per slope-gradient block
constexpr int64_t kGrain = int64_t{1} << 15;  // at::internal::GRAIN_SIZE: elements per thread, at least
constexpr int64_t kRows = 0;
constexpr int64_t kPeriod = 1;

// out = cond > 0 ? value : value * a, for n elements with one slope. The forward is
// select(x, x) (y = x > 0 ? x : a * x); the input gradient alone is select(x, g) (from the output
// of an in-place call, select(y, g): slopes > 0, so y > 0 exactly where x > 0). ``out`` may be
// ``value`` itself: each element is read before it is written. kSelf: cond is value (the forward),
// loaded once.
template <typename T, bool kSelf>
inline void select_span(const T* cond, const T* value, T* out, int64_t n, T a) {
  using Vec = Vectorized<T>;
  const Vec zero(T(0));
  const Vec slope(a);
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    const Vec v = Vec::loadu(value + j);
    Vec::blendv(v * slope, v, (kSelf ? v : Vec::loadu(cond + j)) > zero).store(out + j);
  }
  for (; j < n; ++j) {
    const T v = value[j];
    out[j] = cond[j] > T(0) ? v : v * a;
  }
}

// select_span for one row of n elements, slope j for element j.
template <typename T, bool kSelf>
inline void select_period_row(const T* cond, const T* value, T* out, const T* a, int64_t n) {
  using Vec = Vectorized<T>;
  const Vec zero(T(0));
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) {
    const Vec v = Vec::loadu(value + j);
    Vec::blendv(v * Vec::loadu(a + j), v, (kSelf ? v : Vec::loadu(cond + j)) > zero).store(out + j);
  }
  for (; j < n; ++j) {
    const T v = value[j];
    out[j] = cond[j] > T(0) ? v : v * a[j];
  }
}

// dst[0 .. Vec::size()) += terms, widened to float64 (vcvtps2pd on AVX2; a plain loop elsewhere).
template <typename T>
inline void add_widened(const Vectorized<T>& terms, double* dst) {
  alignas(64) T buffer[Vectorized<T>::size()];
  terms.store(buffer);
  for (int64_t l = 0; l < Vectorized<T>::size(); ++l) dst[l] += static_cast<double>(buffer[l]);
}

#if defined(CPU_CAPABILITY_AVX2)
template <>
inline void add_widened<float>(const Vectorized<float>& terms, double* dst) {
  const __m256 v = terms;
  _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
  _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

template <>
inline void add_widened<double>(const Vectorized<double>& terms, double* dst) {
  _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), static_cast<__m256d>(terms)));
}
#endif

// The slope-gradient term of one element: 0 where s > 0, g * x elsewhere (x = s, or s / a).
template <typename T, bool kFromOutput>
inline T scalar_term(T g, T s, T a) {
  if (s > T(0)) return T(0);
  return g * (kFromOutput ? s / a : s);
}

// Per-lane float64 sums of vectors, held in registers where the CPU capability allows (a sum kept
// in memory, as add_widened's, makes each addition wait for the previous store).
template <typename T>
struct LaneSums {
  alignas(64) double lanes[Vectorized<T>::size()] = {};
  void add(const Vectorized<T>& terms) { add_widened(terms, lanes); }
  double total() const {
    double sum = 0.0;
    for (int64_t l = 0; l < Vectorized<T>::size(); ++l) sum += lanes[l];
    return sum;
  }
};

#if defined(CPU_CAPABILITY_AVX2)
inline double total_of(__m256d low, __m256d high) {  // lanes 0..7 added in order, as LaneSums::total
  alignas(32) double lanes[8];
  _mm256_store_pd(lanes, low);
  _mm256_store_pd(lanes + 4, high);
  double sum = 0.0;
  for (double lane : lanes) sum += lane;
  return sum;
}

template <>
struct LaneSums<float> {
  __m256d low = _mm256_setzero_pd();
  __m256d high = _mm256_setzero_pd();
  void add(const Vectorized<float>& terms) {
    const __m256 v = terms;
    low = _mm256_add_pd(low, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    high = _mm256_add_pd(high, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  double total() const { return total_of(low, high); }
};

template <>
struct LaneSums<double> {
  __m256d sum = _mm256_setzero_pd();
  void add(const Vectorized<double>& terms) { sum = _mm256_add_pd(sum, static_cast<__m256d>(terms)); }
  double total() const { return total_of(sum, _mm256_setzero_pd()); }
};
#endif

// grad_input for n elements with one slope; returns the float64 sum of their slope terms.
// Terms are added in T over runs of kRun vectors, in two interleaved chains, and each run's sum
// is then added in float64: widening every vector cost more than the memory traffic (measured:
// the rows backward at 1.4x aten's threshold_backward, which moves the same bytes).
constexpr int64_t kRun = 4;

template <typename T, bool kFromOutput>
inline double backward_span(const T* g, const T* s, T* gx, int64_t n, T a) {
  using Vec = Vectorized<T>;
  constexpr int64_t kLanes = Vec::size();
  const Vec zero(T(0));
  const Vec slope(a);
  LaneSums<T> sums[2];
  auto term = [&](int64_t j) {  // writes grad_input for 1 vector, returns its slope terms
    const Vec gv = Vec::loadu(g + j);
    const Vec sv = Vec::loadu(s + j);
    const Vec positive = sv > zero;
    Vec::blendv(gv * slope, gv, positive).store(gx + j);
    const Vec x = kFromOutput ? sv / slope : sv;
    return Vec::blendv(gv * x, zero, positive);
  };
  int64_t j = 0;
  for (; j + 2 * kRun * kLanes <= n; j += 2 * kRun * kLanes) {
    Vec even = term(j);
    Vec odd = term(j + kLanes);
    for (int64_t r = 1; r < kRun; ++r) {
      even = even + term(j + 2 * r * kLanes);
      odd = odd + term(j + (2 * r + 1) * kLanes);
    }
    sums[0].add(even);
    sums[1].add(odd);
  }
  for (; j + kLanes <= n; j += kLanes) sums[0].add(term(j));
  double tail = 0.0;
  for (; j < n; ++j) {  // g is read once, before gx is written: gx may be g itself
    const T gj = g[j];
    gx[j] = s[j] > T(0) ? gj : gj * a;
    tail += static_cast<double>(scalar_term<T, kFromOutput>(gj, s[j], a));
  }
  return (sums[0].total() + sums[1].total()) + tail;
}

// grad_input for `rows` (<= kRun) consecutive rows of n elements, slope j for element j of each;
// acc[j] += the float64 sum of their slope terms at j. The rows' terms at j are added in T first,
// then widened once per run (as backward_span does, for the same reason).
template <typename T, bool kFromOutput>
inline void backward_period_run(const T* g, const T* s, T* gx, const T* a, int64_t n, int64_t rows, double* acc) {
  using Vec = Vectorized<T>;
  constexpr int64_t kLanes = Vec::size();
  const Vec zero(T(0));
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Vec slope = Vec::loadu(a + j);
    Vec sum(T(0));
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r * n + j;
      const Vec gv = Vec::loadu(g + o);
      const Vec sv = Vec::loadu(s + o);
      const Vec positive = sv > zero;
      Vec::blendv(gv * slope, gv, positive).store(gx + o);
      const Vec x = kFromOutput ? sv / slope : sv;
      sum = sum + Vec::blendv(gv * x, zero, positive);
    }
    add_widened(sum, acc + j);
  }
  for (; j < n; ++j) {
    T sum = T(0);
    for (int64_t r = 0; r < rows; ++r) {  // g read once, before gx (which may be g) is written
      const int64_t o = r * n + j;
      const T go = g[o];
      gx[o] = s[o] > T(0) ? go : go * a[j];
      sum += scalar_term<T, kFromOutput>(go, s[o], a[j]);
    }
    acc[j] += static_cast<double>(sum);
  }
}

// True where the input behind an in-place output cannot be recovered: y / a is not finite
// although y is not NaN and was not -inf from an input of -inf (y = -inf with a <= 1 means x = -inf).
template <typename T>
inline bool unrecoverable(T y, T a) {
  if (!(y <= T(0)) || std::isfinite(y / a)) return false;
  return std::isfinite(y) || a > T(1);
}

void check_walk(const at::Tensor& x, const at::Tensor& slopes, int64_t kind, int64_t length) {
  TORCH_CHECK(x.device().is_cpu() && slopes.device().is_cpu(), "prelu_cpu: CPU tensors only");
  TORCH_CHECK(x.scalar_type() == slopes.scalar_type(), "prelu_cpu: input is ", x.scalar_type(), " but slopes are ",
              slopes.scalar_type());
  TORCH_CHECK(x.is_non_overlapping_and_dense(), "prelu_cpu: the input must be dense, got strides ", x.strides());
  TORCH_CHECK(slopes.is_contiguous() && slopes.dim() == 1, "prelu_cpu: slopes must be a contiguous vector");
  TORCH_CHECK(length > 0, "prelu_cpu: walk length must be > 0, got ", length);
  if (kind == kRows) {
    TORCH_CHECK(slopes.numel() * length == x.numel(), "prelu_cpu: ", slopes.numel(), " rows of ", length,
                " do not tile ", x.numel(), " elements");
  } else {
    TORCH_CHECK(kind == kPeriod, "prelu_cpu: unknown walk kind ", kind);
    TORCH_CHECK(slopes.numel() == length && x.numel() % length == 0, "prelu_cpu: a period of ", length,
                " with ", slopes.numel(), " slopes does not tile ", x.numel(), " elements");
  }
}

// Same shape, dtype and memory order: equal strides on every dim longer than 1.
void check_same_layout(const at::Tensor& reference, const at::Tensor& other, const char* name) {
  bool same = other.sizes() == reference.sizes() && other.scalar_type() == reference.scalar_type() &&
              other.device().is_cpu();
  for (int64_t d = 0; same && d < reference.dim(); ++d) {
    same = reference.size(d) == 1 || other.stride(d) == reference.stride(d);
  }
  TORCH_CHECK(same, "prelu_cpu: ", name, " must have the input's shape, dtype and strides; got shape ", other.sizes(),
              ", strides ", other.strides(), " against ", reference.sizes(), ", ", reference.strides());
}

// out = cond > 0 ? value : value * a along the walk (select_span); cond, value and out share strides.
template <typename T, bool kSelf>
void select_along(const T* cp, const T* vp, T* yp, const T* ap, int64_t numel, int64_t kind, int64_t length) {
  if (kind == kRows) {
    at::parallel_for(0, numel, kGrain, [&](int64_t begin, int64_t end) {
      int64_t row = begin / length;
      while (begin < end) {
        const int64_t stop = std::min(end, (row + 1) * length);
        select_span<T, kSelf>(cp + begin, vp + begin, yp + begin, stop - begin, ap[row]);
        begin = stop;
        ++row;
      }
    });
  } else {
    const int64_t outer = numel / length;
    at::parallel_for(0, outer, std::max<int64_t>(1, kGrain / length), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t o = r * length;
        select_period_row<T, kSelf>(cp + o, vp + o, yp + o, ap, length);
      }
    });
  }
}

void select_out(const at::Tensor& cond, const at::Tensor& value, const at::Tensor& slopes, const at::Tensor& out,
                int64_t kind, int64_t length) {
  const int64_t numel = cond.numel();
  if (numel == 0) return;
  AT_DISPATCH_FLOATING_TYPES(cond.scalar_type(), "prelu_cpu_select", [&] {
    const scalar_t* cp = cond.const_data_ptr<scalar_t>();
    const scalar_t* vp = value.const_data_ptr<scalar_t>();
    scalar_t* yp = out.mutable_data_ptr<scalar_t>();
    const scalar_t* ap = slopes.const_data_ptr<scalar_t>();
    if (cp == vp) {
      select_along<scalar_t, true>(cp, vp, yp, ap, numel, kind, length);
    } else {
      select_along<scalar_t, false>(cp, vp, yp, ap, numel, kind, length);
    }
  });
}

void forward_out(const at::Tensor& x, const at::Tensor& slopes, const at::Tensor& out, int64_t kind, int64_t length) {
  check_walk(x, slopes, kind, length);
  check_same_layout(x, out, "out");
  select_out(x, x, slopes, out, kind, length);
}

// grad_input alone, for slopes whose gradient is not needed (frozen, or requires_grad=False):
// one select, none of the slope gradient's float64 sums.
void input_gradient_out(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                        const at::Tensor& grad_input, int64_t kind, int64_t length) {
  check_walk(saved, slopes, kind, length);
  check_same_layout(saved, grad, "grad");
  check_same_layout(saved, grad_input, "grad_input");
  select_out(saved, grad, slopes, grad_input, kind, length);
}

template <typename T, bool kFromOutput>
void backward_rows(const T* g, const T* s, T* gx, const T* a, int64_t rows, int64_t inner, double* result,
                   std::atomic<int64_t>& refused) {
  const int64_t per_row = (inner + kChunk - 1) / kChunk;
  const int64_t tasks = rows * per_row;
  std::vector<double> partials(tasks);
  const int64_t grain = std::max<int64_t>(1, kGrain / std::min(inner, kChunk));
  at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = task / per_row;
      const int64_t start = row * inner + (task - row * per_row) * kChunk;
      const int64_t n = std::min(kChunk, (row + 1) * inner - start);
      double partial = backward_span<T, kFromOutput>(g + start, s + start, gx + start, n, a[row]);
      if (kFromOutput && !std::isfinite(partial)) {
        for (int64_t j = 0; j < n; ++j) refused += unrecoverable(s[start + j], a[row]);
      }
      partials[task] = partial;
    }
  });
  for (int64_t row = 0; row < rows; ++row) {  // fixed order: block by block
    double total = 0.0;
    for (int64_t c = 0; c < per_row; ++c) total += partials[row * per_row + c];
    result[row] = total;
  }
}

template <typename T, bool kFromOutput>
void backward_period(const T* g, const T* s, T* gx, const T* a, int64_t numel, int64_t period, double* result,
                     std::atomic<int64_t>& refused) {
  const int64_t outer = numel / period;
  const int64_t rows_per_task = std::max<int64_t>(1, kChunk / period);
  const int64_t tasks = (outer + rows_per_task - 1) / rows_per_task;
  std::vector<double> partials(tasks * period, 0.0);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      double* acc = partials.data() + task * period;
      const int64_t first = task * rows_per_task;
      const int64_t last = std::min(outer, first + rows_per_task);
      for (int64_t r = first; r < last; r += kRun) {
        const int64_t o = r * period;
        backward_period_run<T, kFromOutput>(g + o, s + o, gx + o, a, period, std::min(kRun, last - r), acc);
      }
      if (!kFromOutput) continue;
      for (int64_t j = 0; j < period; ++j) {
        if (std::isfinite(acc[j])) continue;
        for (int64_t r = first; r < last; ++r) refused += unrecoverable(s[r * period + j], a[j]);
      }
    }
  });
  for (int64_t j = 0; j < period; ++j) result[j] = 0.0;
  for (int64_t task = 0; task < tasks; ++task) {  // fixed order: block by block
    const double* acc = partials.data() + task * period;
    for (int64_t j = 0; j < period; ++j) result[j] += acc[j];
  }
}

// Fills grad_input; returns the slope gradient per slope-vector entry, in float64.
at::Tensor backward_out(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                        const at::Tensor& grad_input, int64_t kind, int64_t length, bool from_output) {
  check_walk(saved, slopes, kind, length);
  check_same_layout(saved, grad, "grad");
  check_same_layout(saved, grad_input, "grad_input");
  if (saved.numel() == 0) return at::zeros({slopes.numel()}, saved.options().dtype(at::kDouble));
  at::Tensor result = at::empty({slopes.numel()}, saved.options().dtype(at::kDouble));  // each entry written below
  std::atomic<int64_t> refused{0};
  AT_DISPATCH_FLOATING_TYPES(saved.scalar_type(), "prelu_cpu_backward", [&] {
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* s = saved.const_data_ptr<scalar_t>();
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    const scalar_t* a = slopes.const_data_ptr<scalar_t>();
    double* r = result.mutable_data_ptr<double>();
    if (kind == kRows) {
      const int64_t rows = slopes.numel();
      if (from_output) {
        backward_rows<scalar_t, true>(g, s, gx, a, rows, length, r, refused);
      } else {
        backward_rows<scalar_t, false>(g, s, gx, a, rows, length, r, refused);
      }
    } else if (from_output) {
      backward_period<scalar_t, true>(g, s, gx, a, saved.numel(), length, r, refused);
    } else {
      backward_period<scalar_t, false>(g, s, gx, a, saved.numel(), length, r, refused);
    }
  });
  TORCH_CHECK_VALUE(refused.load() == 0, "in-place prelu backward: ", refused.load(),
                    " output element(s) are -inf (or overflow when divided by their slope) where the slope is > 1, so "
                    "the input cannot be recovered as output / slope: the forward overflowed. The slope gradient "
                    "would not be the one torch.nn.functional.prelu gives; call prelu with inplace=False");
  return result;
}

// The monitor's one-pass statistics: [nonpositive, underflow, overflow, nan, inf, *hist] (int64).
at::Tensor summarise(const at::Tensor& x, int64_t bins, double low, double high) {
  TORCH_CHECK(x.device().is_cpu() && x.is_non_overlapping_and_dense(), "prelu_cpu.summarise: a dense CPU tensor");
  TORCH_CHECK(bins > 0 && high > low, "prelu_cpu.summarise: bins > 0 and high > low");
  const int64_t numel = x.numel();
  const int64_t width = 5 + bins;
  const int64_t tasks = (numel + kChunk - 1) / kChunk;
  // Four lanes (element j -> lane j % 4) break the store-to-load chain of repeated increments of one bin.
  std::vector<int64_t> partials(tasks * 4 * width, 0);
  const double scale = static_cast<double>(bins) / (high - low);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "prelu_cpu_summarise", [&] {
    const scalar_t* data = x.const_data_ptr<scalar_t>();
    at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const scalar_t* xs = data + task * kChunk;
        const int64_t n = std::min(kChunk, numel - task * kChunk);
        int64_t* lanes = partials.data() + task * 4 * width;
        int64_t nonpositive = 0;
        int64_t inf = 0;
        for (int64_t j = 0; j < n; ++j) {
          nonpositive += xs[j] <= scalar_t(0);
          inf += std::isinf(xs[j]);
        }
        for (int64_t j = 0; j < n; ++j) {
          const double v = static_cast<double>(xs[j]);
          int64_t slot;
          if (v >= low && v <= high) {
            slot = 5 + std::min(static_cast<int64_t>((v - low) * scale), bins - 1);
          } else {
            slot = v < low ? 1 : (v > high ? 2 : 3);
          }
          ++lanes[(j & 3) * width + slot];
        }
        lanes[0] += nonpositive;
        lanes[4] += inf;
      }
    });
  });
  at::Tensor result = at::zeros({width}, x.options().dtype(at::kLong));
  int64_t* r = result.mutable_data_ptr<int64_t>();
  for (int64_t i = 0; i < tasks * 4; ++i) {
    for (int64_t k = 0; k < width; ++k) r[k] += partials[i * width + k];
  }
  return result;
}

}  // namespace

namespace prelu_cpu {

void forward_into(const at::Tensor& x, const at::Tensor& slopes, const at::Tensor& out, int64_t kind, int64_t length) {
  forward_out(x, slopes, out, kind, length);
}

at::Tensor backward_into(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                         const at::Tensor& grad_input, int64_t kind, int64_t length, bool from_output) {
  return backward_out(grad, saved, slopes, grad_input, kind, length, from_output);
}

void input_gradient_into(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                         const at::Tensor& grad_input, int64_t kind, int64_t length) {
  input_gradient_out(grad, saved, slopes, grad_input, kind, length);
}

}  // namespace prelu_cpu

TORCH_LIBRARY(prelu_cpu, m) {
  m.def("forward_out(Tensor x, Tensor slopes, Tensor(a!) out, int kind, int length) -> ()", &forward_out);
  m.def(
      "backward_out(Tensor grad, Tensor saved, Tensor slopes, Tensor(a!) grad_input, int kind, int length, "
      "bool from_output) -> Tensor",
      &backward_out);
  m.def(
      "input_gradient_out(Tensor grad, Tensor saved, Tensor slopes, Tensor(a!) grad_input, int kind, int length) -> ()",
      &input_gradient_out);
  m.def("summarise(Tensor x, int bins, float low, float high) -> Tensor", &summarise);
}

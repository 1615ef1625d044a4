// The fused PReLU kernels of prelu_cpu.cpp, for the autograd ops of prelu_autograd.cpp.
//
// A walk describes a dense tensor in memory order (see prelu_cpu.cpp): kind 0 ("rows", one slope
// per run of ``length`` elements) or kind 1 ("period", slope j for element j of every run).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace prelu_cpu {

constexpr int64_t kRowsWalk = 0;
constexpr int64_t kPeriodWalk = 1;

// out = prelu(x) along the walk; out may be x itself (each element is read before it is written).
void forward_into(const at::Tensor& x, const at::Tensor& slopes, const at::Tensor& out, int64_t kind, int64_t length);

// Fills grad_input (which may be grad itself: each element of grad is read before it is written);
// returns the float64 slope gradient per entry of ``slopes``. ``saved`` is x, or with from_output
// the output of an in-place call (refused where x cannot be recovered).
at::Tensor backward_into(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                         const at::Tensor& grad_input, int64_t kind, int64_t length, bool from_output);

// Fills grad_input alone (grad_input = saved > 0 ? grad : a * grad; it may be grad itself), for
// slopes whose gradient is not needed. ``saved`` is x or an in-place call's output: with slopes > 0
// they are > 0 at the same places.
void input_gradient_into(const at::Tensor& grad, const at::Tensor& saved, const at::Tensor& slopes,
                         const at::Tensor& grad_input, int64_t kind, int64_t length);

}  // namespace prelu_cpu

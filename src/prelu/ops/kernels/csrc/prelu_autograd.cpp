// PReLU as torch C++ autograd ops: torch.ops.prelu_cpu.prelu and prelu_ (in place).
//
// The plain-eager CPU route of prelu.prelu (see prelu/ops/route.py): one call reaches the
// dispatcher (from prelu_python.cpp's entry, or from Python), and forward, autograd node and
// backward all run here, in C++, with the fused kernels of prelu_cpu.cpp. The caller has checked
// the arguments and passes the weight's canonical view shape (one dim per input dim, each 1 or
// the input's size). The graph node is PReLUBackward, recorded as torch records its own ops'.
//
// Per call this file plans how to walk the input's memory (the same rule as
// prelu/ops/layout.py:_plan_memory_walk: rows when the run that shares one slope is >= 32 elements,
// else a period of <= 4096 elements), gathers the slope vector the walk indexes, and folds the
// slope-vector gradient back onto the weight in a fixed order (so it is bit-identical for any
// number of threads). What no walk fits (a strided input, a slope pattern too irregular along fast
// dims) runs torch's own aten kernels, as prelu/ops/kernels/native.py does: an input is never
// copied to fit a kernel. An incoming gradient in another memory order than the input (expanded
// from .sum(), contiguous from a pooling layer's backward into channels-last activations) is
// copied into the input's order first: one pass, where aten's backward makes several (measured: a
// channels-last CNN step went from 1.13x to 1.03x ReLU's when its last activation's gradient did).
//
// Backward runs the fused kernel when nothing records it. When it must itself be differentiable
// (create_graph=True), or it is batched (is_grads_batched) or traced (a tensor subclass, a
// dispatch mode, compiled autograd, a functorch transform), it is built from differentiable aten
// ops. In place, the op overwrites the input, rebases its history and saves only the output: backward
// recovers x = y / a where y <= 0, so every slope must be finite and > 0 (checked before writing).

#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/library.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "kernels.h"

namespace {

using torch::autograd::variable_list;

constexpr int64_t kMinRowLength = 32;  // prelu/ops/layout.py: MIN_ROW_LENGTH
constexpr int64_t kMaxPeriod = 4096;   // prelu/ops/layout.py: MAX_PERIOD

// How the fused kernels walk a dense tensor, and where each slope-vector entry sits in the weight.
struct Walk {
  bool fits = false;
  int64_t kind = prelu_cpu::kRowsWalk;
  int64_t length = 1;
  int64_t entries = 1;                // slope-vector entries
  std::vector<int64_t> entry_sizes;   // the walked slope dims' sizes, outermost in memory first
  std::vector<int64_t> entry_strides; // their strides in the contiguous canonical weight (0: shared)
  bool identity = false;              // entry e is weight element e: no gather, no fold
};

Walk plan_walk(at::IntArrayRef shape, at::IntArrayRef strides, at::IntArrayRef view) {
  Walk walk;
  const int64_t ndim = static_cast<int64_t>(shape.size());
  std::vector<int64_t> order;
  for (int64_t d = 0; d < ndim; ++d) {
    if (shape[d] != 1) order.push_back(d);
  }
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return strides[a] > strides[b]; });
  int64_t expected = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (strides[*it] != expected) return walk;  // not dense: gaps or overlaps
    expected *= shape[*it];
  }
  const int64_t count = static_cast<int64_t>(order.size());
  int64_t first_varying = -1;
  int64_t last_varying = -1;
  for (int64_t i = 0; i < count; ++i) {
    if (view[order[i]] != 1) {
      if (first_varying < 0) first_varying = i;
      last_varying = i;
    }
  }
  int64_t inner = 1;
  for (int64_t i = last_varying + 1; i < count; ++i) inner *= shape[order[i]];
  int64_t begin = 0;
  int64_t end = last_varying + 1;
  if (inner >= kMinRowLength || last_varying < 0) {
    walk.kind = prelu_cpu::kRowsWalk;
    walk.length = inner;
  } else {
    int64_t period = 1;
    for (int64_t i = first_varying; i < count; ++i) period *= shape[order[i]];
    if (period > kMaxPeriod) return walk;
    walk.kind = prelu_cpu::kPeriodWalk;
    walk.length = period;
    begin = first_varying;
    end = count;
  }
  std::vector<int64_t> canonical(ndim, 1);  // strides of the contiguous canonical weight
  for (int64_t d = ndim - 2; d >= 0; --d) canonical[d] = canonical[d + 1] * view[d + 1];
  bool identity = true;
  int64_t expected_stride = 1;
  for (int64_t i = end - 1; i >= begin; --i) {
    const int64_t d = order[i];
    const int64_t stride = view[d] != 1 ? canonical[d] : 0;
    identity = identity && stride == expected_stride;
    expected_stride *= shape[d];
    walk.entry_sizes.insert(walk.entry_sizes.begin(), shape[d]);
    walk.entry_strides.insert(walk.entry_strides.begin(), stride);
    walk.entries *= shape[d];
  }
  walk.identity = identity;
  walk.fits = true;
  return walk;
}

Walk plan_walk(const at::Tensor& tensor, at::IntArrayRef view) {
  return plan_walk(tensor.sizes(), tensor.strides(), view);
}

// Calls visit(entry, weight offset) for every slope-vector entry, in entry order.
template <typename Visit>
void for_each_entry(const Walk& walk, Visit visit) {
  const int64_t dims = static_cast<int64_t>(walk.entry_sizes.size());
  std::vector<int64_t> index(dims, 0);
  int64_t offset = 0;
  for (int64_t e = 0; e < walk.entries; ++e) {
    visit(e, offset);
    for (int64_t i = dims - 1; i >= 0; --i) {  // odometer, innermost first
      offset += walk.entry_strides[i];
      if (++index[i] < walk.entry_sizes[i]) break;
      offset -= walk.entry_strides[i] * walk.entry_sizes[i];
      index[i] = 0;
    }
  }
}

// The slopes as the contiguous vector the walk indexes.
at::Tensor slope_vector(const at::Tensor& weight, const Walk& walk) {
  if (walk.identity && weight.dim() == 1 && weight.is_contiguous()) return weight;  // per channel: as is
  const at::Tensor flat = weight.contiguous().view({-1});
  if (walk.identity) return flat;
  at::Tensor slopes = at::empty({walk.entries}, flat.options());
  AT_DISPATCH_FLOATING_TYPES(flat.scalar_type(), "prelu_slope_vector", [&] {
    const scalar_t* source = flat.const_data_ptr<scalar_t>();
    scalar_t* target = slopes.mutable_data_ptr<scalar_t>();
    for_each_entry(walk, [&](int64_t e, int64_t offset) { target[e] = source[offset]; });
  });
  return slopes;
}

// The float64 slope-vector gradient summed onto the weight (its shape and dtype), in entry order.
// Rounded to the weight's dtype here, in one loop: a .to() is a dispatched op (~2 us a call).
at::Tensor fold_gradient(const at::Tensor& partial, const Walk& walk, const at::Tensor& weight) {
  const double* source = partial.const_data_ptr<double>();
  std::vector<double> summed;
  if (!walk.identity) {
    summed.assign(weight.numel(), 0.0);
    for_each_entry(walk, [&](int64_t e, int64_t offset) { summed[offset] += source[e]; });
    source = summed.data();
  }
  at::Tensor folded = at::empty(weight.sizes(), weight.options());
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "prelu_fold_gradient", [&] {
    scalar_t* target = folded.mutable_data_ptr<scalar_t>();
    for (int64_t i = 0; i < weight.numel(); ++i) target[i] = static_cast<scalar_t>(source[i]);
  });
  return folded;
}

// Same shape and memory order as ``reference`` (equal strides on every dim longer than 1).
bool same_layout(const at::Tensor& reference, const at::Tensor& other) {
  if (other.sizes() != reference.sizes() || other.layout() != at::kStrided) return false;
  for (int64_t d = 0; d < reference.dim(); ++d) {
    if (reference.size(d) != 1 && other.stride(d) != reference.stride(d)) return false;
  }
  return true;
}

// ``result`` with torch.empty_like(reference)'s strides: the layout every path returns.
at::Tensor strided_like(const at::Tensor& result, const at::Tensor& reference) {
  if (result.strides() == reference.strides()) return result;
  at::Tensor target = at::empty_like(reference);
  return result.strides() == target.strides() ? result : target.copy_(result);
}

// A gradient that nothing records or transforms: the fused kernels may run on it.
bool plain_gradient(const at::Tensor& grad) {
  static const c10::DispatchKeySet traced({c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot,
                                           c10::DispatchKey::Batched, c10::DispatchKey::FuncTorchBatched,
                                           c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::Functionalize});
  return !at::GradMode::is_enabled() && grad.device().is_cpu() && grad.layout() == at::kStrided &&
         !grad.key_set().has_any(traced) && c10::impl::TorchDispatchModeTLS::stack_len() == 0 &&
         // a functorch transform (vmap, grad, ...) includes its front-mode key while it runs
         !c10::impl::tls_is_dispatch_key_included(c10::DispatchKey::FuncTorchDynamicLayerFrontMode);
}

// prelu/ops/autograd.py: inplace_slope_message. ValueError unless every slope is finite and > 0.
void check_inplace_slopes(const at::Tensor& weight) {
  const at::Tensor values = weight.contiguous();  // itself, in every call through prelu.prelu
  double smallest = std::numeric_limits<double>::infinity();
  int64_t finite = 0;
  bool positive = true;
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "prelu_check_inplace_slopes", [&] {
    const scalar_t* data = values.const_data_ptr<scalar_t>();
    for (int64_t i = 0; i < values.numel(); ++i) {
      const double value = static_cast<double>(data[i]);
      if (!std::isfinite(value)) continue;
      ++finite;
      smallest = std::min(smallest, value);
      positive = positive && value > 0;
    }
  });
  const int64_t non_finite = values.numel() - finite;
  if (positive && non_finite == 0) return;
  char text[64];
  std::snprintf(text, sizeof(text), "%.6g", smallest);
  const std::string shown = finite ? std::string(text) : std::string("none finite");
  TORCH_CHECK_VALUE(false,
                    "prelu with inplace=True needs every slope finite and > 0 (backward recovers the input as output "
                    "/ slope), but its smallest slope is ",
                    shown, non_finite ? " and " + std::to_string(non_finite) + " slope(s) are not finite" : "",
                    "; keep the slopes positive with prelu.PReLU(..., bounds=(low, high)), low > 0, projected after "
                    "every optimizer step by prelu.bind_bounds(optimizer, model), or use inplace=False");
}

// Forward into ``out`` (``input`` itself in place), fused where a walk fits, aten otherwise.
at::Tensor forward(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view, bool in_place) {
  if (input.numel() == 0) return in_place ? input : at::empty_like(input);
  const Walk walk = plan_walk(input, view);
  if (!walk.fits) {  // prelu/ops/kernels/native.py: forward, forward_
    const at::Tensor weight_view = weight.view(view);
    if (in_place) return input.mul_(at::where(input > 0, at::scalar_tensor(1.0, input.options()), weight_view));
    return strided_like(at::_prelu_kernel(input, weight_view), input);
  }
  at::Tensor out = in_place ? input : at::empty_like(input);
  prelu_cpu::forward_into(input, slope_vector(weight, walk), out, walk.kind, walk.length);
  return out;
}

// (grad_input, grad_weight) by torch's aten kernels: prelu/ops/kernels/native.py: backward.
std::pair<at::Tensor, at::Tensor> native_backward(const at::Tensor& grad, const at::Tensor& saved,
                                                  const at::Tensor& weight, at::IntArrayRef view, bool from_output,
                                                  bool needs_weight) {
  const at::Tensor weight_view = weight.view(view);
  if (!needs_weight) {  // as _prelu_kernel_backward's grad_input; saved > 0 where x > 0 (slopes > 0 in place)
    return {strided_like(at::where(saved > 0, grad, grad * weight_view), saved), at::Tensor()};
  }
  const at::Tensor input = from_output ? at::where(saved > 0, saved, saved / weight_view) : saved;
  auto [grad_input, grad_weight] = at::_prelu_kernel_backward(grad, input, weight_view);
  grad_weight = grad_weight.sum_to_size(view);
  if (from_output && !grad_weight.isfinite().all().item<bool>()) {
    const at::Tensor recovered = saved / weight_view;
    const int64_t lost =
        ((saved <= 0) & recovered.isfinite().logical_not() & (saved.isfinite() | (weight_view > 1))).sum().item<int64_t>();
    TORCH_CHECK_VALUE(lost == 0, "in-place prelu backward: ", lost,
                      " output element(s) are -inf (or overflow when divided by their slope) where the slope is > 1, "
                      "so the input cannot be recovered as output / slope: the forward overflowed. The slope "
                      "gradient would not be the one torch.nn.functional.prelu gives; call prelu with inplace=False");
  }
  return {strided_like(grad_input, saved), grad_weight.view(weight.sizes())};
}

// True when nothing but the caller's list holds ``grad`` or its memory: backward may then write
// grad_input over it (element by element, each read before it is written, as the in-place forward
// does), which saves a full-size allocation and its fresh pages, as AccumulateGrad steals gradients.
bool only_holder(const at::Tensor& grad) {
  return grad.use_count() == 1 && !grad.is_view() && grad.has_storage() && grad.storage().use_count() == 1 &&
         !grad.requires_grad();
}

// (grad_input, grad_weight): the fused one-pass kernel where the walk fits (the gradient copied
// into ``saved``'s memory order if it is in another), else torch's aten kernels. ``reusable``:
// grad may be overwritten (only_holder). Without ``needs_weight`` the fused path computes
// grad_input alone (grad_weight undefined): frozen slopes skip the float64 sums, and an in-place
// call's output needs no recovery of x.
std::pair<at::Tensor, at::Tensor> backward(at::Tensor grad, const at::Tensor& saved, const at::Tensor& weight,
                                           at::IntArrayRef view, bool from_output, bool reusable, bool needs_weight) {
  if (saved.numel() == 0) return {at::empty_like(saved), at::zeros_like(weight)};
  const Walk walk = plan_walk(saved, view);
  if (!walk.fits) return native_backward(grad, saved, weight, view, from_output, needs_weight);
  if (!same_layout(saved, grad) || grad.scalar_type() != saved.scalar_type()) {
    grad = at::empty_like(saved).copy_(grad);
    reusable = true;
  }
  at::Tensor grad_input = reusable ? grad : at::empty_like(saved);
  const at::Tensor slopes = slope_vector(weight, walk);
  if (!needs_weight) {
    prelu_cpu::input_gradient_into(grad, saved, slopes, grad_input, walk.kind, walk.length);
    return {grad_input, at::Tensor()};
  }
  const at::Tensor partial =
      prelu_cpu::backward_into(grad, saved, slopes, grad_input, walk.kind, walk.length, from_output);
  return {grad_input, fold_gradient(partial, walk, weight)};
}

// Both nodes' backward: (grad_input, grad_weight), each undefined where not needed. Saved: x, or
// with from_output the in-place output y instead. The fused kernel runs unless the gradient must
// be differentiable or is batched or traced; then differentiable aten ops
// (prelu/ops/kernels/native.py: differentiable_backward), where for slopes > 0 y > 0 exactly
// where x > 0, and x = y / a elsewhere. ``grad`` may be overwritten when ``reusable``.
variable_list gradients(const at::Tensor& source, const at::Tensor& weight, at::IntArrayRef view, at::Tensor grad,
                        bool reusable, bool from_output, bool needs_input, bool needs_weight) {
  at::Tensor grad_input;
  at::Tensor grad_weight;
  if (plain_gradient(grad)) {
    std::tie(grad_input, grad_weight) =
        backward(std::move(grad), source, weight, view, from_output, reusable, needs_weight);
  } else {
    const at::Tensor weight_view = weight.view(view);
    const at::Tensor positive = source > 0;
    grad_input = at::where(positive, grad, grad * weight_view);
    at::Tensor terms = at::where(positive, at::zeros_like(source), grad * source).sum_to_size(view);
    grad_weight = (from_output ? terms / weight_view : terms).view(weight.sizes());
  }
  return {needs_input ? grad_input : at::Tensor(), needs_weight ? grad_weight : at::Tensor()};
}

}  // namespace

namespace prelu_cpu {

// Both ops' graph node, written as torch writes its own (PreluKernelBackward0, LeakyReluBackward1):
// saved variables, next edges, set_history or rebase_history, where a torch::autograd::Function
// would add a context with a map of saved values, per-input and per-output metadata and its own
// output wrapping and backward dispatch. Measured in a training step of the lab's MLP (3 calls a
// step), those cost ~2.5 us a call in forward and ~5 us in backward, from cold caches. Saved: (x, weight), or in place
// the output y (saved as an output: it is the node's own input) and the weight.
struct PReLUBackward : public torch::autograd::TraceableFunction {
  explicit PReLUBackward(bool from_output) : from_output_(from_output) {}

  torch::autograd::SavedVariable source_;
  torch::autograd::SavedVariable weight_;
  std::vector<int64_t> view_;
  // In place on a whole-base view (whole_base): the view's shape, which view_ is for. The node
  // then belongs to the base, and reshapes the gradient and the saved base to it (both are
  // contiguous: free views) and grad_input back. Empty otherwise.
  std::vector<int64_t> shape_;
  const bool from_output_;

  std::string name() const override {
    return from_output_ ? "prelu_cpu::PReLUInplaceBackward" : "prelu_cpu::PReLUBackward";
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    source_.reset_data();
    weight_.reset_data();
  }

  // The incoming gradient is moved in (the engine's only reference): when nothing else holds it,
  // it becomes grad_input (only_holder).
  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK(!(from_output_ && at::GradMode::is_enabled()),
                "double backward through an in-place PReLU is not supported: its input was overwritten, and the "
                "second derivative would need it; call it with inplace=False");
    at::Tensor grad = std::move(grads[0]);
    if (!grad.defined()) return {at::Tensor(), at::Tensor()};  // a zero gradient: none flows on
    const bool reusable = only_holder(grad);
    return reshaped_gradients(source_.unpack(getptr()), weight_.unpack(), view_, shape_, std::move(grad), reusable,
                              from_output_, task_should_compute_output(0), task_should_compute_output(1));
  }

  // gradients() on shape_ when it is set (see there).
  static variable_list reshaped_gradients(const at::Tensor& source, const at::Tensor& weight, at::IntArrayRef view,
                                          at::IntArrayRef shape, at::Tensor grad, bool reusable, bool from_output,
                                          bool needs_input, bool needs_weight) {
    if (shape.empty()) {
      return gradients(source, weight, view, std::move(grad), reusable, from_output, needs_input, needs_weight);
    }
    const at::IntArrayRef sizes = source.sizes();
    variable_list result = gradients(source.view(shape), weight, view, grad.reshape(shape), reusable, from_output,
                                     needs_input, needs_weight);
    if (result[0].defined()) result[0] = result[0].reshape(sizes);
    return result;
  }

  // Compiled autograd (as for torch's own nodes and CppNode): the saved tensors swapped for its
  // proxies, it binds the functional form below and records a call of it; tracing that call, it
  // sees traced tensors, so the differentiable aten branch of gradients() is what it records.
  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& args) const override {
    args.collect(source_, from_output_);
    args.collect(weight_, false);
    args.collect(view_);
    args.collect(shape_);
    args.collect(from_output_);
  }

  static variable_list apply_functional(const variable_list& grads, const std::vector<at::IValue>& packed) {
    torch::dynamo::autograd::PackedArgs args(packed);
    const auto source = args.unpack<at::Tensor>();
    const auto weight = args.unpack<at::Tensor>();
    const auto view = args.unpack<std::vector<int64_t>>();
    const auto shape = args.unpack<std::vector<int64_t>>();
    const auto from_output = args.unpack<bool>();
    const auto needs = args.unpack<std::vector<bool>>();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    return reshaped_gradients(source, weight, view, shape, grads[0], /*reusable=*/false, from_output, needs[0],
                              needs[1]);
  }

  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    saved.before(source_);
    saved.before(weight_);
    torch::dynamo::autograd::PackedArgs packed;
    packed.pack(source_.unpack(getptr()));
    packed.pack(weight_.unpack());
    packed.pack(view_);
    packed.pack(shape_);
    packed.pack(from_output_);
    packed.pack(std::vector<bool>{task_should_compute_output(0), task_should_compute_output(1)});
    const std::vector<at::IValue> args = std::move(packed).vec();
    std::vector<at::TypePtr> schema;
    for (const auto& value : args) schema.emplace_back(value.isTensor() ? at::TensorType::get() : value.type());
    const auto& compiler = torch::dynamo::autograd::getPyCompilerInterface();
    const std::string function = compiler->bind_function(saved.get_py_compiler(), name(), apply_functional, schema,
                                                         /*is_custom_function=*/true, /*is_traceable=*/true);
    const auto metadata =
        torch::dynamo::autograd::IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            torch::dynamo::autograd::get_input_metadata(next_edges()));
    variable_list result =
        compiler->call_function(saved.get_py_compiler(), "apply_functional", function, grads, args, metadata);
    saved.after(source_);
    saved.after(weight_);
    return result;
  }
};

}  // namespace prelu_cpu

namespace {

using prelu_cpu::PReLUBackward;

void check_arguments(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view) {
  TORCH_CHECK(input.device().is_cpu() && weight.device().is_cpu(), "prelu_cpu.prelu: CPU tensors only");
  TORCH_CHECK(input.scalar_type() == weight.scalar_type() &&
                  (input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble),
              "prelu_cpu.prelu: input and weight must both be float32 or both float64, got ", input.scalar_type(),
              " and ", weight.scalar_type());
  bool canonical = static_cast<int64_t>(view.size()) == input.dim();
  int64_t count = 1;
  for (int64_t d = 0; canonical && d < input.dim(); ++d) {
    canonical = view[d] == 1 || view[d] == input.size(d);
    count *= view[d];
  }
  TORCH_CHECK(canonical && count == weight.numel(), "prelu_cpu.prelu: view_shape ", view,
              " is not a canonical slope view of weight ", weight.sizes(), " for input ", input.sizes(),
              " (prelu.prelu computes it)");
}

// True when autograd would record nothing: then the forward runs without a graph node (~5 us less).
bool records(const at::Tensor& input, const at::Tensor& weight) {
  return at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad());
}

at::Tensor prelu_autograd(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view) {
  check_arguments(input, weight, view);
  if (!records(input, weight)) return forward(input, weight, view, /*in_place=*/false);
  auto node = c10::make_intrusive<PReLUBackward>(/*from_output=*/false);
  node->set_next_edges(torch::autograd::collect_next_edges(input, weight));
  at::Tensor output;
  {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;  // what forward runs records nothing
    output = forward(input, weight, view, /*in_place=*/false);
  }
  node->source_ = torch::autograd::SavedVariable(input, /*is_output=*/false);
  node->weight_ = torch::autograd::SavedVariable(weight, /*is_output=*/false);
  node->view_ = view.vec();
  torch::autograd::set_history(output, node);
  return output;
}

// In place on ``input`` writes the whole of its base when ``input`` is a contiguous reshape of all
// of a contiguous base (Linear on a 3-D input returns one): then the op's node goes on the base,
// and the view gets a plain reshape node after it. Written through the view itself, autograd adds
// a CopySlices node that copies the whole gradient in backward (torch's own in-place ReLU pays it),
// and rebuilds the view's history as an as_strided (a zero-fill and another copy). Measured on
// prelu bench e2e's FFN: in place 0.82x ReLU's step this way, 0.94x with the view's as_strided
// history, out of place 0.84x. The base, or an undefined tensor when ``input`` is not such a view.
at::Tensor whole_base(const at::Tensor& input) {
  if (!input.is_view() || input.dim() == 0) return {};
  const at::Tensor base = at::Tensor(input._base());
  if (base.scalar_type() != input.scalar_type() || base.numel() != input.numel() ||
      base.const_data_ptr() != input.const_data_ptr() || !base.is_contiguous() || !input.is_contiguous()) {
    return {};
  }
  return base;
}

at::Tensor prelu_inplace_autograd(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view) {
  check_arguments(input, weight, view);
  if (!records(input, weight)) {
    check_inplace_slopes(weight);
    at::Tensor output = forward(input, weight, view, /*in_place=*/true);
    // What ADInplaceOrView does for torch's in-place ops: bump the version, so autograd refuses a
    // backward through a graph that saved this tensor before it was overwritten.
    if (!output.is_inference()) torch::autograd::impl::bump_version(output);
    return output;
  }
  // As torch's generated in-place ops: refuse what autograd cannot rebase (a leaf that requires
  // grad, a view of one, a view autograd must not write through), take the input's edges, write,
  // bump the version, move the input's history onto the new node, then save it as its output.
  check_inplace_slopes(weight);
  torch::autograd::check_inplace(input, /*requires_grad=*/true);
  const at::Tensor base = whole_base(input);
  const at::Tensor& target = base.defined() ? base : input;  // whose history the node takes
  auto node = c10::make_intrusive<PReLUBackward>(/*from_output=*/true);
  node->set_next_edges(torch::autograd::collect_next_edges(target, weight));
  {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    forward(input, weight, view, /*in_place=*/true);
  }
  torch::autograd::impl::bump_version(input);  // the base's too: views share its version counter
  torch::autograd::rebase_history(target, node);
  node->source_ = torch::autograd::SavedVariable(target, /*is_output=*/true, target.is_view());
  node->weight_ = torch::autograd::SavedVariable(weight, /*is_output=*/false);
  node->view_ = view.vec();
  if (base.defined()) {
    // The view's own history: a reshape of the base's, where autograd would otherwise rebuild it
    // on first use as an as_strided of the base (a zero-fill and a copy of the gradient).
    node->shape_ = input.sizes().vec();
    auto reshape = c10::make_intrusive<torch::autograd::generated::ViewBackward0>();
    reshape->self_sym_sizes = base.sym_sizes().vec();
    reshape->set_next_edges(torch::autograd::collect_next_edges(base));
    torch::autograd::set_history(input, reshape);
  }
  return input;
}

// Below autograd (inference mode, where tensors carry no autograd keys): the forward alone.
at::Tensor prelu_plain(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view) {
  check_arguments(input, weight, view);
  return forward(input, weight, view, /*in_place=*/false);
}

at::Tensor prelu_inplace_plain(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef view) {
  check_arguments(input, weight, view);
  check_inplace_slopes(weight);
  return forward(input, weight, view, /*in_place=*/true);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(prelu_cpu, m) {
  m.def("prelu(Tensor input, Tensor weight, int[] view_shape) -> Tensor");
  m.def("prelu_(Tensor(a!) input, Tensor weight, int[] view_shape) -> Tensor(a!)");
}

TORCH_LIBRARY_IMPL(prelu_cpu, Autograd, m) {
  m.impl("prelu", &prelu_autograd);
  m.impl("prelu_", &prelu_inplace_autograd);
}

TORCH_LIBRARY_IMPL(prelu_cpu, CPU, m) {
  m.impl("prelu", &prelu_plain);
  m.impl("prelu_", &prelu_inplace_plain);
}

// The Python entry of the CPU fast path: prelu_cpu.try_prelu(input, weight, channel_dim, inplace).
//
// prelu.prelu and prelu.PReLU call it first (prelu/ops/route.py: fast_entry). When the call is the
// common one it runs torch.ops.prelu_cpu.prelu (or prelu_) through the dispatcher and returns the
// output; for anything else it returns None, having changed nothing, and prelu.prelu's Python path
// decides (and raises, with its messages: this file raises nothing of its own). One C call instead
// of the ~25 Python calls of checks and routing: measured in a training step of the lab's MLP
// (3 x Linear 128, batch 64), those cost ~19 us per activation, against ~3 us in a tight loop,
// because between the other layers' work they run from cold caches.
//
// "The common one", every point checked here (the caller checks only what C++ cannot see:
// that dynamo is not tracing it):
// - input is exactly a torch.Tensor and weight a torch.Tensor or Parameter (no subclass), both
//   strided CPU tensors of one dtype, float32 or float64;
// - nothing traces or transforms: no __torch_dispatch__ or __torch_function__ mode, no functorch
//   transform, no jit trace, no forward-AD dual level, and neither tensor carries a tracing key
//   (route.py: plain_eager);
// - no backend is forced: prelu.use_backend's ContextVar (bound once, bind_backend_variable) is
//   None here, and $PRELU_BACKEND is unset, empty or "auto";
// - the weight is one slope (numel 1, any shape), or 1-D with one slope per channel of the input
//   on channel_dim (layout.py: slope_view_shape);
// - in place: the input is contiguous (so it cannot overlap itself) and, when autograd records
//   it, neither a leaf nor a view of one.

#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/PythonTorchFunctionTLS.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>
#include <c10/util/SmallVector.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/forward_grad.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

namespace {

using Signature = at::Tensor(const at::Tensor&, const at::Tensor&, c10::IntArrayRef);

// Nothing records, traces or transforms this call (route.py: plain_eager, but for dynamo: the caller checks that).
bool plain_eager(const at::Tensor& input, const at::Tensor& weight) {
  static const c10::DispatchKeySet traced({c10::DispatchKey::Python, c10::DispatchKey::PythonTLSSnapshot,
                                           c10::DispatchKey::Batched, c10::DispatchKey::FuncTorchBatched,
                                           c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::Functionalize});
  const c10::DispatchKeySet included = c10::impl::tls_local_dispatch_key_set().included_;
  return c10::impl::TorchDispatchModeTLS::stack_len() == 0 && !at::impl::torch_function_mode_enabled() &&
         !included.has(c10::DispatchKey::FuncTorchDynamicLayerFrontMode) &&
         !included.has(c10::DispatchKey::FuncTorchDynamicLayerBackMode) && !torch::jit::tracer::isTracing() &&
         // a dual level is open (torch allows one, index 0): any tensor may carry a tangent
         torch::autograd::ForwardADLevel::try_get_by_idx(0) == nullptr && !input.key_set().has_any(traced) &&
         !weight.key_set().has_any(traced);
}

PyObject* forced_backend = nullptr;  // prelu.ops.backend.FORCED, a ContextVar (a new reference)

// prelu.use_backend forces nothing in this context. Unbound (never, once loaded): not the common call.
bool no_forced_backend() {
  if (forced_backend == nullptr) return false;
  PyObject* value = nullptr;
  if (PyContextVar_Get(forced_backend, nullptr, &value) != 0) throw python_error();
  const bool none = value == Py_None;
  Py_XDECREF(value);
  return none;
}

PyObject* bind_backend_variable(PyObject* /*module*/, PyObject* variable) {
  if (!PyContextVar_CheckExact(variable)) {
    PyErr_SetString(PyExc_TypeError, "bind_backend_variable needs a contextvars.ContextVar");
    return nullptr;
  }
  Py_INCREF(variable);
  Py_XSETREF(forced_backend, variable);
  Py_RETURN_NONE;
}

// $PRELU_BACKEND asks for nothing but the default (prelu/ops/backend.py: requested_backend).
bool backend_is_auto() {
  const char* value = std::getenv("PRELU_BACKEND");
  if (value == nullptr) return true;
  while (std::isspace(static_cast<unsigned char>(*value))) ++value;
  size_t length = std::strlen(value);
  while (length > 0 && std::isspace(static_cast<unsigned char>(value[length - 1]))) --length;
  if (length == 0) return true;
  if (length != 4) return false;
  for (size_t i = 0; i < 4; ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != "auto"[i]) return false;
  }
  return true;
}

bool cpu_floating(const at::Tensor& tensor) {
  return tensor.defined() && tensor.layout() == at::kStrided && tensor.device().is_cpu() &&
         (tensor.scalar_type() == at::kFloat || tensor.scalar_type() == at::kDouble);
}

// The canonical slope view (layout.py: slope_view_shape) for one shared slope or one per channel;
// false for every other weight, and for a weight that fits the input in no way (Python says why).
bool canonical_view(const at::Tensor& input, const at::Tensor& weight, int64_t channel_dim,
                    c10::SmallVector<int64_t, 8>& view) {
  const int64_t ndim = input.dim();
  view.assign(ndim, 1);
  if (weight.numel() == 1) return true;
  if (weight.dim() != 1 || ndim == 0 || channel_dim < -ndim || channel_dim >= ndim) return false;
  const int64_t dim = channel_dim < 0 ? channel_dim + ndim : channel_dim;
  if (input.size(dim) != weight.size(0)) return false;
  view[dim] = weight.size(0);
  return true;
}

// In place may run here unless functional.py's _check_inplace_target would refuse it: a leaf that
// requires grad or a view of one (the Python path raises prelu's message), or an input that may
// overlap itself (contiguous ones cannot).
bool inplace_allowed(const at::Tensor& input) {
  if (!input.is_contiguous()) return false;
  if (!(at::GradMode::is_enabled() && input.requires_grad())) return true;
  return !(input.is_view() ? input._base() : input).is_leaf();
}

// Other Python threads run while the op does; taken back on return or exception.
struct ReleasedGil {
  PyThreadState* state = PyEval_SaveThread();
  ReleasedGil() = default;
  ReleasedGil(const ReleasedGil&) = delete;
  ReleasedGil& operator=(const ReleasedGil&) = delete;
  ~ReleasedGil() { PyEval_RestoreThread(state); }
};

PyObject* try_prelu(PyObject* /*module*/, PyObject* const* args, Py_ssize_t count) {
  HANDLE_TH_ERRORS
  if (count != 4 || Py_TYPE(args[0]) != reinterpret_cast<PyTypeObject*>(THPVariableClass) ||
      !THPVariable_CheckExact(args[1]) || !PyLong_CheckExact(args[2]) || (args[3] != Py_False && args[3] != Py_True)) {
    Py_RETURN_NONE;
  }
  const bool inplace = args[3] == Py_True;
  int overflow = 0;
  const int64_t channel_dim = PyLong_AsLongLongAndOverflow(args[2], &overflow);
  if (overflow != 0) Py_RETURN_NONE;
  const at::Tensor& input = THPVariable_Unpack(args[0]);
  const at::Tensor& weight = THPVariable_Unpack(args[1]);
  c10::SmallVector<int64_t, 8> view;
  if (!cpu_floating(input) || weight.scalar_type() != input.scalar_type() || !cpu_floating(weight) ||
      !plain_eager(input, weight) || !no_forced_backend() || !backend_is_auto() ||
      !canonical_view(input, weight, channel_dim, view) ||
      (inplace && !inplace_allowed(input))) {
    Py_RETURN_NONE;
  }
  static const auto prelu = c10::Dispatcher::singleton().findSchemaOrThrow("prelu_cpu::prelu", "").typed<Signature>();
  static const auto prelu_ = c10::Dispatcher::singleton().findSchemaOrThrow("prelu_cpu::prelu_", "").typed<Signature>();
  at::Tensor output;
  {
    const ReleasedGil released;  // as torch's own bindings do around an op
    output = (inplace ? prelu_ : prelu).call(input, weight, view);
  }
  return THPVariable_Wrap(std::move(output));
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"try_prelu", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(try_prelu)), METH_FASTCALL,
     "try_prelu(input, weight, channel_dim, inplace): the output of prelu.prelu's CPU fast path, or None "
     "when the call is not the common one (then nothing was done)."},
    {"bind_backend_variable", bind_backend_variable, METH_O,
     "bind_backend_variable(variable): the ContextVar prelu.use_backend sets; try_prelu declines while it "
     "is not None."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_definition = {PyModuleDef_HEAD_INIT, "prelu_cpu",
                                 "prelu's C++ CPU kernels; the autograd ops are torch.ops.prelu_cpu.", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit_prelu_cpu() { return PyModule_Create(&module_definition); }

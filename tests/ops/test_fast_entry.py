"""The C++ entry of the CPU fast path (``prelu_cpu.try_prelu``, ``route.fast_entry``): it runs the
common call and gives F.prelu's values and gradients; for every other call it returns None and
changes nothing, and its own check of "nothing traces or transforms" agrees with
:func:`prelu.ops.route.plain_eager` in every context that function knows."""

import contextlib
import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import prelu
from prelu.ops import route
from prelu.ops.kernels import extension

pytestmark = pytest.mark.skipif(extension.load() is None, reason="the C++ extension could not be built")


def _entry():
    route._cpu_op(False)  # loads the extension, and with it the entry
    return route.fast_entry


def _non_leaf(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, requires_grad=True) * 1


@pytest.mark.parametrize(
    ("shape", "weight_shape", "channel_dim"),
    [
        ((4, 3, 5, 6), (3,), 1),
        ((4, 5, 6, 3), (3,), -1),
        ((4, 5, 6, 3), (3,), 3),
        ((7, 9), (1,), 1),
        ((7, 9), (), 0),
        ((2, 3, 4), (1, 1, 1), 1),  # one slope in any shape
        ((), (1,), 1),
        ((0, 3), (3,), 1),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_common_call_runs_in_cpp_and_equals_the_reference(shape, weight_shape, channel_dim, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    weight = (torch.rand(weight_shape, dtype=dtype) + 0.1).requires_grad_()
    output = _entry()(x, weight, channel_dim, False)
    assert output is not None
    assert output.grad_fn is not None and output.grad_fn.name() == "prelu_cpu::PReLUBackward"
    view = [1] * x.ndim
    if weight.numel() > 1:
        view[channel_dim] = weight.numel()
    reference_x = x.detach().double().requires_grad_()
    reference_w = weight.detach().double().requires_grad_()
    expected = torch.where(reference_x > 0, reference_x, reference_w.reshape(view) * reference_x)  # float64, plainly
    torch.testing.assert_close(output.double(), expected)
    grad = torch.randn_like(output)
    output.backward(grad)
    expected.backward(grad.double())
    torch.testing.assert_close(x.grad.double(), reference_x.grad)
    torch.testing.assert_close(weight.grad.double(), reference_w.grad, rtol=1e-5, atol=1e-5)


def test_in_place_returns_the_input_itself_and_its_gradients_are_f_prelus():
    x = _non_leaf(4, 3, 5)
    kept = x.detach().clone()
    weight = torch.tensor([0.1, 0.5, 2.0], requires_grad=True)
    output = _entry()(x, weight, 1, True)
    assert output is x
    output.backward(torch.ones_like(output))
    expected_w = weight.detach().clone().requires_grad_()
    F.prelu(kept, expected_w).backward(torch.ones_like(kept))
    torch.testing.assert_close(weight.grad, expected_w.grad)


def test_in_place_with_a_slope_at_zero_raises_prelus_error_and_writes_nothing():
    x = _non_leaf(4, 3)
    before = x.detach().clone()
    with pytest.raises(ValueError, match=r"smallest slope is 0.*inplace=False"):
        prelu.prelu(x, torch.tensor([0.5, 0.0, 1.0]), inplace=True)
    assert torch.equal(x.detach(), before)


CALLS_IT_LEAVES_TO_PYTHON = {
    "float16": lambda: (torch.randn(2, 3).half(), torch.rand(3).half(), 1, False),
    "float32 slopes, float64 input": lambda: (torch.randn(2, 3, dtype=torch.float64), torch.rand(3), 1, False),
    "a Parameter input": lambda: (torch.nn.Parameter(torch.randn(2, 3)), torch.rand(3), 1, False),
    "element-wise slopes": lambda: (torch.randn(2, 3), torch.rand(2, 3), 1, False),
    "wrong channel count": lambda: (torch.randn(2, 3), torch.rand(4), 1, False),
    "channel_dim out of range": lambda: (torch.randn(2, 3), torch.rand(3), 2, False),
    "per-channel slopes on a 0-d input": lambda: (torch.randn(()), torch.rand(3), 1, False),
    "channel_dim a bool": lambda: (torch.randn(2, 3), torch.rand(3), True, False),
    "channel_dim a float": lambda: (torch.randn(2, 3), torch.rand(3), 1.0, False),
    "channel_dim too large for C": lambda: (torch.randn(2, 3), torch.rand(3), 2**70, False),
    "inplace not a bool": lambda: (torch.randn(2, 3), torch.rand(3), 1, 1),
    "in place on a leaf": lambda: (torch.randn(2, 3, requires_grad=True), torch.rand(3), 1, True),
    "in place on a view of a leaf": lambda: (torch.randn(2, 3, 4, requires_grad=True)[0], torch.rand(3), 0, True),
    "in place on a transposed input": lambda: (torch.randn(3, 2).t(), torch.rand(2), 0, True),
    "in place on an expanded input": lambda: (torch.randn(1, 3).expand(4, 3), torch.rand(3), 1, True),
    "a weight on the meta device": lambda: (torch.randn(2, 3), torch.rand(3, device="meta"), 1, False),
    "a sparse input": lambda: (torch.randn(2, 3).to_sparse(), torch.rand(3), 1, False),
    "not a tensor": lambda: ([[1.0, 2.0, 3.0]], torch.rand(3), 1, False),
}


@pytest.mark.parametrize("case", CALLS_IT_LEAVES_TO_PYTHON)
def test_every_other_call_is_left_to_python_untouched(case):
    args = CALLS_IT_LEAVES_TO_PYTHON[case]()
    before = [a.detach().clone() for a in args[:2] if isinstance(a, torch.Tensor) and a.layout == torch.strided]
    assert _entry()(*args) is None
    after = [a.detach() for a in args[:2] if isinstance(a, torch.Tensor) and a.layout == torch.strided]
    assert all(torch.equal(b, a) for b, a in zip(before, after, strict=True) if b.device.type == "cpu")


def test_a_backend_other_than_auto_in_the_environment_is_left_to_python(monkeypatch):
    x, weight = torch.randn(2, 3), torch.rand(3)
    for value in ("", " AUTO ", "auto"):
        monkeypatch.setenv("PRELU_BACKEND", value)
        assert _entry()(x, weight, 1, False) is not None, value
    for value in ("native", "fused", "automatic", "bogus"):
        monkeypatch.setenv("PRELU_BACKEND", value)
        assert _entry()(x, weight, 1, False) is None, value


def test_use_backend_and_a_dual_level_make_it_decline():
    x, weight = torch.randn(2, 3), torch.rand(3)
    assert _entry()(x, weight, 1, False) is not None
    for backend in ("fused", "native", "auto"):
        with prelu.use_backend(backend):
            assert _entry()(x, weight, 1, False) is None, backend
    with fwAD.dual_level():
        assert _entry()(x, weight, 1, False) is None
    assert _entry()(x, weight, 1, False) is not None


def test_the_module_and_the_function_go_through_the_entry(monkeypatch):
    calls = []
    real = _entry()

    def spy(*args):
        calls.append(args[2:])
        return real(*args)

    monkeypatch.setattr(route, "fast_entry", spy)
    x = torch.randn(2, 3, 4)
    module = prelu.PReLU(4, channel_dim=-1)
    torch.testing.assert_close(module(x), prelu.prelu(x, module.weight, channel_dim=-1))
    assert calls == [(-1, False), (-1, False)]


class _PassThroughDispatch(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


class _PassThroughFunction(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


CONTEXTS = {
    "plain": contextlib.nullcontext,
    "a forward-AD dual level": fwAD.dual_level,
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "a dispatch mode": _PassThroughDispatch,
    "a torch function mode": _PassThroughFunction,
    "torch.device": lambda: torch.device("cpu"),
}


@pytest.mark.parametrize("context", CONTEXTS)
def test_the_cpp_plain_eager_check_agrees_with_pythons(context):
    x, weight = torch.randn(2, 3), torch.rand(3)
    with CONTEXTS[context]():
        expected = route.plain_eager(x, weight)
        output = _entry()(x, weight, 1, False)
    assert (output is not None) == expected, (context, expected)


def test_under_transforms_and_tracing_the_entry_declines():
    x, weight = torch.randn(3, 2, 4), torch.rand(4)
    seen = []

    def probe(t):
        seen.append((route.plain_eager(t, weight), _entry()(t, weight, -1, False) is not None))
        return prelu.prelu(t, weight, channel_dim=-1)

    torch.func.vmap(probe)(x)
    torch.func.grad(lambda t: probe(t).sum())(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python values
        torch.jit.trace(probe, (x,), check_trace=False)
    assert seen == [(False, False)] * 3


@pytest.mark.parametrize("inplace", [False, True])
def test_python_callbacks_inside_the_op_run_with_the_gil_released_around_it(inplace):
    """The entry releases the GIL while the op runs; saved-tensor hooks and anomaly mode call back
    into Python from inside it (taking the GIL themselves): both work, and the gradients are right."""
    torch.manual_seed(5)
    x = torch.randn(4, 3, 5, requires_grad=True)
    weight = torch.tensor([0.2, 0.5, 1.5], requires_grad=True)
    packed = []

    def pack(tensor):
        packed.append(tuple(tensor.shape))
        return tensor.clone()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), torch.autograd.detect_anomaly():
        out = prelu.prelu(x * 1, weight, inplace=inplace)
        got = torch.autograd.grad(out.sum(), (x, weight))
    assert sorted(packed) == [(3,), (4, 3, 5)]
    expected = torch.autograd.grad(F.prelu(x, weight).sum(), (x, weight))
    for actual, wanted in zip(got, expected, strict=True):
        torch.testing.assert_close(actual, wanted)

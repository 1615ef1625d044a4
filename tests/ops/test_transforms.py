"""torch.func transforms, forward-mode AD and batched gradients agree with a plain float64
reference (and with F.prelu where torch's layout applies) for every slope layout, out of place
and in place. Under a transform every call runs torch's own ops; is_grads_batched runs the eager
fused path's backward under vmap, which must build its gradient from differentiable ops."""

import warnings

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vmap

import prelu

# (input shape, weight shape, channel_dim, the view of the weight that broadcasts onto the input)
LAYOUTS = {
    "shared": ((3, 4, 5), (1,), 1, (1, 1, 1)),
    "per-channel dim 1": ((3, 4, 5), (4,), 1, (1, 4, 1)),
    "channel_dim=-1": ((3, 4, 5), (5,), -1, (1, 1, 5)),
    "element-wise": ((3, 4, 5), (4, 5), 1, (1, 4, 5)),
}


def _reference(x, weight, view):
    """PReLU written plainly: x where x > 0, a * x elsewhere."""
    return torch.where(x > 0, x, weight.reshape(view) * x)


def _case(name, inplace=False):
    shape, weight_shape, channel_dim, view = LAYOUTS[name]
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    weight = torch.rand(weight_shape, dtype=torch.float64) * 0.8 + 0.1

    def ours(a, w):
        if inplace:
            return prelu.prelu(a * 1, w, channel_dim=channel_dim, inplace=True)  # a * 1: not a leaf
        return prelu.prelu(a, w, channel_dim=channel_dim)

    return x, weight, ours, lambda a, w: _reference(a, w, view)


CASES = [(name, inplace) for name in LAYOUTS for inplace in (False, True)]


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "inplace"), CASES)
def test_jvp_jacfwd_jacrev_agree_with_the_reference(name, inplace):
    x, weight, ours, reference = _case(name, inplace)
    tangents = (torch.randn_like(x), torch.randn_like(weight))
    for actual, expected in zip(jvp(ours, (x, weight), tangents), jvp(reference, (x, weight), tangents), strict=True):
        _close(actual, expected)
    for transform in (jacfwd, jacrev):
        actual = transform(ours, argnums=(0, 1))(x, weight)
        expected = jacrev(reference, argnums=(0, 1))(x, weight)
        for a, e in zip(actual, expected, strict=True):
            _close(a, e)


@pytest.mark.parametrize(("name", "inplace"), CASES)
def test_grad_and_hessian_agree_with_the_reference(name, inplace):
    x, weight, ours, reference = _case(name, inplace)

    def loss(f):
        return lambda a, w: (f(a, w) ** 3).sum()  # cubed: the second derivative is not zero

    for actual, expected in zip(
        grad(loss(ours), argnums=(0, 1))(x, weight), grad(loss(reference), argnums=(0, 1))(x, weight), strict=True
    ):
        _close(actual, expected)
    _close(hessian(loss(ours), argnums=1)(x, weight), hessian(loss(reference), argnums=1)(x, weight))
    _close(hessian(loss(ours), argnums=0)(x, weight), hessian(loss(reference), argnums=0)(x, weight))


@pytest.mark.parametrize(("name", "inplace"), CASES)
def test_vmap_agrees_with_a_loop(name, inplace):
    x, weight, ours, _ = _case(name, inplace)
    batch = torch.stack([x, -x, 2 * x])
    expected = torch.stack([ours(item, weight) for item in batch])
    _close(vmap(ours, in_dims=(0, None))(batch, weight), expected)
    weights = torch.stack([weight, 2 * weight])
    if inplace:  # one unbatched input cannot hold a batch of outputs: torch refuses, as for x.mul_(batch)
        with pytest.raises(RuntimeError, match="vmap: inplace arithmetic"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about resizing before it refuses
            vmap(ours, in_dims=(None, 0))(x, weights)
    else:
        with warnings.catch_warnings():
            # torch's own batching rule for a batched slope resizes an output and warns that it
            # is deprecated (F.prelu itself does the same); the values are checked below.
            warnings.filterwarnings("ignore", message="An output with one or more elements was resized")
            mapped = vmap(ours, in_dims=(None, 0))(x, weights)
        _close(mapped, torch.stack([ours(x, w) for w in weights]))


@pytest.mark.parametrize(("name", "inplace"), CASES)
def test_forward_mode_ad_agrees_with_the_reference(name, inplace):
    x, weight, ours, reference = _case(name, inplace)
    tangent_x, tangent_w = torch.randn_like(x), torch.randn_like(weight)
    results = []
    for f in (ours, reference):
        with fwAD.dual_level():
            out = f(fwAD.make_dual(x, tangent_x), fwAD.make_dual(weight, tangent_w))
            primal, tangent = fwAD.unpack_dual(out)
            results.append((primal.clone(), tangent.clone()))
    _close(results[0][0], results[1][0])
    _close(results[0][1], results[1][1])


@pytest.mark.parametrize(("name", "inplace"), CASES)
@pytest.mark.parametrize("backend", ["fused", "native"])
def test_is_grads_batched_agrees_with_the_reference(name, inplace, backend):
    x, weight, ours, reference = _case(name, inplace)
    grads = torch.randn(4, *x.shape, dtype=torch.float64)
    results = []
    for f in (ours, reference):
        leaf, w = x.clone().requires_grad_(), weight.clone().requires_grad_()
        with prelu.use_backend(backend):
            out = f(leaf, w)
            results.append(torch.autograd.grad(out, (leaf, w), grads, is_grads_batched=True))
    for actual, expected in zip(*results, strict=True):
        _close(actual, expected)


@pytest.mark.parametrize("name", ["shared", "per-channel dim 1"])
def test_torch_layouts_agree_with_f_prelu_under_jacrev(name):
    x, weight, ours, _ = _case(name)
    for a, e in zip(jacrev(ours, argnums=(0, 1))(x, weight), jacrev(F.prelu, argnums=(0, 1))(x, weight), strict=True):
        _close(a, e)


@pytest.mark.parametrize("inplace", [False, True])
def test_leaky_relu_under_transforms_agrees_with_f_leaky_relu(inplace):
    x = torch.randn(3, 4, dtype=torch.float64)

    def ours(a):
        return prelu.leaky_relu(a * 1, 0.2, inplace=inplace)

    def reference(a):
        return F.leaky_relu(a, 0.2)

    _close(jacfwd(ours)(x), jacrev(reference)(x))
    _close(jacrev(ours)(x), jacrev(reference)(x))
    _close(vmap(ours)(x), reference(x))
    _close(hessian(lambda a: ours(a).pow(3).sum())(x), hessian(lambda a: reference(a).pow(3).sum())(x))
    leaf = x.clone().requires_grad_()
    grads = torch.randn(5, 3, 4, dtype=torch.float64)
    with prelu.use_backend("fused"):
        (batched,) = torch.autograd.grad(ours(leaf), leaf, grads, is_grads_batched=True)
    _close(batched, torch.stack([torch.where(x > 0, g, 0.2 * g) for g in grads]))


def test_jacobian_vectorized_matches_the_loop():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    weight = torch.rand(3, dtype=torch.float64)
    with prelu.use_backend("fused"):
        vectorized = torch.autograd.functional.jacobian(lambda a, w: prelu.prelu(a, w), (x, weight), vectorize=True)
        looped = torch.autograd.functional.jacobian(lambda a, w: prelu.prelu(a, w), (x, weight))
    for a, e in zip(vectorized, looped, strict=True):
        _close(a, e)


def test_double_backward_in_place_on_the_fused_path_is_refused_clearly():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(4, dtype=torch.float64, requires_grad=True)
    with prelu.use_backend("fused"):
        out = prelu.prelu(x * 1, weight, inplace=True)
        with pytest.raises(RuntimeError, match="double backward through an in-place PReLU is not supported"):
            torch.autograd.grad(out.sum(), x, create_graph=True)

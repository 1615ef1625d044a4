"""In-place PReLU / Leaky ReLU: same results and gradients as out of place, only the output saved,
every refusal before anything is written, compile, and concurrent calls."""

import threading

import pytest
import torch
import torch.nn.functional as F

import prelu

TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}

# (input shape, weight shape, channel_dim, memory format or a slicing function)
LAYOUTS = {
    "shared": ((4, 6, 9, 9), (1,), 1, None),
    "channel-nchw": ((4, 6, 9, 9), (6,), 1, None),
    "channel-nhwc": ((4, 6, 9, 9), (6,), 1, torch.channels_last),
    "channel-last-dim": ((3, 11, 16), (16,), -1, None),
    "channel-middle": ((3, 5, 70), (5,), 1, None),
    "elementwise": ((2, 6, 5, 4), (6, 1, 4), 1, None),
    "channels_last_3d": ((2, 4, 3, 5, 6), (4,), 1, torch.channels_last_3d),
    "sliced (native path)": ((4, 6, 9, 18), (6,), 1, lambda t: t[..., ::2]),
    "rows over many chunks": ((2, 3, 200, 200), (3,), 1, None),
}


def _make(shape, layout, dtype):
    x = torch.randn(shape, dtype=dtype)
    if layout is None:
        return x
    if callable(layout):
        return layout(x)
    return x.to(memory_format=layout)


def _relative_error(actual, expected):
    scale = expected.abs().max().clamp_min(1e-30)
    return ((actual.double() - expected.double()).abs().max() / scale.double()).item()


# The chunked-rows case exists for the fused kernels (float32/float64); half precision runs native.
CASES = [
    (name, dtype)
    for name in LAYOUTS
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16)
    if dtype in (torch.float64, torch.float32) or name != "rows over many chunks"
]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_inplace_matches_out_of_place(name, dtype):
    torch.manual_seed(0)
    shape, weight_shape, channel_dim, layout = LAYOUTS[name]
    x = _make(shape, layout, dtype)
    weight = (torch.rand(weight_shape, dtype=dtype) * 0.8 + 0.05).requires_grad_()
    grad = torch.randn_like(x)

    source = x.clone().requires_grad_()
    expected = prelu.prelu(source, weight, channel_dim=channel_dim)
    expected_grads = torch.autograd.grad(expected, [source, weight], grad)

    leaf = x.clone().requires_grad_()
    target = leaf * 1  # a non-leaf to overwrite
    target_storage = target.data_ptr()
    out = prelu.prelu(target, weight, channel_dim=channel_dim, inplace=True)
    assert out is target and out.data_ptr() == target_storage
    assert torch.equal(out, expected)
    grads = torch.autograd.grad(out, [leaf, weight], grad)
    for actual, wanted in zip(grads, expected_grads, strict=True):
        assert _relative_error(actual, wanted) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("smallest", [1e-6, 1e-3])
def test_slopes_near_the_smallest_allowed_value(dtype, smallest):
    torch.manual_seed(1)
    x = torch.randn(4, 8, 33, dtype=dtype)
    weight = torch.full((8,), smallest, dtype=dtype)
    weight[::2] = 0.5
    weight.requires_grad_()
    grad = torch.randn_like(x)
    source = x.clone().requires_grad_()
    expected = torch.autograd.grad(F.prelu(source, weight), [source, weight], grad)
    leaf = x.clone().requires_grad_()
    actual = torch.autograd.grad(prelu.prelu(leaf * 1, weight, inplace=True), [leaf, weight], grad)
    for got, wanted in zip(actual, expected, strict=True):
        assert _relative_error(got, wanted) <= TOLERANCE[dtype]


def test_gradcheck_inplace():
    torch.manual_seed(2)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    x = torch.where(x.abs() < 0.05, torch.full_like(x, 0.3), x).requires_grad_()  # away from the kink
    weight = torch.tensor([0.1, 0.4, 0.7, 1.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: prelu.prelu(a.clone(), w, inplace=True), (x, weight))
    assert torch.autograd.gradcheck(lambda a: prelu.leaky_relu(a.clone(), 0.2, inplace=True), (x,))


def test_double_backward_in_place_raises_a_clear_error():
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    y = prelu.prelu(x * 1, weight, inplace=True)
    with pytest.raises(RuntimeError, match="double backward through an in-place PReLU is not supported"):
        torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    with prelu.use_backend("fused"):
        z = prelu.leaky_relu(x * 1, 0.1, inplace=True)
    with pytest.raises(RuntimeError, match="inplace=False"):
        torch.autograd.grad(z.square().sum(), [x], create_graph=True)


def test_in_place_leaky_relu_under_auto_has_torchs_double_backward():
    """On CPU under auto, Leaky ReLU in place is torch's own leaky_relu_, whose backward from its
    output is itself differentiable: the second derivative matches the out-of-place one."""
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)

    def second(inplace):
        loss = prelu.leaky_relu(x * 1, 0.1, inplace=inplace).square().sum()
        (first,) = torch.autograd.grad(loss, [x], create_graph=True)
        return torch.autograd.grad(first.sum(), [x])[0]

    torch.testing.assert_close(second(True), second(False), rtol=0, atol=0)


def test_only_the_output_and_slopes_are_saved():
    x = torch.randn(4, 6, 8, 8, requires_grad=True)
    weight = torch.full((6,), 0.25, requires_grad=True)
    target = x * 2
    saved = []

    def pack(tensor):
        saved.append(tensor.untyped_storage().data_ptr())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = prelu.prelu(target, weight, inplace=True)
    assert set(saved) == {out.untyped_storage().data_ptr(), weight.untyped_storage().data_ptr()}

    saved.clear()
    fresh = x * 2
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out_of_place = prelu.prelu(fresh, weight)
    assert out_of_place.untyped_storage().data_ptr() not in saved  # out of place keeps the input


@pytest.mark.parametrize(
    "bad",
    [torch.tensor([0.25, 0.0, 0.5]), torch.tensor([0.25, -0.1, 0.5]), torch.tensor([0.25, float("nan"), 0.5])],
    ids=["zero", "negative", "nan"],
)
def test_nonpositive_or_nonfinite_slope_is_refused_before_writing(bad):
    x = torch.randn(2, 3, 4)
    before = x.clone()
    with pytest.raises(ValueError, match="smallest slope is") as error:
        prelu.prelu(x, bad, inplace=True)
    assert torch.equal(x, before)
    finite = bad[torch.isfinite(bad)]
    assert f"{finite.min().item():.6g}" in str(error.value)
    assert "inplace=False" in str(error.value)


def test_inf_slope_is_refused_and_counted():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="1 slope\\(s\\) are not finite"):
        prelu.prelu(x, torch.tensor([0.2, float("inf"), 0.3]), channel_dim=-1, inplace=True)


def test_module_with_nonpositive_slope_refuses_and_leaves_input():
    module = prelu.PReLU(3, inplace=True)
    with torch.no_grad():
        module.weight[1] = -0.5
    x = torch.randn(2, 3, 5)
    before = x.clone()
    with pytest.raises(ValueError, match=r"smallest slope is -0\.5"):
        module(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("slope", [0.0, -0.01, float("nan"), float("inf")])
def test_leaky_relu_inplace_refuses_slopes_that_cannot_be_inverted(slope):
    x = torch.randn(5)
    before = x.clone()
    with pytest.raises(ValueError, match="inplace=True needs every slope finite and > 0"):
        prelu.leaky_relu(x, slope, inplace=True)
    assert torch.equal(x, before)


def test_leaf_requiring_grad_is_refused_like_torch():
    x = torch.randn(3, 4, requires_grad=True)
    before = x.detach().clone()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        prelu.prelu(x, torch.tensor([0.25]), inplace=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
        prelu.leaky_relu(x[0], 0.1, inplace=True)
    assert torch.equal(x.detach(), before)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        torch.relu_(x)  # torch's own rule, for comparison


def test_overlapping_input_is_refused_before_writing():
    base = torch.randn(1, 4)
    expanded = base.expand(3, 4)
    before = base.clone()
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        prelu.prelu(expanded, torch.tensor([0.25]), inplace=True)
    assert torch.equal(base, before)


@pytest.mark.parametrize(
    ("size", "stride"),
    [((3, 3), (1, 1)), ((4, 3), (2, 1)), ((2, 3, 4), (4, 1, 2))],  # torch says "too hard to tell" for each
)
@pytest.mark.parametrize("op", ["prelu", "leaky_relu"])
def test_overlapping_as_strided_input_is_refused_before_writing(size, stride, op):
    base = torch.randn(64)
    view = base.as_strided(size, stride)
    assert torch._debug_has_internal_overlap(view) == 2
    before = base.clone()
    with pytest.raises(RuntimeError, match=r"may refer to a single memory location .*as_strided"):
        if op == "prelu":
            prelu.prelu(view, torch.tensor([0.25]), inplace=True)
        else:
            prelu.leaky_relu(view, 0.1, inplace=True)
    assert torch.equal(base, before)


@pytest.mark.parametrize(("size", "stride"), [((3, 2), (1, 3)), ((4, 6, 9, 9), (972, 162, 18, 2))])
def test_non_overlapping_as_strided_input_is_accepted(size, stride):
    base = torch.randn(4000)
    view = base.as_strided(size, stride)
    expected = torch.nn.functional.prelu(view, torch.tensor([0.25]))
    assert prelu.prelu(view, torch.tensor([0.25]), inplace=True) is view
    assert torch.equal(view, expected)


def test_input_autograd_still_needs_gives_torchs_error():
    a = torch.randn(3, 4, requires_grad=True)
    x = a.exp()  # exp saves its output for backward
    prelu.prelu(x, torch.tensor([0.25]), inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        x.sum().backward()
    b = a.exp()
    torch.relu_(b)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_under_no_grad_still_bumps_the_version_torch_checks():
    # Nothing is recorded under no_grad, so the C++ op skips its graph node; it must still bump the
    # version counter, or exp's backward would silently use the overwritten output.
    a = torch.randn(3, 4, requires_grad=True)
    x = a.exp()
    with torch.no_grad():
        prelu.prelu(x, torch.tensor([0.25]), inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        x.sum().backward()


def test_inference_mode_runs_both_forms():
    weight = torch.full((3,), 0.25)
    with torch.inference_mode():
        x = torch.randn(2, 3, 5)
        expected = F.prelu(x, weight)
        assert torch.equal(prelu.prelu(x, weight), expected)
        assert prelu.prelu(x, weight, inplace=True) is x and torch.equal(x, expected)
        with pytest.raises(ValueError, match="smallest slope is -1"):
            prelu.prelu(x, torch.tensor([-1.0, 1.0, 1.0]), inplace=True)


def test_two_inplace_activations_in_a_row_fail_as_torchs_do():
    # The second overwrites the output the first saved: torch's own in-place pair fails the same way.
    def chain(first, second):
        x = torch.randn(3, 4, requires_grad=True)
        second(first(x * 1)).sum().backward()

    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        chain(torch.nn.ReLU(inplace=True), torch.nn.LeakyReLU(0.1, inplace=True))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        chain(prelu.PReLU(inplace=True), prelu.LeakyReLU(0.1, inplace=True))


def test_inplace_without_grad_and_zero_size():
    x = torch.randn(2, 3, 4)
    expected = F.prelu(x, torch.full((3,), 0.3))
    with torch.no_grad():
        out = prelu.prelu(x, torch.full((3,), 0.3), inplace=True)
    assert out is x and torch.equal(x, expected)
    empty = torch.empty(0, 3)
    assert prelu.prelu(empty, torch.full((3,), 0.3), inplace=True).shape == (0, 3)


def test_inplace_argument_must_be_bool():
    with pytest.raises(TypeError, match="inplace"):
        prelu.prelu(torch.randn(3), torch.tensor([0.2]), inplace=1)
    with pytest.raises(TypeError, match="inplace"):
        prelu.PReLU(inplace="yes")
    assert repr(prelu.LeakyReLU(0.1, inplace=True)) == "LeakyReLU(negative_slope=0.1, inplace=True)"


def test_compiled_inplace_model_matches_eager_without_graph_breaks():
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        prelu.PReLU(4, inplace=True),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 5 * 5, 6),
        prelu.LeakyReLU(0.1, inplace=True),
        torch.nn.Linear(6, 6),
        prelu.PReLU(6, channel_dim=-1, inplace=True),
    )
    x = torch.randn(3, 3, 5, 5)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1

    def run(m):
        m.zero_grad()
        y = m(x)
        y.square().sum().backward()
        return y.detach(), [p.grad.clone() for p in model.parameters()]

    expected_y, expected_grads = run(model)
    torch._dynamo.reset()
    y, grads = run(torch.compile(model, fullgraph=True, backend="aot_eager"))
    torch.testing.assert_close(y, expected_y, rtol=1e-5, atol=1e-6)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["fused", "native"])
def test_concurrent_calls_from_threads_are_correct(backend):
    torch.manual_seed(4)
    jobs = []
    for index in range(8):
        shape = [(16, 8, 20, 20), (64, 300), (4, 12, 50)][index % 3]
        channel_dim = [1, -1, 1][index % 3]
        channels = shape[channel_dim]
        x = torch.randn(shape)
        weight = torch.rand(channels) * 0.5 + 0.1
        grad = torch.randn(shape)
        source = x.clone().requires_grad_()
        w = weight.clone().requires_grad_()
        with prelu.use_backend("native"):
            y = prelu.prelu(source, w, channel_dim=channel_dim)
            expected = (y.detach(), *torch.autograd.grad(y, [source, w], grad))
        jobs.append((x, weight, grad, channel_dim, index % 2 == 1, expected))
    failures = []
    barrier = threading.Barrier(len(jobs))

    def work(x, weight, grad, channel_dim, inplace, expected):
        try:
            barrier.wait()
            with prelu.use_backend(backend):
                for _ in range(5):
                    leaf = x.clone().requires_grad_()
                    w = weight.clone().requires_grad_()
                    y = prelu.prelu(leaf * 1, w, channel_dim=channel_dim, inplace=inplace)
                    got = (y.detach(), *torch.autograd.grad(y, [leaf, w], grad))
                    for actual, wanted in zip(got, expected, strict=True):
                        if _relative_error(actual, wanted) > 1e-5:
                            failures.append((channel_dim, inplace, _relative_error(actual, wanted)))
        except Exception as error:  # surfaced below; a thread's exception is otherwise lost
            failures.append(repr(error))

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize(
    ("shape", "channels_last"),
    [((4, 3, 4000), False), ((4, 3, 37), False), ((4, 6, 5, 7), True), ((5, 20), False)],
    ids=["rows", "rows-with-tail", "period-tail-only", "period-with-tail"],
)
def test_gradients_are_right_when_backward_reuses_the_incoming_gradient(inplace, shape, channels_last):
    """Between torch ops nothing but autograd holds the incoming gradient, and backward writes
    grad_input over it (vector body and scalar tail alike); the gradients must still be F.prelu's."""
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    weight = torch.rand(shape[1]).add_(0.1).requires_grad_()
    prelu.prelu(x * 1, weight, inplace=inplace).exp().sum().backward()
    expected = torch.autograd.grad(F.prelu(x, weight).exp().sum(), [x, weight])
    torch.testing.assert_close(x.grad, expected[0])
    torch.testing.assert_close(weight.grad, expected[1])


def test_backward_never_writes_over_a_gradient_the_caller_holds():
    x = torch.randn(4, 3, 40, requires_grad=True)
    weight = torch.full((3,), 0.25, requires_grad=True)
    grad = torch.randn(4, 3, 40)
    kept = grad.clone()
    (grad_x,) = torch.autograd.grad(prelu.prelu(x * 1, weight), [x], grad)
    assert torch.equal(grad, kept) and grad_x.data_ptr() != grad.data_ptr()
    torch.autograd.backward(prelu.prelu(x * 1, weight, inplace=True), grad)
    assert torch.equal(grad, kept)
    shared = torch.randn(4, 3, 40)  # one gradient feeding two prelu nodes (AddBackward hands on the same tensor)
    total = prelu.prelu(x * 1, weight) + prelu.prelu(x * 2, weight)
    (grad_x,) = torch.autograd.grad(total, [x], shared)
    expected = torch.autograd.grad(F.prelu(x * 1, weight) + F.prelu(x * 2, weight), [x], shared)[0]
    torch.testing.assert_close(grad_x, expected)


def _graph_names(tensor):
    names, stack, seen = [], [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(node.name())
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize(
    ("weight_shape", "channel_dim"),
    [((16,), -1), ((1,), 1), ((1, 16), -1), ((5, 16), -1), ((5,), 1)],
    ids=["per-channel", "shared", "elementwise-last-dim", "elementwise-over-a-split-dim", "per-channel-on-T"],
)
def test_in_place_on_a_whole_reshape_view_runs_on_its_base_without_copyslices(weight_shape, channel_dim):
    """Linear on a 3-D input returns a view of its 2-D result: in place runs on that base, so
    autograd adds no CopySlices (which copies the whole gradient) and the view's history is a
    reshape, not an as_strided rebuilt from the base; every gradient is right, whatever the slopes
    run along."""
    torch.manual_seed(3)
    linear = torch.nn.Linear(8, 16)
    x = torch.randn(2, 5, 8, requires_grad=True)
    weight = (torch.rand(weight_shape) + 0.1).requires_grad_()
    grad = torch.randn(2, 5, 16)
    y = linear(x)
    assert y._is_view()
    out = prelu.prelu(y, weight, channel_dim=channel_dim, inplace=True)
    assert out is y
    names = _graph_names(out)
    assert out.grad_fn.name() == "ViewBackward0" and "prelu_cpu::PReLUInplaceBackward" in names, names
    assert not any("CopySlices" in name or "AsStrided" in name for name in names), names
    got = torch.autograd.grad(out, (x, weight, linear.weight), grad)
    expected = torch.autograd.grad(
        prelu.prelu(linear(x), weight, channel_dim=channel_dim), (x, weight, linear.weight), grad
    )
    for actual, wanted in zip(got, expected, strict=True):
        torch.testing.assert_close(actual, wanted)


@pytest.mark.parametrize("view", ["slice", "transpose"])
def test_in_place_on_other_views_still_writes_the_view(view):
    base = torch.randn(6, 16, requires_grad=True) * 1
    target = base[1:4] if view == "slice" else base.t()
    weight = torch.rand(target.shape[1]).add_(0.1).requires_grad_()
    before = base.detach().clone()
    out = prelu.prelu(target, weight, inplace=True)
    assert out is target and any("CopySlices" in name for name in _graph_names(out))
    expected_view = before[1:4] if view == "slice" else before.t()
    torch.testing.assert_close(out.detach(), F.prelu(expected_view, weight.detach()))
    untouched = base.detach()[[0, 4, 5]] if view == "slice" else None
    if untouched is not None:
        torch.testing.assert_close(untouched, before[[0, 4, 5]])
    grads = torch.autograd.grad(out.sum(), weight)
    torch.testing.assert_close(grads[0], torch.autograd.grad(F.prelu(expected_view, weight).sum(), weight)[0])


@pytest.mark.parametrize("case", ["output of split", "view made under no_grad"])
def test_views_torch_refuses_to_write_are_refused_with_its_error_and_left_unchanged(case):
    """In place on a view autograd cannot rebase: the same refusal torch's own in-place ops give,
    raised before anything is written."""

    def view():
        x = torch.randn(4, 6, requires_grad=True) * 1
        if case == "output of split":
            return x.split(3, dim=1)[0]
        with torch.no_grad():
            return x[:, :3]

    with pytest.raises(RuntimeError) as theirs:
        torch.relu_(view())
    target = view()
    before = target.detach().clone()
    with pytest.raises(RuntimeError) as ours:
        prelu.prelu(target, torch.full((3,), 0.5), inplace=True)
    assert str(ours.value).split(".")[0] == str(theirs.value).split(".")[0]
    assert torch.equal(target.detach(), before)


@pytest.mark.parametrize("grad_layout", ["contiguous", "permuted"])
def test_in_place_on_a_whole_reshape_view_keeps_the_base_and_other_views_right(grad_layout):
    """After in place on a whole-base view, the base and the view are both the output: gradients
    through either (and a gradient in another memory order) are those of out of place."""
    torch.manual_seed(4)
    linear = torch.nn.Linear(8, 16)
    x = torch.randn(2, 5, 8, requires_grad=True)
    weight = (torch.rand(16) + 0.1).requires_grad_()
    view_grad = torch.randn(2, 5, 16) if grad_layout == "contiguous" else torch.randn(16, 5, 2).permute(2, 1, 0)
    base_grad = torch.randn(10, 16)

    y = linear(x)
    out = prelu.prelu(y, weight, channel_dim=-1, inplace=True)
    loss = (out * view_grad).sum() + (out._base * base_grad).sum()
    got = torch.autograd.grad(loss, (x, weight, linear.weight))

    reference = prelu.prelu(linear(x), weight, channel_dim=-1)
    expected_loss = (reference * view_grad).sum() + (reference.reshape(10, 16) * base_grad).sum()
    expected = torch.autograd.grad(expected_loss, (x, weight, linear.weight))
    for actual, wanted in zip(got, expected, strict=True):
        torch.testing.assert_close(actual, wanted)

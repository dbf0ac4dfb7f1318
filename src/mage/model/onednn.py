"""The fully connected layer of every MAGE network: ``Linear``, an ``nn.Linear`` whose
float32 CPU products run on oneDNN (a CPU-kernel workaround, not model code).

    Linear                  drop-in ``nn.Linear`` (same parameters and state dict)
    onednn_linear(enabled)  ``with onednn_linear(False):`` torch's default kernel instead
    convert_linears         swap the linear layers of a module for another class (same weights)

Why, measured, and where the default kernel is kept: see :class:`Linear`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import warnings
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


@functools.cache  # probed once per process, on first use
def _onednn_linear_works() -> bool:
    """Whether this torch build has oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``,
    which torch.compile's CPU backend also calls) and it agrees with ``F.linear``."""
    try:
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*shape, generator=g) for shape in ((3, 5, 8), (4, 8), (4,)))
        got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
        return bool(torch.allclose(got, F.linear(x, w, b), rtol=1e-4, atol=1e-5))
    except Exception as err:  # noqa: BLE001 - any failure means "use the default kernel"
        warnings.warn(f"oneDNN linear unavailable ({type(err).__name__}); using torch's default", stacklevel=2)
        return False


# the switch of ``onednn_linear``: per thread and per asyncio task, so that one caller's
# ``with onednn_linear(False)`` never changes another's kernel
_ONEDNN_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("mage_onednn_linear", default=True)
# whether a torch.func transform (grad, vmap, jvp) is running: oneDNN's op has no batching
# rule and the autograd function below no functorch support, so they take F.linear
_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)


@contextlib.contextmanager
def onednn_linear(enabled: bool):
    """``with onednn_linear(False):`` runs every ``Linear`` of this thread (or asyncio task)
    with torch's default kernel, e.g. for the latency benchmark's kernel rows; True (the
    default) uses oneDNN where ``Linear`` can."""
    token = _ONEDNN_ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ONEDNN_ENABLED.reset(token)


def _onednn_matmul(a: torch.Tensor, b_t: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a (..., K) @ b_t (N, K)^T (+ bias (N,)) -> (..., N) on oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(a, b_t, bias, "none", [], "")


class _OneDNNLinearFunction(torch.autograd.Function):
    """y = x W^T + b with the forward and the backward products on oneDNN (training)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return _onednn_matmul(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g = grad.reshape(-1, grad.shape[-1])  # (M, out)
        grad_x = _onednn_matmul(g, weight.t().contiguous()).view(x.shape) if need_x else None
        grad_w = (_onednn_matmul(g.t().contiguous(), x.reshape(-1, x.shape[-1]).t().contiguous())  # (out, in)
                  if need_w else None)
        return grad_x, grad_w, g.sum(0) if need_b else None


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) whose float32 products on the CPU run
    on oneDNN instead of torch's default BLAS call, in inference and in training.

    Why by hand: on AMD CPUs torch's float32 ``F.linear`` goes to MKL, which takes a
    slower code path there. Measured on this project's 2-core AMD EPYC (AVX-512), one
    thread: 107 vs 238 GFLOP/s for a (32x120, 512) x (512, 512) product; mage-paper 2.2x
    the offline frames/s and 0.61x the online time per frame of torch's default kernel
    (the latency benchmark's kernel rows); a forward + backward
    training step of a width-192 mage-small at batch 64 1.35x faster (timed by hand, not
    in a committed report). Same float32 math, only the summation order differs (samples
    agree to ~1e-4, gradients to ~1e-4 relative; tested against ``F.linear``). The default
    path is kept wherever it is needed: autocast (bf16), tracing, scripting or export (the
    exported graph is the same as with ``nn.Linear``), ``torch.func`` transforms, empty
    inputs, other devices and dtypes, or ``onednn_linear(False)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():  # TorchScript compiles only this branch
            return F.linear(x, self.weight, self.bias)
        return self._forward_eager(x)

    @torch.jit.ignore
    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        if not self._use_onednn(x):
            return F.linear(x, self.weight, self.bias)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or self.bias.requires_grad):
            return _OneDNNLinearFunction.apply(x, self.weight, self.bias)
        return _onednn_matmul(x, self.weight, self.bias)

    def _use_onednn(self, x: torch.Tensor) -> bool:
        if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() < 2 or x.numel() == 0:
            return False
        if self.weight.dtype != torch.float32 or self.bias is None or torch.is_autocast_enabled("cpu"):
            return False
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or _functorch_active():
            return False
        return _ONEDNN_ENABLED.get() and _onednn_linear_works()


def convert_linears(module: nn.Module, cls: type[nn.Linear], names: Iterable[str] | None = None) -> nn.Module:
    """Replace, in place, the linear layers of ``module`` named in ``names`` (default: every
    ``nn.Linear``, this module's ``Linear`` included) by ``cls`` layers with the same
    weights, without drawing from the global random state. Returns ``module``."""
    if names is None:
        names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    for name in names:
        layer = module.get_submodule(name)
        new = nn.utils.skip_init(cls, layer.in_features, layer.out_features, bias=layer.bias is not None,
                                 device=layer.weight.device, dtype=layer.weight.dtype)
        new.load_state_dict(layer.state_dict())
        parent, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent), attr, new)
    return module

"""Shared by the inference tests (test_inference_*.py, test_onnx.py, test_server.py):
a tiny random-weight MageModel, closed-form stand-in models and a smooth motion."""

from __future__ import annotations

import math

import torch

from mage.core import Motion
from mage.core import rotations as rot


def tiny_model(window: int = 8, seed: int = 0, design: str = "gradual"):
    """A real MageModel, tiny (width 16, 1 block per stage), random weights and random
    condition normalisation (so that exports must carry it); ``design``: "gradual" or
    "sequential"."""
    from mage.model import MageConfig, MageModel

    torch.manual_seed(seed)
    cfg = MageConfig.preset("mage-small").with_overrides(
        window=window, width=16, depth={"S1": 1, "S2": 1, "S3": 1})
    if design == "sequential":
        cfg = cfg.with_overrides(mode="sequential", fusion="c+frec", xt_input="all")
    model = MageModel(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    model.set_normalization(torch.randn(54, generator=g) * 0.1, torch.rand(54, generator=g) + 0.5)
    return model.eval()


def _draw_noise(window: int, seed: int) -> dict[str, torch.Tensor]:
    """The pipelines' noise of a seed for a gradual model: {"S3": (N, 22, 6)}."""
    return {"S3": torch.randn(window, 22, 6, generator=torch.Generator().manual_seed(seed))}


class FrameLocalModel(torch.nn.Module):
    """Closed-form stand-in: every joint gets the head's rotation of the same frame
    (condition columns 0:6), whatever the window and the noise. So any windowing must
    reproduce exactly the per-frame map."""

    def __init__(self, window: int = 8):
        super().__init__()
        self.window = window
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[int, ...]] = []

    def draw_noise(self, seed):
        return _draw_noise(self.window, seed)

    def sample(self, cond, noise=0, steps=None):
        self.calls.append(tuple(cond.shape))
        assert cond.shape[1:] == (self.window, 54) and noise["S3"].shape == (self.window, 22, 6)
        return cond[..., None, 0:6].expand(*cond.shape[:2], 22, 6).clone()


class WindowAngleModel(torch.nn.Module):
    """Closed-form stand-in with seams: every frame of a window gets the same rotation
    about z, by an angle = the window's mean of condition column 36 (head x position).
    Consecutive windows disagree, so the blend is visible and computable by hand."""

    def __init__(self, window: int = 8, gain: float = 1.0):
        super().__init__()
        self.window, self.gain = window, gain
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def draw_noise(self, seed):
        return _draw_noise(self.window, seed)

    def sample(self, cond, noise=0, steps=None):
        angle = self.gain * cond[..., 36].mean(-1)  # (B,)
        R = rot.rotation_about_axis(angle, "z")  # (B, 3, 3)
        d6 = rot.matrix_to_rot6d(R)[:, None, None, :]
        return d6.expand(cond.shape[0], self.window, 22, 6).clone()


def smooth_motion(T: int = 40, fps: float = 60.0, seed: int = 0) -> Motion:
    """An upright body walking along +y with swinging arms, legs and a nodding head:
    smooth, so its tracking has realistic small velocities."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(22, 3, generator=g, dtype=torch.float64) * 2 * math.pi
    amp = torch.rand(22, 3, generator=g, dtype=torch.float64) * 0.3
    t = torch.arange(T, dtype=torch.float64)[:, None, None] / fps
    aa = amp * torch.sin(2 * math.pi * 1.0 * t + phase)  # (T, 22, 3)
    R = rot.axis_angle_to_matrix(aa)
    R[:, 0] = rot.rotation_about_axis(math.pi / 2, "x").double() @ R[:, 0]
    trans = torch.zeros(T, 3, dtype=torch.float64)
    trans[:, 1] = 1.2 * t[:, 0, 0]
    trans[:, 2] = 0.9 + 0.02 * torch.sin(2 * math.pi * 2 * t[:, 0, 0])
    return Motion(R.float(), trans.float(), fps)



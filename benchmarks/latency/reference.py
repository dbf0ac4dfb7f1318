"""An AGRoL-class reference model for the latency benchmark (the peer every report compares with).

Written from the published description of AGRoL's diffusion MLP (Du et al., "Avatars
Grow Legs: Generating Smooth Human Motion from Sparse Tracking Inputs with Diffusion
Model", CVPR 2023: its method section and network figure; the sizes in
docs/protocol.md, "Reference model facts"), not from its code. Only its cost matters
here: the weights are random, and it is timed the way AGRoL's inference runs (offline:
non-overlapping 196-frame windows, the last one aligned to the sequence end; 5 sampling
steps; online: one 196-frame causal window sampled per output frame).

The network, per window of N = 196 frames (B batch, D = 512):

- the noisy motion x_t (B, N, 132) and the sparse condition (B, N, 54) are each
  projected to D by a fully connected (FC) layer, concatenated and fused by a third FC
  (2D -> D);
- 12 MLP blocks; block k adds its own FC projection of the sinusoidal timestep
  embedding to its input, then LayerNorm -> a 1D convolution with kernel size 1 whose
  channels are the N frames (an N x N map across time) -> SiLU -> FC (D -> D), with a
  skip connection around it;
- a final LayerNorm and an FC to the 132 values of the 22 joints' 6D rotations (x0).

That is 7.47 M parameters (the published "about 7.5 M") and about 10 MFLOP per frame
per sampling step (matrix products), 0.05 GFLOP per output frame offline with 5 steps.
Sampling uses the project's DDIM scheduler and loop (:class:`MagePipeline`), so the two
models are timed through the same code, with the same per-step overhead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mage.core.constants import CONDITION_DIM, NUM_JOINTS, ROT6D_DIM
from mage.model.config import MageConfig
from mage.model.network import timestep_embedding
from mage.model.pipeline import MagePipeline

NAME = "agrol-class"
WINDOW, WIDTH, BLOCKS, STEPS = 196, 512, 12, 5
DESCRIPTION = (f"AGRoL-class reference (written from the paper's description): {BLOCKS} MLP blocks, "
               f"width {WIDTH}, window {WINDOW}, {STEPS} sampling steps, random weights")


class _Block(nn.Module):
    """x (B, N, D) + temb (B, D) -> (B, N, D)."""

    def __init__(self, width: int, window: int):
        super().__init__()
        self.time = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.temporal = nn.Conv1d(window, window, kernel_size=1)  # channels = frames
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = x + self.time(temb)[:, None, :]
        return x + self.fc(F.silu(self.temporal(self.norm(x))))


class AgrolReference(nn.Module):
    """The reference network and its sampler, in the interface the inference code takes
    (``window``, ``config``, ``draw_noise(seed)``, ``sample(cond, noise, steps)``), so that
    ``predict_sequence`` and ``Streamer`` run it unchanged."""

    def __init__(self, window: int = WINDOW, width: int = WIDTH, blocks: int = BLOCKS, steps: int = STEPS):
        super().__init__()
        x_dim = NUM_JOINTS * ROT6D_DIM
        self.width = width
        self.embed_x = nn.Linear(x_dim, width)
        self.embed_cond = nn.Linear(CONDITION_DIM, width)
        self.fuse = nn.Linear(2 * width, width)
        self.blocks = nn.ModuleList(_Block(width, window) for _ in range(blocks))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, x_dim)
        # The pipeline reads window, sampling steps and the schedule from a config: a
        # one-stage config of this window and step count (its network fields are unused).
        self.config = MageConfig(window=window, scales=("S3",), depth={"S3": blocks}, sampling_steps=steps)
        self.pipeline = MagePipeline.from_denoise(self.config, self.denoise, self)

    @property
    def window(self) -> int:
        return self.config.window

    def denoise(self, x_t, t, cond, scale="S3", prev=None) -> torch.Tensor:
        """x_t (B, N, 22, 6), t (B,), cond (B, N, 54) -> x0 (B, N, 22, 6)."""
        B, N = cond.shape[:2]
        h = self.fuse(torch.cat([self.embed_x(x_t.reshape(B, N, -1)), self.embed_cond(cond)], dim=-1))
        temb = timestep_embedding(t.reshape(-1).expand(B), self.width)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(self.norm(h)).view(B, N, NUM_JOINTS, ROT6D_DIM)

    def draw_noise(self, seed: int):
        return self.pipeline.draw_noise(seed)

    def sample(self, cond, noise=0, steps=None):
        return self.pipeline.sample(cond, noise, steps)


def build_reference(seed: int = 0) -> AgrolReference:
    torch.manual_seed(seed)
    return AgrolReference().eval()

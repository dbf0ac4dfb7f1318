"""The diffusion math: cosine noise schedule, forward process, DDIM sampling steps.

Like diffusers' ``DDIMScheduler`` (``timesteps`` / ``step`` / ``add_noise``), the
scheduler is not an ``nn.Module``, has no weights and never sees the network; the
pipelines of :mod:`mage.model.pipeline` run the loop. Unlike diffusers' it holds no
per-call state: ``timesteps(n)`` returns the timesteps and ``step`` is told the one it
steps to, so one scheduler serves concurrent samplers. Our network predicts x0
(diffusers' ``prediction_type="sample"``), so ``step`` takes the x0 prediction.

Symbols (DDIM paper, Song et al. 2021, eq. 12 and 16), with a_t = alphas_cumprod[t]:
    forward process   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps
    implied noise     eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)
    sigma_t           eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)
    update            x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma_t^2) eps + sigma_t z

Tested against ``diffusers.DDIMScheduler`` (``trained_betas`` = our cosine betas,
``prediction_type="sample"``, ``clip_sample=False``, ``set_alpha_to_one=True``) for
"leading" and "trailing" spacings and step counts that divide the training steps. One
deliberate difference: diffusers always takes a_prev at ``t - T // n``, which is not the
timestep it visits next for "linspace" spacing or for step counts that do not divide T;
we take a_prev at the timestep actually visited next (the timesteps themselves agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mage.model.config import TIMESTEP_SPACINGS


def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of the cosine schedule (Nichol & Dhariwal 2021; AGRoL's and diffusers'
    "squaredcos_cap_v2"): alpha_bar(u) = cos((u + s) / (1 + s) * pi / 2)^2, u = t / T,
    beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), max_beta). Returns (T,) float64.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps: must be >= 1, got {num_steps}")

    def alpha_bar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((t + 1) / num_steps) / alpha_bar(t / num_steps), max_beta)
             for t in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass
class DDIMStepOutput:
    prev_sample: torch.Tensor  # x_{t_prev}, same shape as the sample
    pred_original_sample: torch.Tensor  # the x0 prediction used for the step


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) or () coefficients -> broadcastable against ``like`` (B, ...)."""
    values = values.to(device=like.device, dtype=like.dtype)
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))


class DDIMScheduler:
    """Cosine-schedule diffusion with deterministic (eta = 0) or stochastic DDIM steps.

    num_train_timesteps: T of the forward process used in training (1000).
    timestep_spacing: how ``timesteps(n)`` picks n of the T timesteps (diffusers'
        names): "trailing" starts at t = T-1, where the sample is pure noise (our default;
        with 4 steps "leading" would start at t = 750, where the model was trained on
        inputs that still carry ~37% signal, not on the pure noise it is given);
        "leading" = 0, T/n, ... reversed; "linspace" = round(linspace(0, T-1, n)) reversed.
    """

    def __init__(self, num_train_timesteps: int = 1000, timestep_spacing: str = "trailing"):
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"timestep_spacing: unknown {timestep_spacing!r}; valid: {', '.join(TIMESTEP_SPACINGS)}"
            )
        self.num_train_timesteps = int(num_train_timesteps)
        self.timestep_spacing = timestep_spacing
        self.betas = cosine_betas(self.num_train_timesteps)  # (T,) float64
        # float64 so that the products over 1000 steps lose nothing; cast per use.
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self._device_cache: dict[torch.device, torch.Tensor] = {}

    def _alphas_cumprod_on(self, device) -> torch.Tensor:
        """The float64 table on ``device``, cached (indexing needs table and t together)."""
        device = torch.device(device)
        cached = self._device_cache.get(device)
        if cached is None:
            # MPS has no float64; float32 is ample for coefficients that are then cast anyway.
            dtype = torch.float32 if device.type == "mps" else torch.float64
            cached = self._device_cache[device] = self.alphas_cumprod.to(device, dtype)
        return cached

    # --- training ------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process q(x_t | x0). x0, noise: (B, ...); t: (B,) int timesteps."""
        if x0.shape != noise.shape:
            raise ValueError(f"noise: shape {tuple(noise.shape)} differs from x0's {tuple(x0.shape)}")
        a = self._alphas_cumprod_on(t.device)[t.long()]
        return _per_sample(a.sqrt(), x0) * x0 + _per_sample((1 - a).sqrt(), x0) * noise

    def sample_timesteps(self, batch: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(batch,) training timesteps, uniform over 0..T-1."""
        return torch.randint(0, self.num_train_timesteps, (batch,), generator=generator, device=device)

    # --- sampling ------------------------------------------------------------------
    def timesteps(self, num_inference_steps: int) -> torch.Tensor:
        """The n timesteps DDIM visits, in decreasing order, (n,) int64."""
        n, T = int(num_inference_steps), self.num_train_timesteps
        if not 1 <= n <= T:
            raise ValueError(f"num_inference_steps: must be in 1..{T}, got {num_inference_steps}")
        if self.timestep_spacing == "trailing":
            steps = [round(T - i * T / n) - 1 for i in range(n)]
        elif self.timestep_spacing == "leading":
            steps = [i * (T // n) for i in reversed(range(n))]
        else:  # linspace
            steps = torch.linspace(0, T - 1, n, dtype=torch.float64).round().long().flip(0).tolist()
        return torch.tensor(steps, dtype=torch.long)

    def step_pairs(self, num_inference_steps: int) -> list[tuple[int, int]]:
        """(t, t_prev) of each DDIM step: t_prev is the timestep visited next, -1 after
        the last one (a_prev = 1: the step returns the x0 prediction itself)."""
        steps = self.timesteps(num_inference_steps).tolist()
        return list(zip(steps, steps[1:] + [-1]))

    def step(
        self,
        pred_x0: torch.Tensor,
        t: int,
        t_prev: int,
        sample: torch.Tensor,
        eta: float = 0.0,
        variance_noise: torch.Tensor | None = None,
    ) -> DDIMStepOutput:
        """One DDIM step from x_t (``sample``) to x_{t_prev}, given the network's x0 prediction.

        pred_x0, sample: same shape (B, ...); t > t_prev: timesteps (python ints), t_prev
        = -1 for the last step (see :meth:`step_pairs`). eta = 0 is deterministic;
        eta > 0 adds sigma_t * z with z = ``variance_noise`` (standard normal, the
        sample's shape), which the caller draws: the scheduler owns no randomness.
        """
        t, t_prev = int(t), int(t_prev)
        if not (0 <= t < self.num_train_timesteps and -1 <= t_prev < t):
            raise ValueError(f"step: need 0 <= t < {self.num_train_timesteps} and -1 <= t_prev < t, "
                             f"got t={t}, t_prev={t_prev}")
        if eta > 0 and variance_noise is None:
            raise ValueError("step: eta > 0 needs variance_noise (standard normal, the sample's shape)")
        # 1. a_t and a_prev (a_prev = 1 after the last step: the result is x0 itself)
        a_t = self.alphas_cumprod[t]
        a_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.ones((), dtype=a_t.dtype)
        # 2. noise implied by x_t and the x0 prediction (eq. 12's eps_theta)
        eps = (sample - a_t.sqrt().item() * pred_x0) / (1 - a_t).sqrt().item()
        # 3. sigma_t (eq. 16)
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt().item()
        # 4. x_prev = sqrt(a_prev) x0 + "direction pointing to x_t" (+ noise)
        direction = max(1 - a_prev.item() - sigma**2, 0.0) ** 0.5 * eps
        prev = a_prev.sqrt().item() * pred_x0 + direction
        if eta > 0:
            prev = prev + sigma * variance_noise
        return DDIMStepOutput(prev_sample=prev, pred_original_sample=pred_x0)

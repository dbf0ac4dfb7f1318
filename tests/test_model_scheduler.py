"""The DDIM scheduler against diffusers.DDIMScheduler (test-only dependency)."""

import math

import pytest
import torch

from mage.model.scheduler import DDIMScheduler, cosine_betas

diffusers = pytest.importorskip("diffusers")

T = 1000


def reference(spacing: str) -> "diffusers.DDIMScheduler":
    return diffusers.DDIMScheduler(
        num_train_timesteps=T, trained_betas=cosine_betas(T).numpy(), prediction_type="sample",
        clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing=spacing,
    )


def dummy_x0(x: torch.Tensor, t: int) -> torch.Tensor:
    """A closed-form stand-in for the network: depends on the sample and the timestep."""
    return torch.tanh(0.7 * x + 0.001 * t) + 0.1 * torch.sin(3 * x)


def test_cosine_betas_match_the_closed_form_alpha_bar():
    betas = cosine_betas(T)
    assert betas.shape == (T,) and betas.dtype == torch.float64
    assert betas.max() <= 0.999 and betas.min() > 0
    alpha_bar = torch.cumprod(1 - betas, 0)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 10, 250, 500, 750, 990):
        assert alpha_bar[t].item() == pytest.approx(f((t + 1) / T) / f(0), rel=1e-9)


def test_cosine_betas_match_diffusers_squaredcos():
    ref = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2")
    torch.testing.assert_close(cosine_betas(T).float(), ref.betas, atol=1e-6, rtol=0)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [1, 2, 4, 5, 10, 50])
def test_timesteps_match_diffusers(spacing, steps):
    ours, ref = DDIMScheduler(T, spacing), reference(spacing)
    ref.set_timesteps(steps)
    assert ours.timesteps(steps).tolist() == ref.timesteps.tolist()


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
@pytest.mark.parametrize("steps", [1, 2, 4, 5, 10, 50])
def test_ddim_steps_match_diffusers(spacing, steps):
    """Each step (float32, as the model runs) on the same inputs, then the whole loop in
    float64 (in float32 the 50-step trajectories drift apart by ~1e-5 from rounding)."""
    ours, ref = DDIMScheduler(T, spacing), reference(spacing)
    ref.set_timesteps(steps)
    g = torch.Generator().manual_seed(steps)
    x = torch.randn(3, 8, 22, 6, generator=g)
    for t, t_prev in ours.step_pairs(steps):
        out, out_ref = ours.step(dummy_x0(x, t), t, t_prev, x), ref.step(dummy_x0(x, t), t, x)
        torch.testing.assert_close(out.pred_original_sample, out_ref.pred_original_sample, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.prev_sample, out_ref.prev_sample, atol=1e-5, rtol=0)
        x = out.prev_sample
    # diffusers keeps its alpha table in float32; give it ours in float64 so that the
    # loop compares the step math, not float32 rounding of 1 - a_t near t = 0.
    ref.alphas_cumprod = ours.alphas_cumprod.clone()
    ref.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    x_ours = x_ref = torch.randn(3, 8, 22, 6, generator=g, dtype=torch.float64)
    for t, t_prev in ours.step_pairs(steps):
        out = ours.step(dummy_x0(x_ours, t), t, t_prev, x_ours)
        x_ours, x_ref = out.prev_sample, ref.step(dummy_x0(x_ref, t), t, x_ref).prev_sample
        torch.testing.assert_close(x_ours, x_ref, atol=1e-9, rtol=0)
    # a_prev = 1 after the last step: the result is the last x0 prediction itself
    torch.testing.assert_close(x_ours, out.pred_original_sample, atol=1e-9, rtol=0)


# eta = 1 is left out: there diffusers computes sqrt(1 - a_prev - sigma^2) of a near-zero
# float32 difference (cancellation, errors ~1e-4); we compute it in float64.
@pytest.mark.parametrize("eta", [0.3, 0.6])
def test_stochastic_ddim_step_matches_diffusers_with_the_same_noise(eta):
    ours, ref = DDIMScheduler(T, "trailing"), reference("trailing")
    ref.set_timesteps(10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 22, 6, generator=g)
    for t, t_prev in ours.step_pairs(10):
        z = torch.randn(x.shape, generator=g)
        x0 = dummy_x0(x, t)
        a = ours.step(x0, t, t_prev, x, eta=eta, variance_noise=z).prev_sample
        b = ref.step(x0, t, x, eta=eta, variance_noise=z).prev_sample
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        if t_prev >= 0:  # (the last step has sigma = 0)
            assert not torch.allclose(a, ours.step(x0, t, t_prev, x).prev_sample)  # the noise is used
        x = a


def test_the_scheduler_holds_no_per_call_state():
    """Samplers with different step counts can share one scheduler: nothing is stored."""
    s = DDIMScheduler(T)
    before = dict(vars(s))
    assert s.step_pairs(4) == [(999, 749), (749, 499), (499, 249), (249, -1)]
    assert s.step_pairs(2) == [(999, 499), (499, -1)]
    x = torch.randn(2, 3)
    a = s.step(torch.tanh(x), 999, 749, x).prev_sample
    s.timesteps(7)
    assert torch.equal(a, s.step(torch.tanh(x), 999, 749, x).prev_sample)
    assert vars(s).keys() == before.keys() and s.timesteps(4).tolist() == [999, 749, 499, 249]


def test_add_noise_matches_diffusers():
    ours, ref = DDIMScheduler(T), reference("trailing")
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(6, 4, 22, 6, generator=g), torch.randn(6, 4, 22, 6, generator=g)
    t = torch.tensor([0, 1, 250, 500, 998, 999])
    torch.testing.assert_close(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), atol=1e-5, rtol=0)


def test_forward_process_endpoints():
    s = DDIMScheduler(T)
    x0, noise = torch.ones(2, 3), torch.full((2, 3), 5.0)
    near_clean = s.add_noise(x0, noise, torch.tensor([0, 0]))
    pure_noise = s.add_noise(x0, noise, torch.tensor([T - 1, T - 1]))
    assert (near_clean - x0).abs().max() < 0.1
    assert (pure_noise - noise).abs().max() < 1e-3


def test_trailing_spacing_starts_at_pure_noise_and_uses_the_visited_next_timestep():
    s = DDIMScheduler(T, "trailing")
    assert s.timesteps(4).tolist() == [999, 749, 499, 249]
    assert s.timesteps(3).tolist() == [999, 666, 332]
    assert s.step_pairs(3) == [(999, 666), (666, 332), (332, -1)]


def test_errors_are_clear():
    s = DDIMScheduler(T)
    x = torch.zeros(1, 2)
    for bad in (0, T + 1):
        with pytest.raises(ValueError, match="num_inference_steps"):
            s.timesteps(bad)
    for t, t_prev in ((999, 999), (500, 700), (T, 10), (5, -2)):
        with pytest.raises(ValueError, match="t_prev"):
            s.step(x, t, t_prev, x)
    with pytest.raises(ValueError, match="timestep_spacing"):
        DDIMScheduler(T, "uniform")
    with pytest.raises(ValueError, match="variance_noise"):
        s.step(x, 999, 749, x, eta=1.0)

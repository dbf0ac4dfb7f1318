"""MageModel: every preset builds, trains a step and samples (at tiny sizes, on CPU)."""

import pytest
import torch

from mage.core.rotations import matrix_to_rot6d, rot6d_to_matrix
from mage.model import PRESETS, MageConfig, MageModel
from mage.model.config import SCALE_ORDER

B, N = 2, 8



def tiny(name: str = "mage-paper", **overrides) -> MageConfig:
    """A preset at test size: width 32, window 8, one block per stage."""
    small = {"width": 32, "window": N, "heads": 4, "depth": dict.fromkeys(SCALE_ORDER, 1)}
    return MageConfig.preset(name).with_overrides(**{**small, **overrides})


def random_batch(seed: int = 0, batch: int = B):
    g = torch.Generator().manual_seed(seed)
    x0 = matrix_to_rot6d(rot6d_to_matrix(torch.randn(batch, N, 22, 6, generator=g)))
    return x0, torch.randn(batch, N, 54, generator=g)


def assert_valid_rot6d(x: torch.Tensor):
    """Sampled 6D is already the first two columns of a rotation matrix."""
    R = rot6d_to_matrix(x)
    eye = torch.eye(3).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, atol=1e-5, rtol=0)
    assert (torch.linalg.det(R) > 0).all()
    torch.testing.assert_close(matrix_to_rot6d(R), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_trains_a_step_and_samples(name):
    torch.manual_seed(0)
    cfg = tiny(name)
    model = MageModel(cfg)
    assert model.window == N and model.config == cfg
    x0, cond = random_batch()
    out = model.training_loss(x0, cond, generator=torch.Generator().manual_seed(0))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"]) and out["loss"].requires_grad
    assert set(cfg.scales) <= set(out) and "fk_position" in out
    # the total is the weighted sum of the reported terms
    total = sum(cfg.stage_loss_weights[s] * out[s] for s in cfg.scales) + cfg.fk_position_weight * out["fk_position"]
    torch.testing.assert_close(out["loss"].detach(), total)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    out["loss"].backward()
    # every parameter is wired in: a stage input that is built but never used shows here
    unused = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused, unused
    opt.step()
    sample = model.sample(cond, generator=torch.Generator().manual_seed(0))
    assert sample.shape == (B, N, 22, 6) and sample.dtype == cond.dtype
    assert_valid_rot6d(sample)


def test_parameter_counts_per_stage_add_up():
    for name in ("mage-paper", "ablation-sequential"):
        model = MageModel(tiny(name))
        counts = model.count_parameters()
        assert set(counts) - {"time_embed", "total"} == set(model.config.scales)
        assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
        assert counts["total"] == sum(p.numel() for p in model.parameters())


def test_full_size_presets_have_the_reported_parameter_counts():
    # Pinned so that an architecture change shows up in review (and in the model card).
    assert MageModel(MageConfig.preset("mage-small")).count_parameters()["total"] == 908_317
    assert MageModel(MageConfig.preset("mage-paper")).count_parameters()["total"] == 8_457_149


def test_fusion_variants_wire_different_inputs():
    counts = {f: MageModel(tiny(fusion=f)).count_parameters()["S2"] for f in ("c+f", "c+frec", "c+f+frec")}
    D, S1_state = 32, 6 * 9
    assert counts["c+f+frec"] - counts["c+f"] == S1_state * D + D + D * D  # rec_embed + its fuse slice
    assert counts["c+f+frec"] - counts["c+frec"] == D * D  # the F slice of the fuse layer
    first = MageModel(tiny(xt_input="first")).count_parameters()  # the default
    assert MageModel(tiny(xt_input="all")).count_parameters()["S2"] - first["S2"] == 22 * 6 * D  # x_t slice


def test_same_seed_same_sample_different_seed_different_sample():
    torch.manual_seed(0)
    for name in ("mage-paper", "ablation-sequential"):
        model = MageModel(tiny(name)).eval()
        _, cond = random_batch()
        def draw(seed, model=model, cond=cond):
            return model.sample(cond, generator=torch.Generator().manual_seed(seed))

        assert torch.equal(draw(3), draw(3))
        assert not torch.allclose(draw(3), draw(4), atol=1e-4)


def test_given_noise_equals_the_generator_draw_and_is_scaled():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    _, cond = random_batch()
    noise = torch.randn(B, N, 22, 6, generator=torch.Generator().manual_seed(5))
    a = model.sample(cond, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, model.sample(cond, noise=noise))
    # the initial sample is noise * init_noise_scale
    half = MageModel(model.config.with_overrides(init_noise_scale=0.5)).eval()
    half.load_state_dict(model.state_dict())
    torch.testing.assert_close(half.sample(cond, noise=2 * noise), a)


def test_sample_steps_and_eta():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    _, cond = random_batch()
    noise = torch.randn(B, N, 22, 6)
    calls = []
    model.net.register_forward_hook(lambda *a: calls.append(1))
    s4 = model.sample(cond, noise=noise)
    assert len(calls) == model.config.sampling_steps == 4
    s1 = model.sample(cond, steps=1, noise=noise)
    assert len(calls) == 5
    # one step = the x0 prediction at t = T - 1
    torch.testing.assert_close(s1, matrix_to_rot6d(rot6d_to_matrix(model.denoise(noise, 999, cond))))
    assert not torch.allclose(s4, s1, atol=1e-4)
    stochastic = MageModel(model.config.with_overrides(eta=1.0)).eval()
    stochastic.load_state_dict(model.state_dict())
    draw = lambda seed: stochastic.sample(cond, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(draw(0), draw(0))


def test_denoise_is_one_network_call_with_normalisation_inside():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    x_t, cond = random_batch()
    t = torch.tensor([10, 900])
    with torch.no_grad():
        ref = model.net(x_t, t, cond).x0  # identity normalisation by default
        torch.testing.assert_close(model.denoise(x_t, t, cond), ref)
        mean, std = torch.randn(54), torch.rand(54) + 0.5
        model.set_normalization(mean, std)
        torch.testing.assert_close(model.denoise(x_t, t, cond), model.net(x_t, t, (cond - mean) / std).x0)
        # an int timestep applies to the whole batch
        torch.testing.assert_close(model.denoise(x_t, 10, cond), model.denoise(x_t, torch.tensor([10, 10]), cond))
    assert torch.equal(model.state_dict()["cond_mean"], mean)


def test_set_normalization_validates():
    model = MageModel(tiny())
    with pytest.raises(ValueError, match=r"cond_mean: expected shape \(54,\)"):
        model.set_normalization(torch.zeros(53), torch.ones(54))
    with pytest.raises(ValueError, match="cond_std: every entry must be > 0"):
        model.set_normalization(torch.zeros(54), torch.zeros(54))
    with pytest.raises(ValueError, match="NaN"):
        model.set_normalization(torch.full((54,), float("nan")), torch.ones(54))


def test_wrong_shapes_raise_clear_errors():
    model = MageModel(tiny())
    x0, cond = random_batch()
    with pytest.raises(ValueError, match=r"cond: expected shape \(\.\.\., 8, 54\)"):
        model.sample(torch.zeros(1, 9, 54))
    with pytest.raises(ValueError, match="x0: expected shape"):
        model.training_loss(x0[:, :, :21], cond)
    with pytest.raises(ValueError, match="noise: expected shape"):
        model.sample(cond, noise=torch.zeros(B, N, 22, 9))
    with pytest.raises(ValueError, match="sequential"):
        MageModel(tiny("ablation-sequential")).denoise(x0, 0, cond)
    with pytest.raises(ValueError, match="expected a MageConfig"):
        MageModel({"width": 32})


def test_training_loss_is_seedable():
    torch.manual_seed(0)
    model = MageModel(tiny())
    x0, cond = random_batch()
    loss = lambda seed: model.training_loss(x0, cond, torch.Generator().manual_seed(seed))["loss"]
    assert torch.equal(loss(1), loss(1)) and not torch.equal(loss(1), loss(2))


def test_transformer_blocks_and_velocity_term_run():
    torch.manual_seed(0)
    model = MageModel(tiny(block="transformer", velocity_weight=1.0))
    x0, cond = random_batch()
    out = model.training_loss(x0, cond)
    assert "velocity" in out and torch.isfinite(out["loss"])
    assert_valid_rot6d(model.sample(cond))

"""MageModel and its pipelines: every preset builds, trains a step and samples (at tiny
sizes, on CPU); one noise specification (a seed or tensors) covers every stage."""

import warnings

import pytest
import torch

from mage.core.rotations import matrix_to_rot6d, rot6d_to_matrix
from mage.model import PRESETS, MageConfig, MageModel, MagePipeline
from mage.model.config import SCALE_ORDER
from mage.model.pipeline import GradualPipeline, SequentialPipeline

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
    pipeline = MagePipeline.from_model(model)
    assert model.window == N and model.config == cfg and pipeline.window == N
    assert isinstance(pipeline, GradualPipeline if cfg.mode == "gradual" else SequentialPipeline)
    x0, cond = random_batch()
    out = pipeline.training_loss({"x0": x0, "cond": cond}, generator=torch.Generator().manual_seed(0))
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
    sample = pipeline.sample(cond, noise=0)
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


@pytest.mark.parametrize("name", ["mage-paper", "ablation-sequential", "ablation-s3"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_same_seed_same_sample_whatever_the_global_random_state(name, eta):
    """The seed bug of the sequential design: its coarse stages (S1, S2) used to draw
    their noise from torch's global random state. Every stage's noise now comes from
    the seed, so the output is bit-identical whatever else has drawn numbers."""
    torch.manual_seed(0)
    pipeline = MagePipeline.from_model(MageModel(tiny(name, eta=eta)).eval())
    _, cond = random_batch()

    def draw(seed, global_seed):
        torch.manual_seed(global_seed)
        torch.randn(1000)
        return pipeline.sample(cond, noise=seed)

    assert torch.equal(draw(3, global_seed=0), draw(3, global_seed=99))
    assert not torch.allclose(draw(3, 0), draw(4, 0), atol=1e-4)


def test_given_tensors_cover_every_stage_of_the_sequential_design():
    torch.manual_seed(0)
    pipeline = MagePipeline.from_model(MageModel(tiny("ablation-sequential")).eval())
    _, cond = random_batch()
    noise = pipeline.draw_noise(7)  # {scale: (N, n, d)}: S3 first, then S1, S2
    assert {s: tuple(z.shape) for s, z in noise.items()} == {
        "S3": (N, 22, 6), "S1": (N, 6, 9), "S2": (N, 11, 9)}
    assert list(noise) == ["S3", "S1", "S2"]
    a = pipeline.sample(cond, noise=noise)
    torch.manual_seed(123)  # the global state plays no part
    assert torch.equal(a, pipeline.sample(cond, noise=noise))
    assert torch.equal(a, pipeline.sample(cond, noise=7))  # the seed means these tensors
    batched = {s: z.expand(B, *z.shape).clone() for s, z in noise.items()}
    assert torch.equal(a, pipeline.sample(cond, noise=batched))
    batched["S1"][0] += 1.0  # a coarse stage's noise reaches the output
    b = pipeline.sample(cond, noise=batched)
    assert not torch.allclose(a[0], b[0], atol=1e-4) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="pass a seed or a dict"):
        pipeline.sample(cond, noise=noise["S3"])
    with pytest.raises(ValueError, match=r"missing \['S2'\]"):
        pipeline.sample(cond, noise={"S3": noise["S3"], "S1": noise["S1"]})


def test_given_noise_equals_the_seed_draw_and_is_scaled():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    pipeline = MagePipeline.from_model(model)
    _, cond = random_batch()
    # a seed means torch.randn(N, 22, 6) of that seed, the same for every window
    noise = torch.randn(N, 22, 6, generator=torch.Generator().manual_seed(5))
    a = pipeline.sample(cond, noise=5)
    assert torch.equal(a, pipeline.sample(cond, noise=noise))
    assert torch.equal(a, pipeline.sample(cond, noise=noise.expand(B, N, 22, 6)))
    # the initial sample is noise * init_noise_scale
    half = MageModel(model.config.with_overrides(init_noise_scale=0.5)).eval()
    half.load_state_dict(model.state_dict())
    torch.testing.assert_close(MagePipeline.from_model(half).sample(cond, noise=2 * noise), a)


def test_sample_steps_and_eta():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    pipeline = MagePipeline.from_model(model)
    _, cond = random_batch()
    noise = torch.randn(B, N, 22, 6)
    calls = []
    model.net.register_forward_hook(lambda *a: calls.append(1))
    s4 = pipeline.sample(cond, noise=noise)
    assert len(calls) == model.config.sampling_steps == 4
    s1 = pipeline.sample(cond, steps=1, noise=noise)
    assert len(calls) == 5
    # one step = the x0 prediction at t = T - 1
    torch.testing.assert_close(s1, matrix_to_rot6d(rot6d_to_matrix(model.denoise(noise, 999, cond))))
    assert not torch.allclose(s4, s1, atol=1e-4)
    stochastic = MageModel(model.config.with_overrides(eta=1.0)).eval()
    stochastic.load_state_dict(model.state_dict())
    draw = lambda seed: MagePipeline.from_model(stochastic).sample(cond, noise=seed)
    assert torch.equal(draw(0), draw(0)) and not torch.allclose(draw(0), draw(1), atol=1e-4)
    with pytest.raises(ValueError, match="eta > 0 draws fresh noise"):
        MagePipeline.from_model(stochastic).sample(cond, noise=noise)


def test_sequential_denoise_calls_one_stage():
    torch.manual_seed(0)
    model = MageModel(tiny("ablation-sequential")).eval()
    _, cond = random_batch()
    x = torch.randn(B, N, 11, 9)
    prev = torch.randn(B, N, 6, 9)
    with torch.no_grad():
        out = model.denoise(x, 5, cond, "S2", prev)
        ref = model.net.stages["S2"](x, torch.full((B,), 5), model.normalize_condition(cond), prev)
    assert torch.equal(out, ref)
    with pytest.raises(ValueError, match="x_t: expected shape"):
        model.denoise(x, 5, cond, "S1")
    with pytest.raises(ValueError, match="not one of"):
        model.denoise(x, 5, cond, "S0")


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
    pipeline = MagePipeline.from_model(model)
    x0, cond = random_batch()
    with pytest.raises(ValueError, match=r"cond: expected \(B, 8, 54\)"):
        pipeline.sample(torch.zeros(1, 9, 54))
    with pytest.raises(ValueError, match="x0: expected shape"):
        pipeline.training_loss({"x0": x0[:, :, :21], "cond": cond})
    with pytest.raises(ValueError, match=r"noise\['S3'\]: expected shape"):
        pipeline.sample(cond, noise=torch.zeros(B, N, 22, 9))
    with pytest.raises(ValueError, match="expected a seed"):
        pipeline.sample(cond, noise=1.5)
    with pytest.raises(ValueError, match="22-joint state only"):
        model.denoise(x0, 0, cond, "S1")
    with pytest.raises(ValueError, match="expected a MageConfig"):
        MageModel({"width": 32})


def test_training_loss_is_seedable():
    torch.manual_seed(0)
    pipeline = MagePipeline.from_model(MageModel(tiny()))
    x0, cond = random_batch()
    batch = {"x0": x0, "cond": cond}
    loss = lambda seed: pipeline.training_loss(batch, torch.Generator().manual_seed(seed))["loss"]
    assert torch.equal(loss(1), loss(1)) and not torch.equal(loss(1), loss(2))


def test_transformer_blocks_and_velocity_term_run():
    torch.manual_seed(0)
    pipeline = MagePipeline.from_model(MageModel(tiny(block="transformer", velocity_weight=1.0)))
    x0, cond = random_batch()
    out = pipeline.training_loss({"x0": x0, "cond": cond})
    assert "velocity" in out and torch.isfinite(out["loss"])
    assert_valid_rot6d(pipeline.sample(cond))


def test_bf16_precision_is_an_option_close_to_fp32():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    _, cond = random_batch()
    fp32 = MagePipeline.from_model(model).sample(cond, 0)
    bf16 = MagePipeline.from_model(model, precision="bf16").sample(cond, 0)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().max() < 0.1
    assert_valid_rot6d(bf16)
    with pytest.raises(ValueError, match="precision: expected one of fp32, bf16, int8"):
        MagePipeline.from_model(model, precision="int4")


def test_int8_precision_quantises_a_copy_of_the_feature_mlps():
    torch.manual_seed(0)
    model = MageModel(tiny()).eval()
    _, cond = random_batch()
    pipeline = MagePipeline.from_model(model, precision="int8")
    assert pipeline.model is not model and isinstance(model.net.stages["S3"].blocks[0].ff.fc1, torch.nn.Linear)
    quantised = [n for n, m in pipeline.model.named_modules() if "quantized" in type(m).__module__]
    assert quantised and all(".ff.fc" in n for n in quantised)
    out = pipeline.sample(cond, 0)
    assert (out - MagePipeline.from_model(model).sample(cond, 0)).abs().max() < 0.1
    assert_valid_rot6d(out)


class _OpNames(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the name of every op dispatched inside the block."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def test_cpu_inference_runs_on_onednn_and_matches_the_default_kernel():
    from mage.model.onednn import onednn_linear

    torch.manual_seed(0)
    model = MageModel(tiny(width=64)).eval()
    _, cond = random_batch()
    pipeline = MagePipeline.from_model(model)
    with _OpNames() as ops:
        fast = pipeline.sample(cond, 0)
    assert "mkldnn._linear_pointwise" in ops.names and "aten.addmm" not in ops.names
    with onednn_linear(False), _OpNames() as ops:
        default = pipeline.sample(cond, 0)
    assert "mkldnn._linear_pointwise" not in ops.names
    torch.testing.assert_close(fast, default, atol=1e-4, rtol=0)  # same float32 math, other order
    # autocast (bf16) keeps torch's default kernel
    with _OpNames() as ops:
        MagePipeline.from_model(model, precision="bf16").sample(cond, 0)
    assert "mkldnn._linear_pointwise" not in ops.names


def test_training_gradients_on_onednn_match_the_default_kernel():
    from mage.model.onednn import onednn_linear

    torch.manual_seed(0)
    model = MageModel(tiny(width=64, velocity_weight=1.0))
    pipeline = MagePipeline.from_model(model)
    x0, cond = random_batch()

    def gradients():
        model.zero_grad()
        loss = pipeline.training_loss({"x0": x0, "cond": cond}, torch.Generator().manual_seed(3))["loss"]
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    with _OpNames() as ops:
        loss_fast, fast = gradients()
    assert "mkldnn._linear_pointwise" in ops.names and "aten.addmm" not in ops.names
    with onednn_linear(False):
        loss_default, default = gradients()
    torch.testing.assert_close(loss_fast, loss_default, rtol=1e-5, atol=1e-6)
    assert fast.keys() == default.keys() and len(fast) == len(list(model.parameters()))
    for name, g in default.items():
        torch.testing.assert_close(fast[name], g, rtol=1e-3, atol=1e-5 * float(g.abs().max()) + 1e-7,
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_onednn_switch_is_per_thread_and_odd_inputs_take_the_default_path():
    import threading

    from mage.model.onednn import Linear, onednn_linear

    lin = Linear(8, 4)
    x = torch.randn(3, 5, 8)
    seen = {}

    def other_thread():
        with torch.no_grad(), _OpNames() as ops:
            lin(x)
        seen["ops"] = ops.names

    with onednn_linear(False):  # this thread only
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert "mkldnn._linear_pointwise" in seen["ops"]
    # empty batches, torch.func transforms and TorchScript take F.linear and agree with it
    empty = torch.randn(0, 8, requires_grad=True)
    lin(empty).sum().backward()
    assert empty.grad.shape == (0, 8)
    grad = torch.func.grad(lambda v: lin(v).sum())(x)
    torch.testing.assert_close(grad, lin.weight.sum(0).expand_as(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script announces its deprecation
        scripted = torch.jit.script(lin)
    torch.testing.assert_close(scripted(x), torch.nn.functional.linear(x, lin.weight, lin.bias))


def test_int8_conversion_leaves_the_global_random_state_alone():
    model = MageModel(tiny()).eval()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MagePipeline.from_model(model, precision="int8")
    assert torch.equal(torch.rand(3), expected)

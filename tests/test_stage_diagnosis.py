"""benchmarks/experiments/stage_diagnosis.py and per_joint.py: the probe finds each
window's ground truth, substitutes exactly it, scores stage states correctly and leaves
the prediction alone when it only watches; the seam rows are the blended ones."""

import importlib.util
from types import SimpleNamespace

import pytest
import torch
from benchmark_helpers import ROOT, benchmarks_common

from mage.core.kinematics import forward_kinematics
from mage.core.multiscale import pool_nodes
from mage.core.rotations import rot6d_to_matrix
from mage.core.skeleton import Skeleton
from mage.inference.sequence import blend_weights, predict_sequence, window_starts
from mage.model.config import MageConfig
from mage.model.mage_model import MageModel


def load(name):
    benchmarks_common()
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def diag():
    return load("stage_diagnosis")


def small_model(**over):
    torch.manual_seed(0)
    return MageModel(MageConfig(window=16, width=32, depth={"S1": 1, "S2": 1, "S3": 1}, **over)).eval()


def clip(T, seed=1):
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(condition=torch.randn(T, 54, generator=g),
                           rot6d=torch.randn(T, 22, 6, generator=g).clamp(-1, 1) + torch.tensor([1., 0, 0, 0, 1, 0]))


def pooled(x0_window, scale, cfg):
    """The ground truth of one window at ``scale``, computed here from FK and pooling."""
    fk = forward_kinematics(rot6d_to_matrix(x0_window), None, Skeleton.smpl22())
    return pool_nodes(fk.global_rotations, fk.positions, scale, cfg.hierarchy())


def test_watching_leaves_the_prediction_unchanged(diag):
    model, rec = small_model(), clip(40)
    plain = predict_sequence(model, rec.condition, "offline", seed=0)
    probe = diag.StageProbe(model, fps=60.0)
    probe.set_clip(rec)
    watched = predict_sequence(model, rec.condition, "offline", seed=0)
    probe.close()
    assert torch.equal(plain, watched)
    assert probe.errors["S1"]["windows"] == len(window_starts(40, 16, 4))  # last DDIM step only


@pytest.mark.parametrize("T", [40, 11])  # overlapping windows; one front-padded window
def test_oracle_hands_the_next_stage_each_windows_own_ground_truth(diag, T):
    model, rec = small_model(), clip(T)
    seen = []
    probe = diag.StageProbe(model, fps=60.0, oracle=("S1",))
    # registered after the probe's hook, so it sees what the S2 stage really receives
    model.net.stages["S2"].register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["prev_state"].clone()), with_kwargs=True)
    probe.set_clip(rec)
    oracle_pred = predict_sequence(model, rec.condition, "offline", seed=0)
    probe.close()
    x0 = rec.rot6d.float()
    if T <= 16:
        x0 = torch.cat([x0[:1].expand(16 - T, -1, -1), x0])
    starts = window_starts(x0.shape[0], 16, 4)
    want = torch.stack([pooled(x0[s:s + 16], "S1", model.config) for s in starts])
    assert len(seen) == model.config.sampling_steps  # one batch, one call per DDIM step
    for got in seen:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert not torch.allclose(oracle_pred, predict_sequence(model, rec.condition, "offline", seed=0))


def test_oracle_refuses_a_stage_whose_state_is_not_read(diag):
    with pytest.raises(ValueError, match="F_rec"):
        diag.StageProbe(small_model(fusion="c+f"), fps=60.0, oracle=("S1",))


def probe_with_stage_output(diag, scale, make_state):
    """A probe over a small model whose stage ``scale`` outputs ``make_state(probe)``
    instead of its own state, after predicting one 40-row clip. The replacing hook is
    registered before the probe's scoring hook (forward hooks run in registration order)."""
    model, rec = small_model(), clip(40)
    probes = []
    model.net.stages[scale].register_forward_hook(
        lambda module, args, output: (output[0], make_state(probes[0]).to(output[1])))
    probes.append(diag.StageProbe(model, fps=60.0))
    probes[0].set_clip(rec)
    predict_sequence(model, rec.condition, "offline", seed=0)
    return probes[0]


def test_state_errors_of_a_known_offset(diag):
    """An S1 state equal to the ground truth but 1 cm off along x, in every frame: position
    error 1 cm, rotation and velocity error 0."""
    def exact_plus_1cm(probe):
        state = probe.targets["S1"][probe._batch].clone()
        state[..., 6] += 0.01
        return state

    probe = probe_with_stage_output(diag, "S1", exact_plus_1cm)
    s1 = probe.summary()["S1"]
    assert s1["position_cm"] == pytest.approx(1.0, abs=1e-4)
    assert s1["rotation_deg"] == pytest.approx(0.0, abs=0.05)  # float32 Gram-Schmidt round trip
    assert s1["velocity_cm_s"] == pytest.approx(0.0, abs=1e-3)
    assert probe.summary()["S2"]["position_cm"] > 1.0  # an untrained S2 is far off


def test_a_window_not_of_the_clip_is_refused(diag):
    model = small_model()
    probe = diag.StageProbe(model, fps=60.0)
    probe.set_clip(clip(40, seed=1))
    with pytest.raises(RuntimeError, match="not one of the clip's"):
        predict_sequence(model, clip(40, seed=2).condition, "offline", seed=0)


@pytest.mark.parametrize("T", [200, 97])
def test_seam_rows_are_the_rows_two_windows_share(T):
    seam_rows = load("per_joint").seam_rows
    blend, inside = seam_rows(T, 48)
    starts = window_starts(T, 48, 12)
    weights = blend_weights(starts, 48, 12)
    covering = torch.zeros(T)
    for s, w in zip(starts, weights):
        covering[s:s + 48] += (w > 0).double()
    regular = torch.arange(T) < starts[-2] + 12
    assert torch.equal(blend, regular & (covering >= 2))
    assert torch.equal(inside, regular & (covering == 1))


def test_final_output_pooled_to_the_previous_scale_is_scored(diag):
    """A final stage that outputs the true pose has no error at the S2 nodes."""
    probe = probe_with_stage_output(diag, "S3", lambda probe: probe.x0_windows[probe._batch])
    final = probe.summary()["S3@S2"]
    assert final["position_cm"] == pytest.approx(0.0, abs=1e-4)
    assert final["velocity_cm_s"] == pytest.approx(0.0, abs=1e-3)
    assert final["rotation_deg"] == pytest.approx(0.0, abs=0.05)
    assert probe.summary()["S2"]["position_cm"] > 1.0

"""research/diagnosis/stage_diagnosis.py and per_joint.py: the probe finds each
window's ground truth, substitutes exactly it, scores stage states correctly and leaves
the prediction alone when it only watches; the seam rows are the blended ones."""

from types import SimpleNamespace

import pytest
import torch

from mage.core.kinematics import forward_kinematics
from mage.core.multiscale import pool_nodes
from mage.core.rotations import rot6d_to_matrix
from mage.core.skeleton import Skeleton
from mage.inference.options import SamplingOptions
from mage.inference.sequence import blend_weights, predict_sequence, window_starts
from mage.model.config import MageConfig
from mage.model.mage_model import MageModel
from research.diagnosis import per_joint, stage_diagnosis


@pytest.fixture(scope="module")
def diag():
    return stage_diagnosis


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
    plain = predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    probe = diag.StageProbe(model, fps=60.0)
    probe.set_clip(rec)
    watched = predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    probe.close()
    assert torch.equal(plain, watched)
    assert probe.errors["S1"]["windows"] == len(window_starts(40, 16, 4))  # last DDIM step only


@pytest.mark.parametrize("T", [40, 45, 11])  # regular stride; an end-aligned last window; one padded window
def test_oracle_hands_the_next_stage_each_windows_own_ground_truth(diag, T):
    model, rec = small_model(), clip(T)
    seen = []
    probe = diag.StageProbe(model, fps=60.0, oracle=("S1",))
    # registered after the probe's hook, so it sees what the S2 stage really receives
    model.net.stages["S2"].register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw["prev_state"].clone()), with_kwargs=True)
    probe.set_clip(rec)
    oracle_pred = predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    probe.close()
    x0 = rec.rot6d.float()
    if T <= 16:
        x0 = torch.cat([x0[:1].expand(16 - T, -1, -1), x0])
    starts = window_starts(x0.shape[0], 16, 4)
    want = torch.stack([pooled(x0[s:s + 16], "S1", model.config) for s in starts])
    assert len(seen) == model.config.sampling_steps  # one batch, one call per DDIM step
    for got in seen:
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert not torch.allclose(oracle_pred, predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0)))


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
    predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    return probes[0]


def offset_state(target, rows_from=0):
    """``target`` (B, N, n, 9) with each node turned 10 degrees about z (world frame) and
    moved 1 mm along x per row after ``rows_from``: position error 0.1 cm x its row,
    velocity error 0.1 cm x 60 fps = 6 cm/s, rotation error 10 degrees."""
    from scipy.spatial.transform import Rotation

    from mage.core.rotations import matrix_to_rot6d

    turn = torch.as_tensor(Rotation.from_euler("z", 10, degrees=True).as_matrix(), dtype=target.dtype)
    state = target.clone()
    state[..., :6] = matrix_to_rot6d(turn @ rot6d_to_matrix(target[..., :6]))
    steps = (torch.arange(target.shape[1], dtype=target.dtype) - rows_from).clamp(min=0)
    state[..., 6] += 0.001 * steps[None, :, None]
    return state


def test_state_errors_of_a_known_offset(diag):
    probe = probe_with_stage_output(diag, "S1", lambda probe: offset_state(probe.targets["S1"][probe._batch]))
    s1 = probe.summary()["S1"]
    assert s1["position_cm"] == pytest.approx(0.1 * 7.5, abs=1e-3)  # mean of rows 0..15
    assert s1["velocity_cm_s"] == pytest.approx(6.0, abs=1e-3)
    assert s1["rotation_deg"] == pytest.approx(10.0, abs=0.05)
    assert s1["windows"] == len(window_starts(40, 16, 4))
    assert probe.summary()["S2"]["position_cm"] > 1.0  # an untrained S2 is far off


def test_a_short_clips_padding_is_not_scored(diag):
    """A 10-row clip is one window with 6 padded rows in front: only rows 6..15 count, and
    an offset that starts after the padding is measured in full."""
    model, rec = small_model(), clip(10)
    probes = []
    model.net.stages["S1"].register_forward_hook(
        lambda m, a, out: (out[0], offset_state(probes[0].targets["S1"][probes[0]._batch], rows_from=6)))
    probes.append(diag.StageProbe(model, fps=60.0))
    probes[0].set_clip(rec)
    predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    s1 = probes[0].summary()["S1"]
    assert s1["position_cm"] == pytest.approx(0.1 * 4.5, abs=1e-3)  # mean of 0..9 mm
    assert s1["velocity_cm_s"] == pytest.approx(6.0, abs=1e-3)


def test_a_stage_never_scored_is_an_error(diag):
    model, rec = small_model(), clip(40)
    probe = diag.StageProbe(model, fps=60.0, last_t=3)  # no DDIM step of the config is at t = 3
    probe.set_clip(rec)
    predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
    with pytest.raises(RuntimeError, match="never scored"):
        probe.summary()


def test_a_window_not_of_the_clip_is_refused(diag):
    model = small_model()
    probe = diag.StageProbe(model, fps=60.0)
    probe.set_clip(clip(40, seed=1))
    with pytest.raises(RuntimeError, match="not one of the clip's"):
        predict_sequence(model, clip(40, seed=2).condition, SamplingOptions("offline", seed=0))


@pytest.mark.parametrize("T", [200, 97, 40])
def test_blending_jerk_falls_on_seam_rows_only(T):
    """Windows that each predict a different constant: every jerk of the blended offline
    output comes from blending, so it must all fall on the seam rows."""
    seam, inside = per_joint.seam_jerk_rows(T, 48)
    assert seam.shape == inside.shape == (T - 3,) and not (seam & inside).any()
    if T <= 48:  # one window, nothing blended
        assert inside.all()
        return
    starts = window_starts(T, 48, 12)
    weights = blend_weights(starts, 48, 12)
    out = torch.zeros(T, dtype=torch.float64)
    for k, (s, w) in enumerate(zip(starts, weights)):
        out[s:s + 48] += w * float(k + 1) ** 2  # window k predicts (k + 1)^2
    jerk = out.diff(n=3).abs()
    assert jerk[inside].max() < 1e-12
    assert jerk[seam].sum() > 1.0


def test_final_output_pooled_to_the_previous_scale_is_scored(diag):
    """A final stage that outputs the true pose has no error at the S2 nodes."""
    probe = probe_with_stage_output(diag, "S3", lambda probe: probe.x0_windows[probe._batch])
    final = probe.summary()["S3@S2"]
    assert final["windows"] == len(window_starts(40, 16, 4))
    assert final["position_cm"] == pytest.approx(0.0, abs=1e-4)
    assert final["velocity_cm_s"] == pytest.approx(0.0, abs=1e-3)
    assert final["rotation_deg"] == pytest.approx(0.0, abs=0.05)
    assert probe.summary()["S2"]["position_cm"] > 1.0

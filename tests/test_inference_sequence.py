import math

import pytest
import torch
from inference_helpers import FrameLocalModel, WindowAngleModel, smooth_motion, tiny_model

from mage.core import Tracking
from mage.core import rotations as rot
from mage.core.kinematics import place_by_head
from mage.core.rotations import normalize_rot6d
from mage.core.skeleton import Skeleton
from mage.inference.options import SamplingOptions
from mage.inference.seams import jerk_profile, offline_boundaries, seam_jitter
from mage.inference.sequence import blend_weights, predict_motion, predict_sequence, window_starts
from mage.model import MagePipeline


def _cond(T, seed=0):
    return Tracking.from_motion(smooth_motion(T + 1, seed=seed)).condition()


@pytest.mark.parametrize("mode", ["offline", "online"])
@pytest.mark.parametrize("T", [3, 8, 9, 27, 50])
def test_windowing_reproduces_a_frame_local_model_exactly(mode, T):
    # Whatever the windows, a model that maps each frame on its own must give exactly
    # that map: checks padding, end alignment, blending weights summing to 1, batching.
    model = FrameLocalModel(window=8)
    cond = _cond(T)
    out = predict_sequence(model, cond, SamplingOptions(mode, batch_size=3))
    expect = cond[:, None, 0:6].expand(T, 22, 6)
    assert out.shape == (T, 22, 6)
    assert torch.allclose(out, expect, atol=1e-6)


def test_batches_and_window_count():
    model = FrameLocalModel(window=8)
    predict_sequence(model, _cond(27), SamplingOptions("offline", overlap=2, batch_size=2))
    # windows start every 6 rows: 0, 6, 12, 18 and the last aligned at 19 -> 5 windows
    assert window_starts(27, 8, 2) == [0, 6, 12, 18, 19]
    assert [s[0] for s in model.calls] == [2, 2, 1]
    model.calls.clear()
    predict_sequence(model, _cond(27), SamplingOptions("online", batch_size=10))
    assert [s[0] for s in model.calls] == [10, 10, 7]


def test_blend_weights_hand_computed_and_sum_to_one():
    # N = 4, overlap 2, T = 7: windows at 0, 2 and (end-aligned) 3.
    w = blend_weights([0, 2, 3], 4, 2)
    third = 1 / 3
    expect = torch.tensor([
        [1, 1, 2 * third, third],            # rows 0-3: fades out over rows 2, 3
        [third, 2 * third, 2 * third, third],  # rows 2-5: in over 2, 3; out over 4, 5
        [0, third, 2 * third, 1],            # rows 3-6: in over 4, 5 (where window 1 fades out)
    ], dtype=torch.float64)
    assert torch.allclose(w, expect)
    for T, N, ov in [(7, 4, 2), (100, 16, 4), (101, 16, 8), (33, 16, 0), (40, 40, 10), (1000, 120, 30)]:
        starts = window_starts(T, N, ov)
        w = blend_weights(starts, N, ov)
        total = torch.zeros(T, dtype=torch.float64)
        for s, ws in zip(starts, w):
            total[s:s + N] += ws
        assert torch.allclose(total, torch.ones(T, dtype=torch.float64)), (T, N, ov)


def test_blend_is_the_weighted_6d_average_then_gram_schmidt():
    model = WindowAngleModel(window=4)
    cond = torch.zeros(7, 54)
    cond[:, 36] = torch.arange(7.0) * 0.1  # window angle = mean of its rows' values
    cond[:, 0:6] = torch.tensor([1.0, 0, 0, 0, 1, 0])
    out = predict_sequence(model, cond, SamplingOptions("offline", overlap=2))
    a = [0.1 * (s + 1.5) for s in (0, 2, 3)]  # window means of 0.1 * row
    # row 2: windows 0 and 1 with weights 2/3 and 1/3; the blended first column is
    # (w0 cos a0 + w1 cos a1, w0 sin a0 + w1 sin a1, 0) -> angle atan2 of it.
    w0, w1 = 2 / 3, 1 / 3
    angle = math.atan2(w0 * math.sin(a[0]) + w1 * math.sin(a[1]), w0 * math.cos(a[0]) + w1 * math.cos(a[1]))
    expect = rot.matrix_to_rot6d(rot.rotation_about_axis(angle, "z"))
    assert torch.allclose(out[2, 5], expect, atol=1e-6)
    assert torch.allclose(out[6, 0], rot.matrix_to_rot6d(rot.rotation_about_axis(a[2], "z")), atol=1e-6)
    assert torch.allclose(out[0, 0], rot.matrix_to_rot6d(rot.rotation_about_axis(a[0], "z")), atol=1e-6)


def test_cross_fade_removes_seam_jitter():
    # Windows that disagree: a hard cut (overlap 0) jumps at every seam; the cross-fade
    # spreads the change over the overlap, so jitter next to seams drops by a large factor.
    N, T = 16, 160
    model = WindowAngleModel(window=N, gain=2.0)
    cond = _cond(T)
    heads = Tracking.from_motion(smooth_motion(T + 1)).positions[1:, 0]
    sk = Skeleton.smpl22()
    result = {}
    for overlap in (0, N // 4, N // 2):
        R = rot.rot6d_to_matrix(predict_sequence(model, cond, SamplingOptions("offline", overlap=overlap)))
        fk, _ = place_by_head(R, heads, sk)
        result[overlap] = seam_jitter(fk.positions, offline_boundaries(T, N, overlap), fps=60)
    assert result[0]["seam"] > 4 * result[N // 4]["seam"]
    assert result[N // 4]["seam"] > result[N // 2]["seam"]
    assert result[0]["ratio"] > 10  # without blending the seams are where the jitter is


@pytest.mark.parametrize("design", ["gradual", "sequential"])
def test_online_is_causal_and_matches_explicit_windows(design):
    model = tiny_model(window=8, design=design)
    pipeline = MagePipeline.from_model(model)
    cond = _cond(20)
    out = predict_sequence(model, cond, SamplingOptions("online", seed=3, batch_size=4, consistency=0.0))
    # Reference: window ending at t, front-padded with row 0, last frame, batch 1.
    windows = [pipeline.sample(cond[torch.tensor([max(0, t - 7 + k) for k in range(8)])][None],
                               noise=3)[0] for t in range(20)]
    for t in (0, 3, 7, 19):
        assert torch.allclose(out[t], windows[t][-1], atol=1e-5)
    # With the consistency rule: y[t] = s_t[-1] + lambda (y[t-1] - s_t[-2]), by hand.
    lam = 0.6
    carried = predict_sequence(model, cond, SamplingOptions("online", seed=3, batch_size=4, consistency=lam))
    y = windows[0][-1]
    for t in range(1, 20):
        y = windows[t][-1] + lam * (y - windows[t][-2])
        assert torch.allclose(carried[t], normalize_rot6d(y), atol=1e-5)
    assert not torch.allclose(carried, out, atol=1e-3)
    with pytest.raises(ValueError, match="consistency"):
        predict_sequence(model, cond, SamplingOptions("online", consistency=1.0))
    future = cond.clone()
    future[12:] += torch.randn_like(future[12:])
    # causal, carried too
    changed = predict_sequence(pipeline, future, SamplingOptions("online", seed=3, consistency=lam))
    assert torch.allclose(changed[:12], carried[:12], atol=1e-6)
    assert not torch.allclose(changed[12:], carried[12:], atol=1e-3)


@pytest.mark.parametrize("design", ["gradual", "sequential"])
def test_offline_short_sequence_and_determinism(design):
    model = tiny_model(window=8, design=design)
    cond = _cond(5)
    out = predict_sequence(model, cond, SamplingOptions("offline", seed=1))
    padded = torch.cat([cond[:1].expand(3, -1), cond])
    ref = MagePipeline.from_model(model).sample(padded[None], noise=1)[0, 3:]
    assert torch.allclose(out, ref, atol=1e-5)
    long = _cond(30)
    a = predict_sequence(model, long, SamplingOptions("offline", seed=1, batch_size=64))
    b = predict_sequence(model, long, SamplingOptions("offline", seed=1, batch_size=1))
    c = predict_sequence(model, long, SamplingOptions("offline", seed=2))
    # Batch size changes only the float32 summation order; the tiny sequential model
    # (random weights, 3 chained samplers) amplifies that to ~2e-5 on some CPUs.
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)
    assert model.training is False


@pytest.mark.parametrize("design", ["gradual", "sequential"])
@pytest.mark.parametrize("mode", ["offline", "online"])
def test_same_seed_same_output_whatever_the_global_random_state(design, mode):
    """The docstring's promise: deterministic for a given seed (every stage's noise,
    the sequential design's coarse stages included, comes from the seed)."""
    model = tiny_model(window=8, design=design)
    cond = _cond(20)
    outs = []
    for global_seed in (0, 1234):
        torch.manual_seed(global_seed)
        torch.randn(100)
        outs.append(predict_sequence(model, cond, SamplingOptions(mode, seed=5, batch_size=7)))
    assert torch.equal(outs[0], outs[1])


def test_predict_motion_frame0_and_head_placement():
    model = tiny_model(window=8)
    tracking = Tracking.from_motion(smooth_motion(25))
    motion = predict_motion(model, tracking, SamplingOptions("offline"))
    assert motion.num_frames == 25 and motion.fps == 60
    assert torch.equal(motion.rotations[0], motion.rotations[1])  # frame 0 repeats frame 1
    assert torch.allclose(motion.joint_positions()[:, 15], tracking.positions[:, 0], atol=1e-5)
    with pytest.raises(ValueError, match="30 fps, the model expects 60"):
        predict_motion(model, tracking[::2])


def test_jerk_profile_hand_computed():
    t = torch.arange(10, dtype=torch.float64)
    p = torch.zeros(10, 2, 3, dtype=torch.float64)
    p[:, 0, 0] = t**3  # third difference of t^3 is 6
    prof = jerk_profile(p, fps=2.0)
    assert torch.allclose(prof, torch.full((7,), 6.0 * 8 / 2, dtype=torch.float64))  # mean of 2 joints
    s = seam_jitter(p, [5], fps=2.0)
    assert s["seam"] == pytest.approx(24.0) and s["ratio"] == pytest.approx(1.0)
    assert offline_boundaries(27, 8, 2) == [6, 8, 12, 14, 18, 19, 20, 26]


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "batch"}, "mode: expected one of offline, online, got 'batch'"),
    ({"steps": 0}, "steps: expected a positive number of DDIM steps, got 0"),
    ({"steps": 2.5}, "steps: expected a positive number of DDIM steps"),
    ({"seed": "1"}, "seed: expected an integer"),
    ({"overlap": -1}, "overlap: must be >= 0"),
    ({"batch_size": 0}, "batch_size: must be >= 1, got 0"),
    ({"consistency": 1.0}, r"consistency: expected a lambda in \[0, 1\), got 1"),
    ({"consistency": float("nan")}, "consistency: expected a lambda"),
    ({"precision": "fp16"}, "precision: expected one of fp32, bf16, int8"),
])
def test_sampling_options_are_checked_once_on_construction(fields, message):
    with pytest.raises(ValueError, match=message) as err:
        SamplingOptions(**fields)
    assert "\n" not in str(err.value)


def test_sampling_options_replace_the_loose_arguments():
    """The defaults are the old keyword defaults; a loose argument where the options go is
    a TypeError that shows the new form, not an AttributeError deep inside."""
    assert SamplingOptions() == SamplingOptions("offline", None, 0, None, 32, 0.0, "fp32")
    assert SamplingOptions(steps=3).steps == 3 and SamplingOptions(consistency=0).consistency == 0.0
    with pytest.raises(TypeError, match=r"options: expected a SamplingOptions, got str \(e\.g\. SamplingOptions"):
        predict_sequence(FrameLocalModel(window=8), _cond(10), "online")


def test_argument_errors():
    model = FrameLocalModel(window=8)
    cond = _cond(10)
    with pytest.raises(ValueError, match=r"overlap: must be in \[0, 4\]"):
        predict_sequence(model, cond, SamplingOptions(overlap=5))
    with pytest.raises(ValueError, match="cond: expected shape"):
        predict_sequence(model, cond[:, :50])
    bad = cond.clone()
    bad[3, 7] = float("nan")
    with pytest.raises(ValueError, match="cond: contains 1 NaN"):
        predict_sequence(model, bad)


def test_bf16_precision_option():
    """precision="bf16" (an approximation, off by default) samples a torch model under
    bfloat16 autocast; other samplers keep their own precision."""
    model = tiny_model(window=8)
    cond = _cond(20)
    fp32 = predict_sequence(model, cond)
    bf16 = predict_sequence(model, cond, SamplingOptions(precision="bf16"))
    assert bf16.shape == fp32.shape and bf16.dtype == torch.float32
    assert 0 < (bf16 - fp32).abs().max() < 0.1
    assert torch.equal(predict_sequence(MagePipeline.from_model(model, "bf16"), cond), bf16)
    with pytest.raises(ValueError, match="precision: expected one of"):
        predict_sequence(model, cond, SamplingOptions(precision="fp16"))
    with pytest.raises(ValueError, match="applies to a torch MageModel"):
        predict_sequence(FrameLocalModel(window=8), cond, SamplingOptions(precision="bf16"))


def test_model_predict_fn_is_predict_sequence_as_rotation_matrices():
    from mage.inference.sequence import model_predict_fn

    model = tiny_model(window=8)
    cond = _cond(20)
    head = torch.zeros(20, 3)
    for mode, kwargs in (("offline", {}), ("online", {"consistency": 0.6})):
        R = model_predict_fn(model, SamplingOptions(mode, seed=3, **kwargs))(cond, head)
        d6 = predict_sequence(model, cond, SamplingOptions(mode, seed=3, **kwargs))
        assert R.dtype == torch.float64 and R.shape == (20, 22, 3, 3)
        torch.testing.assert_close(R, rot.rot6d_to_matrix(d6.double()))
    online = model_predict_fn(model, SamplingOptions("online", seed=3, consistency=0.0))(cond, head)
    carried = model_predict_fn(model, SamplingOptions("online", seed=3, consistency=0.6))(cond, head)
    assert not torch.allclose(online, carried)
    with pytest.raises(TypeError, match="options: expected a SamplingOptions"):
        model_predict_fn(model, "offline")

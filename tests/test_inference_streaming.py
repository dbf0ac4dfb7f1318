import json

import numpy as np
import pytest
import torch
from inference_helpers import smooth_motion, tiny_model

from mage.core import Tracking
from mage.core import rotations as rot
from mage.inference.device import DeviceConfig
from mage.inference.options import SamplingOptions
from mage.inference.sequence import predict_sequence
from mage.inference.streaming import Streamer
from mage.inference.tracking_log import TrackingFrame
from mage.model import MagePipeline


@pytest.fixture(scope="module")
def model():
    return tiny_model(window=8)


def _frames(tracking, convention="zup"):
    P, Q = DeviceConfig(convention).to_devices(tracking.rotations, tracking.positions)
    return [TrackingFrame(P[i].numpy(), Q[i].numpy(), i / 60) for i in range(tracking.num_frames)]


def _rotations(poses):
    return rot.quaternion_to_matrix(torch.stack([torch.as_tensor(p.rotations) for p in poses]))


@pytest.mark.parametrize("design", ["gradual", "sequential"])
def test_stream_equals_online_prediction(design):
    model = tiny_model(window=8, design=design)
    tracking = Tracking.from_motion(smooth_motion(20))
    s = Streamer(model, options=SamplingOptions(seed=2))
    poses = [s.push(f) for f in _frames(tracking)]
    ref = rot.rot6d_to_matrix(predict_sequence(model, tracking.condition(), SamplingOptions("online", seed=2)).double())
    assert torch.allclose(_rotations(poses)[1:], ref, atol=1e-5)
    assert [p.index for p in poses] == list(range(20))
    assert [p.padded for p in poses] == [True] * 8 + [False] * 12  # 8 condition rows fill the window
    # world placement: the head joint is on the tracked head
    head = np.stack([p.positions[15] for p in poses])
    assert np.allclose(head, tracking.positions[:, 0].numpy(), atol=1e-5)
    assert s.latency_frames == 0 and s._buffer.shape == (8, 54)  # constant memory


def test_frame0_uses_zero_velocity_window(model):
    tracking = Tracking.from_motion(smooth_motion(3))
    pose = Streamer(model).push(_frames(tracking)[0])
    row = Tracking(tracking.rotations[[0, 0]], tracking.positions[[0, 0]], 60).condition()  # zero velocity
    ref = MagePipeline.from_model(model).sample(row.expand(8, 54)[None], noise=0)[0, -1]
    assert torch.allclose(_rotations([pose])[0], rot.rot6d_to_matrix(ref.double()), atol=1e-5)


def test_tracking_loss_holds_last_pose_and_flags_it(model):
    tracking = Tracking.from_motion(smooth_motion(12))
    frames = _frames(tracking)
    lost = [TrackingFrame(f.positions.copy(), f.quaternions.copy(), f.timestamp) for f in frames]
    for i in (5, 6):
        lost[i].positions[1] = np.nan  # left hand lost (NaN)
    lost[9] = TrackingFrame.from_dict({**frames[9].to_dict(), "right": None})  # right hand lost (null)
    held = [TrackingFrame(f.positions.copy(), f.quaternions.copy(), f.timestamp) for f in frames]
    for i in (5, 6):
        held[i].positions[1], held[i].quaternions[1] = frames[4].positions[1], frames[4].quaternions[1]
    held[9].positions[2], held[9].quaternions[2] = frames[8].positions[2], frames[8].quaternions[2]
    a, b = Streamer(model), Streamer(model)
    pa = [a.push(f) for f in lost]
    pb = [b.push(f) for f in held]
    assert np.allclose(np.stack([p.rotations for p in pa]), np.stack([p.rotations for p in pb]), atol=1e-6)
    assert [p.lost for p in pa if any(p.lost)] == [(False, True, False)] * 2 + [(False, False, True)]
    assert all(np.isfinite(p.positions).all() for p in pa)


def test_first_frame_must_have_all_devices_and_state_is_kept(model):
    tracking = Tracking.from_motion(smooth_motion(4))
    f0 = _frames(tracking)[0].to_dict()
    s = Streamer(model)
    with pytest.raises(ValueError, match="no valid pose yet for left"):
        s.push({**f0, "left": None})
    assert s.frames_seen == 0
    assert s.push(f0).index == 0


def test_reset_and_dict_input_and_json_output(model):
    tracking = Tracking.from_motion(smooth_motion(10))
    frames = _frames(tracking)
    s = Streamer(model)
    first = [s.push(f) for f in frames]
    s.reset()
    again = [s.push(f.to_dict()) for f in frames]  # JSON dicts as the server receives them
    assert again[0].index == 0
    assert np.allclose(np.stack([p.rotations for p in first]), np.stack([p.rotations for p in again]), atol=1e-6)
    d = json.loads(json.dumps(again[3].to_dict()))
    assert set(d) >= {"frame", "time", "rotations", "positions", "trans", "lost", "padded", "timestamp"}
    assert len(d["rotations"]) == 22 and len(d["rotations"][0]) == 4 and len(d["positions"][21]) == 3
    assert d["lost"] == {"head": False, "left": False, "right": False}


@pytest.mark.parametrize("convention", ["openxr", "unity"])
def test_device_conventions_give_the_same_poses(model, convention):
    tracking = Tracking.from_motion(smooth_motion(10))
    ref = [Streamer(model).push(f) for f in _frames(tracking)[:1]]
    s = Streamer(model, convention=convention)
    out = [s.push(f) for f in _frames(tracking, convention)[:1]]
    assert np.allclose(out[0].rotations, ref[0].rotations, atol=1e-5)
    assert np.allclose(out[0].positions, ref[0].positions, atol=1e-5)


def test_constructor_errors(model):
    with pytest.raises(ValueError, match="backend: expected one of torch, onnx"):
        Streamer(model, backend="tf")
    with pytest.raises(ValueError, match="needs an onnxruntime session"):
        Streamer(model, backend="onnx")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        Streamer("missing.onnx", backend="onnx")


def test_mage_exposes_streamer_lazily():
    import mage

    assert mage.Streamer is Streamer

"""Online inference, one tracking frame in, one full-body pose out: :class:`Streamer`.

Causal with no lookahead: the pose of frame t uses tracking frames 0..t only, so the
added latency is **0 frames** (plus the compute time of one ``push``). Memory is
constant: a ring buffer of ``window`` condition rows.

Per ``push`` (frames are expected at the model rate, 60 Hz; the condition's velocities
are per frame, so a stream at another rate must be resampled by the sender):

1. the tracking devices' native poses become SMPL joint poses in the project's
   coordinates (:class:`mage.inference.device.DeviceConfig`: the devices' coordinate
   ``convention`` + offsets);
2. a lost device (``null``, missing, or NaN) holds its last valid joint pose and is
   flagged in ``Pose.lost``; the stream cannot start before all three devices have been
   seen once (``push`` raises ``ValueError`` and keeps its state);
3. the condition row of frame t (rotation and position velocities relative to frame
   t-1, :func:`mage.core.tracking.sparse_condition`) enters the ring buffer. Frame 0
   has no previous frame: its pose is predicted from a window of its own row with zero
   velocities and that row is not kept. From frame 1 on the window holds rows 1..t,
   front-padded by repeating row 1 until it is full (``Pose.padded``): exactly
   ``predict_sequence(mode="online")`` on ``Tracking.condition()``;
4. one DDIM sample of the window with the fixed noise of ``options.seed`` (the same
   noise as ``predict_sequence``, every sampled state of every design); its last row,
   carried by the online consistency rule (``options.consistency``,
   :data:`mage.inference.options.ONLINE_CONSISTENCY`: plus lambda times the previous
   output minus the window's own estimate of the previous frame), gives the local
   rotations, placed so that the head joint is on the tracked head.

Threads: the Streamer leaves them to the caller (``torch.set_num_threads``, or
``OnnxMageModel(path, threads=...)``). One is usually best for batch 1 on a small CPU
that other programs share; ``mage serve`` defaults to 1 (benchmarks/latency).

Backends: ``"torch"`` (a MageModel, sampled by its pipeline) or ``"onnx"`` (an
onnxruntime session, a path to a file written by ``mage export`` or an
``OnnxMageModel``: the sampler graph, or the denoiser graph run by the same pipeline
loop, :mod:`mage.model.pipeline`).

Names: a tracking *message* (one :class:`TrackingFrame` or its JSON dict) goes in; a
:class:`Pose` with its frame ``index`` comes out; the tracking ``devices``
(:class:`DeviceConfig`) are not the ``torch_device`` the model computes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.constants import CONDITION_DIM, HEAD_JOINT
from mage.core.kinematics import place_by_head
from mage.core.skeleton import Skeleton
from mage.core.tracking import sparse_condition
from mage.inference import MODEL_FPS
from mage.inference.device import DEVICES, DeviceConfig
from mage.inference.onnx_export import OnnxMageModel
from mage.inference.options import SamplingOptions, check_options
from mage.inference.sequence import carry_consistency
from mage.inference.tracking_log import TrackingFrame, joint_poses
from mage.inference.writers import pose_record
from mage.model.pipeline import as_sampler, model_device

BACKENDS = ("torch", "onnx")
LATENCY_FRAMES = 0


@dataclass
class Pose:
    """The full-body pose of one frame.

    index: frame index since the start (or the last reset); rotations: (22, 4) local joint
    rotations, quaternions (x, y, z, w), joint 0 = root orientation in the world;
    positions: (22, 3) world joint positions (metres, z-up); trans: (3,) SMPL root
    translation; lost: (3,) bool, head/left/right held from an earlier frame;
    padded: the window was not yet full (fewer than ``window`` frames seen).
    """

    index: int
    rotations: np.ndarray
    positions: np.ndarray
    trans: np.ndarray
    lost: tuple[bool, bool, bool]
    padded: bool
    timestamp: float | None = None

    def to_dict(self, decimals: int = 6) -> dict:
        """JSON-ready dict: the fields of a frame of the JSON motion format
        (:func:`mage.inference.writers.pose_record`) plus timestamp, lost, padded."""
        out = pose_record(self.index, self.rotations, self.positions, self.trans, MODEL_FPS, decimals)
        out.update(timestamp=self.timestamp, lost=dict(zip(DEVICES, self.lost)), padded=self.padded)
        return out


class Streamer:
    """Stateful causal inference: ``pose = streamer.push(message)`` once per tracking frame.

    model_or_session: a MageModel (backend "torch"), or an onnxruntime session, a path
    to an ``.onnx`` from ``mage export`` or an OnnxMageModel (backend "onnx").
    options: :class:`~mage.inference.options.SamplingOptions`; a stream uses its
    ``steps`` (default: the model's), ``seed`` (the fixed initial noise), ``consistency``
    and ``precision`` (torch backend only); it is online by nature, one window per push,
    so ``mode``, ``overlap`` and ``batch_size`` do not apply.
    convention: the tracking devices' coordinate convention ("zup", "openxr", "unity"),
    or pass ``devices`` (a DeviceConfig: convention and device-to-joint offsets);
    skeleton: for placing the pose (default SMPL neutral).
    """

    latency_frames = LATENCY_FRAMES

    def __init__(self, model_or_session, backend: str = "torch", options: SamplingOptions = SamplingOptions(),
                 convention: str = "zup", devices: DeviceConfig | None = None,
                 skeleton: Skeleton | None = None):
        check_options(options)
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "torch":
            if not isinstance(model_or_session, torch.nn.Module):
                raise ValueError("backend='torch' needs a MageModel; for an ONNX file or session use backend='onnx'")
            self.model = model_or_session.eval()
        else:
            if isinstance(model_or_session, torch.nn.Module):
                raise ValueError("backend='onnx' needs an onnxruntime session or a .onnx path, got a torch module")
            self.model = model_or_session if isinstance(model_or_session, OnnxMageModel) \
                else OnnxMageModel(model_or_session, options.steps)
        self.options = options
        self.sampler = as_sampler(self.model, options.precision)  # the pipeline (or the ONNX sampler graph)
        self.torch_device = model_device(self.model)
        if devices is not None and convention != "zup" and devices.frame != convention:
            raise ValueError(f"convention={convention!r} contradicts devices.frame={devices.frame!r}; "
                             "pass one of them")
        self.devices = devices or DeviceConfig(convention)
        self.skeleton = skeleton or Skeleton.smpl22()
        self.window = int(self.sampler.window)
        # {scale: (N, n, d)}: one draw of ``seed`` for every frame, as predict_sequence
        self._noise = {s: z.to(self.torch_device) for s, z in self.sampler.draw_noise(options.seed).items()}
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next push is frame 0 again."""
        self._buffer = torch.zeros(self.window, CONDITION_DIM)  # ring of condition rows (oldest first)
        self._rows = 0  # condition rows seen (frames - 1)
        self._frames = 0
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # joint R (3,3,3), p (3,3)
        self._output: torch.Tensor | None = None  # the previous kept row's raw 6D output (22, 6)

    @property
    def frames_seen(self) -> int:
        return self._frames

    def _joint_pose(self, message: TrackingFrame) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        R, p, valid = joint_poses(self.devices, message.positions, message.quaternions)
        if self._last is None and not valid.all():
            missing = [d for d, v in zip(DEVICES, valid) if not v]
            raise ValueError(f"no valid pose yet for {', '.join(missing)}: the stream starts at the "
                             "first frame where head, left and right are all tracked")
        if not valid.all():
            keep = torch.as_tensor(valid)
            R = torch.where(keep[:, None, None], R, self._last[0])
            p = torch.where(keep[:, None], p, self._last[1])
        return R, p, valid

    def push(self, message: TrackingFrame | dict) -> Pose:
        """Add one tracking message (a TrackingFrame or its JSON dict) -> the pose of its frame."""
        msg = message if isinstance(message, TrackingFrame) else TrackingFrame.from_dict(message)
        R, p, valid = self._joint_pose(msg)
        R_prev, p_prev = self._last if self._last is not None else (R, p)
        row = sparse_condition(torch.stack([R_prev, R]), torch.stack([p_prev, p]))[0].float()  # (54,)
        if self._last is None:
            window = row.expand(self.window, -1)  # frame 0: zero velocities, not kept
        else:
            if self._rows == 0:
                self._buffer[:] = row  # front padding with the first row
            else:
                self._buffer = torch.roll(self._buffer, -1, dims=0)
                self._buffer[-1] = row
            self._rows += 1
            window = self._buffer
        with torch.inference_mode():
            d6 = self.sampler.sample(window[None].to(self.torch_device), noise=self._noise, steps=self.options.steps)
        d6 = d6[0, -2:].cpu()  # (2, 22, 6): estimates of the previous and of this frame
        if self._rows > 0:  # a kept row (frame 0's own window is not one: predict_sequence has no row for it)
            d6 = self._output = carry_consistency(d6[1], d6[0], self._output, self.options.consistency)
        else:
            d6 = d6[1]
        R_local = rot.rot6d_to_matrix(d6.double())
        fk, trans = place_by_head(R_local, p[0], self.skeleton, HEAD_JOINT)
        self._last = (R, p)
        pose = Pose(
            index=self._frames,
            rotations=rot.matrix_to_quaternion(R_local).numpy(),
            positions=fk.positions.numpy(),
            trans=trans.numpy(),
            lost=tuple(bool(not v) for v in valid),
            padded=self._rows < self.window,
            timestamp=msg.timestamp,
        )
        self._frames += 1
        return pose

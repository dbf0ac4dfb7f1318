"""ONNX export of a MageModel, and onnxruntime sessions that run it.

Two graphs, both with a dynamic batch dimension B and the window N fixed:

- **denoiser** (``kind="denoiser"``): one network call ``model.denoise``, condition
  normalisation included. Inputs ``x_t`` (B, N, 22, 6) float32, ``t`` (B,) int64,
  ``cond`` (B, N, 54) float32 raw condition; output ``x0`` (B, N, 22, 6).
- **sampler** (``kind="sampler"``): the whole K-step DDIM sampler ``model.sample`` with
  its K steps unrolled (K fixed at export) and the initial noise as an input, final
  Gram-Schmidt projection included. Inputs ``cond`` (B, N, 54), ``noise`` (B, N, 22, 6)
  standard normal; output ``x0`` (B, N, 22, 6). Gradual models with eta = 0 only (the
  sequential ablation draws noise inside the sampler; eta > 0 draws noise every step).

Each file carries metadata (``onnx`` ``metadata_props``): ``mage.kind``,
``mage.window``, ``mage.steps`` (sampler), ``mage.fps`` and ``mage.config`` (the
MageConfig as JSON), so a session knows what it runs. :class:`OnnxMageModel` wraps a session in the
inference interface of a MageModel (``window``, ``sample``), so that
``predict_sequence`` and ``Streamer`` run on onnxruntime unchanged. The legacy
TorchScript exporter is
used (``dynamo=False``): the dynamo exporter needs ``onnxscript``, which the project
does not depend on.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from mage.core.atomic import atomic_write
from mage.inference import MODEL_FPS

OPSET = 17
KINDS = ("denoiser", "sampler")


class _DenoiserGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x_t, t, cond):
        return self.model.denoise(x_t, t, cond)


class _SamplerGraph(nn.Module):
    def __init__(self, model, steps: int):
        super().__init__()
        self.model, self.steps = model, steps

    def forward(self, cond, noise):
        return self.model.sample(cond, steps=self.steps, noise=noise)


def _check_exportable(model, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    cfg = getattr(model, "config", None)
    if cfg is not None and getattr(cfg, "mode", "gradual") != "gradual":
        raise ValueError(f"ONNX export: mode={cfg.mode!r} is not exportable; only gradual models "
                         "have a single denoiser and a sampler whose only noise is its input")
    if kind == "sampler" and cfg is not None and getattr(cfg, "eta", 0.0) != 0:
        raise ValueError(f"ONNX sampler export needs eta = 0 (got {cfg.eta}): eta > 0 draws "
                         "noise inside every step; export the denoiser instead")


def export_onnx(model, path: str | Path, kind: str = "denoiser", steps: int | None = None,
                opset: int = OPSET) -> Path:
    """Export ``model`` (a MageModel on any device) as ``kind`` to ``path`` (atomic).

    steps: sampler only, the DDIM steps to unroll (default ``config.sampling_steps``).
    """
    import onnx

    _check_exportable(model, kind)
    N = int(model.window)
    cfg = getattr(model, "config", None)
    if kind == "sampler":
        steps = int(steps if steps is not None else cfg.sampling_steps)
        if steps < 1:
            raise ValueError(f"steps: must be >= 1, got {steps}")
    model = _cpu_eval_copy(model)
    g = torch.Generator().manual_seed(0)
    cond = torch.randn(2, N, 54, generator=g)
    noise = torch.randn(2, N, 22, 6, generator=g)
    if kind == "denoiser":
        graph, args = _DenoiserGraph(model), (noise, torch.tensor([999, 0]), cond)
        inputs = ["x_t", "t", "cond"]
    else:
        graph, args = _SamplerGraph(model, steps), (cond, noise)
        inputs = ["cond", "noise"]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter warns about its deprecation and about python values that
        # become constants (the unrolled timesteps and their coefficients: intended).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, args, buf, dynamo=False, opset_version=opset, input_names=inputs,
            output_names=["x0"], dynamic_axes={name: {0: "B"} for name in inputs + ["x0"]},
        )
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"mage.kind": kind, "mage.window": str(N), "mage.fps": str(MODEL_FPS)}
    if kind == "sampler":
        meta["mage.steps"] = str(steps)
    if cfg is not None:
        meta["mage.config"] = json.dumps(cfg.to_dict())
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    path = Path(path)
    with atomic_write(path, "wb", suffix=".onnx") as fh:
        fh.write(proto.SerializeToString())
    return path


def _cpu_eval_copy(model):
    """The model itself when already on CPU in eval mode, else an eval copy on CPU."""
    p = next(iter(model.parameters()), None)
    if (p is None or p.device.type == "cpu") and not model.training:
        return model
    return copy.deepcopy(model).cpu().eval()


def onnx_session(path_or_session, threads: int | None = None):
    """An onnxruntime CPU ``InferenceSession`` for a file (or the session itself).

    threads: intra-op threads (default: onnxruntime's choice, all cores).
    """
    import onnxruntime as ort

    if isinstance(path_or_session, ort.InferenceSession):
        return path_or_session
    path = Path(path_or_session)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX file not found (make one with `mage export`)")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def session_metadata(session) -> dict[str, str]:
    """The ``mage.*`` metadata of a session; a clear error for files not made by export."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get("mage.kind") not in KINDS or "mage.window" not in meta:
        raise ValueError("ONNX model has no MAGE metadata (mage.kind, mage.window): "
                         "export it with `mage export` / mage.inference.onnx_export.export_onnx")
    return meta


def compare_with_torch(model, session, batch: int = 3, seed: int = 1) -> float:
    """Max |onnxruntime - PyTorch| of the session's graph, batch ``batch`` (not the
    export's 2, to exercise the dynamic axis).

    Inputs: windows of the condition of the built-in synthetic walk
    (:mod:`mage.demo.synthetic`), so that the normalised inputs are in the range the
    model sees in use, and standard-normal noise (and random timesteps for the
    denoiser), all drawn from ``seed``.
    """
    from mage.demo.synthetic import MIN_DURATION_S, synthetic_tracking

    meta = session_metadata(session)
    N = int(meta["mage.window"])
    g = torch.Generator().manual_seed(seed)
    tracking, _ = synthetic_tracking(duration_s=max(MIN_DURATION_S, 2 * N / MODEL_FPS), fps=MODEL_FPS)
    rows = tracking.condition().float()
    starts = torch.randint(0, rows.shape[0] - N + 1, (batch,), generator=g)
    cond = torch.stack([rows[s:s + N] for s in starts.tolist()])
    noise = torch.randn(batch, N, 22, 6, generator=g)
    model = _cpu_eval_copy(model)
    with torch.no_grad():
        if meta["mage.kind"] == "denoiser":
            t = torch.randint(0, model.scheduler.num_train_timesteps, (batch,), generator=g)
            ref = model.denoise(noise, t, cond)
            feeds = {"x_t": noise.numpy(), "t": t.numpy(), "cond": cond.numpy()}
        else:
            ref = model.sample(cond, steps=int(meta["mage.steps"]), noise=noise)
            feeds = {"cond": cond.numpy(), "noise": noise.numpy()}
    out = session.run(["x0"], feeds)[0]
    return float(np.abs(out - ref.numpy()).max())


class OnnxMageModel:
    """An exported graph with the inference interface of a MageModel.

    session: an onnxruntime session or a path (see :func:`onnx_session`); steps: the
    default DDIM steps (a sampler graph has its K fixed: any other value is an error).
    ``sample(cond (B, N, 54), steps, generator, noise (B, N, 22, 6)) -> (B, N, 22, 6)``
    on CPU tensors. With the denoiser graph the DDIM loop of ``MageModel.sample`` runs
    here (eta = 0), with the model's own scheduler rebuilt from the ``mage.config``
    metadata.
    """

    training = False

    def __init__(self, session, steps: int | None = None, threads: int | None = None):
        self.session = onnx_session(session, threads)
        meta = session_metadata(self.session)
        self.kind, self.window = meta["mage.kind"], int(meta["mage.window"])
        if self.kind == "sampler":
            self.steps = int(meta["mage.steps"])
            self._check_steps(steps)
            return
        if "mage.config" not in meta:
            raise ValueError("ONNX denoiser: no mage.config metadata, cannot rebuild its scheduler")
        from mage.model import MageConfig
        from mage.model.scheduler import DDIMScheduler

        self.config = MageConfig.from_dict(json.loads(meta["mage.config"]))
        if self.config.eta != 0:
            raise ValueError(f"ONNX denoiser: eta={self.config.eta}; only eta = 0 is supported here")
        self.scheduler = DDIMScheduler(self.config.train_timesteps, self.config.timestep_spacing)
        self.steps = steps or self.config.sampling_steps

    def _check_steps(self, steps):
        if self.kind == "sampler" and steps is not None and steps != self.steps:
            raise ValueError(f"steps: the ONNX sampler has {self.steps} steps unrolled, got steps={steps}; "
                             "export another sampler (mage export --steps) or use the denoiser graph")

    def parameters(self):
        return iter(())

    def sample(self, cond: torch.Tensor, steps: int | None = None, generator=None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        self._check_steps(steps)
        cond = cond.detach().to("cpu", torch.float32).contiguous()
        B, N = cond.shape[:2]
        if noise is None:
            noise = torch.randn(B, N, 22, 6, generator=generator)
        noise = noise.detach().to("cpu", torch.float32).contiguous()
        c = cond.numpy()
        if self.kind == "sampler":
            return torch.from_numpy(self.session.run(["x0"], {"cond": c, "noise": noise.numpy()})[0])
        from mage.core import rotations as rot

        x = noise * self.config.init_noise_scale
        sched = copy.copy(self.scheduler)  # own timesteps: concurrent calls do not interfere
        for t in sched.set_timesteps(steps or self.steps).tolist():
            tt = np.full((B,), t, dtype=np.int64)
            x0 = torch.from_numpy(self.session.run(["x0"], {"x_t": x.numpy(), "t": tt, "cond": c})[0])
            x = sched.step(x0, t, x).prev_sample
        return rot.matrix_to_rot6d(rot.rot6d_to_matrix(x))

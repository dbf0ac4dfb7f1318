"""ONNX export of a MageModel, and onnxruntime sessions that run it.

Two graphs, both with a dynamic batch dimension B and the window N fixed:

- **denoiser** (``kind="denoiser"``): one network call ``model.denoise``, condition
  normalisation included. Inputs ``x_t`` (B, N, 22, 6) float32, ``t`` (B,) int64,
  ``cond`` (B, N, 54) float32 raw condition; output ``x0`` (B, N, 22, 6).
- **sampler** (``kind="sampler"``): the whole K-step DDIM sampler (the pipeline's
  ``sample``, :mod:`mage.model.pipeline`) with its K steps unrolled (K fixed at export)
  and the initial noise as an input, final Gram-Schmidt projection included. Inputs
  ``cond`` (B, N, 54), ``noise`` (B, N, 22, 6) standard normal; output ``x0`` (B, N, 22,
  6). Gradual models with eta = 0 only (the sequential ablation draws noise inside the
  sampler; eta > 0 draws noise every step).

Each file carries metadata (``onnx`` ``metadata_props``): ``mage.kind``,
``mage.window``, ``mage.steps`` (sampler), ``mage.fps`` and ``mage.config`` (the
MageConfig as JSON), so a session knows what it runs. :class:`OnnxMageModel` wraps a
session in the interface of a pipeline (``window``, ``draw_noise``, ``sample``), so that
``predict_sequence`` and ``Streamer`` run on onnxruntime unchanged: with the denoiser
graph it IS a ``MagePipeline`` whose denoise function calls onnxruntime, so the DDIM
loop is the torch backend's own. The legacy TorchScript exporter is used
(``dynamo=False``): the dynamo exporter needs ``onnxscript``, which the project does not
depend on.
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
from mage.core.constants import CONDITION_DIM, NUM_JOINTS, ROT6D_DIM
from mage.inference import MODEL_FPS
from mage.model.config import MageConfig, check_steps
from mage.model.pipeline import MagePipeline

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
        self.pipeline = MagePipeline.from_model(model)

    def forward(self, cond, noise):
        return self.pipeline.sample(cond, noise=noise, steps=self.steps)


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
    # imported here: onnx takes ~0.6 s to import, and the Streamer imports this module
    # (for OnnxMageModel) whatever its backend
    import onnx  # noqa: PLC0415

    _check_exportable(model, kind)
    N = int(model.window)
    cfg = getattr(model, "config", None)
    if kind == "sampler":
        steps = check_steps(steps) or cfg.sampling_steps
    model = _cpu_eval_copy(model)
    g = torch.Generator().manual_seed(0)
    cond = torch.randn(2, N, CONDITION_DIM, generator=g)
    noise = torch.randn(2, N, NUM_JOINTS, ROT6D_DIM, generator=g)
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
    import onnxruntime as ort  # noqa: PLC0415 - only the ONNX backend needs it (the Streamer imports this module)

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

    Inputs, all drawn from ``seed``: conditions ``cond_mean + cond_std * z`` (z standard
    normal), so that the normalised inputs the network sees are in the range of real
    use; standard-normal noise; and random timesteps for the denoiser.
    """
    meta = session_metadata(session)
    N = int(meta["mage.window"])
    model = _cpu_eval_copy(model)
    g = torch.Generator().manual_seed(seed)
    cond = model.cond_mean + model.cond_std * torch.randn(batch, N, CONDITION_DIM, generator=g)
    noise = torch.randn(batch, N, NUM_JOINTS, ROT6D_DIM, generator=g)
    with torch.no_grad():
        if meta["mage.kind"] == "denoiser":
            t = torch.randint(0, model.config.train_timesteps, (batch,), generator=g)
            ref = model.denoise(noise, t, cond)
            feeds = {"x_t": noise.numpy(), "t": t.numpy(), "cond": cond.numpy()}
        else:
            ref = MagePipeline.from_model(model).sample(cond, noise=noise, steps=int(meta["mage.steps"]))
            feeds = {"cond": cond.numpy(), "noise": noise.numpy()}
    out = session.run(["x0"], feeds)[0]
    return float(np.abs(out - ref.numpy()).max())


class OnnxMageModel:
    """An exported graph in the interface of a pipeline (``window``, ``config``,
    ``draw_noise(seed)``, ``sample(cond, noise, steps)``), on CPU tensors.

    session: an onnxruntime session or a path (see :func:`onnx_session`); steps: the
    default DDIM steps (a sampler graph has its K fixed: any other value is an error).
    Denoiser graph: ``self.pipeline`` is the ``MagePipeline`` of the ``mage.config``
    metadata with a denoise function that runs the session (eta = 0). Sampler graph:
    the noise specification is resolved by the same pipeline, the loop is in the graph.
    """

    training = False
    device = torch.device("cpu")

    def __init__(self, session, steps: int | None = None, threads: int | None = None):
        self.session = onnx_session(session, threads)
        meta = session_metadata(self.session)
        self.kind, self.window = meta["mage.kind"], int(meta["mage.window"])
        if "mage.config" not in meta:
            raise ValueError(f"ONNX {self.kind}: no mage.config metadata, cannot rebuild its pipeline "
                             "(export it again with `mage export`)")
        self.config = MageConfig.from_dict(json.loads(meta["mage.config"]))
        self.pipeline = MagePipeline.from_denoise(self.config, self._denoise)
        if self.kind == "sampler":
            self.steps = int(meta["mage.steps"])
            self._check_steps(steps)
        else:
            if self.config.eta != 0:
                raise ValueError(f"ONNX denoiser: eta={self.config.eta}; only eta = 0 is supported here")
            self.steps = steps or self.config.sampling_steps

    def _check_steps(self, steps):
        if self.kind == "sampler" and steps is not None and steps != self.steps:
            raise ValueError(f"steps: the ONNX sampler has {self.steps} steps unrolled, got steps={steps}; "
                             "export another sampler (mage export --steps) or use the denoiser graph")

    def parameters(self):
        return iter(())

    def _denoise(self, x_t, t, cond, scale="S3", prev=None) -> torch.Tensor:
        """The pipeline's denoise function: one run of the denoiser graph."""
        feeds = {"x_t": _numpy(x_t), "t": t.detach().cpu().numpy().astype(np.int64), "cond": _numpy(cond)}
        return torch.from_numpy(self.session.run(["x0"], feeds)[0])

    def draw_noise(self, seed: int) -> dict[str, torch.Tensor]:
        return self.pipeline.draw_noise(seed)

    def sample(self, cond: torch.Tensor, noise=0, steps: int | None = None) -> torch.Tensor:
        """(B, N, 54) -> (B, N, 22, 6), as ``MagePipeline.sample``."""
        self._check_steps(steps)
        cond = cond.detach().to("cpu", torch.float32).contiguous()
        if self.kind == "denoiser":
            return self.pipeline.sample(cond, noise=noise, steps=steps or self.steps)
        z = self.pipeline.initial_noise(noise, cond)["S3"]
        return torch.from_numpy(self.session.run(["x0"], {"cond": cond.numpy(), "noise": _numpy(z)})[0])


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()

import numpy as np
import pytest
import torch
from inference_helpers import smooth_motion, tiny_model

from mage.core import Tracking
from mage.inference.device import DeviceConfig
from mage.inference.onnx_export import compare_with_torch, export_onnx, onnx_session, session_metadata
from mage.inference.options import SamplingOptions
from mage.inference.streaming import Streamer
from mage.inference.tracking_log import TrackingFrame
from mage.model import MagePipeline


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_model(window=8, seed=4)
    d = tmp_path_factory.mktemp("onnx")
    return model, export_onnx(model, d / "m.onnx", "denoiser"), export_onnx(model, d / "m.sampler.onnx", "sampler")


def test_exports_agree_with_torch_on_a_new_batch_size(exported):
    model, den, smp = exported
    for path, kind in ((den, "denoiser"), (smp, "sampler")):
        session = onnx_session(path)
        meta = session_metadata(session)
        assert meta["mage.kind"] == kind and meta["mage.window"] == "8"
        assert compare_with_torch(model, session, batch=3) < 1e-4
        assert compare_with_torch(model, session, batch=1, seed=5) < 1e-4
    assert session_metadata(onnx_session(smp))["mage.steps"] == str(model.config.sampling_steps)


def test_denoiser_graph_includes_condition_normalisation(exported):
    model, den, _ = exported
    session = onnx_session(den)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 22, 6, generator=g)
    cond = torch.randn(2, 8, 54, generator=g)
    t = torch.tensor([999, 10])
    out = session.run(["x0"], {"x_t": x.numpy(), "t": t.numpy(), "cond": cond.numpy()})[0]
    with torch.no_grad():
        ref = model.net(x, t, (cond - model.cond_mean) / model.cond_std).x0  # the raw network
    assert np.abs(out - ref.numpy()).max() < 1e-4


@pytest.mark.parametrize("graph", ["sampler", "denoiser"])
def test_streamer_onnx_backend_matches_torch(exported, graph):
    model, den, smp = exported
    tracking = Tracking.from_motion(smooth_motion(14))
    P, Q = DeviceConfig().to_devices(tracking.rotations, tracking.positions)
    frames = [TrackingFrame(P[i].numpy(), Q[i].numpy(), i / 60) for i in range(14)]
    a = Streamer(model, "torch", SamplingOptions(seed=1))
    b = Streamer(onnx_session(smp if graph == "sampler" else den, threads=1), "onnx", SamplingOptions(seed=1))
    assert b.window == 8
    for f in frames:
        pa, pb = a.push(f), b.push(f)
        assert np.abs(pa.rotations - pb.rotations).max() < 1e-4
        assert np.abs(pa.positions - pb.positions).max() < 1e-4


def test_export_errors(exported, tmp_path):
    model, _, smp = exported
    with pytest.raises(ValueError, match="has 4 steps unrolled"):
        Streamer(smp, "onnx", SamplingOptions(steps=2))
    with pytest.raises(ValueError, match="kind: expected one of denoiser, sampler"):
        export_onnx(model, tmp_path / "x.onnx", "pipeline")
    from mage.model import MageConfig, MageModel

    seq = MageModel(MageConfig.preset("mage-small").with_overrides(
        mode="sequential", fusion="c+frec", xt_input="all", width=16, window=8, depth={"S1": 1, "S2": 1, "S3": 1}))
    with pytest.raises(ValueError, match="mode='sequential' is not exportable"):
        export_onnx(seq, tmp_path / "x.onnx", "sampler")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export(tmp_path, capsys):
    from mage.cli.main import main
    from mage.model.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tiny_model(window=8), tmp_path / "ckpt")
    assert main(["export", "--ckpt", str(ckpt), "--onnx", str(tmp_path / "out" / "tiny.onnx")]) == 0
    out = capsys.readouterr().out
    assert "tiny.onnx (denoiser" in out and "tiny.sampler.onnx (sampler, 4 DDIM steps" in out
    assert (tmp_path / "out" / "tiny.sampler.onnx").is_file()
    assert main(["export", "--ckpt", str(tmp_path / "nope"), "--onnx", str(tmp_path / "a.onnx")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


def test_onnx_model_runs_predict_sequence_like_torch(exported):
    from mage.inference.onnx_export import OnnxMageModel
    from mage.inference.sequence import predict_sequence

    model, den, smp = exported
    cond = Tracking.from_motion(smooth_motion(30)).condition()
    ref = predict_sequence(model, cond, SamplingOptions("offline", seed=2))
    assert (predict_sequence(OnnxMageModel(smp), cond, SamplingOptions("offline", seed=2)) - ref).abs().max() < 1e-4
    # The denoiser graph takes any number of steps, like the torch model.
    ref2 = predict_sequence(model, cond, SamplingOptions("online", steps=2, seed=2))
    out2 = predict_sequence(OnnxMageModel(den), cond, SamplingOptions("online", steps=2, seed=2, batch_size=7))
    assert (out2 - ref2).abs().max() < 1e-4


def test_onnx_and_torch_share_the_pipeline_and_the_seed(exported):
    """One loop: the denoiser graph runs inside a MagePipeline (the torch backend's
    class); a seed gives bit-identical output on every backend, whatever the global
    random state, and the backends agree."""
    from mage.inference.onnx_export import OnnxMageModel

    model, den, smp = exported
    cond = model.cond_mean + model.cond_std * torch.randn(3, 8, 54, generator=torch.Generator().manual_seed(0))
    onnx_den = OnnxMageModel(den, threads=1)
    assert type(onnx_den.pipeline) is type(MagePipeline.from_model(model))
    backends = {"torch": MagePipeline.from_model(model), "onnx-denoiser": onnx_den,
                "onnx-sampler": OnnxMageModel(smp, threads=1)}
    outs = {}
    for name, sampler in backends.items():
        runs = []
        for global_seed in (0, 77):
            torch.manual_seed(global_seed)
            runs.append(sampler.sample(cond, noise=11))
        assert torch.equal(runs[0], runs[1]), name
        outs[name] = runs[0]
    for name in ("onnx-denoiser", "onnx-sampler"):
        assert (outs[name] - outs["torch"]).abs().max() < 1e-4, name

"""The bundled checkpoint: found by name, loads without pickle, and is the documented model."""

import json
from pathlib import Path

import torch

import mage
from mage.inference.options import SamplingOptions
from mage.model.checkpoint_paths import PACKAGED_DIR, available_checkpoints


def test_cmu_small_is_packaged_and_loads():
    assert "cmu-small" in available_checkpoints()
    folder = PACKAGED_DIR / "cmu-small"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10 * 2**20  # the budget for a committed checkpoint
    model = mage.load_pretrained("cmu-small")
    assert model.window == 48 and model.config.width == 160
    assert sum(p.numel() for p in model.parameters()) == 908_317
    # the normalisation statistics of the training split are in the weights (not identity)
    stats = [b for n, b in model.named_buffers() if "std" in n]
    assert stats and not torch.allclose(stats[0], torch.ones_like(stats[0]))
    # the committed evaluation report describes this checkpoint
    report = json.loads((folder / "eval_offline" / "metrics.json").read_text())
    assert report["num_sequences"] == 32 and report["split"] == "test"
    assert Path(report["settings"]["checkpoint"]).name == "cmu-small"


def test_cmu_small_still_gives_the_outputs_it_gave_before_the_pipeline_refactor():
    """Checkpoint compatibility: same state-dict keys and config fields, same numbers.
    The pinned values were computed with the code before the model / pipeline split
    (MageModel.sample), on the same condition, seed and global random state."""
    from mage.inference.sequence import predict_sequence

    model = mage.load_pretrained("cmu-small")
    assert {k for k in model.state_dict() if not k.startswith("net.stages.")} == {
        "cond_mean", "cond_std", "net.time_embed.mlp.0.weight", "net.time_embed.mlp.0.bias",
        "net.time_embed.mlp.2.weight", "net.time_embed.mlp.2.bias"}
    torch.manual_seed(999)  # the global state plays no part
    cond = torch.randn(150, 54, generator=torch.Generator().manual_seed(7)) * 0.3
    off = predict_sequence(model, cond, SamplingOptions("offline", seed=3))
    on = predict_sequence(model, cond[:60], SamplingOptions("online", seed=3, consistency=0.0))  # the rule then
    pinned_off = torch.tensor([
        [-0.1300896853208542, -0.9348768591880798, -0.33027565479278564,
         -0.44052034616470337, -0.24392591416835785, 0.8639687299728394],
        [0.8430416584014893, -0.09135245531797409, -0.530033528804779,
         0.050673238933086395, 0.9945773482322693, -0.0908195897936821]])
    pinned_on = torch.tensor([0.7814342379570007, -0.5457875728607178, -0.30245068669319153,
                              0.5455855131149292, 0.8328458070755005, -0.09329672157764435])
    torch.testing.assert_close(torch.stack([off[0, 0], off[149, 8]]), pinned_off, atol=1e-5, rtol=0)
    torch.testing.assert_close(on[59, 21], pinned_on, atol=1e-5, rtol=0)
    assert abs(off.abs().sum().item() - 8835.98046875) < 1e-2
    assert abs(on.abs().sum().item() - 3537.3701171875) < 1e-2

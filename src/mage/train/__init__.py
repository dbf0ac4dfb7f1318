"""Training of MAGE models with Lightning (loop, DDP, precision are Lightning's).

Public API:
    TrainConfig                       every setting of a run (mage.train.config; torch-free)
    train(config, data_dir, out_dir, resume=False) -> Path   one run (mage.train.run)
    read_metrics(run_dir)             the logged rows across restarts (mage.train.run)

Modules: config (settings), data (windows, augmentation, sampler, DataModule), ema
(weight averaging), module (LightningModule), callbacks (the checkpoint writer), run (the
Trainer and train()). The run folder's layout (and which folder ``--ckpt RUN`` means) is
mage.model.checkpoint_paths: inference reads it too.
"""

from mage.train.config import TrainConfig

__all__ = ["TrainConfig", "read_metrics", "train"]


def __getattr__(name: str):
    # Lightning is imported only when these are used, so `import mage.train` stays light.
    if name in ("train", "read_metrics"):
        from mage.train import run  # noqa: PLC0415

        return getattr(run, name)
    raise AttributeError(f"module 'mage.train' has no attribute {name!r}")

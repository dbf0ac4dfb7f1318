"""Training of MAGE models with Lightning (loop, DDP, precision are Lightning's).

Public API:
    TrainConfig                       every setting of a run (mage.train.config; torch-free)
    train(config, data_dir, out_dir, resume=False) -> Path   one run (mage.train.run)
    read_metrics(run_dir)             the logged rows across restarts (mage.train.run)
    resolve_checkpoint(path)          RUN -> RUN/final, a checkpoint folder -> itself

Modules: config (settings), data (windows, augmentation, sampler, DataModule), ema
(weight averaging), module (LightningModule), checkpoints (run folder layout; torch-free),
callbacks (the checkpoint writer), run (the Trainer and train()).
"""

from mage.train.checkpoints import resolve_checkpoint
from mage.train.config import TrainConfig

__all__ = ["TrainConfig", "read_metrics", "resolve_checkpoint", "train"]


def __getattr__(name: str):
    # Lightning is imported only when these are used, so `import mage.train` stays light.
    if name in ("train", "read_metrics"):
        from mage.train import run

        return getattr(run, name)
    raise AttributeError(f"module 'mage.train' has no attribute {name!r}")

"""The MAGE model: multi-stage diffusion from sparse tracking to 22-joint SMPL motion.

Public API:
    MageConfig, PRESETS, PRESET_DESCRIPTIONS   typed configuration and presets
    MageModel                                  the denoiser network(s) + condition normalisation
    MagePipeline                               training loss and the one DDIM sampling loop
                                               (GradualPipeline, SequentialPipeline)
    DDIMScheduler, cosine_betas                the diffusion math (no weights, no state)
    mage.model.checkpoint                      save_checkpoint / load_checkpoint
    mage.model.checkpoint_paths                resolve_checkpoint, run folder layout (torch-free)
    mage.model.card                            model_card: parameters, FLOPs, memory

Modules: config (settings, presets, sampling precisions; torch-free), scheduler (math),
network (weights), onednn (the CPU kernel of its linear layers), mage_model (the networks
with their normalisation), losses, pipeline (the denoiser + scheduler loop and the
training loss, per design), checkpoint (save / load), checkpoint_paths (where
checkpoints live; torch-free), card.
The torch-based names are imported on first use, so that reading configs and presets
(``from mage.model import MageConfig``) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mage.model.config import PRESET_DESCRIPTIONS, PRESETS, MageConfig

if TYPE_CHECKING:
    from mage.model.mage_model import MageModel
    from mage.model.pipeline import GradualPipeline, MagePipeline, SequentialPipeline
    from mage.model.scheduler import DDIMScheduler, cosine_betas

_LAZY = {
    "MageModel": "mage.model.mage_model",
    "MagePipeline": "mage.model.pipeline",
    "GradualPipeline": "mage.model.pipeline",
    "SequentialPipeline": "mage.model.pipeline",
    "DDIMScheduler": "mage.model.scheduler",
    "cosine_betas": "mage.model.scheduler",
}

__all__ = ["PRESETS", "PRESET_DESCRIPTIONS", "DDIMScheduler", "GradualPipeline", "MageConfig",
           "MageModel", "MagePipeline", "SequentialPipeline", "cosine_betas"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mage.model' has no attribute {name!r}")

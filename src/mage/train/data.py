"""Training data: augmented windows of the training split, their sampler, the DataModule.

A training sample is a window of N = model.window frames:
    x0   (N, 22, 6)  local 6D rotations (ground truth)
    cond (N, 54)     the sparse condition of the same frames

Augmentation acts on the MOTION (``Motion.mirror``, ``Motion.rotate_about_vertical``)
and the condition and 6D are then recomputed from it (``Tracking.from_motion``), so the
sparse input always describes the augmented body. Each window is cut with one frame
before it (N + 1 frames) so that the velocities of its first frame exist: window
``s`` of a sequence covers record rows s .. s+N-1 (s >= 1) and reads row s-1. Without
augmentation the recomputed condition equals the dataset's stored one.

Sequences with fewer than N + 1 rows are front-padded by repeating their first row
(zero velocity over the padding), or skipped (``short_sequences``).

Randomness: the sampler yields numbers k; window ``k % num_windows`` is drawn, and its
augmentation comes from a generator seeded by (seed, k). With ``source_balance`` > 0
and two or more sources the sampler draws windows with replacement, weighted by
``source_weights``. The sampler's order depends on
(seed, epoch) only and each rank takes its own shard, so a run is reproducible and a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mage.core.constants import CONDITION_DIM
from mage.core.motion import Motion
from mage.core.tracking import Tracking
from mage.data.dataset import ProcessedDataset, record_to_motion
from mage.data.sequence_ids import source_of
from mage.train.config import TrainConfig

_SEED_STRIDE = 1 << 40  # separates the numbers drawn from different seeds
_MAX_CATEGORIES = 1 << 24  # torch.multinomial's limit on the number of weights


def _mix(seed: int, k: int) -> int:
    """The generator seed of draw k under ``seed``. Below 2^40 (every draw of the
    permutation sampler in practice) seeds are separated linearly, as before; the
    weighted sampler's numbers grow as epoch x num_windows^2 and pass 2^40 within a few
    epochs, so larger k are hashed with the seed (blake2b) instead: no two seeds share
    an augmentation stream."""
    if k < _SEED_STRIDE:
        return (seed * _SEED_STRIDE + k) % (1 << 63)
    digest = hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (1 << 63)


# --- the training split in memory ---------------------------------------------------
@dataclass
class TrainingSplit:
    """The motions of the training split(s), each of at least ``window + 1`` frames, and the
    normalisation statistics of the condition over the split's (unaugmented) rows.

    motions: padded motions (see module docstring); ids: their sequence ids;
    cond_mean, cond_std: (54,) float32, std floored at ``std_floor``;
    skipped: ids of sequences left out (``short_sequences="skip"``); padded: ids padded.
    """

    motions: list[Motion]
    ids: list[str]
    cond_mean: torch.Tensor
    cond_std: torch.Tensor
    skipped: list[str] = field(default_factory=list)
    padded: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: str | Path, window: int, short_sequences: str = "pad",
             std_floor: float = 1e-3, split: str | tuple[str, ...] = "train") -> TrainingSplit:
        """``split``: one split name or several (their sequences together; never a test
        sequence: ValueError)."""
        ds = ProcessedDataset(root)
        names = (split,) if isinstance(split, str) else tuple(dict.fromkeys(split))
        ids = [i for name in names for i in ds.ids(name)]
        split = "+".join(names)
        leaked = set(ids) & set(ds.ids("test")) if "test" in ds.splits else set()
        if leaked:
            raise ValueError(f"{root}: split {split!r} holds {len(leaked)} test sequence(s), "
                             f"e.g. {sorted(leaked)[0]}; never train on the test split")
        if not ids:
            raise ValueError(f"{root}: split {split!r} has no sequences")
        motions, kept, skipped, padded = [], [], [], []
        total = torch.zeros(CONDITION_DIM, dtype=torch.float64)
        total_sq = torch.zeros(CONDITION_DIM, dtype=torch.float64)
        rows = 0
        for id in ids:
            rec = ds.load(id)
            cond = rec.condition.double()
            total += cond.sum(0)
            total_sq += (cond * cond).sum(0)
            rows += cond.shape[0]
            motion = record_to_motion(rec)
            if motion.num_frames < window + 1:
                if short_sequences == "skip":
                    skipped.append(id)
                    continue
                motion = pad_front(motion, window + 1)
                padded.append(id)
            motions.append(motion)
            kept.append(id)
        if not motions:
            raise ValueError(
                f"{root}: every sequence of split {split!r} is shorter than window + 1 = "
                f"{window + 1} frames; use short_sequences='pad' or a shorter window")
        mean = total / rows
        std = (total_sq / rows - mean * mean).clamp_min(0).sqrt().clamp_min(std_floor)
        return cls(motions, kept, mean.float(), std.float(), skipped, padded)

    @property
    def num_frames(self) -> int:
        return sum(m.num_frames for m in self.motions)


def pad_front(motion: Motion, num_frames: int) -> Motion:
    """``motion`` with its first frame repeated in front up to ``num_frames`` frames."""
    extra = num_frames - motion.num_frames
    if extra <= 0:
        return motion
    R = torch.cat([motion.rotations[:1].expand(extra, -1, -1, -1), motion.rotations])
    tr = torch.cat([motion.trans[:1].expand(extra, -1), motion.trans])
    return replace(motion, rotations=R, trans=tr)


# --- windows --------------------------------------------------------------------------
class TrainingWindows(Dataset):
    """All windows of N frames of some motions, augmented on the fly.

    Window w starts at frame ``starts[w] >= 1`` of motion ``sequence[w]`` (every
    ``stride`` frames). ``windows[k]`` (any int k >= 0) is window ``k % len(windows)``
    augmented with randomness seeded by (seed, k):
        mirrored with probability ``mirror_prob``, then, if ``random_yaw``, rotated
        about the vertical by an angle uniform in [0, 2 pi).
    Returns {"x0": (N, 22, 6), "cond": (N, 54)} float32.
    """

    def __init__(self, motions: list[Motion], window: int, stride: int = 1,
                 mirror_prob: float = 0.0, random_yaw: bool = False, seed: int = 0):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
        seq, starts = [], []
        for i, m in enumerate(motions):
            if m.num_frames < window + 1:
                raise ValueError(f"motion {i} ({m.name!r}): {m.num_frames} frames, need at least "
                                 f"window + 1 = {window + 1} (pad it with pad_front)")
            s = list(range(1, m.num_frames - window + 1, stride))
            seq += [i] * len(s)
            starts += s
        if not starts:
            raise ValueError("no motions: nothing to make windows of")
        self.motions = motions
        self.window = window
        self.mirror_prob = mirror_prob
        self.random_yaw = random_yaw
        self.seed = seed
        self.sequence = torch.tensor(seq)
        self.starts = torch.tensor(starts)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        k = int(k)
        if k < 0:
            raise IndexError(f"window index must be >= 0, got {k}")
        w = k % len(self)
        s = int(self.starts[w])
        motion = self.motions[int(self.sequence[w])][s - 1: s + self.window]  # N + 1 frames
        g = torch.Generator().manual_seed(_mix(self.seed, k))
        u = torch.rand(2, generator=g, dtype=torch.float64)
        if float(u[0]) < self.mirror_prob:
            motion = motion.mirror()
        if self.random_yaw:
            motion = motion.rotate_about_vertical(float(u[1]) * 2 * math.pi)
        return {
            "x0": motion.rot6d()[1:].float(),
            "cond": Tracking.from_motion(motion).condition().float(),
        }


def source_weights(sources: list[str], balance: float) -> torch.Tensor | None:
    """Sampling weight of each window for temperature sampling over sources
    (``TrainConfig.source_balance``): a window of a source with n windows weighs
    n^(-balance), so that the source's share is proportional to n^(1 - balance).

    sources: the source name of each window. Returns (num_windows,) float64 weights
    summing to 1, or None for balance 0 or a single source (uniform: the plain
    permutation sampler)."""
    if not 0 <= balance <= 1:
        raise ValueError(f"source_balance: must be in [0, 1], got {balance}")
    names = sorted(set(sources))
    if balance == 0 or len(names) < 2:
        return None
    number = {name: i for i, name in enumerate(names)}
    index = torch.tensor([number[s] for s in sources])
    counts = torch.bincount(index, minlength=len(names)).double()
    w = counts.pow(-balance)[index]
    return w / w.sum()


class WindowSampler(Sampler[int]):
    """Shuffled window numbers for one rank; deterministic in (seed, epoch); resumable.

    An epoch is a permutation of the windows (seeded by (seed, epoch)), repeated when
    there are fewer windows than one batch per rank, cut to whole batches: each rank
    gets ``batches_per_epoch`` batches, rank r taking every R-th window from the r-th.
    It yields k = round * num_windows + window, a number unique to each draw, from
    which the dataset seeds the augmentation.

    weights: optional (num_windows,) sampling probabilities (``source_weights``): an
    epoch is then as many draws with replacement (torch.multinomial, at most 2^24
    windows), the i-th draw of the epoch yielding k = (epoch * draws + i) * num_windows
    + window.

    start_step: optimizer steps already done (when resuming); the epoch containing that
    step skips its first batches, so the run continues with the next unseen batch.
    """

    def __init__(self, num_windows: int, batch_size: int, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0, start_step: int = 0, weights: torch.Tensor | None = None):
        if num_windows < 1 or batch_size < 1:
            raise ValueError(f"num_windows and batch_size must be >= 1, got {num_windows}, {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if weights is not None and weights.shape != (num_windows,):
            raise ValueError(f"weights: expected shape ({num_windows},), got {tuple(weights.shape)}")
        if weights is not None and num_windows > _MAX_CATEGORIES:
            raise ValueError(f"source_balance: weighted sampling handles at most {_MAX_CATEGORIES} windows, "
                             f"got {num_windows}; raise window_stride or set source_balance=0")
        self.weights = weights
        self.num_windows = num_windows
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.start_step = start_step
        self.epoch = 0

    @property
    def batches_per_epoch(self) -> int:
        return max(1, self.num_windows // (self.batch_size * self.num_replicas))

    @property
    def rounds_per_epoch(self) -> int:
        """Permutations of the windows drawn per epoch (1 unless the data is tiny)."""
        need = self.batches_per_epoch * self.batch_size * self.num_replicas
        return -(-need // self.num_windows)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self):
        n, bpe = self.num_windows, self.batches_per_epoch
        need = bpe * self.batch_size * self.num_replicas
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        if self.weights is not None:
            draws = torch.multinomial(self.weights, need, replacement=True, generator=g)
            order = (self.epoch * need + torch.arange(need)) * n + draws
        else:
            first_round = self.epoch * self.rounds_per_epoch
            order = torch.cat([torch.randperm(n, generator=g) + (first_round + r) * n
                               for r in range(self.rounds_per_epoch)])[:need]
        mine = order[self.rank::self.num_replicas]
        skip = min(max(self.start_step - self.epoch * bpe, 0), bpe) * self.batch_size
        return iter(mine[skip:].tolist())


# --- the DataModule -------------------------------------------------------------------
class WindowDataModule(L.LightningDataModule):
    """Loads the training split once (``setup``) and serves augmented windows.

    The loader uses this process's rank and world size from the Trainer (Lightning's
    automatic DistributedSampler is turned off: ``use_distributed_sampler=False``) and
    the Trainer's restored global step, so a resumed run continues the data order.
    """

    def __init__(self, data_dir: str | Path, config: TrainConfig):
        super().__init__()
        self.data_dir = Path(data_dir)
        self.config = config
        self.split: TrainingSplit | None = None
        self.windows: TrainingWindows | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.split is not None:
            return
        cfg = self.config
        N = cfg.model.window
        self.split = TrainingSplit.load(self.data_dir, N, cfg.short_sequences, cfg.norm_std_floor,
                                        cfg.train_splits)
        self.windows = TrainingWindows(self.split.motions, N, cfg.window_stride,
                                       cfg.mirror_prob, cfg.random_yaw, cfg.seed)

    def window_sources(self) -> list[str]:
        """The source (``mage.data.sequence_ids.source_of``) of each window's sequence."""
        self.setup("fit")
        return [source_of(self.split.ids[i]) for i in self.windows.sequence.tolist()]

    def source_shares(self) -> dict[str, float]:
        """{source: expected share of the drawn windows} under ``source_balance``."""
        sources = self.window_sources()
        weights = source_weights(sources, self.config.source_balance)
        shares: dict[str, float] = {}
        for i, source in enumerate(sources):
            shares[source] = shares.get(source, 0.0) + (1 / len(sources) if weights is None else float(weights[i]))
        return dict(sorted(shares.items()))

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        trainer = self.trainer
        world, rank, step = ((trainer.world_size, trainer.global_rank, trainer.global_step)
                             if trainer is not None else (1, 0, 0))
        cfg = self.config
        sampler = WindowSampler(len(self.windows), cfg.batch_size, world, rank, cfg.seed, step,
                                weights=source_weights(self.window_sources(), cfg.source_balance))
        cuda = trainer is not None and trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            self.windows, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
            num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0,
            pin_memory=cuda,
        )

"""The evaluation protocol: run a predictor over a data-set split, place, score, average.

A predictor is any ``predict_fn(condition, head_positions) -> local_rotations``:

    condition:       (T, 54) sparse input of the whole sequence (mage.core.tracking)
    head_positions:  (T, 3) tracked head positions, world, metres
    local_rotations: (T, 22, 3, 3) predicted local rotations (joint 0 = root orientation)

A trained model becomes one with ``mage.inference.sequence.model_predict_fn`` (inference
sits above evaluation in the layers: this module never imports it).

Placement follows the community protocol (:func:`place_prediction`): forward kinematics
of the prediction with zero translation, then the whole body is translated so that its
head lands on the tracked head (the translation of the record's ``head_transform``), so
the head error is zero. Ground-truth rotations and positions come from the record.
Metrics are computed per sequence and averaged without weights over sequences
(:mod:`mage.evaluate.metrics`).

The data set is duck-typed (``mage.data.dataset.ProcessedDataset`` in practice): it needs
``ids(split)``, ``load(id)`` and ``fps`` (``root`` is used for the report if present);
a record needs ``rot6d`` (T, 22, 6), ``condition`` (T, 54), ``positions`` (T, 22, 3),
``head_transform`` (T, 4, 4), ``skeleton`` (Skeleton or its JSON) and ``id``; ``fps``,
``source`` and ``subject`` are used when present.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from mage import __version__
from mage.core import rotations as rot
from mage.core.checks import check_finite, check_shape
from mage.core.constants import CONDITION_DIM, HEAD_JOINT, NUM_JOINTS
from mage.core.kinematics import place_by_head
from mage.core.skeleton import Skeleton
from mage.evaluate.metrics import METRIC_KEYS, MIN_FRAMES, aggregate, sequence_metrics

PredictFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SequenceResult:
    """Metrics of one sequence (one seed)."""

    id: str
    frames: int
    metrics: dict[str, float]
    source: str = ""
    subject: str = ""
    seed: int | None = None


@dataclass
class EvalResult:
    """One method on one split: per-sequence rows, the mean, and how it was run.

    ``metrics`` is the unweighted mean over sequences (for several seeds: the mean over
    seeds of each seed's mean); ``spread`` the sample standard deviation (n - 1) over
    seeds of those means (empty with fewer than two seeds); ``per_seed`` each seed's mean.
    ``seeds`` is empty for deterministic methods (baselines).
    ``settings`` holds the run's facts for the report (checkpoint, mode, steps, device...).
    """

    method: str
    split: str
    dataset_root: str
    fps: float
    sequences: list[SequenceResult]
    metrics: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)
    per_seed: list[dict[str, float]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the whole evaluation (all seeds)
    predict_seconds: float = 0.0  # time spent inside predict_fn (all seeds)
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def num_sequences(self) -> int:
        return len({s.id for s in self.sequences})

    @property
    def num_frames(self) -> int:
        """Frames of the evaluated sequences (each sequence once, whatever the seeds)."""
        return sum({s.id: s.frames for s in self.sequences}.values())


# --- one record ----------------------------------------------------------------------
def _tensor(rec, name: str) -> torch.Tensor:
    if not hasattr(rec, name):
        raise ValueError(f"record {getattr(rec, 'id', '?')!r}: missing field {name!r}")
    return torch.as_tensor(getattr(rec, name))


def record_skeleton(rec) -> Skeleton:
    """The record's skeleton (a Skeleton, or its JSON string / dict as stored in npz)."""
    sk = getattr(rec, "skeleton", None)
    if isinstance(sk, Skeleton):
        return sk
    if sk is None:
        raise ValueError(f"record {getattr(rec, 'id', '?')!r}: missing field 'skeleton'")
    if hasattr(sk, "item") and not isinstance(sk, (str, dict)):  # 0-d numpy string array
        sk = sk.item()
    if isinstance(sk, str):
        sk = json.loads(sk)
    return Skeleton.from_dict(sk)


def record_head_positions(rec) -> torch.Tensor:
    """(T, 3) tracked head positions: the translation of ``rec.head_transform``."""
    M = _tensor(rec, "head_transform")
    check_shape(M, "head_transform", (4, 4))
    return M[..., :3, 3]


def place_prediction(local_rotations: torch.Tensor, head_positions: torch.Tensor,
                     skeleton: Skeleton) -> torch.Tensor:
    """(T, 22, 3) world positions of a prediction placed by the tracked head (float64).

    local_rotations: (T, 22, 3, 3); head_positions: (T, 3). See module docstring.
    """
    fk, _ = place_by_head(local_rotations.double(), head_positions.double(), skeleton,
                          head_joint=HEAD_JOINT)
    return fk.positions


def evaluate_sequence(pred_rotations: torch.Tensor, rec, fps: float) -> dict[str, float]:
    """Place a prediction (T, 22, 3, 3) for record ``rec`` and score it."""
    gt_rot = rot.rot6d_to_matrix(_tensor(rec, "rot6d").double())
    gt_pos = _tensor(rec, "positions").double()
    pred_pos = place_prediction(pred_rotations, record_head_positions(rec), record_skeleton(rec))
    return sequence_metrics(pred_rotations.double(), gt_rot, pred_pos, gt_pos, fps)


def _check_prediction(pred, T: int, sid: str) -> torch.Tensor:
    if not isinstance(pred, torch.Tensor):
        raise ValueError(f"{sid}: predict_fn returned {type(pred).__name__}, expected a torch.Tensor")
    if tuple(pred.shape) != (T, NUM_JOINTS, 3, 3):
        raise ValueError(
            f"{sid}: predict_fn returned shape {tuple(pred.shape)}, expected local rotation "
            f"matrices ({T}, {NUM_JOINTS}, 3, 3) (convert 6D with rot6d_to_matrix)"
        )
    pred = pred.detach().cpu()
    check_finite(pred, f"{sid}: prediction")
    return pred


# --- a whole split -------------------------------------------------------------------
def evaluate(
    predict_fn: PredictFn,
    dataset,
    split: str = "test",
    *,
    method: str = "model",
    seed: int | None = None,
    settings: dict | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """Predict every sequence of ``split`` with ``predict_fn``, place, score, average.

    ``seed`` is only recorded (the predictor owns its randomness); ``limit`` keeps the
    first N sequences (smoke tests); ``settings`` is copied into the report.
    """
    ids = list(dataset.ids(split))
    root = str(getattr(dataset, "root", ""))
    if not ids:
        raise ValueError(f"split {split!r} of the data set {root or dataset!r} has no sequences")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit: expected a positive number of sequences, got {limit}")
        ids = ids[:limit]
    t_start = time.perf_counter()
    predict_seconds = 0.0
    rows: list[SequenceResult] = []
    for sid in tqdm(ids, desc=f"eval {method} [{split}]", unit="seq", disable=not progress):
        rec = dataset.load(sid)
        cond = _tensor(rec, "condition")
        check_shape(cond, f"{sid}: condition", (CONDITION_DIM,))
        T = cond.shape[0]
        head = record_head_positions(rec)
        if head.shape[0] != T:
            raise ValueError(f"{sid}: head_transform has {head.shape[0]} frames, condition {T}")
        t0 = time.perf_counter()
        with torch.no_grad():
            pred = predict_fn(cond, head)
        predict_seconds += time.perf_counter() - t0
        pred = _check_prediction(pred, T, sid)
        fps = float(getattr(rec, "fps", None) or dataset.fps)
        rows.append(SequenceResult(
            id=str(getattr(rec, "id", sid)), frames=T, metrics=evaluate_sequence(pred, rec, fps),
            source=str(getattr(rec, "source", "") or ""), subject=str(getattr(rec, "subject", "") or ""),
            seed=seed,
        ))
    mean = aggregate(r.metrics for r in rows)
    settings = dict(settings or {})
    return EvalResult(
        method=method, split=split, dataset_root=root, fps=float(dataset.fps), sequences=rows,
        metrics=mean, per_seed=[mean], seeds=[] if seed is None else [seed], settings=settings,
        seconds=time.perf_counter() - t_start, predict_seconds=predict_seconds,
        machine=machine_info(settings.get("device", "cpu")),
    )


def ground_truth_metrics(pred, gt) -> dict[str, float] | None:
    """Protocol metrics of a predicted Motion against the ground-truth Motion it was
    predicted from, over frames 1..T-1 (frame 0 has no condition), the prediction placed
    on the ground truth's skeleton by the tracked head (as :func:`evaluate` does).
    None when the motion is too short for the metrics (jitter needs MIN_FRAMES)."""
    if gt.num_frames - 1 < MIN_FRAMES:
        return None
    gt_pos = gt.joint_positions().double()
    pred_pos = place_prediction(pred.rotations, gt_pos[:, HEAD_JOINT], gt.skeleton)
    return sequence_metrics(pred.rotations[1:].double(), gt.rotations[1:].double(),
                            pred_pos[1:], gt_pos[1:], gt.fps)


def combine_seeds(results: Sequence[EvalResult]) -> EvalResult:
    """Merge runs of one method that differ only by seed: mean and spread over seeds.

    Each run is first averaged over its sequences; ``metrics`` is the mean of those
    per-seed means and ``spread`` their sample standard deviation (n - 1).
    """
    results = list(results)
    if not results:
        raise ValueError("combine_seeds: no results")
    first = results[0]
    ids = [s.id for s in first.sequences]
    for r in results[1:]:
        if (r.method, r.split, r.dataset_root) != (first.method, first.split, first.dataset_root):
            raise ValueError("combine_seeds: results come from different methods, splits or data sets")
        if [s.id for s in r.sequences] != ids:
            raise ValueError("combine_seeds: results cover different sequences")
    per_seed = [r.metrics for r in results]
    n = len(per_seed)
    mean = {k: math.fsum(m[k] for m in per_seed) / n for k in METRIC_KEYS if k in first.metrics}
    spread = {}
    if n > 1:
        spread = {k: math.sqrt(math.fsum((m[k] - mean[k]) ** 2 for m in per_seed) / (n - 1))
                  for k in mean}
    return EvalResult(
        method=first.method, split=first.split, dataset_root=first.dataset_root, fps=first.fps,
        sequences=[s for r in results for s in r.sequences], metrics=mean, spread=spread,
        per_seed=per_seed, seeds=[s for r in results for s in r.seeds], settings=dict(first.settings),
        seconds=sum(r.seconds for r in results),
        predict_seconds=sum(r.predict_seconds for r in results), machine=dict(first.machine),
    )


# --- provenance ----------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: str | torch.device = "cpu") -> dict[str, str]:
    """CPU model, GPU name (if the device is CUDA), versions: for the report."""
    device = torch.device(device)
    gpu = "none"
    if device.type == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(device)
    return {
        "cpu": _cpu_model(),
        "cpu_threads": str(torch.get_num_threads()),
        "gpu": gpu,
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "mage": __version__,
    }

"""``TrainConfig``: every setting of a training run, typed and validated.

One flat dataclass (the model's own settings are a nested ``MageConfig``). Every field
is read by the training code; none is decorative. The resolved config is written as
``RUN/train_config.json`` and beside every checkpoint, and ``from_dict(to_dict())``
round-trips.

In a config file (JSON or YAML) the ``model`` entry is one of
    "mage-small"                                   a preset name
    {"preset": "mage-small", "width": 256, ...}    a preset with overrides
    {"window": 40, "width": 128, ...}              a MageConfig dict (missing keys: defaults)
and unknown keys anywhere raise ``ValueError`` listing the valid ones.

Pure Python: importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mage.core.atomic import atomic_write
from mage.model.config import MageConfig
from mage.typed_config import check_config_keys, coerce

DEFAULT_PRESET = "mage-paper"
ACCELERATORS = ("auto", "cpu", "gpu")
STRATEGIES = ("auto", "ddp")
PRECISIONS = ("32", "bf16-mixed")
SHORT_SEQUENCE_RULES = ("pad", "skip")
# The CPU preset: `mage train` fills these in for the settings a CPU run leaves unset
# (the dataclass defaults suit a GPU). On a 2-core CPU, mage-small with batch 256 and two
# data-loader processes competing with the training process for the cores took ~15 s
# per step; batch 64 in the training process alone takes ~0.4 s (one thread, see the
# latency benchmark's threads section), as the bundled cmu-small
# was trained. bf16 is GPU-only; log_every 10 gives a loss curve within minutes.
CPU_DEFAULTS = {"batch_size": 64, "num_workers": 0, "precision": "32", "log_every": 10}
# Settings that may change when a run is resumed (how and where it runs, not what it
# learns); any other difference from the run's saved config is refused on --resume.
RUNTIME_FIELDS = ("max_steps", "num_workers", "checkpoint_every", "log_every",
                  "accelerator", "devices", "num_nodes", "strategy", "precision")


@dataclass
class TrainConfig:
    """Settings of one training run.

    Model
        model: the MageConfig to train (its ``window`` is the training window N).
    Optimisation (AdamW, linear warm-up then cosine decay, per optimizer step)
        batch_size: windows per process per step (global batch = batch_size x devices
            x num_nodes).
        lr, weight_decay: AdamW (AGRoL's 3e-4 and 1e-4).
        warmup_steps: linear warm-up from 0 to lr; then cosine decay to
            lr * min_lr_ratio at max_steps.
        max_steps: optimizer steps of the whole run.
        grad_clip: max global gradient L2 norm; 0 disables clipping.
        ema_decay: decay of the exponential moving average of the weights that is saved
            for inference (0 = the raw weights). ema_warmup: use
            min(ema_decay, (1 + n) / (10 + n)) at update n, so that short runs give
            a usable average.
    Data (windows of N frames of the training splits; mage.train.data)
        train_splits: the dataset's splits to train on (default "train"; a final model
            may be refit on ``train,val`` once its settings were chosen on val).
        mirror_prob: probability of mirroring a window left/right (Motion.mirror).
        random_yaw: rotate each window by a uniform random angle about the vertical.
        window_stride: frames between the start frames of the windows of one epoch.
        source_balance: alpha in [0, 1] of temperature sampling over the sources
            (``mage.data.sequence_ids.source_of``): a source with n windows is drawn with
            probability proportional to n^(1 - alpha). 0 draws every window equally
            (sources in proportion to their size, one permutation per epoch); 1 gives
            every source the same share; any alpha > 0 with two or more sources draws
            with replacement. A recipe's sources are its source folders; a plain build
            groups by the top folder under the source, which for a folder of CMU
            subject folders means one source per subject. The multilingual
            sampling of Conneau & Lample, "Cross-lingual Language Model Pretraining"
            (NeurIPS 2019), there with q_i proportional to p_i^(1 - alpha).
        short_sequences: sequences with fewer than N + 1 frames are "pad"ded at the
            front by repeating their first frame, or "skip"ped.
        norm_std_floor: floor of the per-channel std of the condition normalisation.
        num_workers: DataLoader worker processes per training process.
    Bookkeeping
        checkpoint_every: steps between checkpoints (one is also written at the end).
        log_every: steps between logged losses (CSV and progress bar).
        seed: model initialisation, data order, augmentation and diffusion noise.
    Hardware (Lightning Trainer arguments)
        accelerator: "auto", "cpu" or "gpu"; devices: processes per node ("auto" or an
            int); num_nodes; strategy: "auto" or "ddp"; precision: "32" or
            "bf16-mixed" (GPU only: on CPU the run falls back to "32" with a warning,
            and the saved config says "32").
    """

    model: MageConfig = field(default_factory=lambda: MageConfig.preset(DEFAULT_PRESET))
    # --- optimisation ---
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    max_steps: int = 200_000
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True
    # --- data ---
    train_splits: tuple[str, ...] = ("train",)
    mirror_prob: float = 0.5
    random_yaw: bool = True
    window_stride: int = 1
    source_balance: float = 0.0
    short_sequences: str = "pad"
    norm_std_floor: float = 1e-3
    num_workers: int = 2
    # --- bookkeeping ---
    checkpoint_every: int = 5000
    log_every: int = 50
    seed: int = 0
    # --- hardware ---
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "bf16-mixed"

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self._validate()

    def _validate(self) -> None:
        for name in ("batch_size", "max_steps", "window_stride", "checkpoint_every",
                     "log_every", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "num_workers", "weight_decay", "grad_clip", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: must be a positive number, got {self.lr}")
        for name in ("min_lr_ratio", "mirror_prob", "source_balance"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        if self.norm_std_floor <= 0:
            raise ValueError(f"norm_std_floor: must be > 0, got {self.norm_std_floor}")
        if (not self.train_splits or {"test", "all"} & set(self.train_splits)
                or len(set(self.train_splits)) != len(self.train_splits)):
            raise ValueError(f"train_splits: name one or more different splits, never test or all; got "
                             f"{list(self.train_splits)}")
        _check_choice("short_sequences", self.short_sequences, SHORT_SEQUENCE_RULES)
        _check_choice("accelerator", self.accelerator, ACCELERATORS)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("precision", self.precision, PRECISIONS)
        if isinstance(self.devices, str) and self.devices != "auto":
            raise ValueError(f"devices: expected 'auto' or an integer >= 1, got {self.devices!r}")
        if isinstance(self.devices, int) and self.devices < 1:
            raise ValueError(f"devices: must be >= 1, got {self.devices}")

    # --- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the model as a full MageConfig dict."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a (partial) dict; missing fields take defaults, unknown keys raise."""
        check_config_keys(d, cls, "train config")
        d = dict(d)
        if "model" in d:
            d["model"] = model_config(d["model"])
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a .json or .yaml/.yml file."""
        return cls.from_dict(read_config_file(path))

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomically)."""
        with atomic_write(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.write("\n")

    def with_overrides(self, assignments: list[str] | tuple[str, ...]) -> TrainConfig:
        """A copy with ``key=value`` assignments applied (the CLI's ``--set``).

        Keys are field names, ``model.<field>`` for the model, ``model.<field>.<key>``
        inside a dict-valued model field (``model.depth.S3=6``). Values are parsed by
        the type of the field they replace (numbers, true/false, JSON lists/objects).
        """
        d = self.to_dict()
        for text in assignments:
            key, sep, raw = text.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set: expected key=value, got {text!r}")
            path = key.split(".")
            node = d
            for depth, part in enumerate(path[:-1]):
                child = node.get(part) if isinstance(node, dict) else None
                if not isinstance(child, dict):
                    where = ".".join(path[: depth + 1])
                    raise ValueError(f"--set {key}: {where!r} is not a section; valid keys here: "
                                     f"{', '.join(node) if isinstance(node, dict) else '(none)'}")
                node = child
            last = path[-1]
            if last not in node:
                parent = ".".join(path[:-1]) or "train config"
                raise ValueError(f"--set {key}: unknown key {last!r} in {parent}; valid keys: "
                                 f"{', '.join(node)}")
            node[last] = _parse_like(key, raw.strip(), node[last])
        return type(self).from_dict(d)

    def differences(self, other: TrainConfig) -> list[str]:
        """Dotted names of the settings that differ (``model.width``, ``lr``, ...)."""
        a, b = self.to_dict(), other.to_dict()
        out = [k for k in a if k != "model" and a[k] != b[k]]
        out += [f"model.{k}" for k in a["model"] if a["model"][k] != b["model"].get(k)]
        return out


# --- helpers --------------------------------------------------------------------------
def model_config(spec: Any) -> MageConfig:
    """A MageConfig from a preset name, {"preset": name, **overrides}, a dict or itself."""
    if isinstance(spec, MageConfig):
        return spec
    if isinstance(spec, str):
        return MageConfig.preset(spec)
    if isinstance(spec, dict):
        if "preset" in spec:
            overrides = {k: v for k, v in spec.items() if k != "preset"}
            return MageConfig.preset(spec["preset"]).with_overrides(**overrides)
        return MageConfig.from_dict(spec)
    raise ValueError(f"model: expected a preset name or a mapping, got {spec!r}")


def read_config_file(path: str | Path) -> dict:
    """The mapping in a .json / .yaml / .yml file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({err})") from None
    else:
        raise ValueError(f"{path}: unknown config format {suffix!r}; use .json, .yaml or .yml")
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(d).__name__}")
    return d


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}: unknown {value!r}; valid: {', '.join(valid)}")


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """mage.typed_config.coerce (numeric strings allowed: YAML 1.1 reads 1e-4 as a
    string), plus the nested model config and YAML's `precision: 32`."""
    if tp is MageConfig:
        return model_config(value)
    if name == "precision" and value in (32, "32-true"):
        return "32"
    return coerce(name, value, tp, numeric_strings=True)


def _parse_like(key: str, raw: str, current: Any) -> Any:
    """Parse the text of ``--set key=raw`` as the type of the value it replaces."""
    if isinstance(current, bool):
        low = raw.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"--set {key}: expected true or false, got {raw!r}")
    if isinstance(current, (int, float)):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            try:
                value = float(raw)
            except ValueError:
                value = raw  # e.g. devices=auto; validated by from_dict
        return value
    if isinstance(current, tuple) and not raw.lstrip().startswith("["):
        return [part.strip() for part in raw.split(",") if part.strip()]  # train_splits=train,val
    if isinstance(current, (list, tuple, dict)):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"--set {key}: expected JSON ({err}), got {raw!r}") from None
    if isinstance(current, str) and raw.isdigit() and key == "devices":
        return int(raw)
    return raw

"""Typed configuration of the MAGE model, and the named presets.

One flat, frozen dataclass (like nanoGPT's ``GPTConfig``); every field is validated and
type-checked on construction, so a config that builds is a config the model honours.
Dict-valued fields are keyed by scale name ("S0".."S3"); entries for scales that are not
in ``scales`` are kept (so that overriding ``scales`` alone works) but unused.

Pure Python: importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mage.core.constants import DEFAULT_GROUPS, NUM_JOINTS, S3_GROUPS, SCALE_ORDER
from mage.typed_config import check_config_keys, coerce

DESIGNS = ("gradual", "sequential")  # the values of MageConfig.mode
FUSIONS = ("c+f", "c+frec", "c+f+frec")
XT_INPUTS = ("all", "first")
BLOCKS = ("mlp", "transformer")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
#: numeric precision of sampling (:class:`mage.model.pipeline.MagePipeline`), all but "fp32"
#: approximations with a measured accuracy cost (measured by the latency benchmark):
#: "fp32" (the default); "bf16" (torch.autocast: bfloat16 matrix products, the DDIM update
#: in float32; fast on CPUs with AVX512-BF16 or AMX); "int8" (CPU only: a copy of the model
#: whose feature-MLP layers, most of the FLOPs, use PyTorch's dynamic int8 quantisation;
#: for CPUs without bfloat16 support). Here, torch-free, so that options check it cheaply.
PRECISIONS = ("fp32", "bf16", "int8")


def check_steps(steps: int | None, name: str = "steps") -> int | None:
    """The DDIM steps of one sample: None (= the config's ``sampling_steps``) or an
    integer >= 1; anything else is a ValueError naming ``name`` (e.g. "--steps")."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"{name}: expected a positive number of DDIM steps, got {steps}")
    return int(steps)


@dataclass(frozen=True)
class MageConfig:
    """Architecture, diffusion and loss settings of one MAGE model (= preset "mage-paper").

    Window
        window: N, frames per window; the network is built for exactly N frames.
    Structure
        scales: the stages, coarse to fine, a subsequence of S0 (1 node), S1 (6),
            S2 (11), S3 (22 joints) that ends with S3. ("S3",) is the single-stage
            AGRoL-like baseline.
        mode: "gradual" = one network whose stages are chained inside one denoising call
            (the paper's); "sequential" = one diffusion model per stage, each denoising
            its own scale's state and conditioned on the previous stage's sample.
        fusion: what stage k > 1 receives besides the condition C: "c+f" (previous
            latent F), "c+frec" (embedding F_rec of the previous decoded state), or
            "c+f+frec". Sequential has no shared latent, so only "c+frec" there.
        xt_input: which stages see the noisy sample x_t in gradual mode: "first" (stage 1
            only; later stages get C, F, F_rec as the paper describes) or "all" (each
            stage also fuses its own embedding of x_t). "first" is the default because
            "all" lets per-frame noise reach the output through every stage: on the CMU
            benchmark (research/cmu_mini) it had 2.5x the jitter.
        block: temporal block inside a stage, "mlp" (AGRoL-style) or "transformer".
        width: latent width D; depth: blocks per stage, keyed by scale.
        mlp_ratio: hidden width of the feature MLPs = mlp_ratio * width.
        heads: attention heads (transformer blocks only); dropout: in the blocks.
        groups: joint groups of the coarse scales S0..S2 (nested partitions of 0..21).
    Diffusion
        train_timesteps: T of the forward process (cosine schedule, x0 prediction).
        sampling_steps: DDIM steps at inference; eta: DDIM stochasticity (0 =
            deterministic given the initial noise); init_noise_scale: multiplies the
            initial standard-normal sample; timestep_spacing: see DDIMScheduler.
    Loss
        stage_loss_weights: weight of each stage's loss, keyed by scale.
        node_position_weight: weight of the centroid (metres) part of a coarse node's
            loss, relative to its 6D rotation part.
        fk_position_weight, velocity_weight, acceleration_weight: final-stage FK joint
            position (m), velocity (m/frame) and acceleration (m/frame^2) terms.
    """

    # --- window ---
    window: int = 120
    # --- structure ---
    scales: tuple[str, ...] = ("S1", "S2", "S3")
    mode: str = "gradual"
    fusion: str = "c+f+frec"
    xt_input: str = "first"
    # "mlp" by measurement (see mage.model.network.MixerBlock): on 2 CPU cores it is
    # ~1.3-1.45x faster than a transformer of the same width and depth, and overfits faster.
    block: str = "mlp"
    width: int = 512
    # 4 blocks per stage: 12 over the 3 stages, the depth of AGRoL's 12-block MLP.
    depth: dict[str, int] = field(default_factory=lambda: {"S0": 4, "S1": 4, "S2": 4, "S3": 4})
    # 1.0 keeps mage-paper (~8.6 M parameters) in the size class of AGRoL's 7.5 M MLP,
    # so that the single-stage ablation compares with it at similar capacity.
    mlp_ratio: float = 1.0
    heads: int = 8
    dropout: float = 0.0
    groups: dict[str, tuple[tuple[int, ...], ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    # --- diffusion ---
    train_timesteps: int = 1000
    sampling_steps: int = 4
    eta: float = 0.0
    init_noise_scale: float = 1.0
    timestep_spacing: str = "trailing"
    # --- loss ---
    # Final stage 1.0 (it is what is evaluated); coarse stages 0.5: enough to make the
    # decoded states that F_rec embeds meaningful, without outweighing the output. The
    # paper does not publish its weights.
    stage_loss_weights: dict[str, float] = field(
        default_factory=lambda: {"S0": 0.5, "S1": 0.5, "S2": 0.5, "S3": 1.0})
    node_position_weight: float = 1.0
    # FK positions on (AvatarPoser's finding: rotation-only losses let errors accumulate
    # down the leg chains); velocity off by default (AGRoL gets smooth output without
    # it); both are ablation knobs.
    fk_position_weight: float = 1.0
    velocity_weight: float = 0.0
    # Second differences weigh an error's high frequencies by omega^2 (velocity: omega):
    # a term aimed at frame-to-frame jitter. Off by default: at weight 20 on the full
    # recipe it halved the jitter but cost 15% MPJPE and damped the stride; the bundled
    # recipe's weight 2 was chosen on the val split (research/recipe_ablation).
    acceleration_weight: float = 0.0

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, coerce(f.name, getattr(self, f.name), hints[f.name]))
        self._validate()

    # --- validation -----------------------------------------------------------------
    def _validate(self) -> None:
        self._validate_settings()
        self._validate_scales()
        self._validate_groups()
        if self.mode == "sequential" and len(self.scales) > 1:
            self._validate_sequential()
        # Nesting and chain structure are checked where the hierarchy is built (torch).

    def _validate_settings(self) -> None:
        """Choices, sizes and weights, each on its own."""
        _check_choice("mode", self.mode, DESIGNS)
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("xt_input", self.xt_input, XT_INPUTS)
        _check_choice("block", self.block, BLOCKS)
        _check_choice("timestep_spacing", self.timestep_spacing, TIMESTEP_SPACINGS)
        for name in ("window", "width", "heads", "train_timesteps", "sampling_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.sampling_steps > self.train_timesteps:
            raise ValueError(
                f"sampling_steps: {self.sampling_steps} exceeds train_timesteps {self.train_timesteps}")
        if self.block == "transformer" and self.width % self.heads:
            raise ValueError(f"width: {self.width} is not divisible by heads={self.heads}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio: must be > 0, got {self.mlp_ratio}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")
        if self.eta < 0 or self.init_noise_scale <= 0:
            raise ValueError("eta must be >= 0 and init_noise_scale > 0, got "
                             f"eta={self.eta}, init_noise_scale={self.init_noise_scale}")
        for name in ("node_position_weight", "fk_position_weight", "velocity_weight",
                     "acceleration_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.velocity_weight > 0 and self.window < 2:
            raise ValueError("velocity_weight: a velocity term needs window >= 2")
        if self.acceleration_weight > 0 and self.window < 3:
            raise ValueError("acceleration_weight: an acceleration term needs window >= 3")

    def _validate_scales(self) -> None:
        """scales: an increasing subsequence of S0..S3 that ends with S3; every used
        scale has a depth and a loss weight."""
        bad = [s for s in self.scales if s not in SCALE_ORDER]
        if bad:
            raise ValueError(f"scales: unknown {bad}; valid: {', '.join(SCALE_ORDER)}")
        order = [SCALE_ORDER.index(s) for s in self.scales]
        if not self.scales or self.scales[-1] != "S3" or order != sorted(set(order)):
            raise ValueError(
                f"scales: must run coarse to fine without repeats and end with 'S3' "
                f"(e.g. ('S3',), ('S2', 'S3'), ('S1', 'S2', 'S3')), got {self.scales}")
        for name, table in (("depth", self.depth), ("stage_loss_weights", self.stage_loss_weights)):
            unknown = sorted(set(table) - set(SCALE_ORDER))
            if unknown:
                raise ValueError(f"{name}: unknown scale(s) {unknown}; valid: {', '.join(SCALE_ORDER)}")
            missing = [s for s in self.scales if s not in table]
            if missing:
                raise ValueError(f"{name}: no entry for scale(s) {missing} used in scales={self.scales}")
        if any(self.depth[s] < 1 for s in self.scales):
            raise ValueError(f"depth: every used stage needs >= 1 block, got {self.depth}")
        if any(w < 0 for w in self.stage_loss_weights.values()):
            raise ValueError(f"stage_loss_weights: must be >= 0, got {self.stage_loss_weights}")

    def _validate_groups(self) -> None:
        """groups: a partition of the 22 joints for every coarse scale used."""
        unknown = sorted(set(self.groups) - set(SCALE_ORDER[:-1]))
        if unknown:
            raise ValueError(f"groups: unknown scale(s) {unknown}; valid: S0, S1, S2 "
                             "(S3 is always the 22 joints)")
        missing = [s for s in self.scales[:-1] if s not in self.groups]
        if missing:
            raise ValueError(f"groups: no grouping for scale(s) {missing}")
        for scale, groups in self.groups.items():
            flat = sorted(j for g in groups for j in g)
            if flat != list(range(NUM_JOINTS)):
                raise ValueError(f"groups[{scale!r}]: must partition joints 0..21 exactly once")

    def _validate_sequential(self) -> None:
        """The sequential design has no latent shared between stages, and every stage
        reads its own noisy state."""
        if self.fusion != "c+frec":
            raise ValueError(
                f"fusion: {self.fusion!r} needs a latent F shared between stages, which "
                "mode='sequential' (separate models) does not have; use fusion='c+frec'")
        if self.xt_input != "all":
            raise ValueError("xt_input: mode='sequential' gives every stage its own noisy "
                             "sample; only xt_input='all' is valid there")

    # --- derived ----------------------------------------------------------------------
    def num_nodes(self, scale: str) -> int:
        """Nodes of ``scale`` (22 for S3)."""
        return NUM_JOINTS if scale == "S3" else len(self.groups[scale])

    def hierarchy(self):
        """The ``ScaleHierarchy`` of the used scales (validates nesting and chains)."""
        # imported here: ScaleHierarchy needs torch, and this module stays torch-free
        from mage.core.multiscale import ScaleHierarchy  # noqa: PLC0415

        groups = {s: self.groups[s] for s in self.scales[:-1]}
        groups["S3"] = S3_GROUPS
        return ScaleHierarchy(groups=groups)

    # --- (de)serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists); ``from_dict(to_dict())`` round-trips."""
        return _to_plain({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MageConfig:
        """Build from a (partial) dict; missing fields take defaults, unknown keys raise."""
        check_config_keys(d, cls, "config")
        return cls(**d)

    def with_overrides(self, **overrides: Any) -> MageConfig:
        """A copy with fields replaced; dict-valued fields are MERGED (so
        ``with_overrides(depth={"S3": 6})`` changes only S3's depth)."""
        valid = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ValueError(f"config: unknown key(s) {unknown}; valid keys: {', '.join(valid)}")
        merged = self.to_dict()
        for key, value in overrides.items():
            if isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return type(self).from_dict(merged)

    @classmethod
    def preset(cls, name: str) -> MageConfig:
        """A named preset (see ``PRESETS``)."""
        if name not in _PRESETS:
            raise ValueError(f"preset: unknown {name!r}; known: {', '.join(_PRESETS)}")
        base, overrides, _ = _PRESETS[name]
        cfg = cls() if base is None else cls.preset(base)
        return cfg.with_overrides(**overrides)


# --- presets: (base preset or None for the defaults, overrides, description) ---------
# Ablations keep mage-paper's total depth (12 blocks) so that they compare structure,
# not capacity.
_PRESETS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "mage-paper": (None, {}, ("the paper's setting: S1+S2+S3 gradual, [C+F+F_rec], width 512, "
                              "window 120, 4 DDIM steps")),
    # Sized on 2 shared CPU cores for online use (one 4-step sample per frame on a causal
    # window, budget p95 <= 11 ms): measured 4.9 ms (2 threads) / 6.3 ms (1 thread) median
    # per 4-step sample at batch 1, and 10-15k frames/s offline at batch 64; width 192 with
    # the same depth took ~1.4x as long, transformer blocks ~1.4x as long.
    "mage-small": (None, {"window": 48, "width": 160, "depth": {"S1": 2, "S2": 2, "S3": 2},
                          "mlp_ratio": 2.0},
                   "real-time on a 2-core CPU: S1+S2+S3, width 160, window 48, 6 blocks"),
    "ablation-s3": ("mage-paper", {"scales": ("S3",), "depth": {"S3": 12}},
                    "single stage S3 (AGRoL-like baseline), 12 blocks"),
    "ablation-s2s3": ("mage-paper", {"scales": ("S2", "S3"), "depth": {"S2": 6, "S3": 6}},
                      "two stages S2+S3, 6 blocks each"),
    "ablation-s0": ("mage-paper", {"scales": ("S0", "S1", "S2", "S3"),
                                   "depth": {"S0": 3, "S1": 3, "S2": 3, "S3": 3}},
                    "four stages S0+S1+S2+S3, 3 blocks each"),
    "ablation-cf": ("mage-paper", {"fusion": "c+f"}, "fusion [C+F] (no F_rec)"),
    "ablation-cfrec": ("mage-paper", {"fusion": "c+frec"}, "fusion [C+F_rec] (no latent F)"),
    "ablation-sequential": ("mage-paper", {"mode": "sequential", "fusion": "c+frec", "xt_input": "all"},
                            ("one diffusion model per stage, each conditioned on the "
                             "previous stage's sample")),
}
PRESETS: tuple[str, ...] = tuple(_PRESETS)
PRESET_DESCRIPTIONS = MappingProxyType({name: desc for name, (_, _, desc) in _PRESETS.items()})


# --- helpers ------------------------------------------------------------------------
def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}: unknown {value!r}; valid: {', '.join(valid)}")


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value

"""Where does a multi-stage model's error come from? Stage states and oracle stages.

    python -m research.diagnosis.stage_diagnosis --data data/full --runs runs/full_scales_plateau \\
        --variants mage_seed0 s2s3_seed0 --every 2 --name full_scales_plateau_stages

For each finished gradual run (``RUNS/<variant>/final``), offline seed 0 on every
``--every``-th test clip, the protocol metrics (``mage.evaluate.protocol.evaluate``) of:

- ``plain``: the model as trained. A :class:`StageProbe` also scores the state each coarse
  stage decodes at the last DDIM step against the ground truth pooled to that scale (the
  target of its loss, ``mage.model.losses.pooled_targets``): node position error (cm; a
  node's position is its joints' centroid relative to the pelvis) and rotation error
  (degrees, geodesic, of the node's proximal joint's world rotation), and node velocity
  error (cm/s, frame-to-frame differences within a window: is the state smooth?). Each
  window is averaged over its rows (a short clip's front padding left out; rows two
  windows share count in both) and each window counts once; the states are the raw
  per-window outputs, before blending, relative to the pelvis: comparable between models,
  not with the protocol's MPJVE.
  Also the seed spread: the mean distance (cm) between the joints (FK, pelvis at the
  origin) predicted from the initial noise of seed 0 and of seed 1. How much of the
  output is the noise?
- ``oracle Sk`` (only where the stage after Sk embeds Sk's state, F_rec): at every network
  call the next stage reads the ground-truth pooled Sk state in place of Sk's prediction.
  The latent F is left as computed. How much of the final error is Sk's error passed on?
- with ``--sampling``, the plain model sampled otherwise (:data:`SAMPLING`): 8 DDIM steps
  instead of the config's, and an initial noise scaled by 0.001 (x_T near 0). Is the
  jitter the noise the sampler starts from?

Writes ``OUT/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from benchmarks.common import Subset, finished_runs_parser, write_json_and_markdown

HEADLINE = ("mpjre", "mpjpe", "mpjve", "jitter", "h_pe", "l_pe")
STATE_ERRORS = ("position_cm", "rotation_deg", "velocity_cm_s")
#: --sampling conditions: label -> MageConfig overrides used at sampling time only
SAMPLING = {"8 DDIM steps": {"sampling_steps": 8}, "initial noise x0.001": {"init_noise_scale": 1e-3}}
METERS_TO_CM = 100.0
# The windows of one clip are found again from the condition the network reads; a
# window's rows are the clip's rows, normalised by the same op, so they match exactly.
MATCH_TOLERANCE = 1e-5


def state_reading_scales(model) -> list[str]:
    """The coarse scales whose decoded state the next stage embeds (F_rec), coarse to fine:
    the ones an oracle can replace."""
    stages = list(model.net.stages)
    return [s for k, s in enumerate(stages[:-1]) if model.net.stages[stages[k + 1]].rec_embed is not None]


class StageProbe:
    """Hooks on a gradual ``MageModel`` that score its coarse stages and can replace the
    state a stage hands to the next one by the ground truth (offline prediction only).

    Call :meth:`set_clip` with each record before predicting it; the probe finds each
    window of a network call among the clip's offline windows
    (``mage.inference.sequence.window_starts``, overlap N // 4, or the front-padded window
    of a short clip), so the ground truth it compares with or substitutes is that window's.

    oracle: scales whose state the next stage reads from the ground truth instead.
    fps: frame rate of the clips (for the velocity error).
    errors: {scale: {"position_cm": [n], "rotation_deg": [n], "velocity_cm_s": [n],
    "windows": int}}, sums at the last DDIM step (timestep ``last_t``), per node;
    :meth:`summary` averages them. Key ``"S3@Sk"``: the final stage's 22-joint output
    pooled to the nodes of the stage before it, Sk, scored the same way (does the final
    stage keep, add or remove the error of the state it reads?).
    """

    def __init__(self, model, fps: float, oracle: tuple[str, ...] = (), last_t: int | None = None):
        from mage.core.skeleton import Skeleton
        from mage.model.scheduler import DDIMScheduler

        cfg = model.config
        if cfg.mode != "gradual":
            raise ValueError("StageProbe: a gradual model is needed (its stages run in one call)")
        stages = list(model.net.stages)
        for scale in oracle:
            if scale not in state_reading_scales(model):
                raise ValueError(f"oracle: the stage after {scale!r} does not read its state (F_rec)")
        self.model, self.oracle, self.stages = model, tuple(oracle), stages
        self.hierarchy, self.skeleton = cfg.hierarchy(), Skeleton.smpl22()
        if last_t is None:
            last_t = DDIMScheduler(cfg.train_timesteps, cfg.timestep_spacing).step_pairs(cfg.sampling_steps)[-1][0]
        self.last_t, self.fps = int(last_t), float(fps)
        scored = {s: s for s in stages[:-1]}  # error key -> scale of its nodes
        if len(stages) > 1:
            scored[f"S3@{stages[-2]}"] = stages[-2]
        self.errors = {key: {**{k: torch.zeros(cfg.num_nodes(s), dtype=torch.float64) for k in STATE_ERRORS},
                             "windows": 0} for key, s in scored.items()}
        self.windows_cond = self.targets = self.x0_windows = self.valid_rows = None
        self._batch = self._t = None
        self._handles = []
        try:
            self._handles.append(model.net.register_forward_pre_hook(self._on_call))
            for k, scale in enumerate(stages):
                stage = model.net.stages[scale]
                if k and stages[k - 1] in self.oracle:
                    self._handles.append(stage.register_forward_pre_hook(self._substitute(stages[k - 1]),
                                                                         with_kwargs=True))
                if scale != "S3":
                    self._handles.append(stage.register_forward_hook(self._score(scale)))
                elif k:
                    self._handles.append(stage.register_forward_hook(self._score(stages[k - 1], final=True)))
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for h in self._handles:
            h.remove()

    def set_clip(self, rec) -> None:
        """The ground truth of ``rec``'s offline windows: normalised conditions (W, N, 54),
        local 6D rotations (W, N, 22, 6), pooled targets {scale: (W, N, n, 9)} and the
        rows scored (W, N) (a short clip's front padding is not), on the model's device."""
        from mage.inference.sequence import window_starts
        from mage.model.losses import pooled_targets

        N = self.model.window
        cond = torch.as_tensor(rec.condition, dtype=torch.float32)
        x0 = torch.as_tensor(rec.rot6d, dtype=torch.float32)
        T = cond.shape[0]
        valid = torch.ones(N, dtype=torch.bool)
        if T <= N:  # predict_sequence front-pads a short clip with its first row
            cond = torch.cat([cond[:1].expand(N - T, -1), cond])
            x0 = torch.cat([x0[:1].expand(N - T, -1, -1), x0])
            valid[:N - T] = False
            starts = [0]
        else:
            starts = window_starts(T, N, N // 4)
        idx = torch.tensor(starts)[:, None] + torch.arange(N)
        device = next(self.model.parameters()).device
        cond, x0, idx = cond.to(device), x0.to(device), idx.to(device)
        self.valid_rows = valid.to(device).expand(len(starts), N)
        with torch.no_grad():
            self.windows_cond = self.model.normalize_condition(cond[idx])
            self.x0_windows = x0[idx]
            self.targets, _ = pooled_targets(x0[idx], tuple(self.stages), self.hierarchy, self.skeleton)

    def _on_call(self, module, args):
        _, t, cond_n = args
        if self.windows_cond is None:
            raise RuntimeError("StageProbe: set_clip(rec) before predicting a clip")
        gap = (cond_n[:, None] - self.windows_cond[None]).abs().flatten(2).amax(-1)  # (B, W)
        best, self._batch = gap.min(dim=1)
        if float(best.max()) > MATCH_TOLERANCE:
            raise RuntimeError(f"StageProbe: a window of the call is not one of the clip's "
                               f"(max gap {float(best.max()):.3g}); offline prediction only")
        self._t = int(t[0])

    def _substitute(self, prev_scale: str):
        def hook(module, args, kwargs):
            kwargs["prev_state"] = self.targets[prev_scale][self._batch].to(kwargs["prev_state"])
            return args, kwargs
        return hook

    def _score(self, scale: str, final: bool = False):
        """A forward hook scoring a stage's decoded state at ``scale``'s nodes; final: the
        stage is the last one, whose 22-joint output is pooled to ``scale`` first."""
        import roma

        from mage.core import rotations as rot
        from mage.core.multiscale import pool_nodes
        from mage.model.losses import fk_of_6d

        def hook(module, args, output):
            if self._t != self.last_t:
                return
            state = output[1].double()
            if final:
                fk = fk_of_6d(state, self.skeleton)
                state = pool_nodes(fk.global_rotations, fk.positions, scale, self.hierarchy)
            target = self.targets[scale][self._batch].double()
            rows = self.valid_rows[self._batch].double()[..., None]  # (B, N, 1)
            pairs = rows[:, 1:] * rows[:, :-1]  # both rows of a velocity scored

            def window_mean(values, weights):  # (B, N', n) -> per node, summed over windows
                return ((values * weights).sum(1) / weights.sum(1)).sum(0)

            acc = self.errors[f"S3@{scale}" if final else scale]
            gap = state[..., 6:] - target[..., 6:]  # (B, N, n, 3) m
            acc["position_cm"] += window_mean(gap.norm(dim=-1), rows) * METERS_TO_CM
            acc["velocity_cm_s"] += window_mean((gap.diff(dim=1) * self.fps).norm(dim=-1), pairs) * METERS_TO_CM
            geo = roma.rotmat_geodesic_distance(rot.rot6d_to_matrix(state[..., :6]),
                                                rot.rot6d_to_matrix(target[..., :6]))
            acc["rotation_deg"] += window_mean(geo, rows) * (180.0 / math.pi)
            acc["windows"] += state.shape[0]
        return hook

    def summary(self) -> dict:
        """{scale: {"position_cm", "rotation_deg", "velocity_cm_s": means over nodes,
        "windows": int, "per_node": {same keys: [n]}}}."""
        out = {}
        for scale, acc in self.errors.items():
            if not acc["windows"]:
                raise RuntimeError(f"StageProbe: {scale} was never scored: no network call at timestep "
                                   f"{self.last_t} (was the clip sampled with the probed model's own config?)")
            per_node = {k: (acc[k] / acc["windows"]).tolist() for k in STATE_ERRORS}
            out[scale] = {**{k: sum(v) / len(v) for k, v in per_node.items()},
                          "windows": acc["windows"], "per_node": per_node}
        return out


class _ProbedSubset(Subset):
    """A Subset that hands every loaded record to the probe first."""

    def __init__(self, dataset, every: int, probe: StageProbe):
        super().__init__(dataset, every)
        self.probe = probe

    def load(self, id):
        rec = super().load(id)
        self.probe.set_clip(rec)
        return rec


def sampled_otherwise(model, **overrides):
    """A copy of ``model`` whose config samples with ``overrides`` (same weights)."""
    import copy

    other = copy.deepcopy(model)
    other.config = model.config.with_overrides(**overrides)
    return other


def diagnose(model, dataset, every: int, oracle: tuple[str, ...] = (), seed: int = 0) -> dict:
    """{"metrics": protocol metrics, "stages": StageProbe.summary()} of one condition."""
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import model_predict_fn

    with StageProbe(model, dataset.fps, oracle) as probe:
        result = evaluate(model_predict_fn(model, SamplingOptions("offline", seed=seed)),
                          _ProbedSubset(dataset, every, probe), "test", method="m", seed=seed, progress=False)
    return {"metrics": {k: result.metrics[k] for k in HEADLINE}, "stages": probe.summary()}


def seed_spread(model, dataset, every: int) -> float:
    """Mean joint distance (cm) between the offline predictions of seeds 0 and 1, FK of the
    SMPL-22 rest skeleton with the pelvis at the origin, over every ``every``-th test clip."""
    from mage.core.skeleton import Skeleton
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import predict_sequence
    from mage.model.losses import fk_of_6d

    skeleton, total, frames = Skeleton.smpl22(), 0.0, 0
    for i in Subset(dataset, every).ids("test"):
        cond = torch.as_tensor(dataset.load(i).condition, dtype=torch.float32)
        p0, p1 = (fk_of_6d(predict_sequence(model, cond, SamplingOptions("offline", seed=s)), skeleton).positions
                  for s in (0, 1))
        total += float((p0 - p1).norm(dim=-1).mean(-1).sum()) * METERS_TO_CM
        frames += cond.shape[0]
    return total / frames


def conditions(model) -> list[tuple[str, ...]]:
    """plain, then one oracle per coarse stage whose state the next stage embeds, then all."""
    scales = state_reading_scales(model)
    single = [(s,) for s in scales]
    both = (tuple(scales),) if len(scales) > 1 else ()
    return [(), *single, *both]


def parse_args(argv=None):
    p = finished_runs_parser(__doc__, "stage_diagnosis", every=2, out=Path(__file__).resolve().parent / "results")
    p.add_argument("--sampling", action="store_true", help="also the SAMPLING conditions")
    return p.parse_args(argv)


def label(oracle: tuple[str, ...]) -> str:
    return "plain" if not oracle else "oracle " + "+".join(oracle)


def write_report(args, results: dict, clips: int) -> None:
    order = ("S0", "S1", "S2", "S3@S0", "S3@S1", "S3@S2")  # every key a StageProbe can score
    scored = [k for k in order if any(k in r["stages"] for by in results.values() for r in by.values())]
    lines = [f"# Stage diagnosis: {args.name}", "",
             f"`python -m research.diagnosis.stage_diagnosis` on `{args.data}` (every {args.every}th test "
             f"clip, {clips} clips), runs in `{args.runs}`, offline seed 0. `oracle Sk`: the stage after Sk "
             "reads the ground-truth pooled Sk state instead of Sk's prediction (F_rec; the latent F unchanged). "
             "Stage errors: each coarse stage's decoded state at the last DDIM step against the pooled ground "
             "truth, mean over nodes (position: centroid relative to the pelvis, cm; rotation: geodesic, deg; "
             "velocity: cm/s; each window averaged over its rows, before blending: comparable between models, not "
             "with the MPJVE column). S3@Sk: the final stage's 22-joint output pooled to the nodes of the stage "
             "before it, scored the same way.", "",
             "| run | condition | " + " | ".join(HEADLINE) + " | "
             + " | ".join(f"{k} pos / rot / vel" for k in scored) + " | seed spread (cm) |",
             "|---" * (3 + len(scored) + len(HEADLINE)) + "|"]
    for run, by_condition in results.items():
        for cond, r in by_condition.items():
            st = r["stages"]
            cells = [" / ".join(f"{st[s][k]:.2f}" for k in STATE_ERRORS) if s in st else "-" for s in scored]
            lines.append(f"| {run} | {cond} | " + " | ".join(f"{r['metrics'][k]:.2f}" for k in HEADLINE)
                         + " | " + " | ".join(cells)
                         + (f" | {r['seed_spread_cm']:.2f} |" if "seed_spread_cm" in r else " | |"))
    doc = {"data": args.data, "runs": args.runs, "every": args.every, "clips": clips, "results": results}
    write_json_and_markdown(args.out, args.name, doc, lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    dataset = ProcessedDataset(args.data)
    clips = len(Subset(dataset, args.every).ids("test"))
    results: dict[str, dict] = {}
    for variant in args.variants:
        model = load_checkpoint(Path(args.runs) / variant / "final").eval()
        results[variant] = {label(o): diagnose(model, dataset, args.every, o) for o in conditions(model)}
        results[variant]["plain"]["seed_spread_cm"] = seed_spread(model, dataset, args.every)
        for name, overrides in (SAMPLING.items() if args.sampling else ()):
            results[variant][name] = diagnose(sampled_otherwise(model, **overrides), dataset, args.every)
        write_report(args, results, clips)  # after each run: a long diagnosis keeps what it has
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-joint rotation errors of finished experiment runs: where does MPJRE differ?

    python -m research.diagnosis.per_joint --data data/full --runs runs/full_scales \\
        --variants mage_seed0 sequential_seed0 s3-only_seed0 --name full_scales_per_joint

For each run (``RUNS/<variant>/final``), offline seed 0 on every ``--every``-th test clip:
per joint, the reference MPJRE (componentwise |wrap(axis-angle difference)|, what the
tables report, ``mage.evaluate.metrics.mpjre``) and the geodesic angle to the ground truth
(``roma.rotmat_geodesic_distance``), in degrees, plus the share of ground-truth frames whose
local rotation is more than 2.5 rad from the identity (a twist convention near 180 degrees
shows up there). Also per joint, the position error (cm) of the prediction placed by the
tracked head as the protocol places it (``mage.evaluate.protocol.place_prediction``), and
L-PE by source (``mage.data.sequence_ids.source_of``: bandai_namco, cmu_hdm05, mocap, ...): where does L-PE
differ? And where does jitter differ: per joint, the velocity error (cm/s, the formula of
``mage.evaluate.metrics.mpjve``) and the jitter (10^2 m/s^3, the formula of
``metrics.jitter``) of the placed prediction and of the ground truth, averaged over all
frames (frame-weighted; the tables average each clip equally); over all joints, the jitter
of the jerk rows that touch a frame blended from two offline windows against the other rows
(:func:`seam_jerk_rows`): is the extra jitter at the seams or inside the windows?
Writes ``OUT/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.common import finished_runs_parser, write_json_and_markdown

NEAR_PI_RAD = 2.5


def parse_args(argv=None):
    p = finished_runs_parser(__doc__, "per_joint", every=4, out=Path(__file__).resolve().parent / "results")
    return p.parse_args(argv)


def seam_jerk_rows(T: int, window: int) -> tuple:
    """Boolean masks (T - 3,) over the jerk rows of an offline prediction of T rows (jerk
    row t spans frames t..t+3): (seam, inside) = the rows that touch a frame blended from
    two windows (more than one window has a non-zero weight there,
    ``mage.inference.sequence.blend_weights``), and the rows that touch none."""
    import torch

    from mage.inference.sequence import blend_weights, window_starts

    if T < 4:
        return torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool)
    covering = torch.zeros(T)
    if T > window:  # a shorter clip is one (front-padded) window
        overlap = window // 4
        starts = window_starts(T, window, overlap)
        for s, w in zip(starts, blend_weights(starts, window, overlap)):
            covering[s:s + window] += (w > 0).float()
    seam = (covering >= 2).unfold(0, 4, 1).any(-1)
    return seam, ~seam


def per_joint(model, dataset, ids) -> dict[str, list[float]]:
    """{"mpjre": [22], "geodesic": [22], "gt_near_pi": [22], "velocity_error": [22],
    "jitter": [22], "gt_jitter": [22], "jitter_seams": {...}, ...} over the frames of ``ids``."""
    import roma
    import torch

    from mage.core import rotations as rot
    from mage.data.sequence_ids import source_of
    from mage.evaluate.metrics import (
        JITTER_UNIT_SCALE,
        LOWER_JOINTS,
        METERS_TO_CM,
        jerk,
        position_error,
        wrap_angle,
    )
    from mage.evaluate.protocol import (
        place_prediction,
        record_head_positions,
        record_skeleton,
    )
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import predict_sequence

    comp = torch.zeros(22, dtype=torch.float64)
    geo = torch.zeros(22, dtype=torch.float64)
    near_pi = torch.zeros(22, dtype=torch.float64)
    pos = torch.zeros(22, dtype=torch.float64)
    vel = torch.zeros(22, dtype=torch.float64)
    jit, gt_jit = torch.zeros(22, dtype=torch.float64), torch.zeros(22, dtype=torch.float64)
    # sum of per-frame jitter (mean over joints) and frame count: (pred, gt) x (blend, inside)
    seams = {k: [0.0, 0] for k in ("blend", "inside", "gt_blend", "gt_inside")}
    l_pe_by_source: dict[str, list[float]] = {}
    frames = vel_frames = jerk_frames = 0
    fps = float(dataset.fps)
    for i in ids:
        rec = dataset.load(i)
        with torch.inference_mode():
            d6 = predict_sequence(model, rec.condition, SamplingOptions("offline", seed=0))
            pred = rot.rot6d_to_matrix(d6.double())
        gt = rot.rot6d_to_matrix(rec.rot6d.double())
        aa_gt = rot.matrix_to_axis_angle(gt)
        comp += wrap_angle(rot.matrix_to_axis_angle(pred) - aa_gt).abs().mean(-1).sum(0)
        geo += roma.rotmat_geodesic_distance(pred, gt).sum(0)
        near_pi += (aa_gt.norm(dim=-1) > NEAR_PI_RAD).double().sum(0)
        placed = place_prediction(pred, record_head_positions(rec), record_skeleton(rec))
        gt_pos = torch.as_tensor(rec.positions).double()
        pos += (placed - gt_pos).norm(dim=-1).sum(0)
        vel += ((placed.diff(dim=0) - gt_pos.diff(dim=0)) * fps).norm(dim=-1).sum(0)
        j_pred, j_gt = jerk(placed, fps).norm(dim=-1), jerk(gt_pos, fps).norm(dim=-1)  # (T-3, 22)
        jit += j_pred.sum(0)
        gt_jit += j_gt.sum(0)
        vel_frames, jerk_frames = vel_frames + gt.shape[0] - 1, jerk_frames + j_pred.shape[0]
        for name, rows in zip(("blend", "inside"), seam_jerk_rows(gt.shape[0], model.window)):
            for key, j in ((name, j_pred), ("gt_" + name, j_gt)):
                seams[key][0] += float(j.mean(-1)[rows].sum())
                seams[key][1] += int(rows.sum())
        # per clip, as the tables average (every clip counts once)
        l_pe_by_source.setdefault(source_of(str(i)), []).append(
            position_error(placed, gt_pos, LOWER_JOINTS))
        frames += gt.shape[0]
    deg = 180.0 / math.pi
    return {"mpjre": (comp / frames * deg).tolist(), "geodesic": (geo / frames * deg).tolist(),
            "position_cm": (pos / frames * METERS_TO_CM).tolist(),
            "velocity_error": (vel / max(vel_frames, 1) * METERS_TO_CM).tolist(),
            "jitter": (jit / max(jerk_frames, 1) * JITTER_UNIT_SCALE).tolist(),
            "gt_jitter": (gt_jit / max(jerk_frames, 1) * JITTER_UNIT_SCALE).tolist(),
            "jitter_seams": {k: s / max(n, 1) * JITTER_UNIT_SCALE for k, (s, n) in seams.items()},
            "l_pe_by_source": {k: sum(v) / len(v) for k, v in sorted(l_pe_by_source.items())},
            "clips_by_source": {k: len(v) for k, v in sorted(l_pe_by_source.items())},
            "gt_near_pi": (near_pi / frames).tolist(), "frames": frames}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from mage.core.skeleton import SMPL22_JOINT_NAMES
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    dataset = ProcessedDataset(args.data)
    ids = dataset.ids("test")[::args.every]
    results = {v: per_joint(load_checkpoint(Path(args.runs) / v / "final").eval(), dataset, ids)
               for v in args.variants}
    lines = [f"# Per-joint error: {args.name}", "",
             f"`python -m research.diagnosis.per_joint` on `{args.data}` (every {args.every}th test clip, "
             f"{len(ids)} clips), runs in `{args.runs}`, offline seed 0. Degrees; MPJRE = the reference "
             "componentwise metric of the tables, geodesic = the angle between predicted and true rotation; "
             f"GT near 180 = share of true frames rotated more than {NEAR_PI_RAD} rad from the identity.", "",
             "| joint | " + " | ".join(f"{v} MPJRE / geodesic / position (cm)" for v in args.variants)
             + " | GT near 180 |",
             "|---" * (2 + len(args.variants)) + "|"]
    first = results[args.variants[0]]
    for j in range(1, 22):
        lines.append(f"| {SMPL22_JOINT_NAMES[j]} | " + " | ".join(
            f"{results[v]['mpjre'][j]:.1f} / {results[v]['geodesic'][j]:.1f} / {results[v]['position_cm'][j]:.1f}"
            for v in args.variants) + f" | {first['gt_near_pi'][j]:.3f} |")
    lines.append("| mean of 21 | " + " | ".join(
        f"{sum(results[v]['mpjre'][1:]) / 21:.2f} / {sum(results[v]['geodesic'][1:]) / 21:.2f} / "
        f"{sum(results[v]['position_cm'][1:]) / 21:.2f}" for v in args.variants) + " | |")
    lines += ["", "L-PE (cm) by source (mean over that source's clips):", "",
              "| source | clips | " + " | ".join(args.variants) + " |", "|---" * (2 + len(args.variants)) + "|"]
    for source, n in first["clips_by_source"].items():
        lines.append(f"| {source} | {n} | " + " | ".join(
            f"{results[v]['l_pe_by_source'][source]:.2f}" for v in args.variants) + " |")
    lines += ["", "Velocity error (cm/s) / jitter (10^2 m/s^3) per joint of the placed prediction, averaged over "
              "all frames (frame-weighted; the tables average each clip equally):", "",
              "| joint | " + " | ".join(args.variants) + " | GT jitter |", "|---" * (2 + len(args.variants)) + "|"]
    for j in range(22):
        lines.append(f"| {SMPL22_JOINT_NAMES[j]} | " + " | ".join(
            f"{results[v]['velocity_error'][j]:.1f} / {results[v]['jitter'][j]:.2f}" for v in args.variants)
            + f" | {first['gt_jitter'][j]:.2f} |")
    lines.append("| mean of 22 | " + " | ".join(
        f"{sum(results[v]['velocity_error']) / 22:.2f} / {sum(results[v]['jitter']) / 22:.2f}"
        for v in args.variants) + f" | {sum(first['gt_jitter']) / 22:.2f} |")
    lines += ["", "Jitter (10^2 m/s^3, mean over joints, frame-weighted) of the jerk rows that touch a frame "
              "blended from two offline windows against the other rows (the ground truth's on the same rows "
              "in brackets):", "",
              "| rows | " + " | ".join(args.variants) + " |", "|---" * (1 + len(args.variants)) + "|"]
    for rows in ("blend", "inside"):
        lines.append(f"| {rows} | " + " | ".join(
            f"{results[v]['jitter_seams'][rows]:.2f} ({results[v]['jitter_seams']['gt_' + rows]:.2f})"
            for v in args.variants) + " |")
    doc = {"data": args.data, "runs": args.runs, "every": args.every, "clips": len(ids), "results": results}
    write_json_and_markdown(args.out, args.name, doc, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

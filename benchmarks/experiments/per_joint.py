"""Per-joint rotation errors of finished experiment runs: where does MPJRE differ?

    python benchmarks/experiments/per_joint.py --data data/full --runs runs/full_scales \\
        --variants mage_seed0 sequential_seed0 s3-only_seed0 --name full_scales_per_joint

For each run (``RUNS/<variant>/final``), offline seed 0 on every ``--every``-th test clip:
per joint, the reference MPJRE (componentwise |wrap(axis-angle difference)|, what the
tables report, ``mage.evaluate.metrics.mpjre``) and the geodesic angle to the ground truth
(``roma.rotmat_geodesic_distance``), in degrees, plus the share of ground-truth frames whose
local rotation is more than 2.5 rad from the identity (a twist convention near 180 degrees
shows up there). Also per joint, the position error (cm) of the prediction placed by the
tracked head as the protocol places it (``mage.evaluate.protocol.place_prediction``), and
L-PE by source (``mage.data.build.source_of``: bandai_namco, cmu_hdm05, mocap, ...): where does L-PE
differ? Writes ``OUT/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEAR_PI_RAD = 2.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "full"))
    p.add_argument("--runs", required=True, help="experiment runs folder (runs/NAME)")
    p.add_argument("--variants", nargs="+", required=True, help="run folders, e.g. mage_seed0")
    p.add_argument("--every", type=int, default=4, help="every k-th test clip")
    p.add_argument("--name", default="per_joint")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def per_joint(model, dataset, ids) -> dict[str, list[float]]:
    """{"mpjre": [22], "geodesic": [22], "gt_near_pi": [22]} over the frames of ``ids``."""
    import roma
    import torch

    from mage.core import rotations as rot
    from mage.data.build import source_of
    from mage.evaluate.metrics import LOWER_JOINTS, METERS_TO_CM, position_error, wrap_angle
    from mage.evaluate.protocol import place_prediction, record_head_positions, record_skeleton
    from mage.inference.sequence import predict_sequence

    comp = torch.zeros(22, dtype=torch.float64)
    geo = torch.zeros(22, dtype=torch.float64)
    near_pi = torch.zeros(22, dtype=torch.float64)
    pos = torch.zeros(22, dtype=torch.float64)
    l_pe_by_source: dict[str, list[float]] = {}
    frames = 0
    for i in ids:
        rec = dataset.load(i)
        with torch.inference_mode():
            pred = rot.rot6d_to_matrix(predict_sequence(model, rec.condition, "offline", seed=0).double())
        gt = rot.rot6d_to_matrix(rec.rot6d.double())
        aa_gt = rot.matrix_to_axis_angle(gt)
        comp += wrap_angle(rot.matrix_to_axis_angle(pred) - aa_gt).abs().mean(-1).sum(0)
        geo += roma.rotmat_geodesic_distance(pred, gt).sum(0)
        near_pi += (aa_gt.norm(dim=-1) > NEAR_PI_RAD).double().sum(0)
        placed = place_prediction(pred, record_head_positions(rec), record_skeleton(rec))
        gt_pos = torch.as_tensor(rec.positions).double()
        pos += (placed - gt_pos).norm(dim=-1).sum(0)
        # per clip, as the tables average (every clip counts once)
        l_pe_by_source.setdefault(source_of(str(i)), []).append(
            position_error(placed, gt_pos, LOWER_JOINTS))
        frames += gt.shape[0]
    deg = 180.0 / math.pi
    return {"mpjre": (comp / frames * deg).tolist(), "geodesic": (geo / frames * deg).tolist(),
            "position_cm": (pos / frames * METERS_TO_CM).tolist(),
            "l_pe_by_source": {k: sum(v) / len(v) for k, v in sorted(l_pe_by_source.items())},
            "clips_by_source": {k: len(v) for k, v in sorted(l_pe_by_source.items())},
            "gt_near_pi": (near_pi / frames).tolist(), "frames": frames}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from mage.core.atomic import atomic_write
    from mage.core.skeleton import SMPL22_JOINT_NAMES
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    dataset = ProcessedDataset(args.data)
    ids = dataset.ids("test")[::args.every]
    results = {v: per_joint(load_checkpoint(Path(args.runs) / v / "final").eval(), dataset, ids)
               for v in args.variants}
    out = Path(args.out)
    with atomic_write(out / f"{args.name}.json", "w") as fh:
        json.dump({"data": args.data, "runs": args.runs, "every": args.every, "clips": len(ids),
                   "results": results}, fh, indent=1)
    lines = [f"# Per-joint error: {args.name}", "",
             f"`python benchmarks/experiments/per_joint.py` on `{args.data}` (every {args.every}th test clip, "
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
    with atomic_write(out / f"{args.name}.md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

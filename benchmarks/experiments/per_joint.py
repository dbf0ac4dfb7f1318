"""Per-joint rotation errors of finished experiment runs: where does MPJRE differ?

    python benchmarks/experiments/per_joint.py --data data/full --runs runs/full_scales \\
        --variants mage_seed0 sequential_seed0 s3-only_seed0 --name full_scales_per_joint

For each run (``RUNS/<variant>/final``), offline seed 0 on every ``--every``-th test clip:
per joint, the reference MPJRE (componentwise |wrap(axis-angle difference)|, what the
tables report, ``mage.evaluate.metrics.mpjre``) and the geodesic angle to the ground truth
(``roma.rotmat_geodesic_distance``), in degrees, plus the share of ground-truth frames whose
local rotation is more than 2.5 rad from the identity (a twist convention near 180 degrees
shows up there). Writes ``OUT/<name>.json`` and ``.md``.
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
    from mage.evaluate.metrics import wrap_angle
    from mage.inference.sequence import predict_sequence

    comp = torch.zeros(22, dtype=torch.float64)
    geo = torch.zeros(22, dtype=torch.float64)
    near_pi = torch.zeros(22, dtype=torch.float64)
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
        frames += gt.shape[0]
    deg = 180.0 / math.pi
    return {"mpjre": (comp / frames * deg).tolist(), "geodesic": (geo / frames * deg).tolist(),
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
    lines = [f"# Per-joint rotation error: {args.name}", "",
             f"`python benchmarks/experiments/per_joint.py` on `{args.data}` (every {args.every}th test clip, "
             f"{len(ids)} clips), runs in `{args.runs}`, offline seed 0. Degrees; MPJRE = the reference "
             "componentwise metric of the tables, geodesic = the angle between predicted and true rotation; "
             f"GT near 180 = share of true frames rotated more than {NEAR_PI_RAD} rad from the identity.", "",
             "| joint | " + " | ".join(f"{v} MPJRE / geodesic" for v in args.variants) + " | GT near 180 |",
             "|---" * (2 + len(args.variants)) + "|"]
    first = results[args.variants[0]]
    for j in range(1, 22):
        lines.append(f"| {SMPL22_JOINT_NAMES[j]} | " + " | ".join(
            f"{results[v]['mpjre'][j]:.1f} / {results[v]['geodesic'][j]:.1f}" for v in args.variants)
            + f" | {first['gt_near_pi'][j]:.3f} |")
    lines.append("| mean of 21 | " + " | ".join(
        f"{sum(results[v]['mpjre'][1:]) / 21:.2f} / {sum(results[v]['geodesic'][1:]) / 21:.2f}"
        for v in args.variants) + " | |")
    with atomic_write(out / f"{args.name}.md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

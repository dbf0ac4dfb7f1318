"""Import speed of preset-rig motion files (BVH, ASF/AMC), this checkout vs a baseline.

    python -m benchmarks.import_speed.run [--baseline-src /tmp/base/src] [--repeats 5]

Files: generated ones (always): a MAGE SMPL-22 BVH (preset ``smpl``) and the same motion
with the CMU BVH release's joint names in CMU units (preset ``cmu_bvh``), 2000 frames at
120 fps; and, when ../shared/data is present, real files: a Character Creator BVH
(``cc3``, 109 joints), a CMU ASF/AMC (``cmu_asf``), and a cgspeed CMU BVH and a Bandai
Namco BVH (automatic map) from ~/.cache/mage-data when extracted there.
Each file is imported ``--repeats`` times with ``mage.data.io.load_motion(path, "auto")``
on one thread, in a subprocess per checkout; ``--rounds`` rounds alternate this checkout
and ``--baseline-src`` (another checkout's ``src``, e.g. ``git worktree add /tmp/base
<commit>``) so that a drifting machine load hits both; the best time counts.
Writes benchmarks/import_speed/results/import_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT

SHARED = ROOT.parent / "shared" / "data"
CACHE = Path.home() / ".cache" / "mage-data"
OUT = Path(__file__).resolve().parent / "results"


def make_files(folder: Path) -> dict[str, Path]:
    """The generated files (same bytes for both checkouts)."""
    import torch

    from mage.core import Motion, Skeleton
    from mage.data.bvh import save_bvh
    from mage.data.rig_map import load_rig

    g = torch.Generator().manual_seed(0)
    T = 2000
    import roma

    base = roma.rotvec_to_rotmat(torch.randn(64, 22, 3, generator=g, dtype=torch.float64) * 0.5)
    w = torch.linspace(0, 63, T, dtype=torch.float64)
    k = w.floor().long().clamp(max=62)
    from mage.core.rotations import slerp_matrices

    R = slerp_matrices(base[k], base[k + 1], (w - k)[:, None].expand(T, 22))
    sk = Skeleton.smpl22()
    trans = torch.zeros(T, 3, dtype=torch.float64)
    trans[:, 2] = 0.95
    m = Motion(R, trans, 120.0, sk)
    files = {"smpl preset (generated, 2000 frames)": folder / "smpl.bvh"}
    save_bvh(m, files["smpl preset (generated, 2000 frames)"])
    unit = 0.0254 / 0.45
    big = Skeleton(sk.joint_names, sk.parents, sk.offsets / unit)
    save_bvh(Motion(R, trans / unit, 120.0, big), folder / "cmu_units.bvh")
    names = dict(load_rig("cmu_bvh").joints)
    text = re.sub(r"\b(" + "|".join(names) + r")\b", lambda x: names[x.group(1)],
                  (folder / "cmu_units.bvh").read_text())
    files["cmu_bvh preset (generated, 2000 frames)"] = folder / "cmu.bvh"
    files["cmu_bvh preset (generated, 2000 frames)"].write_text(text)
    return files


def real_files() -> dict[str, Path]:
    cands = {
        "cc3 preset (cmu_cc3_bvh 002_01)": SHARED / "mocap" / "cmu_cc3_bvh" / "002" / "002_01.bvh",
        "cmu_asf preset (cmu_asfamc 02_01)": SHARED / "mocap" / "cmu_asfamc" / "02" / "02_01.amc",
        "cmu_bvh preset (cmu_mb_bvh 08_02)": CACHE / "cmu_hdm05" / "cmu_mb_bvh" / "08" / "08_02.bvh",
        "automatic map (Bandai dataset-2 walk)":
            CACHE / "bandai_namco" / "dataset-2" / "dataset-2_walk_normal_001.bvh",
    }
    return {k: v for k, v in cands.items() if v.is_file()}


def time_files(files: dict[str, str], repeats: int) -> dict[str, dict]:
    from mage.data.io import load_motion

    out = {}
    for label, path in files.items():
        best, err = None, ""
        for _ in range(repeats):
            t0 = time.perf_counter()
            try:
                m = load_motion(path, rig="auto")
            except Exception as e:  # the baseline may not read every file
                err = f"{type(e).__name__}: {str(e)[:120]}"
                break
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        out[label] = {"seconds": best, "frames": None if best is None else m.num_frames,
                      "rig": None if best is None else str(m.meta.get("rig")), "error": err}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-src", default=None, help="another checkout's src folder")
    ap.add_argument("--baseline-label", default="baseline")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (best counts)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # files.json -> times
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.worker:
        files = json.loads(Path(args.worker).read_text())
        print(json.dumps(time_files(files, args.repeats)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        files = {k: str(v) for k, v in {**make_files(Path(tmp)), **real_files()}.items()}
        spec = Path(tmp) / "files.json"
        spec.write_text(json.dumps(files))
        def worker(src: str) -> dict:
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            # Run from the repository root so that ``benchmarks`` imports; PYTHONPATH picks the checkout's mage.
            res = subprocess.run([sys.executable, "-m", "benchmarks.import_speed.run", "--worker", str(spec),
                                  "--repeats", str(args.repeats)], env=env, cwd=ROOT, capture_output=True,
                                 text=True, check=True)
            return json.loads(res.stdout.strip().splitlines()[-1])

        def best(a: dict | None, b: dict) -> dict:
            if a is None:
                return b
            for k, v in b.items():
                if v["seconds"] is not None and (a[k]["seconds"] is None or v["seconds"] < a[k]["seconds"]):
                    a[k] = v
            return a

        # Alternate the two checkouts over several rounds (the machine's load drifts).
        now = base = None
        for _ in range(args.rounds):
            now = best(now, worker(str(ROOT / "src")))
            if args.baseline_src:
                base = best(base, worker(args.baseline_src))
    rows = []
    for label in files:
        b = base.get(label) if base else None
        ratio = (now[label]["seconds"] / b["seconds"]
                 if b and b["seconds"] and now[label]["seconds"] else None)
        rows.append({"file": label, "now_s": now[label]["seconds"], "now_rig": now[label]["rig"],
                     "frames": now[label]["frames"],
                     "baseline_s": b["seconds"] if b else None,
                     "baseline_rig": b["rig"] if b else None,
                     "baseline_error": b["error"] if b else None, "ratio": ratio})
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"repeats": args.repeats, "rounds": args.rounds, "threads": 1,
              "baseline": args.baseline_label, "rows": rows}
    (OUT / "import_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Import speed (best of {args.repeats} imports x {args.rounds} alternating rounds, "
             "one thread)", "",
             f"Baseline: {args.baseline_label}. Ratio = now / baseline (the goal for preset "
             "rigs: at most 1.5).", "",
             "| file | frames | rig now | now (s) | baseline (s) | ratio |",
             "|---|---:|---|---:|---:|---:|"]
    for r in rows:
        base_s = ("-" if r["baseline_s"] is None else f"{r['baseline_s']:.3f}") if not r["baseline_error"] \
            else "fails: " + r["baseline_error"].split(":")[0]
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['file']} | {r['frames']} | {r['now_rig']} | {r['now_s']:.3f} | "
                     f"{base_s} | {ratio} |")
    (OUT / "import_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

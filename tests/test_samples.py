"""The sample motions shipped with the package (mage.data.samples, ``sample:NAME``):
names, the unknown-name error, every command that reads them, package data, and (where
the original CMU data is at hand) that each clip is an exact excerpt of its trial."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from mage.cli.main import main
from mage.core import Motion
from mage.data import samples
from mage.data.asfamc import CMU_FPS
from mage.data.io import load_motion
from mage.inference import MODEL_FPS

ROOT = Path(__file__).resolve().parents[1]


def test_names_resolve_to_clips_beside_their_skeleton():
    assert samples.sample_names() == ("walk", "run", "jump", "reach")
    for name in samples.sample_names():
        path = samples.sample_path(name)
        assert path.suffix == ".amc" and path.is_file() and (path.parent / "02.asf").is_file()
        assert samples.resolve(f"sample:{name}") == path
    assert samples.resolve("walk.bvh") == Path("walk.bvh")  # anything else is a path
    assert samples.resolve(Path("sample:walk")) == Path("sample:walk")  # a Path is never a sample name


@pytest.mark.parametrize("value", ["sample:jog", "sample:", "sample:Walk"])
def test_unknown_sample_is_one_line_listing_the_samples(value):
    with pytest.raises(ValueError) as err:
        samples.resolve(value)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{value}: unknown sample")
    assert all(f"sample:{name}" in message for name in samples.sample_names())


def test_samples_import_as_short_real_motions():
    for name in samples.sample_names():
        first, last = samples.frame_range(name)
        motion = load_motion(samples.sample_path(name))
        assert motion.fps == CMU_FPS and motion.num_frames == last - first + 1
        assert 1.0 <= motion.duration <= 3.0
        assert motion.meta["rig"] == "cmu_asf" and not motion.meta.get("dropped_leading_frames")
        head = motion.joint_positions()[:, motion.skeleton.index("head"), 2]
        assert 0.5 < float(head.min()) and float(head.max()) < 2.3  # a person, in metres
    total = sum(p.stat().st_size for p in samples.SAMPLES_DIR.iterdir())
    assert total < 800_000  # small enough to ship in the package


def test_samples_are_package_data():
    """pyproject's package-data globs take every file of the samples folder into the wheel."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mage"]
    package = samples.SAMPLES_DIR.parents[1]  # the mage package folder
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    files = [p for p in samples.SAMPLES_DIR.iterdir() if not p.name.startswith(".")]
    assert {samples.sample_path(n) for n in samples.sample_names()} <= set(files)
    assert set(files) <= shipped, sorted(p.name for p in set(files) - shipped)


def test_demo_on_a_sample_end_to_end(tmp_path, capsys):
    """`mage demo --input sample:walk`, as on a fresh install: the bundled model on the
    bundled clip, with metrics, the video and the viewer."""
    out = tmp_path / "walk_demo"
    assert main(["demo", "--input", "sample:walk", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mage demo: sample:walk" in printed
    assert "metrics against the input's ground truth" in printed
    mpjpe = float(re.search(r"MPJPE\s+([\d.]+) cm", printed).group(1))
    assert 0 < mpjpe < 30  # a trained model on a clip of its training subject
    first, last = samples.frame_range("walk")
    frames = round((last - first + 1) * MODEL_FPS / CMU_FPS)  # 240 frames at 120 fps -> 120 at 60
    pred, gt = Motion.load(out / "prediction.npz"), Motion.load(out / "ground_truth.npz")
    assert pred.num_frames == gt.num_frames == frames and pred.fps == MODEL_FPS
    assert (out / "demo.mp4").stat().st_size > 1000 and (out / "viewer.html").is_file()


def test_data_commands_read_samples(tmp_path, capsys):
    assert main(["data", "info", "sample:"]) == 0
    listing = capsys.readouterr().out
    for sample in samples.SAMPLES.values():
        first, last = samples.frame_range(sample.name)
        assert f"sample:{sample.name}" in listing and f"CMU trial {sample.trial}, frames {first}-{last}" in listing
    assert samples.ACKNOWLEDGEMENT in listing

    assert main(["data", "import", "sample:walk", "sample:run", "-o", str(tmp_path / "imported")]) == 0
    assert Motion.load(tmp_path / "imported" / "walk.npz").num_frames == 240  # named after the sample
    assert Motion.load(tmp_path / "imported" / "run.npz").num_frames == 173

    assert main(["data", "import", "sample:jog", "-o", str(tmp_path / "jog.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mage: error: sample:jog: unknown sample; samples: sample:walk" in err
    assert main(["data", "export", "sample:jog", "-o", str(tmp_path / "jog.bvh")]) == 2
    assert main(["data", "info", "sample:jog"]) == 2
    assert "sample:jog: unknown sample" in capsys.readouterr().err


def _amc_frames(data: bytes) -> tuple[list[bytes], dict[int, list[bytes]]]:
    """(header lines, {frame number: its lines}) of an AMC file, line endings kept."""
    header, frames, current = [], {}, None
    for line in data.splitlines(keepends=True):
        if line.strip().isdigit():
            current = frames.setdefault(int(line.strip()), [])
        (header if current is None else current).append(line)
    return header, frames


@pytest.mark.shared_data
def test_samples_are_exact_excerpts_of_the_cmu_trials():
    """Each clip is its trial's header plus the frames its README names, byte for byte."""
    original = SHARED_DATA / "mocap" / "cmu_asfamc" / "02"
    assert (samples.SAMPLES_DIR / "02.asf").read_bytes() == (original / "02.asf").read_bytes()
    readme = (samples.SAMPLES_DIR / "README.md").read_text()
    for sample in samples.SAMPLES.values():
        first, last = samples.frame_range(sample.name)
        header, frames = _amc_frames((original / f"{sample.trial}.amc").read_bytes())
        expected = b"".join(header + [line for n in range(first, last + 1) for line in frames[n]])
        assert samples.sample_path(sample.name).read_bytes() == expected, sample.name
        row = next(line for line in readme.splitlines() if line.startswith(f"| `sample:{sample.name}`"))
        assert sample.trial in row and f"{first}-{last}" in row

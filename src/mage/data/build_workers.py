"""The import step of a dataset build: one file -> one record, in a pool of worker processes.

:func:`process_file` imports one file at the build's frame rate and writes its record
atomically; it never raises (a failure is a result with its reason). :func:`run_tasks`
runs it over the build's tasks, in this process or in worker processes, with a progress bar.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from mage.core.constants import PROTOCOL_FPS
from mage.data.amass import NotAMotionFile, load_amass
from mage.data.dataset import write_record
from mage.data.io import detect_format, load_motion


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """What a record depends on besides its source file (a change rebuilds records)."""

    fps: float = PROTOCOL_FPS
    rig: str = "auto"
    body_model: str | None = None
    use_real_shape: bool = False

    def key(self) -> dict:
        return dataclasses.asdict(self)


def load_for_build(path: str | Path, settings: BuildSettings, source_fps: float | None = None):
    """Import one file at ``settings.fps``: AMASS by the protocol stride, others by
    :meth:`Motion.resample` (every n-th frame for integer ratios, else interpolation).
    ``source_fps``: the file's true frame rate where its header is wrong (recipes)."""
    if detect_format(path) == "amass":
        return load_amass(path, settings.body_model, use_real_shape=settings.use_real_shape,
                          target_fps=settings.fps)
    motion = load_motion(path, rig=settings.rig, body_model=settings.body_model)
    if source_fps is not None:
        motion = dataclasses.replace(motion, fps=float(source_fps))
    if abs(motion.fps - settings.fps) > 1e-6:
        motion = motion.resample(settings.fps)
    return motion


def process_file(task: dict) -> dict:
    """Import one file and write its record; never raises. Returns a result dict:
    source, id, subject, status ("ok", "dropped", "skipped", "failed"), frames, rig,
    reason, seconds."""
    t0 = time.perf_counter()
    settings = BuildSettings(**task["settings"])
    result = {k: task[k] for k in ("source", "id", "subject", "licence", "source_fps")}
    result.update(status="ok", frames=0, rig="", reason="")
    try:
        motion = load_for_build(task["source"], settings, task["source_fps"])
        result["rig"] = str(motion.meta.get("rig", "unknown"))
        duration = motion.num_frames / motion.fps
        if duration < task["min_seconds"]:
            result.update(status="dropped",
                          reason=f"too short: {duration:.2f} s < {task['min_seconds']:g} s")
        else:
            result["frames"] = write_record(task["out_path"], motion, task["source"])
    except NotAMotionFile as err:
        result.update(status="skipped", reason=str(err))
    except Exception as err:  # noqa: BLE001 - any importer error becomes a reported failure
        result.update(status="failed", reason=f"{type(err).__name__}: {err}")
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _init_worker() -> None:
    torch.set_num_threads(1)  # the pool is the parallelism; avoid oversubscribing cores


def write_progress(msg: str, progress: bool, log: Callable[[str], None]) -> None:
    """Print ``msg`` above the progress bar when there is one, else through ``log``."""
    if progress:
        tqdm.write(msg)
    else:
        log(msg)


def run_tasks(tasks: list[dict], workers: int, progress: bool, on_result: Callable[[dict], None]) -> None:
    """Run :func:`process_file` over ``tasks`` (in this process if workers == 1), with a
    bar; ``on_result`` gets each result as it comes (a crashed worker: a "failed" one)."""
    if not tasks:
        return
    bar = tqdm(total=len(tasks), unit="file", desc="importing", disable=not progress)
    try:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                on_result(process_file(task))
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=_init_worker) as pool:
            futures = {pool.submit(process_file, t): t for t in tasks}
            try:
                for fut in as_completed(futures):
                    try:
                        r = fut.result()
                    except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                        t = futures[fut]
                        r = {k: t[k] for k in ("source", "id", "subject")}
                        r.update(status="failed", frames=0, rig="", seconds=0.0,
                                 reason=f"worker crashed: {type(err).__name__}: {err}")
                    on_result(r)
                    bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()

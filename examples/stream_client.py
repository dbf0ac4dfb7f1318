"""Stream tracking frames to ``mage serve`` and print the round-trip latency.

    mage serve --port 8765 &                                                   # the bundled model
    python examples/stream_client.py --url ws://127.0.0.1:8765                 # synthetic walk
    python examples/stream_client.py --input session.csv --frame openxr       # a tracking log
    python examples/stream_client.py --input walk.bvh --frames 600 --rate 0   # as fast as possible

The trajectory comes from a tracking log (.csv / .json, sent as recorded, in its own
device frame: start the server with the same --frame), a motion file (its head and
wrists, converted to --frame device poses), or the built-in synthetic walk. Frames are sent one at
a time at --rate Hz (60 = real time; 0 = as fast as replies come back), each reply is
awaited, and the latency percentiles are printed at the end with the server's stats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

from mage.core import Tracking
from mage.data.io import load_motion
from mage.demo.synthetic import MIN_DURATION_S, synthetic_tracking
from mage.inference.device import DeviceConfig
from mage.inference.tracking_log import TrackingFrame, read_tracking_log


def synthetic_frames(num_frames: int, frame: str = "zup") -> list[dict]:
    """The built-in SYNTHETIC demo walk (mage.demo.synthetic) as device-pose dicts in ``frame``."""
    tracking, _ = synthetic_tracking(duration_s=max(MIN_DURATION_S, num_frames / 60 + 0.1), fps=60)
    return tracking_frames(tracking[:num_frames], frame)


def tracking_frames(tracking, frame: str) -> list[dict]:
    P, Q = DeviceConfig(frame).to_devices(tracking.rotations, tracking.positions)
    return [TrackingFrame(P[i].numpy(), Q[i].numpy(), i / tracking.fps).to_dict()
            for i in range(tracking.num_frames)]


def file_frames(path: str, frame: str) -> list[dict]:
    if Path(path).suffix.lower() in (".csv", ".json"):
        log = read_tracking_log(path)  # sent as recorded (native frame, own timestamps)
        return [TrackingFrame(p, q, float(t)).to_dict()
                for t, p, q in zip(log.timestamps, log.positions, log.quaternions)]
    return tracking_frames(Tracking.from_motion(load_motion(path).resample(60)), frame)


async def stream(url: str, frames: list[dict], rate: float = 60.0) -> dict:
    """Send ``frames`` one by one (awaiting each reply) -> latency summary + server stats."""
    latencies, compute, errors = [], [], []
    async with connect(url) as ws:
        start = time.perf_counter()
        for i, f in enumerate(frames):
            if rate > 0:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            t0 = time.perf_counter()
            await ws.send(json.dumps({**f, "id": i}))
            reply = json.loads(await ws.recv())
            latencies.append((time.perf_counter() - t0) * 1000)
            if reply["type"] == "pose":
                compute.append(reply["compute_ms"])
            else:
                errors.append(reply.get("error"))
        await ws.send(json.dumps({"type": "stats"}))
        stats = json.loads(await ws.recv())
    lat = np.asarray(latencies)
    return {
        "frames": len(frames),
        "poses": len(compute),
        "errors": errors,
        "latency_ms": {q: float(np.percentile(lat, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
        "server_compute_ms_p50": float(np.median(compute)) if compute else math.nan,
        "server": stats,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:8765")
    p.add_argument("--input", help="tracking log (.csv/.json) or motion file; default: a synthetic walk")
    p.add_argument("--frames", type=int, default=600, help="frames to send (default 600 = 10 s)")
    p.add_argument("--rate", type=float, default=60.0, help="frames per second to send (0 = no pacing)")
    p.add_argument("--frame", default="zup", help="device frame to send motion/synthetic data in")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    frames = file_frames(args.input, args.frame) if args.input else synthetic_frames(args.frames, args.frame)
    summary = asyncio.run(stream(args.url, frames[: args.frames], args.rate))
    lat = summary["latency_ms"]
    print(f"sent {summary['frames']} frames, {summary['poses']} poses back, {len(summary['errors'])} errors")
    print(f"round trip: p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms "
          f"(server compute p50 {summary['server_compute_ms_p50']:.2f} ms)")
    print(f"server stats: {summary['server']}")
    for e in summary["errors"][:5]:
        print(f"error: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

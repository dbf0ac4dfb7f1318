"""Load test of the WebSocket pose server on loopback: N well-behaved clients at a fixed
frame rate plus one client that floods frames without reading its replies.

    python -m benchmarks.server_load.run         # -> benchmarks/server_load/results/server_load.{json,md}
    python -m benchmarks.server_load.run --seconds 10 --rates 60 10 --out /tmp/load

The server runs in its own process as ``mage serve`` does (the bundled ``cmu-small``
model, one torch thread, ``--workers`` inference threads); this process runs the
clients. Each well-behaved client sends its frames on a fixed schedule (``rate`` Hz)
and reads its replies as they come; the flooding client sends as fast as the server
reads (never reading a reply). For each rate, per client: frames sent, poses received
(matched by ``id``), the fraction, and the latency from send to pose. The server's
resident memory is sampled every 0.5 s.

The first rate is the target (60 Hz). When a client gets a pose for fewer than 90 % of
its frames there, the next rates find the highest rate at which every well-behaved
client does: the server's sustainable rate on this machine for this many clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
FRAME = {"head": {"position": [0.0, 0.0, 1.6], "quaternion": [0.0, 0.0, 0.0, 1.0]},
         "left": {"position": [0.3, 0.1, 1.0], "quaternion": [0.0, 0.0, 0.0, 1.0]},
         "right": {"position": [-0.3, 0.1, 1.0], "quaternion": [0.0, 0.0, 0.0, 1.0]}}

SERVER = """
import sys, torch
torch.set_num_threads(1)
from mage.inference.pretrained import load_pretrained
from mage.inference.server import PoseServer, run_server
from mage.inference.streaming import Streamer
model = load_pretrained(sys.argv[1])
server = PoseServer(lambda: Streamer(model), port=0, workers=int(sys.argv[2]),
                    log=lambda m: print(m, flush=True))
run_server(server)
"""


def _frame(i: int, t: float) -> dict:
    import math

    f = json.loads(json.dumps(FRAME))
    f["head"]["position"][0] = 0.2 * math.sin(t)
    f["left"]["position"][2] = 1.0 + 0.2 * math.sin(2 * t)
    return {**f, "id": i, "timestamp": t}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        m = re.search(r"VmRSS:\s+(\d+) kB", fh.read())
    return int(m.group(1)) / 1024 if m else float("nan")


async def _client(url: str, rate: float, seconds: float, start: float) -> dict:
    from websockets.asyncio.client import connect

    sent: dict[int, float] = {}
    latencies: list[float] = []
    errors = 0
    n = int(seconds * rate)
    async with connect(url) as ws:
        async def reader():
            nonlocal errors
            async for raw in ws:
                r = json.loads(raw)
                if r.get("type") == "pose" and r.get("id") in sent:
                    latencies.append(time.perf_counter() - sent[r["id"]])
                elif r.get("type") == "error":
                    errors += 1
        task = asyncio.create_task(reader())
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent[i] = time.perf_counter()
            await ws.send(json.dumps(_frame(i, i / rate)))
        await asyncio.sleep(1.0)  # the last replies
        task.cancel()
    lat = sorted(latencies)
    return {"sent": n, "poses": len(lat), "fraction": len(lat) / max(1, n), "errors": errors,
            "latency_ms_p50": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "latency_ms_p95": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None}


async def _flooder(url: str, seconds: float, rate: float) -> int:
    """Send ``rate`` frames/s (in bursts of 50) for ``seconds``, never reading."""
    from websockets.asyncio.client import connect

    sent = 0
    start = time.perf_counter()
    async with connect(url, close_timeout=0.2) as ws:
        while time.perf_counter() - start < seconds:
            for _ in range(50):
                await ws.send(json.dumps(_frame(sent, sent / 60)))
                sent += 1
            await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    return sent


async def _flooder_process(url: str, seconds: float, rate: float) -> int:
    """The flooder in its own process (as another machine would be), so that its sending
    does not slow the well-behaved clients' event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.server_load.run", "--flood", url, str(seconds), str(rate),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    out, _ = await proc.communicate()
    return int(out.decode().strip().splitlines()[-1])


async def _capacity(url: str, seconds: float) -> float:
    """Poses per second for one client in lockstep (no other load from this benchmark)."""
    from websockets.asyncio.client import connect

    n, start = 0, time.perf_counter()
    async with connect(url) as ws:
        while time.perf_counter() - start < seconds:
            await ws.send(json.dumps(_frame(n, n / 60)))
            await ws.recv()
            n += 1
    return n / (time.perf_counter() - start)


async def trial(url: str, pid: int, clients: int, rate: float, seconds: float, flood_rate: float) -> dict:
    mem: list[float] = []

    async def sample():
        while True:
            mem.append(rss_mb(pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    cpu0, wall0 = cpu_s(pid), time.perf_counter()
    start = time.perf_counter() + 0.5
    flood = asyncio.create_task(_flooder_process(url, seconds + 1.0, flood_rate))
    results = await asyncio.gather(*(_client(url, rate, seconds, start + k * 0.001) for k in range(clients)))
    flooded = await flood
    cpu, wall = cpu_s(pid) - cpu0, time.perf_counter() - wall0
    sampler.cancel()
    fractions = [r["fraction"] for r in results]
    half = len(mem) // 2
    return {
        "rate_hz": rate, "clients": clients, "seconds": seconds,
        "fraction_min": round(min(fractions), 4), "fraction_mean": round(statistics.mean(fractions), 4),
        "all_clients_90pct": min(fractions) >= 0.9,
        "poses_per_s_total": round(sum(r["poses"] for r in results) / seconds, 1),
        "server_cpu_cores_used": round(cpu / wall, 2),
        "server_ms_cpu_per_pose": round(1000 * cpu / max(1, sum(r["poses"] for r in results)), 1),
        "latency_ms_p50_median": statistics.median([r["latency_ms_p50"] or 0 for r in results]),
        "latency_ms_p95_max": max(r["latency_ms_p95"] or 0 for r in results),
        "flooder_frames_sent": flooded, "load_average_1min_after": round(os.getloadavg()[0], 2),
        "server_rss_mb": {"start": round(mem[0], 1), "end": round(mem[-1], 1), "max": round(max(mem), 1),
                          "mean_first_half": round(statistics.mean(mem[:half] or mem), 1),
                          "mean_second_half": round(statistics.mean(mem[half:]), 1)},
        "per_client": results,
    }


async def main_async(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, args.ckpt, str(args.workers)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        line = await asyncio.to_thread(proc.stdout.readline)
        m = re.search(r"ws://[\d.]+:(\d+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line}{proc.stdout.read() if proc.poll() is not None else ''}")
        url = f"ws://127.0.0.1:{m.group(1)}"
        await _capacity(url, 2.0)  # warm-up
        capacity = await _capacity(url, 5.0)
        print(f"one lockstep client alone: {capacity:.1f} poses/s", flush=True)
        trials = []
        for rate in args.rates:
            r = await trial(url, proc.pid, args.clients, rate, args.seconds, args.flood_rate)
            print(f"{rate:5.1f} Hz x {args.clients}: min fraction {r['fraction_min']:.3f}, "
                  f"{r['poses_per_s_total']} poses/s, server {r['server_cpu_cores_used']} cores, "
                  f"p95 {r['latency_ms_p95_max']} ms, "
                  f"flooder sent {r['flooder_frames_sent']}, RSS {r['server_rss_mb']}", flush=True)
            trials.append(r)
            if r["all_clients_90pct"] and rate != args.rates[0] and not args.all_rates:
                break  # the highest of the lower rates that works
        return {"capacity_poses_per_s_one_client": round(capacity, 1), "trials": trials,
                "server_rss_after_mb": round(rss_mb(proc.pid), 1)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def to_markdown(report: dict) -> str:
    lines = ["# Server load test (loopback)", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}. Server: `{report['ckpt']}`, one torch thread, "
             f"{report['workers']} inference worker(s); {report['clients']} well-behaved clients plus one "
             "client flooding frames without reading its replies; each trial "
             f"{report['seconds']} s; the flooder (its own process) sends {report['flood_rate']:g} frames/s. "
             f"One lockstep client alone got {report['capacity_poses_per_s_one_client']} poses/s (the "
             "server's compute rate here). The 2 CPU cores were shared with other work: 1-minute load "
             f"average {report['load_average_1min_before']} before the run.", "",
             "| rate (Hz) | min fraction of frames with a pose | mean | poses/s (all) | server CPU (cores) | "
             "server CPU ms per pose | p50 latency (ms) | p95 latency, worst client (ms) | flooder frames sent | "
             "server RSS start / end / max (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in report["trials"]:
        m = t["server_rss_mb"]
        lines.append(f"| {t['rate_hz']:g} | {t['fraction_min']:.3f} | {t['fraction_mean']:.3f} | "
                     f"{t['poses_per_s_total']} | {t['server_cpu_cores_used']} | {t['server_ms_cpu_per_pose']} | "
                     f"{t['latency_ms_p50_median']} | {t['latency_ms_p95_max']} | "
                     f"{t['flooder_frames_sent']} | {m['start']} / {m['end']} / {m['max']} |")
    lines += ["", report["summary"], ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="cmu-small")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rates", type=float, nargs="+", default=[60, 10, 8, 6, 5, 4, 3])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--all-rates", action="store_true", help="try every rate (default: stop at the first that works)")
    p.add_argument("--flood-rate", type=float, default=5000.0, help="frames/s the flooding client sends")
    p.add_argument("--flood", nargs=3, metavar=("URL", "SECONDS", "RATE"), help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.flood:  # the flooding client's own process
        print(asyncio.run(_flooder(args.flood[0], float(args.flood[1]), float(args.flood[2]))))
        return 0
    t0 = time.time()
    load_before = os.getloadavg()[0]
    result = asyncio.run(main_async(args))
    trials = result["trials"]
    ok = [t for t in trials if t["all_clients_90pct"]]
    target = trials[0]
    if target["all_clients_90pct"]:
        summary = (f"At {target['rate_hz']:g} Hz every well-behaved client got a pose for at least 90 % of its "
                   "frames with the flooding client running.")
    elif ok:
        best = max(ok, key=lambda t: t["rate_hz"])
        summary = (f"{args.clients} clients at {target['rate_hz']:g} Hz need {args.clients * target['rate_hz']:g} "
                   f"poses/s; this machine computed {target['poses_per_s_total']} poses/s for them (batch-1 "
                   f"inference, one pose per frame per connection), so at {target['rate_hz']:g} Hz a client got a "
                   f"pose for only {target['fraction_min']:.0%} to {target['fraction_mean']:.0%} of its frames "
                   "(the newest frame is kept, older ones are dropped and counted). The sustainable rate "
                   f"for {args.clients} clients plus the flooder is **{best['rate_hz']:g} Hz**: there every "
                   f"client got a pose for at least {best['fraction_min']:.0%} of its frames (p95 latency "
                   f"{best['latency_ms_p95_max']} ms). The flooding client costs only its own share: it is read at "
                   "most 240 messages/s and served round-robin with the others.")
    else:
        summary = "No tried rate gave every client a pose for 90 % of its frames."
    ms = statistics.median(t["server_ms_cpu_per_pose"] for t in trials)
    per_core = 1000 / ms / (args.clients + 1)
    summary += (f" Cost: {ms:g} ms of server CPU per pose (median over the trials; batch-1 inference of "
                f"cmu-small on one thread), so one core sustains about {1000 / ms:.0f} poses/s, i.e. "
                f"{per_core:.1f} Hz for each of {args.clients} clients plus the flooder's share; the server "
                f"got {min(t['server_cpu_cores_used'] for t in trials)} to "
                f"{max(t['server_cpu_cores_used'] for t in trials)} cores of this shared machine during the "
                "trials, which is what limited the rates above. 16 clients at 60 Hz need about "
                f"{960 * ms / 1000:.0f} cores of batch-1 compute; serving them takes batching frames of "
                "several connections into one model call (not done here) or a GPU.")
    rss = [t["server_rss_mb"] for t in trials]
    summary += (f" Server memory: {rss[0]['start']} MB at the start, {rss[-1]['end']} MB at the end, at most "
                f"{max(r['max'] for r in rss)} MB (flat: bounded queues, dropped frames are not kept).")
    report = {
        "command": "python -m benchmarks.server_load.run" + ("" if argv is None and len(sys.argv) == 1
                                                                else " " + " ".join(argv or sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), {platform.python_version()}, "
                   f"{platform.platform()}",
        "ckpt": args.ckpt, "workers": args.workers, "clients": args.clients, "seconds": args.seconds,
        "flood_rate": args.flood_rate, "load_average_1min_before": round(load_before, 2),
        "wall_s": round(time.time() - t0, 1), **result, "summary": summary,
    }
    from mage.core.atomic import atomic_write

    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out / "server_load.json", "w") as fh:
        json.dump(report, fh, indent=1)
    with atomic_write(args.out / "server_load.md", "w") as fh:
        fh.write(to_markdown(report))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The WebSocket pose server behind ``mage serve``: one tracking frame in, one pose out.

Every connection has its own :class:`mage.inference.streaming.Streamer` (its own
history); the model (or ONNX session) is shared. Messages are JSON text, one object
per message. Client -> server:

- ``{"type": "frame", "id": ANY, "timestamp": s, "head": DEV, "left": DEV, "right": DEV}``
  with ``DEV = {"position": [x, y, z], "quaternion": [x, y, z, w]}`` or ``null`` (lost);
  ``type`` may be omitted; ``id`` (optional) is echoed in the reply.
- ``{"type": "reset"}``: forget this connection's history (the next frame is frame 0).
- ``{"type": "stats"}`` and ``{"type": "info"}``.

Server -> client, in the order the requests arrived:

- ``{"type": "pose", "id", "frame", "time", "timestamp", "rotations": [[x,y,z,w] x 22]
  (local), "positions": [[x,y,z] x 22] (world, z-up, metres), "trans", "lost":
  {"head": bool, "left": bool, "right": bool}, "padded", "dropped", "compute_ms"}``
- ``{"type": "error", "id", "error": "message"}``: malformed JSON (also nesting deeper
  than Python's parser allows, or integers of thousands of digits), unknown type, bad
  fields, an ``id`` that is not null, a finite number or a string of at most
  ``MAX_ID_CHARS`` characters (then ``id`` is null), a message over
  ``MAX_MESSAGE_BYTES``, or a frame the streamer refused; the connection stays usable.
- ``{"type": "stats", "received", "processed", "dropped", "errors", "queued", "frame"}``
- ``{"type": "info", "window", "fps", "latency_frames", "backend", "frame_convention",
  "queue_size"}``; ``{"type": "reset", "id"}``.

Lost devices follow the rule of :mod:`mage.inference.tracking_log`: besides ``null`` /
NaN, a device with an infinite value, a zero quaternion or an absurd position (beyond
``mage.core.limits.MAX_POSITION_M``) is lost for that frame (``"lost"`` in the reply):
its last valid pose is held and the model never sees the bad values. Replies are strict
JSON: they never contain NaN or Infinity (a pose that would is answered with an error
and that connection's stream is reset).

Size limits: a message of up to ``MAX_MESSAGE_BYTES`` (64 KiB; a frame is ~300 bytes) is
read; a larger one up to ``MAX_FRAME_BYTES`` (1 MiB) is answered with an error and the
connection stays open; a WebSocket frame over ``MAX_FRAME_BYTES`` closes the connection
with code 1009 (message too big), as the protocol requires.

Fairness: every connection reads at most ``max_rate`` messages per second (240, four
times the model rate; a burst of ``max_rate / 4`` is allowed); beyond that the server
stops reading from it, so TCP back-pressure slows the sender down and a flooding client
costs the server no more than a fast one. Inference requests of all connections wait
in one first-in first-out pool queue, and each connection has at most one request in
it, so connections are served round-robin.

Back-pressure: each connection has a queue of at most ``queue_size`` requests. The next
pose is computed for the *latest* queued frame (older queued frames are dropped and
counted; control messages keep their order), and when a client sends faster than poses
are computed (or reads its replies too slowly, which stalls sending) and the queue is
full, the oldest queued *frame* is dropped and counted (``dropped`` in every
pose and in stats); memory per connection stays bounded. A dropped frame is simply
missing from the stream: the next frame's velocities then span the gap.

Inference runs in a thread pool (``run_in_executor``), so the event loop keeps
reading, answering and serving other connections. SIGINT / SIGTERM stop the server
cleanly within about a second (``CLOSE_TIMEOUT_S``): connections are closed (code
1001), the close handshake waits at most ``CLOSE_TIMEOUT_S`` for a client that does not
answer, and the pool is shut down (a pose being computed is finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from websockets.asyncio.server import serve as serve_websocket
from websockets.exceptions import ConnectionClosed

from mage.core.limits import quote
from mage.inference import MODEL_FPS
from mage.inference.tracking_log import TrackingFrame, parse_json

MAX_MESSAGE_BYTES = 64 * 1024  # a frame is ~300 bytes; larger messages get an error reply
MAX_FRAME_BYTES = 1024 * 1024  # larger WebSocket frames close the connection (1009)
MAX_ID_CHARS = 128
DEFAULT_QUEUE_SIZE = 4
DEFAULT_MAX_RATE = 4 * MODEL_FPS  # messages per second read from one connection
CLOSE_TIMEOUT_S = 0.5


class _Connection:
    """Per-connection state: the streamer, the bounded request queue and counters."""

    def __init__(self, streamer, queue_size: int):
        self.streamer = streamer
        self.queue_size = queue_size
        self.items: deque[tuple[str, object, object]] = deque()  # (kind, id, payload)
        self.ready = asyncio.Event()
        self.received = self.processed = self.dropped = self.errors = 0

    def put(self, kind: str, msg_id, payload) -> None:
        if len(self.items) >= self.queue_size:
            oldest_frame = next((it for it in self.items if it[0] == "frame"), None)
            if oldest_frame is None:  # only control requests queued: refuse the new one
                self.dropped += 1
                return
            self.items.remove(oldest_frame)
            self.dropped += 1
        self.items.append((kind, msg_id, payload))
        self.ready.set()

    def stats(self) -> dict:
        return {"type": "stats", "received": self.received, "processed": self.processed,
                "dropped": self.dropped, "errors": self.errors, "queued": len(self.items),
                "frame": self.streamer.frames_seen}


def _valid_id(msg_id) -> bool:
    if msg_id is None or isinstance(msg_id, bool):
        return True
    if isinstance(msg_id, int):
        return abs(msg_id) < 2**63
    if isinstance(msg_id, float):
        return math.isfinite(msg_id)
    return isinstance(msg_id, str) and len(msg_id) <= MAX_ID_CHARS


def _parse(text) -> tuple[str, object, object]:
    """A raw message -> (kind, id, payload); kind "error" with the message for bad input.
    Never raises: any failure to parse untrusted text is an error reply."""
    if isinstance(text, bytes):
        return "error", None, "binary messages are not supported; send JSON text"
    if len(text) > MAX_MESSAGE_BYTES:
        return "error", None, f"message of {len(text)} characters; the limit is {MAX_MESSAGE_BYTES}"
    try:
        msg = parse_json(text)
    except ValueError as err:
        detail = str(err).removeprefix("not valid JSON (").removesuffix(")")
        return "error", None, f"malformed JSON: {detail}"
    if not isinstance(msg, dict):
        return "error", None, f"expected a JSON object, got {type(msg).__name__}"
    msg_id = msg.get("id")
    if not _valid_id(msg_id):
        return "error", None, (f"id: expected null, a finite number or a string of at most "
                               f"{MAX_ID_CHARS} characters")
    kind = msg.get("type", "frame")
    if kind == "frame":
        try:
            return "frame", msg_id, TrackingFrame.from_dict(msg)
        except (ValueError, TypeError, OverflowError) as err:
            return "error", msg_id, str(err)
    if kind in ("reset", "stats", "info"):
        return kind, msg_id, None
    return "error", msg_id, (f"unknown message type {quote(kind)}; expected frame, reset, stats "
                             "or info")


class PoseServer:
    """Serve poses over WebSocket.

    make_streamer: a function returning a fresh Streamer (called once per connection).
    info: extra fields of the ``info`` reply (backend, frame convention).
    queue_size: per-connection bound on queued requests; workers: inference threads;
    max_rate: messages per second read from one connection (None: no limit).
    """

    def __init__(self, make_streamer: Callable[[], object], host: str = "127.0.0.1", port: int = 8765,
                 queue_size: int = DEFAULT_QUEUE_SIZE, workers: int = 1, info: dict | None = None,
                 log: Callable[[str], None] | None = None, max_rate: float | None = DEFAULT_MAX_RATE):
        if queue_size < 1 or workers < 1:
            raise ValueError(f"queue_size and workers must be >= 1, got {queue_size} and {workers}")
        if max_rate is not None and not max_rate > 0:
            raise ValueError(f"max_rate must be > 0 or None, got {max_rate}")
        self.make_streamer, self.host, self.port = make_streamer, host, port
        self.queue_size, self.workers, self.max_rate = queue_size, workers, max_rate
        self._stopping = False
        self.info = dict(info or {})
        self.log = log or (lambda msg: None)
        self.connections = 0

    async def serve(self, stop: asyncio.Event, ready: Callable[[int], None] | None = None) -> None:
        """Run until ``stop`` is set; ``ready(port)`` is called once listening."""
        executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mage-infer")
        try:
            async with serve_websocket(lambda ws: self._handle(ws, executor), self.host, self.port,
                                       max_size=MAX_FRAME_BYTES, close_timeout=CLOSE_TIMEOUT_S) as server:
                port = server.sockets[0].getsockname()[1]
                self.log(f"mage serve: listening on ws://{self.host}:{port}")
                if ready is not None:
                    ready(port)
                await stop.wait()
                self._stopping = True  # handlers stop reading what is still buffered
                self.log("mage serve: shutting down")
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        self.log("mage serve: stopped")

    async def _handle(self, ws, executor) -> None:
        self.connections += 1
        conn = _Connection(self.make_streamer(), self.queue_size)
        worker = asyncio.create_task(self._work(ws, conn, executor))
        loop = asyncio.get_running_loop()
        burst = max(1.0, (self.max_rate or 0) / 4)
        tokens, last = burst, loop.time()
        try:
            async for message in ws:
                if self._stopping:
                    break
                conn.received += 1
                conn.put(*_parse(message))
                if self.max_rate is not None:  # token bucket: stop reading a flooding client
                    now = loop.time()
                    tokens = min(burst, tokens + (now - last) * self.max_rate) - 1
                    last = now
                    if tokens < 0:
                        await asyncio.sleep(-tokens / self.max_rate)
        except ConnectionClosed:  # closed abnormally: nothing left to answer
            pass
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await worker

    async def _work(self, ws, conn: _Connection, executor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await conn.ready.wait()
            kind, msg_id, payload = conn.items.popleft()
            while kind == "frame" and conn.items and conn.items[0][0] == "frame":
                kind, msg_id, payload = conn.items.popleft()  # the latest frame wins
                conn.dropped += 1
            if not conn.items:
                conn.ready.clear()
            if kind == "frame":
                t0 = time.perf_counter()
                try:
                    pose = await loop.run_in_executor(executor, conn.streamer.push, payload)
                except ValueError as err:  # a frame the streamer refuses
                    kind, payload = "error", str(err)
                except Exception as err:  # a bug: report it, keep the connection alive
                    kind, payload = "error", f"internal error: {type(err).__name__}: {err}"
                else:
                    conn.processed += 1
                    reply = {"type": "pose", "id": msg_id, **pose.to_dict(), "dropped": conn.dropped,
                             "compute_ms": round((time.perf_counter() - t0) * 1000, 3)}
            if kind == "error":
                conn.errors += 1
                reply = {"type": "error", "id": msg_id, "error": payload}
            elif kind == "reset":
                conn.streamer.reset()
                reply = {"type": "reset", "id": msg_id}
            elif kind == "stats":
                reply = {**conn.stats(), "id": msg_id}
            elif kind == "info":
                reply = {"type": "info", "id": msg_id, "window": conn.streamer.window, "fps": MODEL_FPS,
                         "latency_frames": conn.streamer.latency_frames,
                         "queue_size": self.queue_size, "max_message_bytes": MAX_MESSAGE_BYTES,
                         **self.info}
            try:
                text = json.dumps(reply, allow_nan=False)
            except ValueError:  # NaN/inf in a pose: never sent; this stream starts again
                conn.streamer.reset()
                conn.errors += 1
                text = json.dumps({"type": "error", "id": msg_id, "error": "internal error: the pose "
                                   "was not finite; the stream was reset"})
            await ws.send(text)


def run_server(server: PoseServer, stop_after: float | None = None) -> None:
    """Serve until SIGINT / SIGTERM (or ``stop_after`` seconds, for tests and demos)."""

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if stop_after is not None:
            loop.call_later(stop_after, stop.set)
        await server.serve(stop)

    asyncio.run(main())

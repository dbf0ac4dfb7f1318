"""``mage serve``: the WebSocket pose server (one tracking frame in, one pose out).

examples:
    mage serve                                     # the bundled model on 127.0.0.1:8765
    mage serve --host 127.0.0.1 --port 8765 --frame openxr
    mage serve --ckpt runs/small --port 9000       # your trained run
    mage serve --onnx full-medium.sampler.onnx      # onnxruntime (from mage export)

Message schema: mage.inference.server; examples/stream_client.py is a client. Stop with
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import sys

from mage.cli.common import ExamplesHelpFormatter, describe, input_file
from mage.cli.predict import add_device_arguments, add_model_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="stream poses over WebSocket (JSON messages)",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    add_model_arguments(p, "stream")
    p.add_argument("--onnx", metavar="FILE",
                   help="serve an exported .onnx with onnxruntime instead of the --ckpt model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--queue-size", type=int, default=4,
                   help="requests queued per connection before the oldest frame is dropped (default 4)")
    p.add_argument("--workers", type=int, default=1,
                   help="inference worker threads: frames of different connections computed in parallel (default 1)")
    p.add_argument("--stop-after", type=float, metavar="S", help="stop by itself after S seconds")
    add_device_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from mage.cli.common import checkpoint_folder, load_model, set_threads
    from mage.cli.main import CLIError
    from mage.cli.predict import check_model_arguments, device_config

    options = check_model_arguments(args, mode="online")  # a stream is online
    if args.onnx and args.ckpt is not None:
        raise CLIError("give one of --ckpt (PyTorch) or --onnx (onnxruntime), not both")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port: expected 0..65535, got {args.port}")
    if args.onnx:
        input_file(args.onnx, "ONNX")
    else:
        ckpt = checkpoint_folder(args.ckpt)
    device = device_config(args)

    from mage.inference.server import PoseServer, run_server
    from mage.inference.streaming import Streamer

    set_threads(args.threads)
    if args.onnx:
        from mage.inference.onnx_export import onnx_session

        backend, model = "onnx", onnx_session(args.onnx, args.threads)
    else:
        backend, model = "torch", load_model(ckpt, device=args.device)
    # Build one streamer now: bad settings fail here, before the server listens.
    Streamer(model, backend, options, devices=device)

    def make_streamer():
        return Streamer(model, backend, options, devices=device)

    server = PoseServer(make_streamer, args.host, args.port, args.queue_size, args.workers,
                        info={"backend": backend, "frame_convention": device.convention},
                        log=lambda msg: print(msg, flush=True))
    run_server(server, stop_after=args.stop_after)
    # Connections are closed and every reply sent; nothing is left to write. Skip the
    # interpreter's teardown (1-2 s with torch loaded on a busy CPU), so that the process
    # is gone within the 2 s a supervisor's SIGTERM allows.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


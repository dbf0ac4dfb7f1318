"""``mage serve``: the WebSocket pose server (one tracking frame in, one pose out).

    mage serve --ckpt mage-small --host 127.0.0.1 --port 8765 --frame openxr
    mage serve --onnx mage-small.sampler.onnx --port 8765      # onnxruntime backend

Message schema: mage.inference.server. Stop with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

from mage.cli.predict import add_device_arguments, add_model_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="stream poses over WebSocket (JSON messages)",
                              description=__doc__.split("\n\n", 1)[1])
    # One thread by default: batch-1 streaming gains little from a second one, and when
    # other programs share the CPU, threads spinning against each other multiply the
    # tail latency (benchmarks/latency/results/latency.md).
    add_model_arguments(p, ckpt_required=False, threads=1)
    p.add_argument("--onnx", metavar="FILE", help="serve an exported .onnx with onnxruntime instead of --ckpt")
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
    from mage.cli.main import CLIError
    from mage.cli.predict import device_config, set_threads
    from mage.inference.server import PoseServer, run_server
    from mage.inference.streaming import Streamer

    if (args.ckpt is None) == (args.onnx is None):
        raise CLIError("give exactly one of --ckpt (PyTorch) or --onnx (onnxruntime)")
    device = device_config(args)
    set_threads(args.threads)
    if args.onnx:
        from mage.inference.onnx_export import onnx_session

        backend, model = "onnx", onnx_session(args.onnx, args.threads)
    else:
        from mage.inference.pretrained import load_pretrained

        backend, model = "torch", load_pretrained(args.ckpt, device=args.device)
    # Build one streamer now: bad settings fail here, before the server listens.
    Streamer(model, backend, args.steps, args.seed, device=device)

    def make_streamer():
        return Streamer(model, backend, args.steps, args.seed, device=device)

    server = PoseServer(make_streamer, args.host, args.port, args.queue_size, args.workers,
                        info={"backend": backend, "frame_convention": device.frame},
                        log=lambda msg: print(msg, flush=True))
    run_server(server, stop_after=args.stop_after)
    return 0

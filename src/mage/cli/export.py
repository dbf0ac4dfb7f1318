"""``mage export``: ONNX files of a checkpoint, checked against PyTorch in onnxruntime.

examples:
    mage export --onnx full-medium.onnx                 # the bundled default model
    mage export --ckpt runs/small --onnx small.onnx --steps 4
    mage export --onnx denoiser.onnx --no-sampler

Writes the denoiser (one network call, condition normalisation included) to --onnx and,
unless --no-sampler, the whole K-step DDIM sampler (steps unrolled, noise as an input)
to --sampler (default: beside it, NAME.sampler.onnx). Both are compared with PyTorch on
random inputs; an export that differs by more than --atol fails. Graphs and metadata:
mage.inference.onnx_export.
"""

from __future__ import annotations

from mage.cli.common import ExamplesHelpFormatter, add_ckpt_argument, add_threads_argument, describe


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (denoiser + sampler)",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    add_ckpt_argument(p)
    p.add_argument("--onnx", required=True, metavar="FILE", help="denoiser .onnx to write")
    p.add_argument("--sampler", metavar="FILE", help="sampler .onnx to write (default FILE.sampler.onnx)")
    p.add_argument("--no-sampler", action="store_true", help="export the denoiser only")
    p.add_argument("--steps", type=int, metavar="K", help="sampler DDIM steps (default: the model's)")
    p.add_argument("--atol", type=float, default=1e-4, help="max |onnxruntime - PyTorch| (default 1e-4)")
    add_threads_argument(p, "offline")
    p.set_defaults(func=run)


def run(args) -> int:
    from mage.cli.common import check_threads, checkpoint_folder, load_model, output_file, set_threads
    from mage.cli.main import CLIError
    from mage.model.config import check_steps  # torch-free

    check_threads(args.threads)
    out = output_file(args.onnx, (".onnx",), "ONNX")
    jobs = [("denoiser", out)]
    if not args.no_sampler:
        sampler = output_file(args.sampler, (".onnx",), "ONNX") if args.sampler else out.with_suffix(".sampler.onnx")
        jobs.append(("sampler", sampler))
    check_steps(args.steps, "--steps")
    ckpt = checkpoint_folder(args.ckpt)

    from mage.inference.onnx_export import compare_with_torch, export_onnx, onnx_session

    set_threads(args.threads)
    model = load_model(ckpt)
    for kind, path in jobs:
        export_onnx(model, path, kind, steps=args.steps)
        diff = compare_with_torch(model, onnx_session(path))
        if diff > args.atol:
            path.unlink()
            raise CLIError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} > {args.atol:g}; "
                           "file removed")
        extra = f", {args.steps or model.config.sampling_steps} DDIM steps" if kind == "sampler" else ""
        print(f"wrote {path} ({kind}{extra}; max |onnxruntime - torch| = {diff:.1e})")
    return 0

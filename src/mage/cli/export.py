"""``mage export``: ONNX files of a checkpoint, checked against PyTorch in onnxruntime.

    mage export --ckpt mage-small --onnx mage-small.onnx

Writes the denoiser (one network call, condition normalisation included) to --onnx and,
unless --no-sampler, the whole K-step DDIM sampler (steps unrolled, noise as an input)
to --sampler (default: beside it, NAME.sampler.onnx). Both are compared with PyTorch on
random inputs; an export that differs by more than --atol fails. Graphs and metadata:
mage.inference.onnx_export.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (denoiser + sampler)",
                              description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--ckpt", required=True, metavar="NAME_OR_PATH", help="checkpoint name or folder")
    p.add_argument("--onnx", required=True, metavar="FILE", help="denoiser .onnx to write")
    p.add_argument("--sampler", metavar="FILE", help="sampler .onnx to write (default FILE.sampler.onnx)")
    p.add_argument("--no-sampler", action="store_true", help="export the denoiser only")
    p.add_argument("--steps", type=int, metavar="K", help="sampler DDIM steps (default: the model's)")
    p.add_argument("--atol", type=float, default=1e-4, help="max |onnxruntime - PyTorch| (default 1e-4)")
    p.set_defaults(func=run)


def run(args) -> int:
    from mage.cli.main import CLIError
    from mage.inference.onnx_export import compare_with_torch, export_onnx, onnx_session
    from mage.inference.pretrained import load_pretrained

    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        raise CLIError(f"--onnx {out}: expected a .onnx file name")
    model = load_pretrained(args.ckpt)
    jobs = [("denoiser", out)]
    if not args.no_sampler:
        jobs.append(("sampler", Path(args.sampler) if args.sampler else out.with_suffix(".sampler.onnx")))
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

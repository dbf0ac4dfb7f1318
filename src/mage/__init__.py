"""MAGE: full-body avatar motion from sparse VR tracking (head + two wrists).

The package import is kept light (no torch at import time); import the sub-packages
you need, e.g. ``from mage.core import Motion, Skeleton``.

Layout (data flows top to bottom):
    mage.core       rotations, skeleton, Motion, forward kinematics, sparse tracking
    mage.data       importers / exporters (BVH, ASF/AMC, AMASS), retargeting, datasets
    mage.model      diffusion scheduler, multi-stage denoiser, sampling pipeline
    mage.train      Lightning training
    mage.evaluate   community metrics and protocol
    mage.inference  offline prediction, streaming, WebSocket server, ONNX export
    mage.viz        rendering and the browser viewer
    mage.cli        the ``mage`` command
"""

__version__ = "0.1.0"


# Lazy (PEP 562), so that `import mage` stays fast and torch-free.
def __getattr__(name):
    if name == "load_pretrained":
        from mage.inference.pretrained import load_pretrained  # noqa: PLC0415

        return load_pretrained
    if name == "Streamer":
        from mage.inference.streaming import Streamer  # noqa: PLC0415

        return Streamer
    if name == "SamplingOptions":
        from mage.inference.options import SamplingOptions  # noqa: PLC0415

        return SamplingOptions
    raise AttributeError(f"module 'mage' has no attribute {name!r}")

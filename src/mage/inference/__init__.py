"""Inference for real use: offline prediction, streaming, WebSocket server, ONNX export.

Kept light: importing this package imports no torch. Modules (each imports what it needs):

    options       SamplingOptions: mode, steps, seed, overlap, batch size, consistency,
                  precision, checked once (torch-free)
    sequence      predict_sequence / predict_motion: whole sequences, offline or online;
                  model_predict_fn: a model as the evaluation protocol's predictor
    seams         jitter next to offline windows' seams vs inside them (a diagnostic)
    streaming     Streamer: one tracking frame in, one pose out (causal, constant memory)
    server        the WebSocket server behind ``mage serve``
    device        device frames (zup / openxr / unity) and device-to-joint offsets
    tracking_log  CSV / JSON tracking logs -> a clean 60 fps Tracking
    writers       predicted motions -> npz / AMASS / BVH / JSON
    onnx_export   ONNX export of the denoiser and of the few-step sampler
    pretrained    load_pretrained(name_or_path): packaged checkpoints by name
"""

from mage.core.constants import PROTOCOL_FPS as MODEL_FPS  # the rate the models are trained and run at
from mage.inference.options import ONLINE_CONSISTENCY, SamplingOptions

__all__ = ["MODEL_FPS", "ONLINE_CONSISTENCY", "SamplingOptions"]

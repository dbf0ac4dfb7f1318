"""Inference for real use: offline prediction, streaming, WebSocket server, ONNX export.

Kept light: importing this package imports no torch. Modules (each imports what it needs):

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

MODEL_FPS = 60.0  # frames per second the models are trained and run at (the protocol's)
# Online temporal consistency (lambda): each causal window's sample also estimates the
# previous frame (its second-to-last row); the output of frame t is the window's last row
# plus lambda times the difference between the previous OUTPUT and that estimate,
#     y[t] = s_t[N-1] + lambda * (y[t-1] - s_t[N-2]),
# so window-to-window flicker is carried away with no lookahead (0 = each frame's own
# sample). Chosen for the default model on the full recipe's val split, every clip
# (benchmarks/results/recipe_ablation_acceleration2.md; choose_consistency in
# benchmarks/common.py: the smallest lambda whose online jitter is at most 2x
# the ground truth's) with full-medium's recipe trained on train alone: 1.87x at lambda 0.
# The previous default recipe (no acceleration loss) needed 0.3 (2.17x at 0, 1.94x at
# 0.3); more carry-over lags the motion, and smoother models need less of it.
ONLINE_CONSISTENCY = 0.0


def check_consistency(consistency: float, name: str = "consistency") -> float:
    """The consistency lambda as a float; ValueError naming ``name`` unless it is in
    [0, 1) (1 would carry the first frame forever). Here, not in ``sequence``, so that the
    command line checks it before importing torch."""
    if not 0 <= consistency < 1:
        raise ValueError(f"{name}: expected a lambda in [0, 1), got {consistency:g}")
    return float(consistency)

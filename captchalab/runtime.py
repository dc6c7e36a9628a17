"""Process-wide settings that must be made before TensorFlow is imported.

Quiet by default: TensorFlow, absl, CUDA probing and ONNX Runtime write start-up lines straight
to file descriptor 2 ("E0000 ... failed call to cuInit", "oneDNN custom operations are on"),
some before any log level applies. Unless `--verbose`, the CLI points descriptor 2 at /dev/null
and gives Python's `sys.stderr` a duplicate of the real one: our own lines, progress bars and
Python warnings still reach the terminal, native chatter does not.
"""
from __future__ import annotations

import os
import sys


def quiet_native_output(verbose: bool) -> None:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "0" if verbose else "3")
    if verbose or getattr(sys.stderr, "_captchalab_quiet", False):
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:  # no descriptor 2 to redirect (embedded use): nothing to quiet
        return
    stream = os.fdopen(real, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                       errors="backslashreplace")
    stream._captchalab_quiet = True
    sys.stderr = stream


def limit_threads(cpus: int) -> None:
    """Size TensorFlow's and OpenCV's thread pools to `cpus` (a Ray task's share, say)."""
    import cv2
    cv2.setNumThreads(max(1, cpus))
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, cpus)))
    except RuntimeError:  # already initialised in this process: keep its pools
        pass

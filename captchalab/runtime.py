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

from .errors import CaptchalabError

VERBOSE = False  # set by the CLI's --verbose; worker processes are told too


def quiet_native_output(verbose: bool) -> None:
    global VERBOSE
    VERBOSE = verbose
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "0" if verbose else "3")
    if not verbose:  # TensorFlow's Python warnings (a retracing notice when a study loads many models)
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
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
    stream = os.fdopen(
        real, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8", errors="backslashreplace"
    )
    stream._captchalab_quiet = True
    sys.stderr = stream


def use_onednn() -> None:
    """Turn TensorFlow's oneDNN kernels on unless the user chose (TF_ENABLE_ONEDNN_OPTS).
    TensorFlow enables them by itself only on CPUs with AVX512-VNNI, -BF16 or AMX; on an
    AVX2-only CPU they train the seed's network and ctc's CRNN 1.3-1.5x faster and read 1.4-1.7x
    faster (benchmarks/train_speed.py --onednn). Read once, when TensorFlow loads."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


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


PRECISION_ENV = "CAPTCHALAB_PRECISION"


def bf16_supported() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where oneDNN runs mixed
    precision convolutions about 1.75x faster than float32 (benchmarks/train_speed.py)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def training_policy() -> str:
    """The Keras dtype policy for training: $CAPTCHALAB_PRECISION (float32, mixed_bfloat16) or,
    by default, mixed_bfloat16 where the CPU has native bfloat16 and float32 elsewhere."""
    choice = os.environ.get(PRECISION_ENV, "auto")
    if choice == "auto":
        return "mixed_bfloat16" if bf16_supported() else "float32"
    if choice not in ("float32", "mixed_bfloat16"):
        raise CaptchalabError(f"${PRECISION_ENV} must be auto, float32 or mixed_bfloat16, got {choice!r}")
    return choice


def build_with_policy(build, policy: str):
    """A model built under a Keras dtype policy (layers keep it; the global policy is restored)."""
    import keras

    before = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(before)


def float32_copy(model, build):
    """The same weights in a model built in float32, as every saved model is: portable to any
    machine, whatever precision it was trained in."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    copy = build_with_policy(build, "float32")
    copy.set_weights(model.get_weights())
    return copy

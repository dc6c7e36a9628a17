"""Adversarial CAPTCHAs: small L-infinity perturbations, computed from an attacker's gradients,
that make it misread (FGSM, PGD, and PGD with expectation over transformations).

Works with any style and any differentiable attacker: the attacker supplies
`adversarial_objective(images, texts, boxes, targets)` -> (clean batch, valid mask, constants)
and `adversarial_loss(pixels, constants)`, a differentiable copy of its own preprocessing
followed by its network (see attackers/ctc.py and attackers/segment.py). A batch of differently
sized CAPTCHAs is padded to one shape, and one compiled gradient serves every batch.

The budget is on 0-255 pixels: every saved pixel stays within eps of the clean one after rounding.
Reproducible: a perturbation depends only on the seed, the image's index and its batch (batches
are fixed runs of indices, whatever the worker count), with TensorFlow's op determinism on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from ..attackers.base import load_attacker
from ..charset import check_covers
from ..errors import CaptchalabError
from ..kinds import get_kind, reads
from ..manifest import sha256_bytes
from ..pixels import GREY, MARGIN_CAP, pad_batch, resize_matrix  # noqa: F401 (shared with the attackers)

METHODS = ("fgsm", "pgd", "eot")


def parse_eps(text: str) -> float:
    """'8/255' or '8' (pixels of 0-255) -> the budget in pixels, checked to lie in [0, 255]."""
    try:
        value = float(Fraction(text.strip())) * (255 if "/" in text else 1)
    except (ValueError, ZeroDivisionError):
        raise CaptchalabError(
            f"`eps` {text!r}: expected pixels of 0-255 such as 8, or a fraction such as 8/255"
        ) from None
    if not 0 <= value <= 255:
        raise CaptchalabError(f"`eps` {text!r} is outside [0, 255]/255")
    return value


def parse_eps_list(text: str) -> list[float]:
    """'0,2,4,8,16/255' -> [0, 2, 4, 8, 16] (a trailing /255 applies to every value)."""
    scale = "/255" if text.strip().endswith("/255") else ""
    items = [t.strip() for t in text.strip().removesuffix("/255").split(",") if t.strip()]
    if not items:
        raise CaptchalabError("`eps` is empty")
    return sorted({parse_eps(t + (scale if "/" not in t else "")) for t in items})


@dataclass(frozen=True)
class PerturbSpec:
    method: str = "pgd"
    eps: float = 8.0  # pixels of 0-255
    steps: int = 10
    step_size: float | None = None  # pixels per step; default 2.5 * eps / steps
    samples: int = 4  # transformations averaged per step (eot)
    target_text: str | None = None
    seed: int = 0

    def check(self) -> None:
        if self.method not in METHODS:
            raise CaptchalabError(f"`method` {self.method!r}: use one of {', '.join(METHODS)}")
        if not 0 <= self.eps <= 255:
            raise CaptchalabError(f"`eps` {self.eps} is outside [0, 255]/255")
        if self.steps < 1:
            raise CaptchalabError(f"`steps` must be at least 1, got {self.steps}")


def check_target(attacker) -> None:
    if not attacker.differentiable or not hasattr(attacker, "adversarial_loss"):
        raise CaptchalabError(
            f"attacker {attacker.name!r} is not differentiable: it can only be a transfer target "
            "(pass it as `transfer`)"
        )


def _eot_arguments(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One random transformation a defender's preprocessing might apply (EOT): a blur kernel
    (sigma 0-1; a delta below 0.2), a size to shrink to and back (70-100%), and noise."""
    _, h, w, _ = shape
    sigma = float(rng.uniform(0.0, 1.0))
    r = np.arange(-2, 3, dtype=np.float32)
    k = np.exp(-(r**2) / (2 * max(sigma, 0.2) ** 2)) if sigma > 0.2 else (r == 0).astype(np.float32)
    k = (np.outer(k, k) / k.sum() ** 2).astype(np.float32)
    kernel = np.repeat(k[:, :, None, None], 3, axis=2)
    scale = float(rng.uniform(0.7, 1.0))
    size = np.array([max(8, int(h * scale)), max(8, int(w * scale))] if scale < 0.97 else [h, w], np.int32)
    return kernel, size, rng.normal(0, 2.0, shape).astype(np.float32)


def _gradient(attacker, eot: bool):
    """The compiled gradient of the attacker's loss with respect to the pixels, made once per
    attacker (its constants are arguments, so new batches reuse it)."""
    key = "_adversarial_gradient_eot" if eot else "_adversarial_gradient"
    fn = attacker.__dict__.get(key)
    if fn is None:
        import tensorflow as tf

        def gradient(x, constants, kernel=None, size=None, noise=None):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = x
                if eot:
                    h, w = tf.shape(x)[1], tf.shape(x)[2]
                    y = tf.nn.depthwise_conv2d(
                        tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], "SYMMETRIC"), kernel, [1, 1, 1, 1], "VALID"
                    )
                    y = (
                        tf.image.resize(tf.image.resize(y, size, method="area"), tf.stack([h, w]), method="bilinear")
                        + noise
                    )
                loss = tf.reduce_sum(attacker.adversarial_loss(y, constants))
            return tape.gradient(loss, x)

        fn = tf.function(gradient, reduce_retracing=True)
        attacker.__dict__[key] = fn  # not pickled: workers get no model anyway
    return fn


def perturb(
    attacker,
    images: list[np.ndarray],
    texts: list[str],
    boxes: list,
    spec: PerturbSpec,
    batch_seed: int,
    questions: list | None = None,
) -> list[np.ndarray]:
    """Adversarial versions of `images` (HxWx3 uint8), each within spec.eps of its original.
    `texts` are the answers; for kinds that ask a question (image grids), `questions` are passed
    on to the attacker's objective."""
    import tensorflow as tf

    spec.check()
    check_target(attacker)
    tf.config.experimental.enable_op_determinism()
    if spec.eps == 0 or not images:
        return [im.copy() for im in images]
    targets = [spec.target_text] * len(texts) if spec.target_text else None
    asked = {} if get_kind(attacker.kind).characters else {"questions": questions}
    x0, valid, constants = attacker.adversarial_objective(images, texts, boxes, targets, **asked)
    constants = tuple(tf.constant(c) for c in constants)
    sign = -1.0 if targets else 1.0  # targeted: descend towards the target text
    rng = np.random.default_rng([spec.seed, batch_seed, 1])
    eps = float(spec.eps)
    step = spec.step_size or (eps if spec.method == "fgsm" else 2.5 * eps / spec.steps)
    steps = 1 if spec.method == "fgsm" else spec.steps
    x0_t, valid_t = tf.constant(x0), tf.constant(valid)
    start = rng.uniform(-eps, eps, x0.shape).astype(np.float32) if spec.method != "fgsm" else 0.0
    x = tf.clip_by_value(x0_t + start * valid, 0.0, 255.0)
    gradient = _gradient(attacker, spec.method == "eot")
    for _ in range(steps):
        if spec.method == "eot":
            grad = tf.zeros_like(x)
            for _ in range(spec.samples):
                grad += gradient(x, constants, *(tf.constant(a) for a in _eot_arguments(rng, x0.shape)))
        else:
            grad = gradient(x, constants)
        x = x + sign * step * tf.sign(grad) * valid_t
        x = tf.clip_by_value(tf.clip_by_value(x, x0_t - eps, x0_t + eps), 0.0, 255.0)
    out = []
    adv = np.rint(x.numpy())
    for k, image in enumerate(images):
        h, w = image.shape[:2]
        clean = image.astype(np.float32)
        bound = np.floor(eps)  # after rounding, never more than eps from the clean pixel
        out.append(np.clip(adv[k, :h, :w], clean - bound, clean + bound).clip(0, 255).astype(np.uint8))
    return out


def manifest_fields(spec: PerturbSpec, model_path: str, model_hash: str) -> dict:
    return {
        "adversarial": {
            **asdict(spec),
            "eps_fraction": f"{spec.eps:g}/255",
            "target_model": model_path,
            "target_model_sha256": model_hash,
        }
    }


def dataset_transform(attacker, spec: PerturbSpec, model_path: str, batch: int = 32):
    """A `generate_dataset` transform that perturbs each batch of rendered CAPTCHAs."""
    from pathlib import Path

    digest = sha256_bytes(Path(model_path).read_bytes())

    def transform(indices, texts, images, boxes, questions=None):
        out = []
        for start in range(0, len(images), batch):
            part = slice(start, start + batch)
            out += perturb(
                attacker,
                images[part],
                texts[part],
                boxes[part],
                spec,
                indices[start],
                questions[part] if questions else None,
            )
        return out, manifest_fields(spec, model_path, digest)

    return transform


def adversarial_transform(
    model_path, spec, method: str, eps: str, steps: int, target_text: str | None, seed: int, plugin_dirs=()
):
    """`generate --adversarial-against`: the transform that perturbs a dataset's CAPTCHAs of
    `spec` against the model at `model_path`, every setting checked first."""
    if get_kind(spec.kind).media != "image":
        raise CaptchalabError(
            f"the adversarial wrapper perturbs pixels; style {spec.style!r} draws {get_kind(spec.kind).media}"
        )
    perturbation = PerturbSpec(method, parse_eps(eps), steps, target_text=target_text, seed=seed)
    perturbation.check()
    target = load_attacker(model_path, list(plugin_dirs))
    check_target(target)
    if not reads(target.kind, spec.kind):
        raise CaptchalabError(
            f"{target.label()} reads {target.kind} CAPTCHAs; style {spec.style!r} draws {spec.kind} CAPTCHAs"
        )
    if not get_kind(spec.kind).characters:
        if target_text:
            raise CaptchalabError("`target_text` applies to text CAPTCHAs only")
    else:
        check_covers(target.charset, spec.charset + (target_text or ""), target.label())
    return dataset_transform(target, perturbation, str(model_path))

"""Single characters rendered from the bundled fonts as MNIST-style 28x28 crops: the starting
weights for reading letters (MNIST has digits only, and EMNIST cannot be downloaded here).

Each crop goes through what a CAPTCHA character goes through: a random font, rotation, scale,
shear, stroke width, elastic distortion and blur, then the segmenter's own binarisation and
normalisation, so the network sees crops shaped like the ones `segment` cuts.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..pixels import mnist_crop
from ..generation import render


def render_char(char: str, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 uint8 crop (white on black) of `char`, randomly drawn."""
    mask = render.glyph(char, int(rng.integers(len(render.font_paths()))), int(rng.integers(30, 56)))
    mask = render.rotate_scale(mask, rng.uniform(-18, 18), rng.uniform(0.8, 1.2), rng.uniform(-0.35, 0.35))
    stroke = int(rng.integers(-1, 3))  # thinner (-1) .. bolder (+2)
    if stroke:
        kernel = np.ones((abs(stroke) + 1, abs(stroke) + 1), np.uint8)
        mask = cv2.dilate(mask, kernel) if stroke > 0 else cv2.erode(mask, kernel)
    if rng.random() < 0.5:  # elastic wobble of the whole glyph
        h, w = mask.shape
        field = cv2.GaussianBlur(rng.uniform(-1, 1, (2, h, w)).astype(np.float32).transpose(1, 2, 0), (0, 0), 5)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        amount = rng.uniform(2, 8)
        mask = cv2.remap(
            mask, xs + field[..., 0] * amount * 5, ys + field[..., 1] * amount * 5, cv2.INTER_LINEAR, borderValue=0
        )
    if rng.random() < 0.4:
        mask = cv2.GaussianBlur(mask, (3, 3), rng.uniform(0.5, 1.2))
    crop = mnist_crop(mask > rng.uniform(70, 170))
    return crop if crop.any() else mnist_crop(mask > 0)


def render_chars(charset: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` crops with labels as charset indices, classes balanced; depends only on the seed."""
    rng = np.random.default_rng([seed, 28])
    labels = np.arange(count) % len(charset)
    rng.shuffle(labels)
    images = np.empty((count, 28, 28), np.uint8)
    for i, label in enumerate(labels):
        images[i] = render_char(charset[label], rng)
    return images, labels.astype(np.int32)

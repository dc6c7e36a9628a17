"""Pixel arithmetic two layers share: the MNIST-style character crop (the segmenter cuts it, the
rendered-character set draws it), and the differentiable resampling the adversarial objectives
of the attackers are built from."""

from __future__ import annotations

import cv2
import numpy as np

MARGIN_CAP = 5.0  # logits: a character beaten by this much pulls no further
GREY = np.array([0.114, 0.587, 0.299], np.float32)  # OpenCV's BGR -> grey weights


def mnist_crop(mask: np.ndarray) -> np.ndarray:
    """MNIST-style crop: ink fitted into 20x20 keeping aspect, centre of mass at the centre of 28x28."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return np.zeros((28, 28), np.uint8)
    char = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255
    h, w = char.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    char = cv2.resize(char, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((28, 28), np.uint8)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    out[top : top + nh, left : left + nw] = char
    m = cv2.moments(out)
    if m["m00"] > 0:
        dx, dy = 14 - m["m10"] / m["m00"], 14 - m["m01"] / m["m00"]
        out = cv2.warpAffine(out, np.float32([[1, 0, dx], [0, 1, dy]]), (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    return out


def pad_batch(images: list[np.ndarray], multiple: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Images padded to one shape (rounded up, so few distinct shapes are traced) and the mask
    of their real pixels."""
    h = -(-max(im.shape[0] for im in images) // multiple) * multiple
    w = -(-max(im.shape[1] for im in images) // multiple) * multiple
    x = np.zeros((len(images), h, w, 3), np.float32)
    valid = np.zeros((len(images), h, w, 1), np.float32)
    for k, im in enumerate(images):
        x[k, : im.shape[0], : im.shape[1]] = im
        valid[k, : im.shape[0], : im.shape[1]] = 1
    return x, valid


def resize_matrix(size_in: int, size_out: int, start: float = 0.0, length: float | None = None) -> np.ndarray:
    """(size_out, size_in) weights that average input cells into output cells (area resampling
    of the span [start, start + length) of the input), as OpenCV's INTER_AREA does."""
    length = size_in - start if length is None else length
    m = np.zeros((size_out, size_in), np.float32)
    scale = length / size_out
    for o in range(size_out):
        a, b = start + o * scale, start + (o + 1) * scale
        lo, hi = int(np.floor(a)), int(np.ceil(b))
        for i in range(max(lo, 0), min(hi, size_in)):
            overlap = min(b, i + 1) - max(a, i)
            if overlap > 0:
                m[o, i] = overlap
        total = m[o].sum()
        if total > 0:
            m[o] /= total
    return m

"""What the `ctc` reader feeds its network and reads from it: the prepared input (`ctc_input`),
greedy decoding, the training augmentation, and the numbers the differentiable copy of the
input preparation needs for adversarial perturbation."""

from __future__ import annotations

import cv2
import numpy as np

from ..pixels import resize_matrix


def ctc_input(image: np.ndarray, height: int, width: int, colour: bool = False) -> np.ndarray:
    """Grey, dark ink on a light background, contrast stretched, scaled to `height` (squeezed
    if it would be wider than `width`) and padded on the right with its background grey. With
    `colour`, the BGR image (height x width x 3) through the same stretch and inversion, decided
    on its grey, and padded with its background colour."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    picture = (image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)) if colour else grey
    _, _, stretch, invert = contrast(grey)
    if stretch is not None:
        picture = cv2.LUT(picture, stretch)
    if invert:  # the background fills most of a CAPTCHA; make it the light side
        picture = 255 - picture
    h, w = grey.shape
    new_w = max(1, min(width, round(w * height / h)))
    resized = cv2.resize(picture, (new_w, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    channels = resized.reshape(height * new_w, -1)
    background = [
        int(np.sum(sorted_pixels(cumulative_histogram(channels[:, c]), middle(channels.shape[0])))) // 2
        for c in range(channels.shape[1])
    ]
    out = np.empty((height, width) + resized.shape[2:], np.uint8)
    out[:] = background if colour else background[0]
    out[:, :new_w] = resized
    return out


def contrast(grey: np.ndarray):
    """What `ctc_input` does to a grey image's levels: its 1st and 99th percentiles (np.percentile's),
    their stretch onto 0-255 as a lookup table (None when they are within 8 greys), and whether the
    stretched image's median is dark (it is inverted). Counted from the histogram, without sorting:
    the same numbers as np.percentile and np.median."""
    cumulative = cumulative_histogram(grey)
    lo, hi = linear_percentiles(cumulative, (1, 99))
    levels = np.arange(256, dtype=np.uint8)
    stretch = None
    if hi - lo > 8:  # the float64 arithmetic the stretch of the pixels themselves would do
        stretch = np.clip((levels.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    # a non-decreasing table keeps the pixels' order: the median's two middle pixels, looked up
    a, b = (stretch if stretch is not None else levels)[sorted_pixels(cumulative, middle(cumulative[-1]))]
    return lo, hi, stretch, int(a) + int(b) < 256


def middle(n: int) -> tuple[int, int]:
    """The ranks np.median averages among `n` values (the same one twice when `n` is odd)."""
    return (n - 1) // 2, n // 2


def cumulative_histogram(values: np.ndarray) -> np.ndarray:
    """How many of the uint8 `values` are at or below each level 0-255."""
    return np.cumsum(np.bincount(values.ravel(), minlength=256))


def sorted_pixels(cumulative: np.ndarray, ranks) -> np.ndarray:
    """The values at these ranks of the sorted values whose `cumulative_histogram` is given."""
    return np.searchsorted(cumulative, ranks, side="right")


def linear_percentiles(cumulative: np.ndarray, qs) -> np.ndarray:
    """np.percentile(values, qs) (its default, linear method) of uint8 values given as their
    cumulative histogram, to the last bit: the same ranks, and numpy's own interpolation (which
    counts down from the upper neighbour past the midpoint)."""
    n = int(cumulative[-1])
    position = (n - 1) * (np.asarray(qs, np.float64) / 100)
    below = np.floor(position)
    t = position - below
    a = sorted_pixels(cumulative, below.astype(np.intp)).astype(np.uint8)
    b = sorted_pixels(cumulative, np.minimum(below.astype(np.intp) + 1, n - 1)).astype(np.uint8)
    d = b - a
    return np.where(t >= 0.5, b - d * (1 - t), a + d * t)


# test-time views of a prepared input: (shift x, shift y, scale), the CAPTCHA itself first
VIEWS = ((0, 0, 1.0), (2, 0, 1.0), (-2, 0, 1.0), (0, 1, 1.0), (0, 0, 1.08), (0, 0, 0.93), (1, -1, 1.0), (-1, 1, 1.04))


def views(image: np.ndarray, count: int) -> list[np.ndarray]:
    """The first `count` of VIEWS of a prepared input: shifted and scaled a little about its centre,
    its edges repeated."""
    h, w = image.shape[:2]
    out = []
    for dx, dy, scale in VIEWS[:count]:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0, scale)
        m[:, 2] += (dx, dy)
        out.append(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return out


def vote(readings: list[tuple[str, list[float]]]) -> tuple[str, list[float]]:
    """The reading most views agree on (ties: the surer, by their least confident characters summed),
    with the confidences of the first view that read it."""
    tally: dict[str, float] = {}
    for text, conf in readings:
        tally[text] = tally.get(text, 0.0) + 1 + 1e-3 * (min(conf) if conf else 0.0)
    best = max(tally, key=tally.get)
    return next(r for r in readings if r[0] == best)


def greedy_decode(probs: np.ndarray, charset: str) -> list[tuple[str, list[float]]]:
    """Best path: the likeliest class per step, repeats merged, blanks dropped. The confidence
    of a character is its highest probability over the steps that emitted it."""
    out = []
    best = probs.argmax(axis=-1)
    for p, path in zip(probs, best):
        text, conf, previous = [], [], 0
        for t, k in enumerate(path):
            if k != 0 and k != previous:
                text.append(charset[k - 1])
                conf.append(float(p[t, k]))
            elif k != 0 and conf:
                conf[-1] = max(conf[-1], float(p[t, k]))
            previous = k
        out.append(("".join(text), [round(c, 4) for c in conf]))
    return out


def augment(images: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """CAPTCHA-like variation: small rotation, shear, scale and shift, blur, noise, contrast,
    and now and then a thin line across, of grey (N, h, w) or colour (N, h, w, 3) images."""
    if strength <= 0:
        return images
    n, h, w = images.shape[:3]
    colour = images.ndim == 4
    out = np.empty_like(images)
    for i in range(n):
        im = images[i]
        background = tuple(np.median(im.reshape(h * w, 3), axis=0).tolist()) if colour else int(np.median(im))
        angle = rng.uniform(-3, 3) * strength
        shear = rng.uniform(-0.15, 0.15) * strength
        sx, sy = 1 + rng.uniform(-0.1, 0.05) * strength, 1 + rng.uniform(-0.1, 0.05) * strength
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[:, :2] = m[:, :2] @ np.array([[sx, shear], [0, sy]])
        m[:, 2] += (w / 2, h / 2) - m[:, :2] @ np.array([w / 2, h / 2])
        m[:, 2] += rng.uniform(-3, 3) * strength, rng.uniform(-2, 2) * strength
        im = cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=background)
        if rng.random() < 0.25 * strength:
            im = cv2.GaussianBlur(im, (3, 3), rng.uniform(0.3, 1.0))
        if rng.random() < 0.2 * strength:
            y0, y1 = rng.integers(0, h, 2)
            ink = tuple(rng.integers(0, 120, 3).tolist()) if colour else int(rng.integers(0, 120))
            cv2.line(im, (0, int(y0)), (w - 1, int(y1)), ink, 1, cv2.LINE_AA)
        if rng.random() < 0.5 * strength:
            gain, bias = rng.uniform(0.6, 1.1), rng.uniform(-20, 40)
            im = np.clip(im.astype(np.float32) * gain + bias, 0, 255)
        if rng.random() < 0.3 * strength:
            im = np.clip(im + rng.normal(0, rng.uniform(2, 12), im.shape), 0, 255)
        out[i] = im
    return out


def percentiles(grey, valid, qs):
    """np.percentile's (linear) percentiles of each image's real pixels, differentiable (the
    gradient reaches the pixels that are the percentiles), as (B, 1, 1) tensors."""
    import tensorflow as tf

    b = tf.shape(grey)[0]
    flat = tf.reshape(grey, [b, -1])
    mask = tf.reshape(valid, [b, -1]) > 0
    ordered = tf.sort(tf.where(mask, flat, 1e9), axis=1)  # the real pixels first, in order
    n = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)
    out = []
    for q in qs:
        position = q / 100.0 * (n - 1.0)
        below = tf.cast(tf.floor(position), tf.int32)
        above = tf.minimum(below + 1, tf.cast(n, tf.int32) - 1)
        fraction = position - tf.floor(position)
        low = tf.gather(ordered, below[:, None], batch_dims=1)[:, 0]
        high = tf.gather(ordered, above[:, None], batch_dims=1)[:, 0]
        out.append((low + fraction * (high - low))[:, None, None])
    return out


def objective_constants(image: np.ndarray, height: int, width: int, colour: bool = False):
    """What `ctc_input` decided for this clean image, as numbers: contrast gain and offset,
    whether it inverted, its resize matrices, its width after resizing and its padding grey (per
    channel: one, or three with `colour`)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    lo, hi, _, invert = contrast(grey)
    gain, offset = (255.0 / (hi - lo), lo) if hi - lo > 8 else (1.0, 0.0)
    h, w = grey.shape
    new_w = max(1, min(width, round(w * height / h)))
    prepared = ctc_input(image, height, width, colour)[:, :new_w]
    pad = np.median(prepared.reshape(height * new_w, -1), axis=0).astype(np.float32)
    return gain, offset, invert, resize_matrix(h, height), resize_matrix(w, new_w), new_w, pad

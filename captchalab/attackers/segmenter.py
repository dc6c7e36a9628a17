"""Cut a CAPTCHA image into single characters with OpenCV and normalise each the MNIST way.

Steps: grey → ink mask (Otsu, polarity from the border) → opening sized to the stroke width,
which removes interference lines thinner than the strokes → connected components → drop
specks → merge fragments that share columns → make the count right (merge or drop extras;
split wide blobs at column-projection minima) → 28x28 crops, white on black, the character
fitted into 20x20 and centred by centre of mass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..pixels import mnist_crop  # noqa: F401 (the crop every reader of characters shares)

WORK_HEIGHT = 64  # images are scaled to this height so that sizes below are in fixed pixels


@dataclass
class Blob:
    """Ink pixels of one or more characters: a boolean mask over the box [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    mask: np.ndarray

    @property
    def x1(self) -> int:
        return self.x0 + self.mask.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.mask.shape[0]

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    @property
    def height(self) -> int:
        return self.mask.shape[0]

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    def tight(self) -> "Blob":
        """The same pixels in their smallest box (an empty blob stays as it is)."""
        rows, cols = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
        if len(rows) == 0:
            return self
        return Blob(
            self.x0 + int(cols[0]), self.y0 + int(rows[0]), self.mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        )


@dataclass
class Segmentation:
    crops: np.ndarray  # (n, 28, 28) uint8, white on black
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)  # in input pixels


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Foreground mask: Otsu threshold, ink taken as the minority side (the background fills
    most of a CAPTCHA; a frame around the image would fool a border-based guess)."""
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    _, mask = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if mask.mean() > 127:  # the background came out white: ink is the dark side
        mask = 255 - mask
    return mask


def remove_thin_lines(mask: np.ndarray) -> np.ndarray:
    """Open with a kernel a bit thinner than the strokes: lines thinner than that vanish."""
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    ink = dist[dist > 0]
    if ink.size == 0:
        return mask
    stroke = 2 * float(np.percentile(ink, 90))
    k = int(np.clip(round(stroke * 0.55), 1, 7))
    if k < 2:
        return mask
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # give back the thin parts next to what survived (hairline strokes of serif fonts): only
    # the stretches of line far from any thick stroke stay removed
    near = cv2.dilate(opened, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    restored = cv2.bitwise_and(mask, near)
    # an opening that erases most of the ink was too strong for this image's strokes
    return restored if opened.sum() > 0.5 * mask.sum() else mask


def find_blobs(mask: np.ndarray) -> list[Blob]:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return []
    # frames and long lines that touch no character: components spanning most of the image's
    # width while filling little of their box (a thin curve or a rectangle's outline)
    stats = stats.copy()
    _, width = mask.shape
    w_all, h_all, a_all = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    spanning = (w_all > 0.75 * width) & (a_all < 0.2 * w_all * h_all)
    spanning[0] = False
    stats[spanning, cv2.CC_STAT_AREA] = 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    heights = np.where(areas > 0, stats[1:, cv2.CC_STAT_HEIGHT], 0)
    if not areas.any():
        return []
    big_area, big_height = areas.max(), heights.max()
    blobs = []
    for i in range(1, count):
        x, y, w = stats[i, cv2.CC_STAT_LEFT], stats[i, cv2.CC_STAT_TOP], stats[i, cv2.CC_STAT_WIDTH]
        area, h = areas[i - 1], heights[i - 1]
        if area < 0.06 * big_area or h < 0.3 * big_height:  # specks, dots, and the spanning lines
            continue
        blobs.append(Blob(int(x), int(y), labels[y : y + h, x : x + w] == i))
    blobs.sort(key=lambda b: b.x0)
    return blobs


def merge(a: Blob, b: Blob) -> Blob:
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    mask = np.zeros((max(a.y1, b.y1) - y0, max(a.x1, b.x1) - x0), bool)
    for blob in (a, b):
        mask[blob.y0 - y0 : blob.y1 - y0, blob.x0 - x0 : blob.x1 - x0] |= blob.mask
    return Blob(x0, y0, mask)


def merge_fragments(blobs: list[Blob]) -> list[Blob]:
    """Join blobs that share most of their columns (pieces of one broken character)."""
    out: list[Blob] = []
    for blob in blobs:
        if out:
            prev = out[-1]
            overlap = min(prev.x1, blob.x1) - max(prev.x0, blob.x0)
            if overlap > 0.6 * min(prev.width, blob.width):
                out[-1] = merge(prev, blob)
                continue
        out.append(blob)
    return out


def reduce_to(blobs: list[Blob], n: int) -> list[Blob]:
    """Too many blobs: drop a tiny one, else merge the neighbours that make the narrowest pair."""
    while len(blobs) > n:
        areas = [b.area for b in blobs]
        smallest = int(np.argmin(areas))
        if areas[smallest] < 0.2 * float(np.median(areas)):
            del blobs[smallest]
            continue
        widths = [max(a.x1, b.x1) - min(a.x0, b.x0) for a, b in zip(blobs, blobs[1:])]
        i = int(np.argmin(widths))
        blobs[i : i + 2] = [merge(blobs[i], blobs[i + 1])]
    return blobs


def pieces_per_blob(blobs: list[Blob], n: int | None, height: int) -> list[int]:
    """How many characters each blob holds: the expected total spread by width, or, without a
    hint, each blob's width against a typical character width."""
    widths = np.array([b.width for b in blobs], float)
    if n is None:
        char_width = max(0.6 * height, float(np.median(widths)) if len(widths) > 2 else 0.0)
        return [max(1, int(round(w / (char_width * 1.15)))) for w in widths]
    counts = [1] * len(blobs)
    for _ in range(n - len(blobs)):
        i = int(np.argmax(widths / np.array(counts)))
        counts[i] += 1
    return counts


def split_blob(blob: Blob, k: int) -> list[Blob]:
    """Split at the column-projection minima nearest the k-1 equal-width cut points."""
    if k <= 1:
        return [blob]
    columns = blob.mask.sum(axis=0).astype(float)
    columns = np.convolve(columns, np.ones(3) / 3, mode="same")
    cuts, w = [0], blob.width
    for j in range(1, k):
        centre, window = j * w / k, 0.25 * w / k
        lo, hi = int(max(cuts[-1] + 1, centre - window)), int(min(w - 1, centre + window + 1))
        cuts.append(lo + int(np.argmin(columns[lo:hi])) if hi > lo else int(centre))
    cuts.append(w)
    return [Blob(blob.x0 + a, blob.y0, blob.mask[:, a:b]).tight() for a, b in zip(cuts, cuts[1:])]


def plausible(blobs: list[Blob], expected: int | None) -> bool:
    """Blobs that look like one character each: the expected count, none much wider than tall."""
    if not blobs or (expected is not None and len(blobs) != expected):
        return False
    return max(b.width for b in blobs) <= 1.3 * max(b.height for b in blobs)


def choose_blobs(mask: np.ndarray, expected: int | None) -> list[Blob]:
    """Components of the raw mask when they already look right; otherwise of the mask with thin
    lines removed (the opening can break hairline fonts, so it is not applied by default)."""
    raw = merge_fragments(find_blobs(mask))
    if plausible(raw, expected):
        return raw
    opened = merge_fragments(find_blobs(remove_thin_lines(mask)))
    if expected is None or plausible(opened, expected) or not raw:
        return opened or raw
    return opened if abs(len(opened) - expected) <= abs(len(raw) - expected) else raw


def cut_characters(image: np.ndarray, expected: int | None = None) -> Segmentation:
    """Segment one CAPTCHA (BGR or grey, any size) into character crops in reading order.

    `expected` is the number of characters when known (fixed-length CAPTCHAs); without it
    the segmenter decides from the blobs' widths.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = WORK_HEIGHT / gray.shape[0]
    gray = cv2.resize(
        gray,
        (max(1, round(gray.shape[1] * scale)), WORK_HEIGHT),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    blobs = choose_blobs(ink_mask(gray), expected)
    if not blobs:
        return Segmentation(np.zeros((0, 28, 28), np.uint8), [])
    if expected is not None and len(blobs) > expected:
        blobs = reduce_to(blobs, expected)
    height = float(np.median([b.height for b in blobs]))
    counts = pieces_per_blob(blobs, expected, height)
    parts = [p for blob, k in zip(blobs, counts) for p in split_blob(blob, k)]
    crops = np.stack([mnist_crop(part.mask) for part in parts])
    boxes = [tuple(int(round(v / scale)) for v in (p.x0, p.y0, p.x1, p.y1)) for p in parts]
    return Segmentation(crops, boxes)

"""Drawing click-in-order challenges (kind "click"): objects scattered over a scene without
covering each other more than a design allows, their visible boxes, and the prompt strip that
shows the targets in order, drawn another way (another art style, a silhouette, an outline).

Everything draws from the `numpy.random.Generator` it is given, so a seed gives the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CaptchalabError
from . import scenes

STRIP_CELL = 40  # pixels a prompt item takes in the strip (square), beside a 4-pixel gap
PROMPT_DRAWINGS = ("other", "same", "silhouette", "outline")


def visible_box(picture: np.ndarray) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1, inclusive) of a BGRA picture's opaque part (alpha over half)."""
    ys, xs = np.nonzero(picture[..., 3] > 127)
    if not len(xs):
        return 0, 0, picture.shape[1] - 1, picture.shape[0] - 1
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _overlap(a, b) -> float:
    """The share of the smaller of two boxes that the other covers."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0] + 1) * (a[3] - a[1] + 1), (b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    return w * h / smaller


def check_room(p: dict, extent: float, things: str) -> None:
    """Refuse a design whose targets and decoys cannot lie apart in its scene: `extent` is an
    object's side against its `size` parameter (a rendered character is taller than its size)."""
    room = p["width"] * p["height"] / (p["size"] * extent * (1 + p["scale"])) ** 2
    if p["targets"] + p["decoys"] > 0.5 * room * (1 + 2 * p["overlap"]):
        raise CaptchalabError(
            f"{p['targets']} targets and {p['decoys']} decoys of {p['size']} px do not fit apart in a "
            f"{p['width']}x{p['height']} scene: fewer {things}, smaller ones or more overlap"
        )


def scatter(image: np.ndarray, pictures: list[np.ndarray], rng: np.random.Generator, overlap: float) -> list[tuple]:
    """Place BGRA `pictures` on `image` (in this order, later ones on top) at random places where
    no two visible boxes cover more than `overlap` of the smaller; returns each picture's visible
    box in the scene, clipped to it. A scene too small to hold them is a one-line error."""
    height, width = image.shape[:2]
    boxes: list[tuple] = []
    for picture in pictures:
        bx0, by0, bx1, by1 = visible_box(picture)
        ph, pw = picture.shape[:2]
        for _ in range(200):
            # the visible box inside the scene: its top left at (x, y) minus the box's offset
            x = int(rng.integers(0, max(1, width - (bx1 - bx0))))
            y = int(rng.integers(0, max(1, height - (by1 - by0))))
            box = (x, y, min(x + bx1 - bx0, width - 1), min(y + by1 - by0, height - 1))
            if all(_overlap(box, other) <= overlap for other in boxes):
                break
        else:
            raise CaptchalabError(
                f"the {width}x{height} scene cannot hold {len(pictures)} objects of this size apart: "
                "fewer targets or decoys, smaller objects or more overlap"
            )
        scenes.place(image, picture, x - bx0 + pw / 2, y - by0 + ph / 2, coverage=False)
        boxes.append(box)
    return boxes


def clutter(image: np.ndarray, rng: np.random.Generator, count: int, size: int) -> None:
    """`count` strokes and blots of random colours over the scene, in place (blots up to a third
    of an object's `size`)."""
    height, width = image.shape[:2]
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        a = (int(rng.integers(width)), int(rng.integers(height)))
        if rng.random() < 0.5:
            cv2.circle(image, a, int(rng.integers(3, size // 3)), colour, -1, cv2.LINE_AA)
        else:
            b = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.line(image, a, b, colour, int(rng.integers(1, 4)), cv2.LINE_AA)


def drawn_as(picture: np.ndarray, how: str) -> np.ndarray:
    """A BGRA prompt item drawn `how`: as it is (same, other), a dark silhouette, or an outline."""
    if how == "silhouette":
        out = np.zeros_like(picture)
        out[..., :3] = 60
        out[..., 3] = picture[..., 3]
        return out
    if how == "outline":
        edges = cv2.dilate(cv2.Canny(picture[..., 3], 100, 200), np.ones((2, 2), np.uint8))
        out = np.zeros_like(picture)
        out[..., :3] = 40
        out[..., 3] = edges
        return out
    return picture


def strip(items: list[np.ndarray], background=(236, 236, 236)) -> np.ndarray:
    """The prompt strip: BGRA items side by side in square cells, in click order (BGR)."""
    cell, gap = STRIP_CELL, 4
    out = np.empty((cell, len(items) * (cell + gap) + gap, 3), np.uint8)
    out[:] = background
    for k, item in enumerate(items):
        fitted = scenes.transformed(item, cell - 6, 0.0)
        scenes.place(out, fitted, gap + k * (cell + gap) + cell / 2, cell / 2, coverage=False)
    return out

"""Drawing helpers shared by the built-in styles: fonts, glyphs, transforms, noise, layout.

Images are uint8 BGR (OpenCV's order). Glyph masks are uint8 0..255 coverage maps, cached per
(font, size, character) because rasterising text dominates the cost of a simple style.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from .generator import Rendered


@functools.lru_cache(maxsize=None)
def font_paths() -> tuple[str, ...]:
    """TrueType fonts that ship with our dependencies: DejaVu (matplotlib), DroidSansMono (captcha)."""
    from importlib.util import find_spec

    # locate the packages without importing them (importing matplotlib is slow)
    mpl = Path(find_spec("matplotlib").origin).parent / "mpl-data" / "fonts" / "ttf"
    names = [
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSerif-Bold.ttf",
        "DejaVuSansMono.ttf",
        "DejaVuSans-Oblique.ttf",
    ]
    paths = [str(mpl / n) for n in names if (mpl / n).is_file()]
    droid = Path(find_spec("captcha").origin).parent / "data" / "DroidSansMono.ttf"
    if droid.is_file():
        paths.append(str(droid))
    return tuple(paths)


CJK_FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/noto", "/usr/local/share/fonts")


@functools.lru_cache(maxsize=None)
def cjk_font_paths() -> tuple[str, ...]:
    """Noto CJK fonts installed system-wide (Debian's fonts-noto-cjk, OFL); () when there are none."""
    found = []
    for folder in CJK_FONT_DIRS:
        found += sorted(str(f) for f in Path(folder).glob("Noto*CJK*.tt[cf]")) if Path(folder).is_dir() else []
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def glyph(char: str, font_index: int, size: int) -> np.ndarray:
    """The coverage mask of one character, cropped to its ink."""
    return font_glyph(font_paths()[font_index % len(font_paths())], char, size)


@functools.lru_cache(maxsize=8192)
def font_glyph(path: str, char: str, size: int) -> np.ndarray:
    """The coverage mask of one character in the font file at `path`, cropped to its ink."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(path, size)
    x0, y0, x1, y1 = font.getbbox(char)
    im = Image.new("L", (x1 - x0 + 4, y1 - y0 + 4), 0)
    ImageDraw.Draw(im).text((2 - x0, 2 - y0), char, font=font, fill=255)
    mask = np.asarray(im)
    return crop_to_ink(mask)


def undrawable(path: str, chars: str) -> str:
    """The characters of `chars` the font at `path` has no glyph for: they would be drawn as its
    empty box (the .notdef glyph), which is what an unassigned code point draws."""
    missing = font_glyph(path, "\U0010fffd", 32)
    return "".join(
        c for c in chars if (g := font_glyph(path, c, 32)).shape == missing.shape and np.array_equal(g, missing)
    )


def crop_to_ink(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 24)
    if len(xs) == 0:
        return mask
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def rotate_scale(mask: np.ndarray, degrees: float, scale: float = 1.0, shear: float = 0.0) -> np.ndarray:
    """Rotate, scale and shear a mask about its centre, growing the canvas so nothing is cut."""
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    m[0, 1] += shear
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    m[:, 2] -= (x0, y0)
    out = cv2.warpAffine(
        mask, m, (int(np.ceil(x1 - x0)) + 1, int(np.ceil(y1 - y0)) + 1), flags=cv2.INTER_LINEAR, borderValue=0
    )
    return crop_to_ink(out)


def wave(mask: np.ndarray, amplitude: float, period: float, phase: float) -> np.ndarray:
    """Shift each row sideways by a sine of its height (a wavy warp)."""
    if amplitude <= 0:
        return mask
    pad = int(np.ceil(amplitude)) + 1
    mask = cv2.copyMakeBorder(mask, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + amplitude * np.sin(2 * np.pi * ys / period + phase).astype(np.float32)
    return crop_to_ink(cv2.remap(mask, map_x, ys, cv2.INTER_LINEAR, borderValue=0))


def fit_height(mask: np.ndarray, height: int) -> np.ndarray:
    h, w = mask.shape
    scale = height / h
    return cv2.resize(mask, (max(1, round(w * scale)), height), interpolation=cv2.INTER_AREA)


def canvas(height: int, width: int, color) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = color
    return out


def textured_canvas(
    height: int, width: int, rng: np.random.Generator, low: int, high: int, cells: int = 6
) -> np.ndarray:
    """A smooth coloured texture: random colours on a coarse grid, bicubically enlarged."""
    grid = rng.integers(low, high + 1, (max(2, height // cells), max(2, width // cells), 3)).astype(np.uint8)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def paste(image: np.ndarray, mask: np.ndarray, x: int, y: int, color) -> tuple[int, int, int, int]:
    """Alpha-blend `color` through `mask` at (x, y), clipped to the image; returns the ink box."""
    h, w = mask.shape
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    sub = mask[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)[..., None] / 255.0
    region = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (region * (1 - sub) + np.asarray(color, np.float32) * sub + 0.5).astype(np.uint8)
    ys, xs = np.nonzero(sub[..., 0] > 0.1)
    if len(xs) == 0:
        return (x0, y0, max(x0 + 1, x1), max(y0 + 1, y1))
    return (int(x0 + xs.min()), int(y0 + ys.min()), int(x0 + xs.max() + 1), int(y0 + ys.max() + 1))


def compose(
    masks: list[np.ndarray],
    colors,
    rng: np.random.Generator,
    height: int,
    background,
    advance: float = 1.3,
    jitter_y: float = 0.0,
    margin: int = 12,
) -> Rendered:
    """Place glyph masks left to right on a background made by `background(height, width)`.

    `advance` scales each glyph's width into the step to the next one (1.0 = just touching,
    below 1 overlaps). The width grows with the text so no glyph is ever cut off.
    """
    steps = [m.shape[1] * advance for m in masks[:-1]] + [masks[-1].shape[1]]
    width = int(np.ceil(sum(steps))) + 2 * margin
    image = background(height, width)
    x = float(margin)
    boxes = []
    for mask, color, step in zip(masks, colors, steps):
        y = (height - mask.shape[0]) / 2 + rng.uniform(-jitter_y, jitter_y)
        y = min(max(y, 0), height - mask.shape[0])
        boxes.append(paste(image, mask, int(round(x)), int(round(y)), color))
        x += step
    return Rendered(image, boxes)


def plain(color):
    return lambda height, width: canvas(height, width, color)


def interference_lines(image: np.ndarray, rng: np.random.Generator, count: int, color, thickness: int = 1) -> None:
    H, W = image.shape[:2]
    for _ in range(count):
        p0 = (int(rng.integers(0, W // 4 + 1)), int(rng.integers(0, H)))
        p1 = (int(rng.integers(3 * W // 4, W)), int(rng.integers(0, H)))
        cv2.line(image, p0, p1, color, thickness, cv2.LINE_AA)


def arcs(image: np.ndarray, rng: np.random.Generator, count: int, color, thickness: int = 1) -> None:
    H, W = image.shape[:2]
    for _ in range(count):
        centre = (int(rng.integers(0, W)), int(rng.integers(0, H)))
        axes = (int(rng.integers(W // 6, W // 2 + 1)), int(rng.integers(H // 4, H + 1)))
        start = float(rng.uniform(0, 360))
        cv2.ellipse(
            image,
            centre,
            axes,
            float(rng.uniform(0, 180)),
            start,
            start + float(rng.uniform(60, 180)),
            color,
            thickness,
            cv2.LINE_AA,
        )


def dots(image: np.ndarray, rng: np.random.Generator, density: float, low: int = 0, high: int = 255) -> None:
    """Salt-and-pepper style coloured dots on a `density` fraction of the pixels."""
    H, W = image.shape[:2]
    n = int(density * H * W)
    if n:
        ys, xs = rng.integers(0, H, n), rng.integers(0, W, n)
        image[ys, xs] = rng.integers(low, high + 1, (n, 3)).astype(np.uint8)


def dark_color(rng: np.random.Generator, high: int = 90):
    return tuple(int(c) for c in rng.integers(0, high + 1, 3))

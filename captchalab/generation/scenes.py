"""Pictures for image CAPTCHAs: procedural scenes (sky and ground, textures, clutter) and objects
from a tile set placed on them, with the changes a design can turn up (scale, rotation, colour
shift, occlusion) and the degradations applied to the whole (blur, noise, JPEG).

Everything draws from the `numpy.random.Generator` it is given, so a seed gives the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def scene(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural background, HxWx3 uint8 BGR: a sky-and-ground gradient, a smooth texture
    or a blend of both, never plain white."""
    kind = int(rng.integers(3))
    if kind == 0 or kind == 2:
        top, bottom = rng.integers(90, 250, 3), rng.integers(30, 200, 3)
        horizon = rng.uniform(0.3, 0.8) * height
        t = np.clip((np.arange(height)[:, None] - horizon) / (0.25 * height) + 0.5, 0, 1)[..., None]
        column = (top * (1 - t) + bottom * t).astype(np.float32)  # H x 1 x 3: every column alike
        if kind == 0:
            return np.ascontiguousarray(np.broadcast_to(np.clip(column, 0, 255).astype(np.uint8), (height, width, 3)))
        gradient = np.broadcast_to(column, (height, width, 3))
    if kind == 1 or kind == 2:
        texture = smooth_texture(height, width, rng)
        if kind == 1:
            return texture
    return np.clip(0.6 * gradient + 0.4 * texture.astype(np.float32), 0, 255).astype(np.uint8)


def smooth_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A few soft patches of colour, whatever the size (photos are smooth), with no up or down."""
    across = int(rng.integers(3, 9))
    grid = rng.integers(40, 250, (across, across, 3)).astype(np.uint8)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _hue_turns() -> np.ndarray:
    """OpenCV's 8-bit hue runs 0-179 (two degrees a step): entry k is a lookup table for cv2.LUT
    that turns hue by k steps and keeps saturation and value."""
    identity = np.arange(256)
    tables = np.empty((180, 256, 1, 3), np.uint8)
    for k in range(180):
        tables[k, :, 0, 0] = np.where(identity < 180, (identity + k) % 180, identity)
        tables[k, :, 0, 1] = tables[k, :, 0, 2] = identity
    return tables


HUE_TURNS = _hue_turns()


def shift_colour(picture: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the hue of a BGRA picture by `degrees` (alpha kept)."""
    if abs(degrees) < 0.5:
        return picture
    hsv = cv2.cvtColor(picture, cv2.COLOR_BGRA2BGR)
    cv2.cvtColor(hsv, cv2.COLOR_BGR2HSV, dst=hsv)
    cv2.LUT(hsv, HUE_TURNS[int(round(degrees / 2)) % 180], dst=hsv)
    return cv2.merge((cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), picture[..., 3]))  # 5x faster than a strided copy


def visible(picture: np.ndarray) -> tuple[int, int, int, int]:
    """The box (x, y, width, height) around a BGRA picture's pixels that are not fully transparent."""
    return cv2.boundingRect(np.ascontiguousarray(picture[..., 3]))


def transformed(picture: np.ndarray, size: int, degrees: float) -> np.ndarray:
    """A BGRA picture scaled so its longer side is `size` pixels and turned by `degrees`, on a
    canvas just large enough to hold it."""
    h, w = picture.shape[:2]
    scale = size / max(h, w)
    side = int(np.ceil(size * 1.45)) + 2  # room for any rotation
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    m[:, 2] += (side / 2 - w / 2, side / 2 - h / 2)
    return cv2.warpAffine(
        picture,
        m,
        (side, side),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )


def place(image: np.ndarray, picture: np.ndarray, cx: float, cy: float, coverage: bool = True) -> np.ndarray | None:
    """Alpha-blend a BGRA picture onto `image` centred at (cx, cy), clipped; returns the
    picture's coverage of `image` as an HxW float32 mask in [0, 1] (None with coverage=False,
    which spares a scene-sized array a call)."""
    H, W = image.shape[:2]
    h, w = picture.shape[:2]
    x, y = int(round(cx - w / 2)), int(round(cy - h / 2))
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    covered = np.zeros((H, W), np.float32) if coverage else None
    if x0 >= x1 or y0 >= y1:
        return covered
    # only where the picture shows: a fully transparent pixel leaves the image as it was
    bx, by, bw, bh = visible(picture[y0 - y : y1 - y, x0 - x : x1 - x])
    if not bw:
        return covered
    x0, y0, x1, y1 = x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh
    part = picture[y0 - y : y1 - y, x0 - x : x1 - x]
    alpha = part[..., 3:].astype(np.float32) / 255.0
    region = image[y0:y1, x0:x1].astype(np.float32)
    region *= 1 - alpha
    region += part[..., :3] * alpha
    region += 0.5
    image[y0:y1, x0:x1] = region.astype(np.uint8)
    if covered is not None:
        covered[y0:y1, x0:x1] = alpha[..., 0]
    return covered


def occluder(
    image: np.ndarray, rng: np.random.Generator, cx: float, cy: float, size: float, share: float
) -> np.ndarray:
    """Cover about `share` of a square of side `size` centred at (cx, cy) with a solid shape in a
    scene colour (a post, a leaf, a sign); returns the covered mask (HxW, 0 or 1)."""
    H, W = image.shape[:2]
    mask = np.zeros((H, W), np.uint8)
    if share <= 0:
        return mask.astype(np.float32)
    side = size * np.sqrt(share)
    ox, oy = cx + rng.uniform(-0.4, 0.4) * size, cy + rng.uniform(-0.4, 0.4) * size
    if rng.random() < 0.5:
        shape = (cv2.rectangle, (int(ox - side / 2), int(oy - side / 2)), (int(ox + side / 2), int(oy + side / 2)))
    else:
        axes = (max(1, int(side / 1.6)), max(1, int(side / 2.2)))
        shape = (cv2.ellipse, (int(ox), int(oy)), axes, float(rng.uniform(0, 180)), 0, 360)
    colour = rng.integers(30, 220, 3).astype(np.uint8)
    draw, *where = shape
    draw(mask, *where, 1, -1)
    draw(image, *where, colour.tolist(), -1)  # the same pixels, drawn again: faster than indexing by the mask
    return mask.astype(np.float32)


def degrade(image: np.ndarray, rng: np.random.Generator, blur: float, noise: float, jpeg: int) -> np.ndarray:
    """Gaussian blur (sigma in pixels), additive Gaussian noise (standard deviation in grey
    levels) and a JPEG round trip at quality `jpeg` (100: none)."""
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    if noise > 0:
        # OpenCV's normal draw, seeded from `rng` (its generator is per thread, so a seed still
        # gives the same pixels): 4x faster than numpy's, and noise is the largest array drawn
        cv2.setRNGSeed(int(rng.integers(2**31)))
        noisy = np.empty(image.shape, np.float32)
        cv2.randn(noisy.reshape(image.shape[0], -1), 0.0, float(noise))  # one channel: a scalar sigma covers all
        image = cv2.add(image, noisy, dtype=cv2.CV_8U)  # rounded and saturated
    if jpeg < 100:
        image = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg)])[1], cv2.IMREAD_COLOR)
    return image

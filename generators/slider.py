"""Slider CAPTCHAs ("drag the piece into the gap"), as GeeTest-like sites serve them: a background
scene with a puzzle-piece-shaped gap, and the piece cut from it (RGBA) at the gap's height. The
answer is the x of the gap's left edge in background pixels. Only the picture is measured: the
drag trajectory deployed sliders also judge is out of scope here.
"""

from __future__ import annotations

import cv2
import numpy as np

from captchalab.generation import scenes
from captchalab.generator import Challenge, Generator, Param, register


def piece_mask(side: int, rng: np.random.Generator, shape: str) -> np.ndarray:
    """A puzzle piece: a square with round knobs on two or three sides (or a plain square or
    circle), on a canvas with room for the knobs; 255 inside."""
    knob = side // 4
    size = side + 2 * knob
    mask = np.zeros((size, size), np.uint8)
    if shape == "circle":
        cv2.circle(mask, (size // 2, size // 2), side // 2, 255, -1, cv2.LINE_AA)
        return mask
    cv2.rectangle(mask, (knob, knob), (knob + side - 1, knob + side - 1), 255, -1)
    if shape == "puzzle":
        for cx, cy in ((size // 2, knob), (knob + side, size // 2), (size // 2, knob + side), (knob, size // 2)):
            if rng.random() < 0.75:
                cv2.circle(mask, (cx, cy), knob, 255 if rng.random() < 0.6 else 0, -1, cv2.LINE_AA)
    return mask


@register
class Slider(Generator):
    name = "slider"
    kind = "slider"
    description = (
        "Drag the piece into the gap: a scene with a piece-shaped gap (and decoy gaps), the piece served apart."
    )
    params = (
        Param("width", int, 300, 120, 800, "background width in pixels"),
        Param("height", int, 150, 60, 400, "background height in pixels"),
        Param("side", int, 44, 16, 120, "piece side in pixels (without its knobs)"),
        Param("shape", str, "puzzle", help="piece shape: puzzle, square or circle"),
        Param("shade", float, 0.55, 0.05, 0.95, "how much darker the gap is than the scene around it"),
        Param("edge_blur", float, 0.5, 0.0, 4.0, "blur of the gap's edge (sigma in pixels)"),
        Param("decoys", int, 0, 0, 4, "false gaps of the same shape on the piece's row (where they fit)"),
        Param("clutter", int, 4, 0, 30, "shapes scattered over the scene"),
        Param("rotation", float, 0.0, 0.0, 45.0, "largest rotation of the piece relative to its gap (degrees)"),
        Param("noise", float, 0.0, 0.0, 60.0, "Gaussian noise (standard deviation in grey levels)"),
        Param("jpeg", int, 95, 10, 100, "JPEG quality of the served background (100: lossless)"),
    )

    def at_strength(self, s):
        return {
            "shade": round(0.6 - 0.45 * s, 3),
            "edge_blur": round(0.5 + 2.0 * s, 2),
            "clutter": round(4 + 16 * s),
            "noise": round(12 * s, 1),
            "jpeg": int(round(95 - 45 * s)),
            "rotation": round(10 * s, 1),
        }

    def check(self, p):
        from captchalab.errors import CaptchalabError

        if p["shape"] not in ("puzzle", "square", "circle"):
            raise CaptchalabError(f"shape={p['shape']!r}: use puzzle, square or circle")
        size = p["side"] + 2 * (p["side"] // 4)
        if 2 * size + 8 > p["width"] or size + 4 > p["height"]:
            raise CaptchalabError(
                f"a piece of side {p['side']} ({size} px with its knobs) does not fit twice across "
                f"a {p['width']}x{p['height']} background"
            )

    def challenge(self, rng, p):
        width, height = p["width"], p["height"]
        image = scenes.scene(height, width, rng)
        for _ in range(p["clutter"]):  # texture the gap must be found in
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            if rng.random() < 0.5:
                cv2.circle(image, centre, int(rng.integers(4, height // 4)), colour, -1, cv2.LINE_AA)
            else:
                cv2.line(
                    image,
                    centre,
                    (int(rng.integers(width)), int(rng.integers(height))),
                    colour,
                    int(rng.integers(1, 4)),
                    cv2.LINE_AA,
                )
        mask = piece_mask(p["side"], rng, p["shape"])
        size = mask.shape[0]
        # the gap lies right of where the piece starts (x = 0), as on a page
        x = int(rng.integers(size + 4, width - size))
        y = int(rng.integers(0, height - size + 1))
        alpha = mask.astype(np.float32) / 255.0
        piece = np.dstack([image[y : y + size, x : x + size], mask])
        if p["rotation"]:
            m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-p["rotation"], p["rotation"]), 1.0)
            piece = cv2.warpAffine(piece, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
        cv2.polylines(
            piece,
            [c.reshape(-1, 2) for c in cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]],
            True,
            (255, 255, 255, 255),
            1,
            cv2.LINE_AA,
        )  # the light rim deployed pieces have
        taken = [(x, y)]
        for _ in range(p["decoys"]):
            # a false gap on the piece's own row (a gap elsewhere is ruled out by the served height),
            # not overlapping the others
            for _ in range(50):
                dx = int(rng.integers(size + 4, width - size))
                dy = int(np.clip(y + rng.integers(-3, 4), 0, height - size))
                if all(abs(dx - tx) >= size for tx, _ in taken):
                    taken.append((dx, dy))
                    break
        for gx, gy in taken:
            shaded = alpha
            if p["edge_blur"]:
                shaded = cv2.GaussianBlur(alpha, (0, 0), p["edge_blur"])
            region = image[gy : gy + size, gx : gx + size].astype(np.float32)
            image[gy : gy + size, gx : gx + size] = (region * (1 - p["shade"] * shaded[..., None])).astype(np.uint8)
        image = scenes.degrade(image, rng, 0.0, p["noise"], p["jpeg"])
        return Challenge(
            image, {"y": y}, str(x), {"decoys": [list(t) for t in taken[1:]], "piece_size": size}, {"piece": piece}
        )

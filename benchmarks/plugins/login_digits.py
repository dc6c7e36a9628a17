"""A third-party style written from docs/plugins.md, the stand-in for a corpus we do not have: a
login page's 70x30 JPEG CAPTCHAs of four coloured serif digits on a pale background, crossed by
thin lines. Nothing in captchalab draws this way; the benchmark pre-trains on the built-in
`noisy` style and fine-tunes on these, as a researcher would with the real corpus.
"""

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from captchalab import render as r
from captchalab.generator import Generator, Param, Rendered, register


def _serif_fonts() -> list[str]:
    return [p for p in r.font_paths() if "Serif" in p and "Mono" not in p]


@register
class LoginDigits(Generator):
    name = "login_digits"
    description = "70x30 JPEG: coloured serif digits on a pale background crossed by thin lines."
    charset = "0123456789"
    min_length, max_length = 4, 4
    params = (
        Param("lines", int, 2, 0, 5, "thin lines across"),
        Param("jitter", float, 3.0, 0.0, 6.0, "largest vertical jitter in pixels"),
        Param("quality", int, 70, 20, 95, "JPEG quality"),
    )

    def at_strength(self, s):
        return {"lines": 1 + round(2 * s), "jitter": 1 + 3 * s, "quality": int(85 - 30 * s)}

    def render(self, text, rng, p):
        width, height = 70, 30
        tint = rng.integers(225, 250, 3)
        background = (tint + rng.integers(-8, 8, (height, width, 3))).clip(0, 255).astype(np.uint8)
        canvas = Image.fromarray(background[..., ::-1].copy())
        draw = ImageDraw.Draw(canvas)
        fonts = _serif_fonts()
        boxes, x = [], 3 + int(rng.integers(0, 4))
        for c in text:
            font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], int(rng.integers(19, 24)))
            x0, y0, x1, y1 = font.getbbox(c)
            top = int(
                np.clip(
                    (height - (y1 - y0)) / 2 + rng.uniform(-p["jitter"], p["jitter"]), 0, max(0, height - (y1 - y0))
                )
            )
            colour = tuple(int(v) for v in rng.integers(0, 150, 3))
            draw.text((x - x0, top - y0), c, font=font, fill=colour)
            boxes.append((x, top, min(width, x + x1 - x0), min(height, top + y1 - y0)))
            x += (x1 - x0) + int(rng.integers(2, 5))
        image = np.asarray(canvas)[..., ::-1].copy()
        for _ in range(p["lines"]):
            colour = tuple(int(v) for v in rng.integers(60, 200, 3))
            start = (0, int(rng.integers(3, height - 3)))
            end = (width - 1, int(rng.integers(3, height - 3)))
            cv2.line(image, start, end, colour, 1, cv2.LINE_AA)
        image = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, p["quality"]])[1], cv2.IMREAD_COLOR)
        return Rendered(image, boxes)

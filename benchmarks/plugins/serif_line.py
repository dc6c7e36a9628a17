"""A third-party style written from docs/plugins.md, resembling a scraped corpus: 200x80 PNGs of
italic serif lower-case letters and digits of varying size and baseline, crossed by a thin line.

`variant = 1` draws the same kind of CAPTCHA the way another site might (bold face, stronger
slant, a grey speckled background, two lines, JPEG artefacts): the benchmarks use it as the
stand-in "real" corpus, so that the synthetic style is only a resemblance, as it would be.
"""

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from captchalab import render as r
from captchalab.generator import Generator, Param, Rendered, register


def _font(variant: int, size: int):
    names = [p for p in r.font_paths() if "Serif" in p]
    bold = [p for p in names if "Bold" in p]
    return ImageFont.truetype((bold or names)[0] if variant else names[0], size)


@register
class SerifLine(Generator):
    name = "serif_line"
    description = (
        "200x80 italic serif lower-case letters and digits, varying size and baseline, crossed by a thin line."
    )
    charset = "0123456789abcdefghijklmnopqrstuvwxyz"
    min_length, max_length = 3, 8
    params = (
        Param("slant", float, 0.25, 0.0, 0.6, "italic shear"),
        Param("size_jitter", float, 0.2, 0.0, 0.5, "relative variation of character size"),
        Param("baseline", float, 6.0, 0.0, 20.0, "largest vertical jitter in pixels"),
        Param("lines", int, 1, 0, 4, "thin lines across"),
        Param("variant", int, 0, 0, 1, "0: this style; 1: the stand-in 'real site'"),
    )

    def at_strength(self, s):
        return {"slant": 0.15 + 0.3 * s, "size_jitter": 0.1 + 0.25 * s, "baseline": 3 + 10 * s, "lines": 1 + round(s)}

    def render(self, text, rng, p):
        width, height, variant = 200, 80, p["variant"]
        slant = p["slant"] + (0.1 if variant else 0.0)
        masks = []
        for c in text:
            size = int(38 * (1 + rng.uniform(-p["size_jitter"], p["size_jitter"])))
            font = _font(variant, size)
            x0, y0, x1, y1 = font.getbbox(c)
            glyph = Image.new("L", (x1 - x0 + 8 + int(slant * size), y1 - y0 + 8), 0)
            ImageDraw.Draw(glyph).text((4 - x0, 4 - y0), c, font=font, fill=255)
            glyph = glyph.transform(
                glyph.size, Image.AFFINE, (1, slant, -slant * glyph.size[1] / 2, 0, 1, 0), resample=Image.BILINEAR
            )
            masks.append(r.crop_to_ink(np.asarray(glyph)))
        total = sum(m.shape[1] for m in masks)
        step = min(1.0, (width - 16) / max(total, 1))
        x = (width - total * step) / 2
        boxes = []
        ink = np.zeros((height, width), np.float32)
        for m in masks:
            if m.shape[1] * step < m.shape[1]:
                m = cv2.resize(m, (max(1, int(m.shape[1] * step)), m.shape[0]), interpolation=cv2.INTER_AREA)
            h, w = m.shape
            y = int(np.clip((height - h) / 2 + rng.uniform(-p["baseline"], p["baseline"]), 0, height - h))
            xi = int(np.clip(round(x), 0, width - w))
            ink[y : y + h, xi : xi + w] = np.maximum(ink[y : y + h, xi : xi + w], m / 255.0)
            ys, xs = np.nonzero(m > 25)
            boxes.append((xi + int(xs.min()), y + int(ys.min()), xi + int(xs.max()) + 1, y + int(ys.max()) + 1))
            x += w * (0.92 if variant else 0.97)
        grey = (255 * (1 - ink)).astype(np.uint8)
        if variant:
            grey = np.minimum(grey, (235 + rng.integers(-25, 20, grey.shape)).clip(0, 255).astype(np.uint8))
        image = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        for _ in range(p["lines"] + variant):
            pts = np.array(
                [
                    [0, rng.integers(15, 65)],
                    [rng.integers(60, 140), rng.integers(15, 65)],
                    [width - 1, rng.integers(15, 65)],
                ],
                np.int32,
            )
            cv2.polylines(image, [pts], False, (40, 40, 40), 1, cv2.LINE_AA)
        if variant:
            image = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_COLOR)
        return Rendered(image, boxes)

"""A third-party style written from docs/plugins.md, the stand-in for a corpus we do not have: a
university's login CAPTCHAs, four characters of 0-9a-z labelled in lower case, in three looks
(`look`; -1 picks one per CAPTCHA, as the corpus mixes them):

0. 92x34: mixed fonts, italics and both cases on a pale tint hatched with diagonal lines;
1. 100x35: bold capitals, each its own colour, under many short black strokes;
2. 90x30: thin capitals, each its own colour, on a pale ground.

All JPEG. Its fonts are matplotlib's (DejaVu, STIX, Computer Modern), which captchalab's
built-in styles do not draw with.
"""

from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from captchalab.generator import Generator, Param, Rendered, register

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
MIXED = ("DejaVuSans.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
         "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "DejaVuSansMono.ttf", "DejaVuSans-BoldOblique.ttf",
         "STIXGeneralBolIta.ttf", "DejaVuSerif-BoldItalic.ttf")  # fmt: skip
BOLD = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "STIXGeneralBol.ttf", "DejaVuSansMono-Bold.ttf")
THIN = ("DejaVuSans.ttf", "STIXGeneral.ttf", "DejaVuSansMono.ttf", "cmss10.ttf")
SIZES = ((92, 34), (100, 35), (90, 30))


def _vivid(rng) -> tuple[int, int, int]:
    """A saturated colour, dark enough to read on a pale ground."""
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(110, 210)]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


@register
class CampusLogin(Generator):
    name = "campus_login"
    description = "A university login's CAPTCHAs: hatched mixed fonts, bold capitals under strokes, thin capitals."
    charset = "0123456789abcdefghijklmnopqrstuvwxyz"
    min_length, max_length = 4, 4
    params = (
        Param("look", int, -1, -1, 2, "0 hatched mixed fonts, 1 bold capitals and strokes, 2 thin capitals; -1 any"),
        Param("strokes", int, 40, 0, 120, "short black strokes over a bold look"),
        Param("tilt", float, 12.0, 0.0, 40.0, "largest rotation of a character, degrees"),
        Param("quality", int, 80, 20, 95, "JPEG quality"),
    )

    def at_strength(self, s):
        return {"strokes": int(20 + 40 * s), "tilt": 5 + 15 * s, "quality": int(90 - 20 * s)}

    def render(self, text, rng, p):
        look = int(rng.integers(3)) if p["look"] < 0 else p["look"]
        width, height = SIZES[look]
        ground = rng.integers(225, 256, 3)
        canvas = Image.new("RGB", (width, height), tuple(int(v) for v in ground))
        draw = ImageDraw.Draw(canvas)
        if look == 0:  # hatching in a darker tint, one or both diagonals
            ink = tuple(int(v) for v in (ground - rng.integers(25, 60, 3)).clip(0, 255))
            step = int(rng.integers(3, 6))
            for sign in (1, -1)[: int(rng.integers(1, 3))]:
                for x in range(-height, width + height, step):
                    draw.line([(x, 0), (x + sign * height, height)], fill=ink, width=1)
        faces = (MIXED, BOLD, THIN)[look]
        same_ink = tuple(int(v) for v in rng.integers(0, 90, 3))
        glyphs = []
        for c in text:
            shown = c.upper() if look or rng.random() < 0.5 else c  # capitals, or either case
            size = int(rng.integers(*((20, 26), (22, 27), (18, 23))[look]))
            font = ImageFont.truetype(str(FONTS / faces[int(rng.integers(len(faces)))]), size)
            x0, y0, x1, y1 = font.getbbox(shown)
            glyph = Image.new("L", (x1 - x0 + 8, y1 - y0 + 8), 0)
            ImageDraw.Draw(glyph).text((4 - x0, 4 - y0), shown, font=font, fill=255)
            glyph = glyph.rotate(rng.uniform(-p["tilt"], p["tilt"]), resample=Image.BILINEAR, expand=True)
            glyph = glyph.crop(glyph.getbbox() or (0, 0, *glyph.size))
            glyphs.append((glyph, same_ink if look == 0 else _vivid(rng)))
        inked = sum(g.size[0] for g, _ in glyphs)
        gaps = rng.integers(-2, 6, len(text) - 1).astype(float)
        room = width - 4 - inked
        if gaps.sum() > room:  # too wide: the characters close up, touching if they must
            gaps -= (gaps.sum() - room) / len(gaps)
        x = float(rng.uniform(2, max(2.0, 2 + room - gaps.sum())))
        boxes = []
        for k, (glyph, colour) in enumerate(glyphs):
            gw, gh = glyph.size
            top = int(np.clip((height - gh) / 2 + rng.uniform(-3, 3), 0, max(0, height - gh)))
            canvas.paste(Image.new("RGB", glyph.size, colour), (round(x), top), glyph)
            boxes.append((max(0, round(x)), top, min(width, round(x) + gw), min(height, top + gh)))
            x += gw + (gaps[k] if k < len(gaps) else 0)
        image = np.asarray(canvas)[..., ::-1].copy()
        if look == 1:  # short black strokes all over
            for _ in range(p["strokes"]):
                x0, y0 = int(rng.integers(width)), int(rng.integers(height))
                angle, length = rng.uniform(0, np.pi), rng.uniform(3, 8)
                end = (int(x0 + length * np.cos(angle)), int(y0 + length * np.sin(angle)))
                cv2.line(image, (x0, y0), end, (0, 0, 0), int(rng.integers(1, 3)), cv2.LINE_AA)
        image = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, p["quality"]])[1], cv2.IMREAD_COLOR)
        return Rendered(image, boxes)

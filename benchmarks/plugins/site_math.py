"""A third-party arithmetic style written from docs/plugins.md, standing in for a real site's
corpus we do not have: 155x30 JPEGs of two operands, each framed and turned, in two ink colours,
with a plus sign between them, over grey curved noise; the label is the drawn expression (`14+21`).
It is drawn otherwise than the built-in `math` (another face and size, frames drawn turned with the
digits, JPEG), so that `math` is only a resemblance, as it would be for a real site."""

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from captchalab import render as r
from captchalab.generator import Generator, Param, Rendered, register

WIDTH, HEIGHT = 155, 30


def _font(size: int):
    bold = [p for p in r.font_paths() if "Sans-Bold" in p] or list(r.font_paths())
    return ImageFont.truetype(bold[0], size)


@register
class SiteMath(Generator):
    name = "site_math"
    kind = "arithmetic"
    description = "155x30 JPEG: two framed, turned operands in two inks and a plus sign over grey curves."
    charset = "0123456789+"
    max_length = 5
    params = (
        Param("high", int, 50, 1, 99, "largest operand"),
        Param("turn", float, 25.0, 0.0, 60.0, "largest turn of an operand, degrees"),
        Param("curves", int, 5, 0, 12, "grey curves across"),
        Param("quality", int, 70, 20, 100, "JPEG quality"),
    )

    def at_strength(self, s):
        return {"turn": 10 + 30 * s, "curves": 2 + round(6 * s)}

    def own_charset(self, p):
        return "0123456789+"

    def text_for(self, rng, charset, low, high, p):
        return f"{int(rng.integers(0, p['high'] + 1))}+{int(rng.integers(0, p['high'] + 1))}"

    def render(self, text, rng, p):
        grey = int(rng.integers(200, 236))
        image = np.full((HEIGHT, WIDTH, 3), grey, np.uint8)
        for _ in range(p["curves"]):  # grey curved noise under the text
            shade = (int(rng.integers(110, 180)),) * 3
            pts = np.stack([np.linspace(0, WIDTH, 12), HEIGHT / 2 + rng.uniform(-1, 1) * HEIGHT / 2
                            * np.sin(np.linspace(0, rng.uniform(2, 7), 12) + rng.uniform(0, 6))], 1)  # fmt: skip
            cv2.polylines(image, [pts.astype(np.int32)], False, shade, 1, cv2.LINE_AA)
        inks = [tuple(int(v) for v in rng.integers(0, 120, 3)) for _ in range(2)]
        left, right = text.split("+")
        boxes = []
        x = int(rng.integers(6, 16))
        for k, token in enumerate((left, "+", right)):
            size = int(rng.integers(17, 21))
            font = _font(size)
            if token == "+":  # the plus sign: upright, in the first ink
                mask = r.crop_to_ink(_draw(font, "+"))
                boxes.append(r.paste(image, mask, x + 4, (HEIGHT - mask.shape[0]) // 2, inks[0]))
                x += mask.shape[1] + 10
                continue
            tile = _draw(font, token, frame=True)
            tile = r.rotate_scale(tile, rng.uniform(-p["turn"], p["turn"]))
            ink = inks[k // 2]
            scale = min(1.0, (HEIGHT - 1) / tile.shape[0])
            if scale < 1:
                tile = cv2.resize(
                    tile, (max(1, round(tile.shape[1] * scale)), HEIGHT - 1), interpolation=cv2.INTER_AREA
                )
            y = (HEIGHT - tile.shape[0]) // 2
            whole = r.paste(image, tile, x, y, ink)
            # per-digit boxes: the frame's width shared out among the digits
            step = (whole[2] - whole[0]) / len(token)
            boxes += [
                (int(whole[0] + i * step), whole[1], int(whole[0] + (i + 1) * step), whole[3])
                for i in range(len(token))
            ]
            x = whole[2] + 4
        jpeg = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, p["quality"]])[1], cv2.IMREAD_COLOR)
        return Rendered(jpeg, boxes)


def _draw(font, text: str, frame: bool = False) -> np.ndarray:
    """White-on-black coverage of `text` in `font`, framed with a 1-pixel rectangle if asked."""
    x0, y0, x1, y1 = font.getbbox(text)
    pad = 4
    im = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    draw = ImageDraw.Draw(im)
    draw.text((pad - x0, pad - y0), text, font=font, fill=255)
    if frame:
        draw.rectangle((1, 1, im.size[0] - 2, im.size[1] - 2), outline=255, width=1)
    return np.asarray(im)

"""The `captcha` package's ImageCaptcha, made reproducible from our seed.

captcha 0.7.1 draws every random number from the `secrets` module. We hand its module a
stand-in with the same three functions, drawing from our numpy generator, for the duration of
one render; the package's own code does the drawing. Character boxes come from recording where
each character image is pasted.
"""

import contextlib
import threading

import numpy as np

from captchalab import render as r
from captchalab.charset import ALNUM
from captchalab.generator import AVOID_AMBIGUOUS, Generator, Param, Rendered, register

_lock = threading.Lock()


class _SeededSecrets:
    def __init__(self, rng: np.random.Generator):
        self._rng = rng

    def randbelow(self, n):
        return int(self._rng.integers(n))

    def randbits(self, k):
        return int(self._rng.integers(0, 1 << k))

    def choice(self, seq):
        return seq[int(self._rng.integers(len(seq)))]


@contextlib.contextmanager
def seeded(module, rng):
    with _lock:
        original = module.secrets
        module.secrets = _SeededSecrets(rng)
        try:
            yield
        finally:
            module.secrets = original


def _recording_captcha(width, height, fonts):
    from PIL import Image
    from captcha import image as captcha_image

    class Recording(captcha_image.ImageCaptcha):
        """Records each pasted character's ink box; the drawing is the package's own."""

        def create_captcha_image(self, chars, color, background):
            self.pastes = []
            original_paste = Image.Image.paste

            def paste(im, source, box=None, mask=None):
                if mask is not None and isinstance(box, tuple):
                    self.pastes.append((box, mask.getbbox(), source.size))
                return original_paste(im, source, box, mask)

            Image.Image.paste = paste
            try:
                return super().create_captcha_image(chars, color, background)
            finally:
                Image.Image.paste = original_paste

    return captcha_image, Recording(width=width, height=height, fonts=fonts)


@register
class ImageCaptchaStyle(Generator):
    name = "imagecaptcha"
    description = "The captcha package's ImageCaptcha (warped characters, dots, a curve), seeded."
    charset = ALNUM
    params = (
        AVOID_AMBIGUOUS,
        Param("width", int, 160, 60, 400, "image width in pixels"),
        Param("height", int, 60, 30, 160, "image height in pixels"),
        Param("rotate", float, 30.0, 0.0, 60.0, "largest character rotation in degrees"),
        Param("warp", float, 0.3, 0.0, 0.6, "largest character warp, relative"),
        Param("fonts", int, 2, 1, 7, "how many of the bundled fonts to draw from"),
    )

    def at_strength(self, s):
        return {"rotate": 5 + 40 * s, "warp": 0.05 + 0.4 * s, "fonts": 1 + round(3 * s)}

    def render(self, text, rng, p):
        fonts = list(r.font_paths()[-1:] + r.font_paths()[: p["fonts"] - 1])  # DroidSansMono first
        module, captcha = _recording_captcha(p["width"], p["height"], fonts)
        captcha.character_rotate = (-p["rotate"], p["rotate"])
        captcha.character_warp_dx = (p["warp"] / 3, p["warp"])
        captcha.character_warp_dy = (p["warp"] / 2, p["warp"])
        with seeded(module, rng):
            image = captcha.generate_image(text)
        # pastes include blank word spaces; the characters are the ones with ink
        inked = [(box, bbox, size) for box, bbox, size in captcha.pastes if bbox]
        text_width = sum(size[0] for _, _, size in captcha.pastes)
        box_scale = min(1.0, p["width"] / text_width)  # the package shrinks text that overflows
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        height, width = bgr.shape[:2]
        boxes = []  # clipped to the image: a rotated character's paste can start above it
        for (x, y), (bx0, by0, bx1, by1), _ in inked:
            x0, y0 = min(max(int((x + bx0) * box_scale), 0), width - 1), min(max(int(y + by0), 0), height - 1)
            boxes.append(
                (
                    x0,
                    y0,
                    max(x0 + 1, min(int(np.ceil((x + bx1) * box_scale)), width)),
                    max(y0 + 1, min(int(y + by1), height)),
                )
            )
        return Rendered(bgr, boxes)

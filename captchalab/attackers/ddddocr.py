"""`ddddocr`: an off-the-shelf pretrained solver (pip package ddddocr, its ONNX model inside the
wheel, works offline). Nothing to train. Its output is filtered to the character set of the
CAPTCHAs being attacked (its own `set_ranges()` made it return empty strings on real CAPTCHAs).
"""
from __future__ import annotations

import cv2

from ..errors import CaptchalabError
from .base import Attacker, Reading, register_attacker

INSTALL_HINT = "the ddddocr attacker needs the optional extra: pip install 'captchalab[ddddocr]'"


def available() -> bool:
    from importlib.util import find_spec
    return find_spec("ddddocr") is not None


@register_attacker
class Ddddocr(Attacker):
    name = "ddddocr"
    description = "Off-the-shelf pretrained solver (pip extra captchalab[ddddocr]); output filtered to the charset."
    trainable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not available():
            raise CaptchalabError(INSTALL_HINT)

    def prepare(self, image, length):
        return cv2.imencode(".png", image)[1].tobytes()  # it takes encoded bytes

    def _solver(self):
        if getattr(self, "_ocr", None) is None:
            import contextlib
            import io
            import ddddocr
            with contextlib.redirect_stdout(io.StringIO()):  # it greets on stdout
                self._ocr = ddddocr.DdddOcr(show_ad=False)
        return self._ocr

    def read_prepared(self, batch):
        ocr = self._solver()
        readings = []
        for data in batch:
            text = "".join(c for c in ocr.classification(data) if c in self.charset)
            readings.append(Reading(text, []))
        return readings

"""The off-the-shelf ddddocr package (pip extra captchalab[ddddocr], its ONNX model inside the
wheel, works offline), as its users call it. Nothing to train.

- `ddddocr`: its text reader; its output is brought to the character set of the CAPTCHAs being
  attacked as the other OCR engines' is (`in_charset`: the other case, look-alikes; its own
  `set_ranges()` made it return empty strings on real CAPTCHAs);
- `ddddocr-slide`: its slider matcher (`slide_match`), given the served piece and background
  as they are; it searches the whole background, and its answer (the match's centre in 1.6, the
  left edge before) becomes the gap's left edge.
"""

from __future__ import annotations

import contextlib
import io

import cv2

from ..charset import in_charset
from ..errors import CaptchalabError
from .base import Attacker, Param, Reading, register_attacker


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("ddddocr") is not None


def require(name: str) -> None:
    if not available():
        raise CaptchalabError(f"the {name} attacker needs the optional extra: pip install 'captchalab[ddddocr]'")


def solver(**options):
    import ddddocr

    with contextlib.redirect_stdout(io.StringIO()):  # it greets on stdout
        return ddddocr.DdddOcr(show_ad=False, **options)


@register_attacker
class Ddddocr(Attacker):
    name = "ddddocr"
    description = "Off-the-shelf pretrained solver (pip extra captchalab[ddddocr]); output brought to the charset."
    trainable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        require(self.name)

    def prepare(self, image, length):
        return cv2.imencode(".png", image)[1].tobytes()  # it takes encoded bytes

    def _solver(self):
        if getattr(self, "_ocr", None) is None:
            self._ocr = solver()
        return self._ocr

    def read_prepared(self, batch):
        ocr = self._solver()
        readings = []
        for data in batch:
            readings.append(Reading(in_charset(ocr.classification(data), self.charset), []))
        return readings


@register_attacker
class DdddocrSlide(Attacker):
    name = "ddddocr-slide"
    kind = "slider"
    trainable = False
    description = (
        "Off-the-shelf ddddocr slide_match (pip extra captchalab[ddddocr]) on the served piece and background."
    )
    params = (Param("simple", bool, False, help="its simple_target mode: match the piece's pixels, not its edges"),)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        require(self.name)

    def prepare(self, image, question):
        piece = question["piece"]
        return cv2.imencode(".png", piece)[1].tobytes(), cv2.imencode(".png", image)[1].tobytes(), piece.shape[1]

    def read_prepared(self, batch):
        if getattr(self, "_slide", None) is None:
            self._slide = solver(ocr=False, det=False)
        try:
            from ddddocr.utils.exceptions import DDDDOCRError as unmatched
        except ImportError:  # before 1.6
            unmatched = cv2.error
        readings = []
        for piece, background, width in batch:
            try:
                found = self._slide.slide_match(piece, background, simple_target=self.hparams["simple"])
            except unmatched:  # a pair it cannot match is a miss, not a crash
                readings.append(Reading("", []))
                continue
            x = found["target_x"] - width // 2 if "target_x" in found else found["target"][0]
            confidence = min(1.0, max(0.0, float(found.get("confidence", 0.0))))
            readings.append(Reading(str(int(x)), [confidence]))
        return readings

"""General OCR engines off the shelf, as a real adversary fields them against text CAPTCHAs: no
training, each engine's output brought to the CAPTCHA's character set (`in_charset`).

- `rapidocr`: PP-OCR's text recogniser through the `rapidocr` package and onnxruntime (pip extra
  captchalab[ocr]), from the model files inside its wheel: named explicitly, so nothing is
  downloaded at run time. A CAPTCHA is one line of text, so it runs the recogniser alone.
- `tesseract`: Debian's `tesseract-ocr` command (`apt-get install tesseract-ocr`), one line of
  text (`--psm 7`), told the character set (a whitelist), on the CAPTCHA inside a border of its
  own edge pixels (measured: without a border it returns nothing for most small CAPTCHAs).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2

from ..charset import in_charset
from ..errors import CaptchalabError
from .base import Attacker, Param, Reading, register_attacker


def _models() -> Path:
    from importlib.util import find_spec

    spec = find_spec("rapidocr")
    if spec is None or find_spec("onnxruntime") is None:
        raise CaptchalabError("the rapidocr attacker needs the optional extra: pip install 'captchalab[ocr]'")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@register_attacker
class RapidOcr(Attacker):
    name = "rapidocr"
    description = "Off-the-shelf PP-OCR text recogniser (pip extra captchalab[ocr]); output brought to the charset."
    trainable = False
    RECOGNISER = "PP-OCRv6_rec_small.onnx"  # inside the rapidocr wheel

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = _models() / self.RECOGNISER
        if not self._path.is_file():
            raise CaptchalabError(f"the rapidocr package has no {self.RECOGNISER}: pip install 'captchalab[ocr]'")

    def prepare(self, image, length):
        return image

    def _engine(self):
        if getattr(self, "_ocr", None) is None:
            import logging

            from rapidocr import RapidOCR

            models = self._path.parent
            self._ocr = RapidOCR(
                params={
                    "Global.use_det": False,
                    "Global.use_cls": False,
                    "Global.log_level": "error",
                    # every model named, so that it never looks for one to download
                    "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
                    "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
                    "Rec.model_path": str(self._path),
                }
            )
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return self._ocr

    def read_prepared(self, batch):
        ocr = self._engine()
        readings = []
        for image in batch:
            result = ocr(image, use_det=False, use_cls=False)
            text = "".join(result.txts or ())
            confidence = [float(s) for s in (result.scores or ())]
            readings.append(Reading(in_charset(text, self.charset), confidence))
        return readings


@register_attacker
class Tesseract(Attacker):
    name = "tesseract"
    description = "Off-the-shelf Tesseract OCR (Debian's tesseract-ocr), one line, told the charset."
    trainable = False
    params = (
        Param("psm", int, 7, 0, 13, "its page segmentation mode (7: one line of text)"),
        Param("border", int, 10, 0, 100, "pixels of the CAPTCHA's own edge added around it"),
        Param("scale", float, 1.0, 0.25, 8.0, "resize the CAPTCHA by this factor first"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._command = shutil.which("tesseract")
        if self._command is None:
            raise CaptchalabError("the tesseract attacker needs Tesseract: apt-get install tesseract-ocr")

    def prepare(self, image, length):
        h = self.hparams
        if h["scale"] != 1.0:
            image = cv2.resize(image, None, fx=h["scale"], fy=h["scale"], interpolation=cv2.INTER_CUBIC)
        b = h["border"]
        return cv2.imencode(".png", cv2.copyMakeBorder(image, b, b, b, b, cv2.BORDER_REPLICATE))[1].tobytes()

    def read_prepared(self, batch):
        allowed = "".join(dict.fromkeys(self.charset + self.charset.swapcase()))  # either case, as drawn
        command = [self._command, "stdin", "stdout", "--psm", str(self.hparams["psm"]),
                   "-c", f"tessedit_char_whitelist={allowed}"]  # fmt: skip
        readings = []
        for data in batch:
            try:
                done = subprocess.run(command, input=data, capture_output=True, timeout=60)
                text = done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""
            except subprocess.TimeoutExpired:  # a CAPTCHA it cannot finish is a miss
                text = ""
            readings.append(Reading(in_charset("".join(text.split()), self.charset), []))
        return readings

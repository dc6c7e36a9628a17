"""Attackers: CAPTCHA readers as plugins. Built-ins: segment (the seed's pipeline), ctc (a
segmentation-free CRNN), ddddocr and ddddocr-slide (the off-the-shelf package's text reader and
slider matcher, an optional extra), rapidocr and tesseract (general OCR off the shelf), vlm (a
vision-language model behind a chat endpoint), and the readers of the other kinds.

Plugin authors: `from captchalab.attackers import Attacker, Reading, register_attacker` and
`from captchalab.generator import Param` (docs/attackers.md).
"""

from .base import (
    Attacker,
    BaseRecipe,
    Reading,
    TrainSettings,
    get_attacker,
    load_attacker,
    make_attacker,
    register_attacker,
)

"""General OCR engines off the shelf (rapidocr, tesseract): they read real CAPTCHAs without
training, their output brought to the CAPTCHA's character set, and a missing engine is one line
naming what to install. `.ci/run` installs both (the `ocr` extra, Debian's tesseract-ocr)."""

import csv
import shutil
from pathlib import Path

import cv2
import pytest

from captchalab.attackers import get_attacker
from captchalab.charset import in_charset
from captchalab.errors import CaptchalabError
from conftest import assert_one_line_error, run_cli

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-digits-4"


def real_captchas(count: int) -> list[tuple]:
    """The last `count` CAPTCHAs of the real corpus (its test split), decoded, with their labels."""
    rows = list(csv.reader((REAL / "labels.csv").open()))[1:][-count:]
    return [(cv2.imread(str(REAL / name)), text) for name, text in rows]


def test_an_engines_text_is_brought_to_the_charset():
    assert in_charset("O1-2 SB", "0123456789") == "01258"  # letters it took for digits, the rest dropped
    assert in_charset("AbC", "abcdefghijklmnopqrstuvwxyz") == "abc"  # the case the alphabet has
    assert in_charset("x0", "abcdefghijklmnopqrstuvwxyz") == "xo"


@pytest.mark.parametrize(
    "name, at_least",
    [
        ("rapidocr", 19),
        pytest.param(
            "tesseract", 12, marks=pytest.mark.skipif(not shutil.which("tesseract"), reason="needs tesseract-ocr")
        ),
    ],
)
def test_ocr_engines_read_real_captchas_off_the_shelf(name, at_least):
    """Measured on these 20: rapidocr 20, tesseract 17 (on the whole test split: docs/results)."""
    if name == "rapidocr":
        pytest.importorskip("rapidocr")
    reader = get_attacker(name)("0123456789")
    captchas = real_captchas(20)
    readings = reader.read([image for image, _ in captchas])
    assert all(set(r.text) <= set("0123456789") for r in readings)
    assert sum(r.text == text for r, (_, text) in zip(readings, captchas)) >= at_least


def test_a_missing_engine_is_one_line_naming_what_to_install(tmp_path, monkeypatch):
    import captchalab.attackers.ocr as module

    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    with pytest.raises(CaptchalabError, match="apt-get install tesseract-ocr"):
        get_attacker("tesseract")("0123456789")
    monkeypatch.setattr(module, "_models", lambda: tmp_path)  # a rapidocr without its model files
    with pytest.raises(CaptchalabError, match=r"pip install 'captchalab\[ocr\]'"):
        get_attacker("rapidocr")("0123456789")
    # through the CLI: no Tesseract on the PATH
    done = run_cli("attack", "--attacker", "tesseract", "--dataset", REAL, "--out", tmp_path / "r",
                   env={"PATH": str(tmp_path)})  # fmt: skip
    assert_one_line_error(done, "apt-get install tesseract-ocr")
    assert not (tmp_path / "r").exists()

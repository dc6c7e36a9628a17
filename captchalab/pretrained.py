"""Where each attacker starts by default, and training that start the first time it is needed.

- `segment` on digits: the network trained on MNIST (models/mnist.keras, `train mnist` defaults);
- `segment` on any other set: the network trained on rendered characters
  (models/chars-<set>.keras, `train chars` defaults);
- `ctc`: a CRNN trained on a mixture of the built-in styles at several strengths and lengths
  (models/ctc-<set>.keras), so that a few hundred real CAPTCHAs are enough to fine-tune it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from .charset import DIGITS, NAMED, charset_name
from .errors import CaptchalabError

MODELS = Path("models")
CTC_MIXTURE_STYLES = ("clean", "distorted", "noisy", "overlap", "imagecaptcha")
CTC_MIXTURE_STRENGTHS = (0.2, 0.5, 0.8)
CTC_MIXTURE_COUNT = 12000
CTC_MIXTURE_LENGTH = (3, 7)


def _set_tag(charset: str) -> str:
    return charset_name(charset) if charset in NAMED.values() else hashlib.sha1(charset.encode()).hexdigest()[:8]


def chars_path(charset: str, folder: Path = MODELS) -> Path:
    return folder / f"chars-{_set_tag(charset)}.keras"


def base_path(attacker: str, charset: str, folder: Path = MODELS) -> Path:
    if attacker == "segment":
        return folder / "mnist.keras" if charset == DIGITS else chars_path(charset, folder)
    if attacker == "ctc":
        return folder / f"ctc-{_set_tag(charset)}.keras"
    raise CaptchalabError(f"attacker {attacker!r} has no default starting model; pass --from MODEL or --from scratch")


def ctc_mixture(charset: str, count: int = CTC_MIXTURE_COUNT, seed: int = 300):
    """The generated CAPTCHAs a ctc starting model learns from."""
    from .data.dataset import GenerationSpec, Source
    from .plugins import get_generator
    from .charset import outside
    styles = [s for s in CTC_MIXTURE_STYLES if not outside(charset, get_generator(s).charset)]
    if not styles:
        raise CaptchalabError(f"no built-in style draws every character of {charset!r}")
    specs = [GenerationSpec(style, count, *CTC_MIXTURE_LENGTH, charset=charset, seed=seed + k, strength=s)
             for k, (style, s) in enumerate((st, s) for st in styles for s in CTC_MIXTURE_STRENGTHS)]
    return Source(mixture=tuple(specs), count=count)


def ensure_base(attacker: str, charset: str, say: Callable[[str], None], folder: Path = MODELS,
                verbose: int = 0, on_epoch=None) -> Path:
    """The default starting model of `attacker` for `charset`, trained first if it is missing."""
    path = base_path(attacker, charset, folder)
    if path.is_file():
        return path
    from . import train
    say(f"{path} is missing: training it first (once; later runs start from it)")
    if attacker == "segment" and charset == DIGITS:
        from .data.mnist import load_mnist
        config = train.TrainConfig()
        info = train.train_mnist(load_mnist(None), path, config, verbose=verbose, on_epoch=on_epoch)
    elif attacker == "segment":
        config = train.TrainConfig(**train.CHARS_TRAINING)
        info = train.train_chars(charset, path, config, verbose=verbose, on_epoch=on_epoch)
    else:
        from .attackers.base import TrainSettings, get_attacker
        info = train.train_attacker(get_attacker("ctc")(charset), ctc_mixture(charset), path,
                                    TrainSettings(seed=300), verbose=verbose, on_epoch=on_epoch)
    accuracy = info.get("test_accuracy", info.get("val_accuracy"))
    say(f"{path}: accuracy {accuracy:.4f} on held-out data")
    return path

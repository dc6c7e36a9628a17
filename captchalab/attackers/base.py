"""The attacker interface: a CAPTCHA reader is one registered class, the way a style is.

An attacker declares its hyper-parameters (`Param`, as generators do) and splits reading in two:
`prepare(image, length)` is the per-image work (segmenting, resizing), run in worker processes
and so free of the model; `read_prepared(batch)` is the batched part (the network), run in the
main process. A trainable attacker also builds a fresh model (`build`) and trains it (`fit`).
A trained attacker is saved as `NAME.keras` (the Keras model) plus `NAME.json`, which names the
attacker, its character set in output order and its input geometry, so `load_attacker(path)`
needs nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..charset import DIGITS
from ..errors import CaptchalabError
from ..generation.generator import Param, find_param, parse_assignments


@dataclass
class Reading:
    """What an attacker read in one CAPTCHA, and what it saw doing so."""
    text: str
    confidence: list[float] = field(default_factory=list)   # one per character of `text`
    boxes: list | None = None        # where characters were cut (segmenting attackers)
    crops: np.ndarray | None = None  # the pieces the network read (segmenting attackers)


@dataclass
class TrainSettings:
    """How long and how fast to train; attackers fill unset values from their own defaults."""
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 1
    validation_fraction: float = 0.1
    fine_tune: bool = False    # set when training starts from another model's weights


Example = tuple[Any, str]  # (prepared input, true text)


class Attacker:
    """Base class for CAPTCHA readers. Subclass it, fill in the fields, decorate with
    @register_attacker."""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    trainable: ClassVar[bool] = True
    differentiable: ClassVar[bool] = False   # gradients from pixels to outputs (adversarial CAPTCHAs)
    uses_length: ClassVar[bool] = False      # prepare() wants the character count when known

    def __init__(self, charset: str = DIGITS, hparams: dict | None = None, model=None,
                 info: dict | None = None):
        self.charset = charset
        self.hparams = self.resolve(hparams or {})
        self.model = model
        self.info = info or {}

    # -- what a subclass implements -------------------------------------------------------
    def prepare(self, image: np.ndarray, length: int | None) -> Any:
        """Per-image work on an HxWx3 uint8 BGR image; runs in worker processes (no model)."""
        return image

    def read_prepared(self, batch: list[Any]) -> list[Reading]:
        raise NotImplementedError

    def build(self, seed: int):
        """A fresh, untrained Keras model for `self.charset` and `self.hparams`."""
        raise CaptchalabError(f"attacker {self.name!r} cannot be trained")

    def fit(self, train: list[Example], validation: list[Example], settings: TrainSettings,
            checkpoint: Path, resume: bool = False,
            on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Train `self.model` in place; returns at least {"val_accuracy": ..., "history": [...]}.
        `checkpoint` is a folder the attacker may use to resume an interrupted run."""
        raise CaptchalabError(f"attacker {self.name!r} cannot be trained")

    def init_from(self, other: "Attacker") -> str:
        """Start from another trained attacker's weights; returns what was taken over."""
        if type(other) is not type(self):
            raise CaptchalabError(f"cannot start a {self.name!r} attacker from a {other.name!r} model")
        self.model.set_weights(other.model.get_weights())
        return "all weights"

    def check_model(self) -> None:
        """Refuse a loaded model that does not fit this attacker (layers, output size)."""

    def geometry(self) -> dict:
        """The input this attacker's model takes (recorded in the model's JSON)."""
        return {}

    # -- provided --------------------------------------------------------------------------
    def read(self, images: list[np.ndarray], length: int | None = None) -> list[Reading]:
        """Read whole CAPTCHAs (HxWx3 uint8 BGR) in this process."""
        return self.read_prepared([self.prepare(image, length) for image in images]) if images else []

    def resolve(self, values: dict) -> dict:
        resolved = {p.name: p.default for p in self.params}
        for key, value in values.items():
            resolved[key] = self.param(key).check(value)
        return resolved

    def param(self, name: str) -> Param:
        return find_param(self.params, name, f"attacker {self.name!r} has no hyper-parameter")

    def parse_params(self, assignments: list[str]) -> dict:
        return parse_assignments(self.param, assignments, "--hparam")

    def label(self) -> str:
        """How reports name this attacker: the model file's stem and the attacker's name."""
        path = self.info.get("path")
        return f"{Path(path).stem} ({self.name})" if path else self.name

    def __getstate__(self):  # worker processes get the settings, not the model or its functions
        return {k: (None if k == "model" else v) for k, v in self.__dict__.items() if not k.startswith("_")}


REGISTRY: dict[str, type[Attacker]] = {}
SOURCES: dict[str, str] = {}


def register_attacker(cls: type[Attacker]) -> type[Attacker]:
    """Class decorator: check the declared fields and add the attacker to the registry."""
    from ..generation.generator import PluginError, check_declared
    check_declared(cls, "attacker")
    if cls.read_prepared is Attacker.read_prepared:
        raise PluginError(f"attacker {cls.name!r} does not define read_prepared()")
    if cls.trainable and (cls.build is Attacker.build or cls.fit is Attacker.fit):
        raise PluginError(f"attacker {cls.name!r} is trainable but lacks build() or fit()")
    REGISTRY[cls.name] = cls
    return cls


def get_attacker(name: str, extra_dirs=None) -> type[Attacker]:
    from ..plugins import load_errors, load_plugins
    registry = load_plugins(extra_dirs)[1]
    if name not in registry:
        hint = f"; broken plugins: {'; '.join(load_errors)}" if load_errors else ""
        raise CaptchalabError(f"unknown attacker {name!r}; known attackers: {', '.join(sorted(registry))}{hint}")
    return registry[name]


def read_model_info(path: Path) -> dict:
    """A model's JSON; models from before attackers existed are the seed's network on digits."""
    info_path = Path(path).with_suffix(".json")
    if not info_path.is_file():
        return {"attacker": "segment", "charset": DIGITS}
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaptchalabError(f"{info_path}: not a readable model description ({exc})") from None
    if not isinstance(info, dict):
        raise CaptchalabError(f"{info_path}: not a model description")
    info.setdefault("attacker", "segment")
    info.setdefault("charset", DIGITS)
    if not isinstance(info["charset"], str) or not info["charset"]:
        raise CaptchalabError(f"{info_path}: its charset is not a string of characters")
    return info


def load_keras_model(path: Path):
    """Load a .keras file safely (no arbitrary code), or a one-line error."""
    import keras
    path = Path(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip, HDF5 and deserialisation failures all mean "not a model"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaptchalabError(f"{path}: not a loadable Keras model ({first_line[:200]})") from None


def attacker_around(model, path: str | Path, extra_dirs=None) -> Attacker:
    """The attacker that `path`'s JSON describes, around a Keras model already in memory."""
    info = read_model_info(Path(path))
    cls = get_attacker(info["attacker"], extra_dirs)
    return cls(info["charset"], info.get("hyperparameters") or {}, model, {**info, "path": str(path)})


def load_attacker(path: str | Path, extra_dirs=None) -> Attacker:
    """A trained attacker from `NAME.keras` + `NAME.json`; the JSON says which attacker made it."""
    path = Path(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    info = read_model_info(path)
    name = info["attacker"]
    try:
        cls = get_attacker(name, extra_dirs)
    except CaptchalabError:
        raise CaptchalabError(f"{path} was made by attacker {name!r}, which is not installed "
                              f"(add its plugin folder with --plugins)") from None
    attacker = cls(info["charset"], info.get("hyperparameters") or {}, load_keras_model(path),
                   {**info, "path": str(path)})
    attacker.check_model()
    return attacker

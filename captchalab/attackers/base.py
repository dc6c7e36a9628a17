"""The attacker interface: a CAPTCHA reader is one registered class, the way a style is.

An attacker declares its hyper-parameters (`Param`, as styles do) and splits reading in two:
`prepare(image, length)` is the per-image work (segmenting, resizing), run in worker processes
and so free of the model; `read_prepared(batch)` is the batched part (the network), run in the
main process. A trainable attacker builds a fresh model (`build`) and either declares its
targets and loss (the shared loop, captchalab/training, trains it) or writes its own `fit`.
A trained attacker is saved as `NAME.keras` (the Keras model) plus `NAME.json`, which names the
attacker, its character set in output order and its input geometry, so `load_attacker(path)`
needs nothing else. docs/attackers.md is the contract for plugin authors.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ..charset import DIGITS, charset_name
from ..errors import CaptchalabError
from ..kinds import KINDS
from ..model import load_keras_model, remap_output  # noqa: F401 (load_keras_model kept importable from here)
from ..plugins import get_attacker as find_attacker
from ..registry import ATTACKERS as REGISTRY  # noqa: F401
from ..registry import Param, PluginError, find_param, parse_assignments, register, split_attacker_spec
from ..training import captcha_score, fit_declared  # noqa: F401 (attackers judge their runs by it)


@dataclass
class Reading:
    """What an attacker read in one CAPTCHA, and what it saw doing so.

    - `text`: the answer in its kind's label format (kinds.py): for text CAPTCHAs the characters
      read, in the attacker's character set ("" when it read nothing); for image grids the
      selected tile numbers, sorted and space-separated ("0 4 7").
    - `confidence`: one probability in [0, 1] per character of `text` (per selected tile), in order.
    - `boxes`: for segmenting attackers, one (x0, y0, x1, y1) box per piece it cut, in the
      CAPTCHA's own pixels, x1 and y1 exclusive (as the styles' boxes); None otherwise. Reports
      score them against the style's true boxes: a found box covers a true character when it
      overlaps more than half of its width, and a CAPTCHA's cut is right when it has one box per
      character and each covers its character.
    - `crops`: for segmenting attackers, the pieces the network read, an (n, h, w) uint8 array
      in the order of `boxes`; reports draw them for misread CAPTCHAs.
    - `details`: what else the attacker saw, for reports and explore (image grids:
      `{"tile_probabilities": [one per tile]}`, the probability that the tile shows the prompt);
      `{"failure": reason}` when it could give no answer at all (an outside service down, refusing
      or answering garbage): the challenge counts as failed and the report counts each reason.
    """

    text: str
    confidence: list[float] = field(default_factory=list)
    boxes: list | None = None
    crops: np.ndarray | None = None
    details: dict | None = None

    @property
    def answer(self) -> str:
        """The kind-neutral name of `text`."""
        return self.text


@dataclass
class TrainSettings:
    """How long and how fast to train; None means "the attacker's default". By default an
    attacker trains until it converges (training/stopping.py), within `budget` examples seen."""

    epochs: int | None = None  # at most this many passes over the training set
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 1
    fine_tune: bool = False  # True when training starts from another model's weights (--from)
    budget: int | None = None  # examples seen at most (None: the attacker's own budget)
    wall_seconds: float | None = None  # a wall-clock limit; a run it ends is flagged as not converged


@dataclass(frozen=True)
class BaseRecipe:
    """An attacker's default starting model (`--from base`), trained once per character set
    under models/ and reused. `trained_on` is "captchas" (this attacker trained on `count` CAPTCHAs
    mixed from `styles` at `strengths`, lengths `length`) or "characters" (the seed's network on
    single characters: MNIST for digits, `train chars` for other sets; `segment` uses it).
    `shape`: the hyper-parameters that change the network's shape; a reader set otherwise than
    their defaults gets a base of its own shape (trained on the same mixture the first time), as
    no layer of the default base would fit it."""

    trained_on: str = "captchas"
    styles: tuple[str, ...] = ("clean", "distorted", "noisy", "overlap", "imagecaptcha")
    strengths: tuple[float, ...] = (0.2, 0.5, 0.8)
    count: int = 12000
    length: tuple[int, int] = (3, 7)
    seed: int = 300
    shape: tuple[str, ...] = ()


Example = tuple[Any, str]  # (prepared input, true text)
VIEWS = {
    "layers": "the model is the seed's network on 28x28 crops: visualize and explore draw every layer",
    "steps": "probabilities(batch) gives per-time-step probabilities (blank first): explore shows them",
}


class Attacker:
    """Base class for CAPTCHA readers. Subclass it, fill in the fields, decorate with
    @register_attacker."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    kind: ClassVar[str] = "text"  # the CAPTCHA kind it reads (kinds.py)
    warm_up: ClassVar[bool] = True  # an attack reads one challenge untimed first (a model's first trace)
    any_kind: ClassVar[bool] = False  # it reads every kind: the house hands it the one it attacks (for_kind)
    trainable: ClassVar[bool] = True
    differentiable: ClassVar[bool] = False  # gradients from pixels to outputs (adversarial CAPTCHAs)
    uses_length: ClassVar[bool] = False  # prepare() wants the character count when known
    base: ClassVar[BaseRecipe | None] = None  # the default starting model; None: start from scratch
    semi_supervised: ClassVar[bool] = False  # fit() takes `unlabelled=[prepared, ...]` (train --unlabelled)
    fresh_examples: ClassVar[bool] = False  # fit() takes `fresh=draw(seed) -> [Example]` (train --fresh)
    truth: ClassVar[tuple[str, ...]] = ()  # what a style drew (challenge details) training may learn from
    ensembles: ClassVar[bool] = False  # reads by its network's scores alone: `captchalab ensemble` averages them
    views: ClassVar[frozenset[str]] = frozenset()  # what explore and visualize can show (VIEWS)
    # hyper-parameters that change how a trained model reads, not what it is: settable when it is
    # loaded (`--model M.keras:tta=8`)
    reading_params: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "attacker"

    def __init__(self, charset: str = DIGITS, hparams: dict | None = None, model=None, info: dict | None = None):
        self.charset = charset if KINDS[self.kind].characters else ""  # other kinds answer tiles, offsets or angles
        self.hparams = self.resolve(hparams or {})
        self.model = model
        self.info = info or {}

    # -- what a subclass implements -------------------------------------------------------
    def prepare(self, image: np.ndarray, length: int | None) -> Any:
        """Per-image work on an HxWx3 uint8 BGR image; runs in worker processes (no model)."""
        return image

    def read_prepared(self, batch: list[Any]) -> list[Reading]:
        raise NotImplementedError

    def unlabelled_question(self, train: list[Example]) -> Any:
        """The question every unlabelled image (`train captcha --unlabelled`) is prepared with,
        given the labelled training examples: None for text; a kind that asks one says what an
        image alone implies (a grid reader: the training challenges' grid, no prompt)."""
        return None

    def grids(self) -> tuple[int, ...]:
        """A grid reader's grid sizes (squares per side) it reads: explore draws the first."""
        return (3, 4)

    def build(self, seed: int):
        """A fresh, untrained Keras model for `self.charset` and `self.hparams`."""
        raise CaptchalabError(f"attacker {self.name!r} cannot be trained")

    # A trainable attacker either declares `targets` and `loss` (and may override `inputs` and
    # `augment`): the default `fit` then trains it through the shared loop; or it overrides `fit`.
    targets: ClassVar[Callable | None] = None  # targets(texts) -> array, one row per text
    loss: ClassVar[Callable | None] = None  # loss(targets, outputs) -> per-example loss (Keras ops)

    def inputs(self, prepared: list[Any]) -> np.ndarray:
        """The model's input batch from prepared images (shared loop): stacked, uint8 scaled to
        [0, 1] float32, a channel axis added to 2-D images."""
        x = np.stack(prepared)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        return x[..., None] if x.ndim == 3 else x

    def fit(
        self,
        train: list[Example],
        validation: list[Example],
        settings: TrainSettings,
        checkpoint: Path,
        resume: bool = False,
        on_epoch: Callable[[int, dict], None] | None = None,
        fresh: Callable[[int], list[Example]] | None = None,
    ) -> dict:
        """Train `self.model` in place; returns at least {"val_accuracy": ..., "history": [...]}.
        The default trains through the shared loop from the declared `targets` and `loss`."""
        return fit_declared(self, train, validation, settings, checkpoint, resume, on_epoch, fresh)

    def init_from(self, other: "Attacker") -> str:
        """Start from another trained attacker's weights; returns what was taken over. The default
        takes every layer whose name and shapes match, and the output layer (`output_layer`)
        column by column for the characters both sets share."""
        if other.name != self.name:
            raise CaptchalabError(f"cannot start a {self.name!r} attacker from a {other.name!r} model")
        taken = []
        for layer in self.model.layers:
            if not layer.weights or layer.name == self.output_layer:
                continue
            try:
                source = other.model.get_layer(layer.name)
            except ValueError:
                continue
            if [w.shape for w in source.weights] == [w.shape for w in layer.weights]:
                layer.set_weights(source.get_weights())
                taken.append(layer.name)
        labels, old_labels = self.output_labels(), other.output_labels()
        shared = remap_output(self.model, other.model, self.output_layer, labels, old_labels, self.output_offset)
        if shared is not None:
            taken.append(
                f"{self.output_layer} for {shared} of {len(labels)} characters "
                f"(from charset {charset_name(other.charset)!r})"
                if isinstance(labels, str)
                else f"{self.output_layer} for {shared} of {len(labels)} classes"
            )
        return ", ".join(taken)

    output_layer: ClassVar[str] = ""  # the layer with one output per character (init_from remaps it)
    output_offset: ClassVar[int] = 0  # output columns before the first character (ctc's blank: 1)

    def output_labels(self):
        """What the columns of `output_layer` stand for, in order: the characters (a grid reader's
        are its classes)."""
        return self.charset

    def check_model(self) -> None:
        """Refuse a loaded model that does not fit this attacker (layers, output size)."""

    def for_kind(self, kind: str) -> "Attacker":
        """This attacker set to read challenges of `kind`: itself, or for one that reads `any_kind`,
        a copy whose `kind` is `kind` (the attack refuses a kind an attacker does not read)."""
        if not self.any_kind or kind == self.kind:
            return self
        other = copy.copy(self)
        other.kind = kind
        if not KINDS[kind].characters:
            other.charset = ""
        return other

    def report_fields(self) -> dict:
        """What an attack's report.json records about this attacker beyond its name, training and
        model file (an outside service: which model and which host); never a secret."""
        return {}

    def geometry(self) -> dict:
        """The input this attacker's model takes, recorded in the model's JSON under "input"
        (for example {"height": 32, "width": 128, "channels": 1}); informative only."""
        return {}

    @classmethod
    def check_contract(cls) -> None:
        """Checked when the class registers: the methods its declarations promise."""

        def defines(method: str) -> bool:
            return getattr(cls, method, None) is not getattr(Attacker, method, None)

        if not defines("read_prepared"):
            raise PluginError(f"attacker {cls.name!r} does not define read_prepared()")
        if cls.kind not in KINDS:
            raise PluginError(f"attacker {cls.name!r}: unknown kind {cls.kind!r} (known: {', '.join(KINDS)})")
        if cls.trainable and not defines("build"):
            raise PluginError(f"attacker {cls.name!r} is trainable but does not define build()")
        if cls.trainable and not defines("fit") and not (cls.targets and cls.loss):
            raise PluginError(
                f"attacker {cls.name!r} is trainable but defines neither fit() nor "
                "targets() and loss() for the shared loop"
            )
        if cls.differentiable and not (
            callable(getattr(cls, "adversarial_objective", None)) and callable(getattr(cls, "adversarial_loss", None))
        ):
            raise PluginError(
                f"attacker {cls.name!r} is differentiable but lacks adversarial_objective() or adversarial_loss()"
            )
        unknown = set(cls.views) - set(VIEWS)
        if unknown:
            raise PluginError(f"attacker {cls.name!r}: unknown views {sorted(unknown)} (known: {sorted(VIEWS)})")
        if "steps" in cls.views and not callable(getattr(cls, "probabilities", None)):
            raise PluginError(f"attacker {cls.name!r} declares the steps view but has no probabilities()")
        if cls.semi_supervised and "unlabelled" not in inspect.signature(cls.fit).parameters:
            raise PluginError(f"attacker {cls.name!r} declares semi_supervised but its fit() takes no unlabelled=")
        if cls.fresh_examples and "fresh" not in inspect.signature(cls.fit).parameters:
            raise PluginError(f"attacker {cls.name!r} declares fresh_examples but its fit() takes no fresh=")
        if cls.base is not None and (
            not isinstance(cls.base, BaseRecipe) or cls.base.trained_on not in ("captchas", "characters")
        ):
            raise PluginError(f"attacker {cls.name!r}: base must be a BaseRecipe trained on captchas or characters")
        undeclared = set(cls.base.shape if cls.base else ()) - {p.name for p in cls.params}
        if undeclared:
            raise PluginError(
                f"attacker {cls.name!r}: its base's shape names undeclared hyper-parameters {sorted(undeclared)}"
            )

    # -- provided --------------------------------------------------------------------------
    def read(self, images: list[np.ndarray], length: int | None = None) -> list[Reading]:
        """Read whole CAPTCHAs (HxWx3 uint8 BGR) in this process."""
        return self.read_prepared([self.prepare(image, length) for image in images]) if images else []

    # class methods: hyper-parameters are checked before an attacker is made (study files, specs)
    @classmethod
    def resolve(cls, values: dict) -> dict:
        resolved = {p.name: p.default for p in cls.params}
        for key, value in values.items():
            resolved[key] = cls.param(key).check(value)
        return resolved

    @classmethod
    def param(cls, name: str) -> Param:
        return find_param(cls.params, name, f"attacker {cls.name!r} has no hyper-parameter")

    @classmethod
    def parse_params(cls, assignments: list[str], option: str = "--hparam") -> dict:
        return parse_assignments(cls.param, assignments, option)

    def label(self, detailed: bool = False) -> str:
        """How reports name this attacker: the model file's stem and the attacker's name; with
        `detailed` (two of the same name side by side), also the hyper-parameters it changes,
        file paths by their file names."""
        path = self.info.get("path")
        if path:
            reading = ",".join(f"{k}={v}" for k, v in (self.info.get("reading") or {}).items())
            return f"{Path(path).stem}{':' + reading if reading else ''} ({self.name})"

        def shown(value):
            return Path(value).name if isinstance(value, str) and os.sep in value else value

        changed = [
            f"{p.name}={shown(self.hparams[p.name])}"
            for p in self.params
            if self.hparams.get(p.name, p.default) != p.default
        ]
        return f"{self.name}:{','.join(changed)}" if detailed and changed else self.name

    def __getstate__(self):  # worker processes get the settings, not the model or its functions
        return {k: (None if k == "model" else v) for k, v in self.__dict__.items() if not k.startswith("_")}


register_attacker = register  # the one registration of both plugin families


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits along `axis` (shifted by the maximum, so large logits stay finite)."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def get_attacker(name: str, extra_dirs=None) -> type[Attacker]:
    """The attacker class called `name` (built-in or plugin)."""
    return find_attacker(name, extra_dirs)


def make_attacker(spec: str, charset: str = DIGITS, extra_dirs=None, hparams: dict | None = None) -> Attacker:
    """An attacker from its name and hyper-parameters as `NAME[:name=value,...]` (the form the CLI's
    --attacker and study files use), for example make_attacker("ctc:filters=8", "0123456789");
    `hparams` adds values already typed."""
    name, assignments = split_attacker_spec(spec)
    cls = get_attacker(name, extra_dirs)
    parsed = cls.parse_params(assignments, f"--attacker {name}:")
    return cls(charset, {**(hparams or {}), **parsed}, info={"plugin_dirs": list(extra_dirs or [])})


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
    characters = KINDS.get(info.get("kind", "text"), KINDS["text"]).characters
    if characters and (not isinstance(info["charset"], str) or not info["charset"]):
        raise CaptchalabError(f"{info_path}: its charset is not a string of characters")
    if not characters and not (
        isinstance(info.get("classes"), list) and all(isinstance(c, str) for c in info["classes"])
    ):
        raise CaptchalabError(f"{info_path}: its classes are not a list of names")
    return info


def attacker_around(model, path: str | Path, extra_dirs=None) -> Attacker:
    """The attacker that `path`'s JSON describes, around a Keras model already in memory."""
    info = read_model_info(Path(path))
    cls = get_attacker(info["attacker"], extra_dirs)
    return cls(info["charset"], info.get("hyperparameters") or {}, model, {**info, "path": str(path)})


def split_model_spec(spec: str | Path) -> tuple[Path, list[str]]:
    """'m.keras:tta=8' -> (Path('m.keras'), ['tta=8']): a model file and the reading settings given
    with it (its attacker's `reading_params`)."""
    text = str(spec)
    if ".keras:" not in text:
        return Path(spec), []
    path, _, rest = text.rpartition(".keras:")
    return Path(path + ".keras"), [a for a in rest.split(",") if a.strip()]


def load_attacker(path: str | Path, extra_dirs=None) -> Attacker:
    """A trained attacker from `NAME.keras` + `NAME.json`; the JSON says which attacker made it.
    `NAME.keras:name=value,...` also sets hyper-parameters that change only how it reads (its
    attacker's `reading_params`, such as ctc's `tta`)."""
    path, assignments = split_model_spec(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    info = read_model_info(path)
    name = info["attacker"]
    try:
        cls = get_attacker(name, extra_dirs)
    except CaptchalabError:
        from ..plugins import load_errors

        broken = (
            f"; plugins that failed to load: {'; '.join(load_errors)}"
            if load_errors
            else " (add its plugin folder to `plugin_dirs`)"
        )
        raise CaptchalabError(f"{path} was made by attacker {name!r}, which is not installed{broken}") from None
    reading = cls.parse_params(assignments, f"--model {path.name}:")
    fixed = sorted(set(reading) - set(cls.reading_params))
    if fixed:
        settable = ", ".join(cls.reading_params) or "none"
        raise CaptchalabError(f"{path.name}: {', '.join(fixed)} is fixed when a {name} model is trained (settable when loaded: {settable})")  # fmt: skip
    hparams = {**(info.get("hyperparameters") or {}), **reading}
    info = {**info, "path": str(path), **({"reading": reading} if reading else {})}
    attacker = cls(info["charset"], hparams, load_keras_model(path), info)
    attacker.check_model()
    return attacker


def model_charsets(paths) -> list[str]:
    """The character set of each model file, from its JSON (no model is loaded)."""
    paths = [split_model_spec(path)[0] for path in paths or []]
    for path in paths:
        if not path.is_file():
            raise CaptchalabError(f"model file {path} does not exist")
    infos = [read_model_info(path) for path in paths]
    # a reader of another kind has no set (models trained in studies once recorded the study's)
    return [info["charset"] if KINDS.get(info.get("kind", "text"), KINDS["text"]).characters else "" for info in infos]


def load_attackers(models, specs, charset: str, extra_dirs=None) -> list[Attacker]:
    """Trained attackers from model files and read-only attackers from `NAME[:name=value,...]`."""
    dirs = [str(d) for d in extra_dirs or []]
    attackers = [load_attacker(m, dirs) for m in models or []]
    for spec in specs or []:
        attacker = make_attacker(spec, charset, dirs)
        if attacker.trainable:
            raise CaptchalabError(f"attacker {attacker.name!r} must be trained first: pass its model (`models`)")
        attackers.append(attacker)
    if not attackers:
        raise CaptchalabError("give at least one `models` or `attackers`")
    for a in attackers:
        a.info.setdefault("plugin_dirs", dirs)
    return attackers

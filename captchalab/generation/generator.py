"""The generator interface: a CAPTCHA style is a small registered class.

A style declares its parameters and maps a `strength` in [0, 1] to its own difficulty
parameters (0 = the easiest it makes, 1 = the hardest). A text style (`kind = "text"`, the
default) renders one CAPTCHA from a text and a `numpy.random.Generator`, returning the image and
the box of every character it drew; a style of another kind (kinds.py) draws a whole `Challenge`
(image, question, answer) from the generator instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..charset import DIGITS, without_ambiguous
from ..errors import CaptchalabError
from ..kinds import KINDS
from ..registry import Param, PluginError, check_declared, find_param, parse_assignments, register  # noqa: F401

# parameters most styles share
HEIGHT = Param("height", int, 64, 32, 160, "image height in pixels")
FONT_SIZE = Param("font_size", int, 44, 16, 120, "font size in pixels")
AVOID_AMBIGUOUS = Param(
    "avoid_ambiguous",
    bool,
    False,
    help="leave out characters readers confuse "
    "(0/o/O, 1/l/I, 2/z/Z, 5/s/S, 8/B, 9/g/q and letters whose cases look alike)",
)


@dataclass
class Rendered:
    """One CAPTCHA: an HxWx3 uint8 BGR image and one (x0, y0, x1, y1) box per character of the
    text, in order; x1 and y1 are exclusive, so a box is the slice image[y0:y1, x0:x1]. A box
    covers its character's ink only: lines, arcs and noise drawn across the word are not in it."""

    image: np.ndarray
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class Challenge:
    """One CAPTCHA of a kind other than text: an HxWx3 uint8 BGR image, the question shown with it
    and the answer in the kind's label format (kinds.py), and `details`, what the style drew
    (per-tile classes, coverage; kept in the dataset's challenges.json, like text boxes), and
    `parts`, further images the challenge needs (a dynamic grid's queue of replacement tiles)."""

    image: np.ndarray
    question: Any
    answer: str
    details: dict = field(default_factory=dict)
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # more images, saved as NAME.<part>.png


class Generator:
    """Base class for CAPTCHA styles. Subclass it, fill in the fields, decorate with @register."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "text"  # the CAPTCHA kind it draws (kinds.py): text styles define render()
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    charset: ClassVar[str] = DIGITS  # every character this style can draw
    min_length: ClassVar[int] = 1
    max_length: ClassVar[int] = 8
    reader: ClassVar[str] = ""  # the attacker `train captcha` trains on it when none is named ('': its kind's)
    # draws from a pool of pictures it can split by picture: it declares a `part` parameter (all,
    # fit, validation) and `train captcha` validates on challenges drawn from pictures it does not
    # fit on, so that validation never measures memory of the pictures
    picture_parts: ClassVar[bool] = False

    def drawable(self, charset: str, params: dict[str, Any]) -> str:
        """The characters of `charset` this style draws texts from with these parameters."""
        return without_ambiguous(charset) if params.get("avoid_ambiguous") else charset

    def own_charset(self, p: dict[str, Any]) -> str:
        """A style that composes its texts itself (`text_for`; an arithmetic style draws
        expressions): every character they can hold with these parameters, the set its datasets
        and readers carry. "" (the default): it draws texts of the set it is asked for."""
        return ""

    def text_for(self, rng: np.random.Generator, charset: str, low: int, high: int, p: dict[str, Any]) -> str:
        """The text of one CAPTCHA, from `rng` alone: by default `low` to `high` characters of the
        drawable set, each uniformly."""
        length = int(rng.integers(low, high + 1))
        return "".join(rng.choice(np.array(list(self.drawable(charset, p))), length))

    def at_strength(self, strength: float) -> dict[str, Any]:
        """The difficulty parameters this style uses at `strength` (override per style)."""
        return {}

    def render(self, text: str, rng: np.random.Generator, p: dict[str, Any]) -> Rendered:
        raise NotImplementedError

    def challenge(self, rng: np.random.Generator, p: dict[str, Any]) -> Challenge:
        """One whole CAPTCHA (styles of kinds other than text)."""
        raise NotImplementedError

    def reader_for(self, p: dict[str, Any]) -> str:
        """The attacker `train captcha` trains on CAPTCHAs drawn with these parameters when none is
        named ('': its kind's); by default the style's `reader`."""
        return self.reader

    def classes(self, p: dict[str, Any]) -> list[str]:
        """The object classes it draws from (image-grid styles); readers learn one output each."""
        return []

    def pictures(self, p: dict[str, Any]) -> tuple[dict, list[str]]:
        """Styles that declare `picture_parts`: which pool of pictures the parameters serve (a dict
        naming the pictures' source and pool, `part` aside) and the content hashes of the pictures
        they draw from ({} and [] when the pictures are the design's own, as the built-in art is).
        `attack` refuses to score an attacker on pictures it trained on unless the design serves its
        training pool on purpose."""
        return {}, []

    def resources(self, p: dict[str, Any]) -> dict:
        """Files outside the parameters that decide what it draws (a system font: its name and
        hash), recorded in a dataset's manifest as `resources`; {} by default."""
        return {}

    def check(self, p: dict[str, Any]) -> None:
        """Refuse resolved parameters that cannot draw (a missing tile folder, an unknown prompt
        class) with a one-line CaptchalabError, before any CAPTCHA is drawn."""

    def param(self, name: str) -> Param:
        """The declared parameter `name`; an error naming the known ones if there is none."""
        return find_param(self.params, name, f"style {self.name!r} has no parameter")

    def resolve(self, strength: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Declared defaults, then the strength mapping, then explicit overrides."""
        if not 0.0 <= strength <= 1.0:
            raise CaptchalabError(f"`strength` must be in [0, 1], got {strength}")
        values = {p.name: p.default for p in self.params}
        values.update({k: round(v, 4) if isinstance(v, float) else v for k, v in self.at_strength(strength).items()})
        for key, value in (overrides or {}).items():
            values[key] = self.param(key).check(value)
        return values

    def parse_params(self, assignments: list[str]) -> dict[str, Any]:
        """Parse `name=value` strings against the declared parameters."""
        return parse_assignments(self.param, assignments, "`params`")

    # -- checked when the style registers --------------------------------------------------
    family: ClassVar[str] = "style"

    @classmethod
    def check_contract(cls) -> None:
        """render() (or challenge()) defined; at_strength() returning declared parameters only, in range."""
        if cls.kind not in KINDS:
            raise PluginError(f"style {cls.name!r}: unknown kind {cls.kind!r} (known: {', '.join(KINDS)})")
        characters = KINDS[cls.kind].characters
        if characters and cls.render is Generator.render:
            raise PluginError(f"style {cls.name!r} does not define render()")
        if not characters and cls.challenge is Generator.challenge:
            raise PluginError(f"style {cls.name!r} of kind {cls.kind!r} does not define challenge()")
        if not isinstance(cls.charset, str) or not cls.charset:
            raise PluginError(f"style {cls.name!r}: charset must be a non-empty string")
        if not 1 <= cls.min_length <= cls.max_length:
            raise PluginError(f"style {cls.name!r}: needs 1 <= min_length <= max_length")
        style = cls()
        declared = {p.name for p in cls.params}
        for strength in (0.0, 0.5, 1.0):
            try:
                values = style.at_strength(strength)
            except Exception as exc:
                raise PluginError(
                    f"style {cls.name!r}: at_strength({strength}) failed: {type(exc).__name__}: {exc}"
                ) from None
            if not isinstance(values, dict):
                raise PluginError(f"style {cls.name!r}: at_strength() must return a dict")
            unknown = sorted(set(values) - declared)
            if unknown:
                raise PluginError(
                    f"style {cls.name!r}: at_strength({strength}) returns {', '.join(unknown)}, not declared in params"
                )
            for key, value in values.items():
                try:
                    style.param(key).check(round(value, 4) if isinstance(value, float) else value)
                except CaptchalabError as exc:
                    raise PluginError(f"style {cls.name!r}: at_strength({strength}): {exc}") from None


from ..registry import STYLES as REGISTRY  # noqa: E402,F401  (the one table, under its old name)

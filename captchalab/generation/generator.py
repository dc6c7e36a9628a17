"""The generator interface: a CAPTCHA style is a small registered class.

A style declares its parameters and maps a `strength` in [0, 1] to its own difficulty
parameters (0 = the easiest it makes, 1 = the hardest). It renders one CAPTCHA from a text and
a `numpy.random.Generator`, returning the image and the box of every character it drew.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..charset import DIGITS, without_ambiguous
from ..errors import CaptchalabError


@dataclass(frozen=True)
class Param:
    """A declared generator parameter: the CLI parses `--param name=value` against it."""
    name: str
    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""

    def parse(self, text: str) -> Any:
        if self.type is bool:
            if text.lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise CaptchalabError(f"{self.name}: {text!r} is not true or false")
            return text.lower() in ("1", "true", "yes")
        try:
            value = self.type(text)
        except ValueError:
            raise CaptchalabError(f"{self.name}: {text!r} is not a {self.type.__name__}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """The value converted to the declared type, or an error naming the parameter."""
        if self.type in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.type is int and value != int(value):
                raise CaptchalabError(f"{self.name}={value} is not a whole number")
            value = self.type(value)
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise CaptchalabError(f"{self.name}={value} is outside [{self.low}, {self.high}]")
            return value
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise CaptchalabError(f"{self.name}={value!r} is not a {self.type.__name__}")
        return value

    def describe(self) -> str:
        rng = f" in [{self.low}, {self.high}]" if self.low is not None or self.high is not None else ""
        return f"{self.name} ({self.type.__name__}, default {self.default!r}{rng}): {self.help}"


def find_param(params: tuple[Param, ...], name: str, missing: str) -> Param:
    """The parameter called `name`, or an error starting with `missing` and naming the known ones."""
    for p in params:
        if p.name == name:
            return p
    known = ", ".join(p.name for p in params) or "none"
    raise CaptchalabError(f"{missing} {name!r} (known: {known})")


def parse_assignments(lookup, assignments: list[str], option: str) -> dict[str, Any]:
    """`name=value` strings parsed against the parameters `lookup(name)` finds."""
    parsed = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        if not sep:
            raise CaptchalabError(f"{option} {item!r}: expected name=value")
        parsed[key] = lookup(key).parse(text)
    return parsed


# parameters most styles share
HEIGHT = Param("height", int, 64, 32, 160, "image height in pixels")
FONT_SIZE = Param("font_size", int, 44, 16, 120, "font size in pixels")
AVOID_AMBIGUOUS = Param("avoid_ambiguous", bool, False, help="leave out characters readers confuse "
                        "(0/o/O, 1/l/I, 2/z/Z, 5/s/S, 8/B, 9/g/q and letters whose cases look alike)")


@dataclass
class Rendered:
    """One CAPTCHA: an HxWx3 uint8 BGR image and one (x0, y0, x1, y1) box per character."""
    image: np.ndarray
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


class Generator:
    """Base class for CAPTCHA styles. Subclass it, fill in the fields, decorate with @register."""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    charset: ClassVar[str] = DIGITS  # every character this style can draw
    min_length: ClassVar[int] = 1
    max_length: ClassVar[int] = 8

    def drawable(self, charset: str, params: dict[str, Any]) -> str:
        """The characters of `charset` this style draws texts from with these parameters."""
        return without_ambiguous(charset) if params.get("avoid_ambiguous") else charset

    def at_strength(self, strength: float) -> dict[str, Any]:
        """The difficulty parameters this style uses at `strength` (override per style)."""
        return {}

    def render(self, text: str, rng: np.random.Generator, p: dict[str, Any]) -> Rendered:
        raise NotImplementedError

    def param(self, name: str) -> Param:
        """The declared parameter `name`; an error naming the known ones if there is none."""
        return find_param(self.params, name, f"style {self.name!r} has no parameter")

    def resolve(self, strength: float, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Declared defaults, then the strength mapping, then explicit overrides."""
        if not 0.0 <= strength <= 1.0:
            raise CaptchalabError(f"--strength must be in [0, 1], got {strength}")
        values = {p.name: p.default for p in self.params}
        values.update({k: round(v, 4) if isinstance(v, float) else v
                       for k, v in self.at_strength(strength).items()})
        for key, value in (overrides or {}).items():
            values[key] = self.param(key).check(value)
        return values

    def parse_params(self, assignments: list[str]) -> dict[str, Any]:
        """Parse `name=value` strings against the declared parameters."""
        return parse_assignments(self.param, assignments, "--param")


REGISTRY: dict[str, Generator] = {}
SOURCES: dict[str, str] = {}


class PluginError(CaptchalabError):
    pass


def check_declared(cls, family: str) -> None:
    """The fields both plugin families declare: a name, a description and a tuple of Param."""
    for attr in ("name", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise PluginError(f"{family} class {cls.__name__} has no {attr}")
    if not isinstance(cls.params, tuple) or not all(isinstance(p, Param) for p in cls.params):
        raise PluginError(f"{family} {cls.name!r}: params must be a tuple of Param")


def register(cls: type[Generator]) -> type[Generator]:
    """Class decorator: check the declared fields and add the style to the registry."""
    check_declared(cls, "generator")
    if cls.render is Generator.render:
        raise PluginError(f"generator {cls.name!r} does not define render()")
    REGISTRY[cls.name] = cls()
    return cls

"""The one registry of both plugin families, styles and attackers: declared parameters, the
tables of registered plugins, and `register`, which checks a plugin's contract when it
registers. A leaf: it imports no plugin and nothing above it (finding plugins is plugins.py).

A plugin class names its family (`family = "style"` or `"attacker"`, set by the base classes it
subclasses) and defines `check_contract()`, which raises PluginError in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import CaptchalabError


class PluginError(CaptchalabError):
    """A plugin that breaks its contract (found at registration) or fails while it runs."""


@dataclass(frozen=True)
class Param:
    """A declared parameter of a style or hyper-parameter of an attacker: the CLI parses
    `name=value` against it and every value is checked against its type and range."""

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
        parsed[key.strip()] = lookup(key.strip()).parse(text.strip())
    return parsed


def split_attacker_spec(spec: str) -> tuple[str, list[str]]:
    """'tesseract:psm=8,oem=1' -> ('tesseract', ['psm=8', 'oem=1']): how an attacker and its
    hyper-parameters are named everywhere (the CLI's --attacker, study files, Python)."""
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise CaptchalabError(f"attacker {spec!r}: expected NAME or NAME:name=value,...")
    return name.strip(), [a for a in rest.split(",") if a.strip()]


def check_declared(cls, family: str) -> None:
    """The fields both plugin families declare: a name, a description and a tuple of Param."""
    for attr in ("name", "description"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise PluginError(f"{family} class {cls.__name__} has no {attr}")
    if not isinstance(cls.params, tuple) or not all(isinstance(p, Param) for p in cls.params):
        raise PluginError(f"{family} {cls.name!r}: params must be a tuple of Param")
    names = [p.name for p in cls.params]
    if len(set(names)) != len(names):
        raise PluginError(f"{family} {cls.name!r} declares a parameter twice")


STYLES: dict[str, Any] = {}  # name -> an instance of the style
ATTACKERS: dict[str, type] = {}  # name -> the attacker class
SOURCES: dict[tuple[str, str], str] = {}  # (family, name) -> "built-in", a file path or an entry point
TABLES = {"style": STYLES, "attacker": ATTACKERS}


def register(cls: type) -> type:
    """Class decorator for both families: check the contract, then add the plugin to its table."""
    family = getattr(cls, "family", None)
    if family not in TABLES:
        raise PluginError(f"{cls.__name__} is neither a Generator nor an Attacker subclass")
    check_declared(cls, family)
    cls.check_contract()
    TABLES[family][cls.name] = cls() if family == "style" else cls
    return cls


def source_of(family: str, name: str) -> str:
    return SOURCES.get((family, name), "?")

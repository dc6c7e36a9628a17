"""Find plugins of both families, styles and attackers: the built-in ones, the folders named with
--plugins or $CAPTCHALAB_PLUGINS, and installed packages' entry points (`captchalab.generators`,
`captchalab.attackers`). Nothing else is ever imported. Plugins are loaded by path or module
name, so this module sits low in the house: it imports only the registry.

A plugin file may register styles, attackers or both. A broken plugin is recorded with its file
name in `load_errors` and skipped; everything else keeps working.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from importlib import metadata
from pathlib import Path

from . import registry
from .errors import CaptchalabError

ENV_VAR = "CAPTCHALAB_PLUGINS"
ENTRY_POINT_GROUPS = {"captchalab.generators": "style", "captchalab.attackers": "attacker"}
BUILTIN_ATTACKERS = (
    "segment",
    "ctc",
    "ddddocr",
    "ocr",
    "vlm",
    "tiles",
    "squares",
    "classifier",
    "detector",
    "detfeat",
    "slider",
    "rotation",
    "click",
    "audio",
)
_loaded_files: set[Path] = set()
_entry_points_loaded = False
load_errors: list[str] = []  # "<file or entry point>: <exception>", one per broken plugin
overrides: list[str] = []  # one line per plugin that replaced another of its name (the CLI says them)
_module_files: dict[str, str] = {}  # plugin module name -> its file


def builtin_dir() -> Path:
    """The folder of the built-in styles (the `captchalab.generators` package)."""
    spec = importlib.util.find_spec("captchalab.generators")
    return Path(next(iter(spec.submodule_search_locations)))


def plugin_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in (extra or [])]
    return dirs


def _names() -> dict[str, dict]:
    return {family: dict(table) for family, table in registry.TABLES.items()}


def _record_sources(before: dict[str, dict], where: str) -> None:
    """Say where each plugin that registered since `before` came from; a plugin that took the name
    of one registered before it (a user's folder over a built-in, a later folder over an earlier)
    wins, and the replacement is noted."""
    for family, table in registry.TABLES.items():
        for name, plugin in table.items():
            if name in before[family] and before[family][name] is plugin:
                continue
            if name in before[family]:
                overrides.append(
                    f"note: {family} {name!r} from {where} replaces the one from "
                    f"{registry.SOURCES.get((family, name), '?')}"
                )
            registry.SOURCES[(family, name)] = where


def _load_file(path: Path) -> None:
    path = path.resolve()
    if path in _loaded_files:
        return
    _loaded_files.add(path)
    before = _names()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]  # stable across processes
    module_name = f"captchalab_plugin_{path.stem}_{digest}"
    _module_files[module_name] = str(path)
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # a plugin may fail in any way; report it and go on
        sys.modules.pop(module_name, None)
        load_errors.append(f"{path}: {type(exc).__name__}: {exc}")
        return
    where = "built-in" if path.parent == builtin_dir().resolve() else str(path)
    _record_sources(before, where)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for group, family in ENTRY_POINT_GROUPS.items():
        for ep in metadata.entry_points(group=group):
            where = f"entry point {ep.name} ({ep.value})"
            try:
                before = _names()
                obj = ep.load()
                if (
                    isinstance(obj, type)
                    and getattr(obj, "family", None) == family
                    and obj.name not in registry.TABLES[family]
                ):
                    registry.register(obj)
                _record_sources(before, where)
            except Exception as exc:
                load_errors.append(f"{where}: {type(exc).__name__}: {exc}")


def _load_builtin_attackers() -> None:
    for stem in BUILTIN_ATTACKERS:
        before = _names()
        importlib.import_module(f"captchalab.attackers.{stem}")
        _record_sources(before, "built-in")


def load_plugins(extra_dirs: list[str | os.PathLike] | None = None) -> tuple[dict, dict]:
    """Load every plugin from the places the user named; returns (styles, attackers)."""
    _load_builtin_attackers()
    for folder in plugin_dirs(extra_dirs):
        if not folder.is_dir():
            raise CaptchalabError(f"plugin folder {folder} does not exist")
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _load_file(path)
    _load_entry_points()
    return registry.STYLES, registry.ATTACKERS


def find(family: str, name: str, extra_dirs=None):
    """The registered style (an instance) or attacker (a class) called `name`, or a one-line
    error naming the known ones and any plugin that failed to load."""
    table = load_plugins(extra_dirs)[0 if family == "style" else 1]
    if name not in table:
        hint = f"; plugins that failed to load: {'; '.join(load_errors)}" if load_errors else ""
        raise CaptchalabError(f"unknown {family} {name!r}; known {family}s: {', '.join(sorted(table))}{hint}")
    return table[name]


def get_generator(name: str, extra_dirs=None):
    """The style called `name` (an instance of its Generator class)."""
    return find("style", name, extra_dirs)


def get_attacker(name: str, extra_dirs=None):
    """The attacker class called `name`."""
    return find("attacker", name, extra_dirs)


def load_generators(extra_dirs: list[str | os.PathLike] | None = None) -> dict:
    return load_plugins(extra_dirs)[0]


def plugin_in_traceback(exc: BaseException) -> str | None:
    """The plugin file an exception was raised in (the innermost plugin frame), if any; also
    looks into the traceback text a worker process sends back."""
    files = {f for f in _module_files.values()}
    files |= {where for where in registry.SOURCES.values() if where not in ("built-in", "?")}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename in files:
            found = frame.f_code.co_filename
    cause = exc.__cause__
    if found is None and cause is not None:  # concurrent.futures' _RemoteTraceback
        text = str(cause)
        found = next((f for f in sorted(files, key=len, reverse=True) if f'"{f}"' in text), None)
    return found


def describe_plugin_file(path: str) -> str:
    """'attacker 'slicer' (/x/slicer.py)' for a file that registered plugins, else the file."""
    names = [f"{family} {name!r}" for (family, name), where in registry.SOURCES.items() if where == path]
    return f"{', '.join(names)} ({path})" if names else f"plugin file {path}"

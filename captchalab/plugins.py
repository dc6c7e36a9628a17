"""Find generator styles: the generators/ folder, --plugins / $CAPTCHALAB_PLUGINS folders, and
installed packages' `captchalab.generators` entry points. Nothing else is ever imported.

A broken plugin is recorded with its file name in `load_errors` and skipped; the other styles
keep working.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path

from . import generator as gen
from .errors import CaptchalabError

ENV_VAR = "CAPTCHALAB_PLUGINS"
ENTRY_POINT_GROUP = "captchalab.generators"
_loaded_files: set[Path] = set()
_entry_points_loaded = False
load_errors: list[str] = []


def builtin_dir() -> Path:
    import captchalab.generators as package
    return Path(next(iter(package.__path__)))


def plugin_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in (extra or [])]
    return dirs


def _load_file(path: Path) -> None:
    path = path.resolve()
    if path in _loaded_files:
        return
    _loaded_files.add(path)
    before = set(gen.REGISTRY)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]  # stable across processes
    module_name = f"captchalab_plugin_{path.stem}_{digest}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # a plugin may fail in any way; report it and go on
        sys.modules.pop(module_name, None)
        load_errors.append(f"{path}: {type(exc).__name__}: {exc}")
        return
    for name in set(gen.REGISTRY) - before:
        gen.SOURCES[name] = str(path)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, gen.Generator) and obj.name not in gen.REGISTRY:
                gen.register(obj)
            gen.SOURCES.setdefault(obj.name, f"entry point {ep.name} ({ep.value})")
        except Exception as exc:
            load_errors.append(f"entry point {ep.name} ({ep.value}): {type(exc).__name__}: {exc}")


def load_generators(extra_dirs: list[str | os.PathLike] | None = None) -> dict[str, gen.Generator]:
    """Load every style from the places the user named; returns the registry."""
    for folder in plugin_dirs(extra_dirs):
        if not folder.is_dir():
            raise CaptchalabError(f"plugin folder {folder} does not exist")
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _load_file(path)
    _load_entry_points()
    return gen.REGISTRY


def get_generator(name: str, extra_dirs=None) -> gen.Generator:
    registry = load_generators(extra_dirs)
    if name not in registry:
        hint = f"; broken plugins: {'; '.join(load_errors)}" if load_errors else ""
        raise CaptchalabError(f"unknown style {name!r}; known styles: {', '.join(sorted(registry))}{hint}")
    return registry[name]

"""Find plugins of both families, generator styles and attackers: the built-in folders, the
folders named with --plugins or $CAPTCHALAB_PLUGINS, and installed packages' entry points
(`captchalab.generators`, `captchalab.attackers`). Nothing else is ever imported.

A plugin file may register styles, attackers or both. A broken plugin is recorded with its file
name in `load_errors` and skipped; everything else keeps working.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from importlib import metadata
from pathlib import Path

from .attackers import base as attackers
from .errors import CaptchalabError
from .generation import generator as generators

ENV_VAR = "CAPTCHALAB_PLUGINS"
ENTRY_POINT_GROUPS = {"captchalab.generators": (generators, generators.Generator),
                      "captchalab.attackers": (attackers, attackers.Attacker)}
_loaded_files: set[Path] = set()
_entry_points_loaded = False
load_errors: list[str] = []


def builtin_dir() -> Path:
    import captchalab.generators as package
    return Path(next(iter(package.__path__)))


def builtin_attackers_dir() -> Path:
    return Path(attackers.__file__).parent


def plugin_dirs(extra: list[str | os.PathLike] | None = None) -> list[Path]:
    dirs = [builtin_dir()]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in (extra or [])]
    return dirs


def _registered() -> tuple[set, set]:
    return set(generators.REGISTRY), set(attackers.REGISTRY)


def _load_file(path: Path) -> None:
    path = path.resolve()
    if path in _loaded_files:
        return
    _loaded_files.add(path)
    before_styles, before_attackers = _registered()
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
    after_styles, after_attackers = _registered()
    for name in after_styles - before_styles:
        generators.SOURCES[name] = str(path)
    for name in after_attackers - before_attackers:
        attackers.SOURCES[name] = str(path)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for group, (module, base) in ENTRY_POINT_GROUPS.items():
        register = generators.register if base is generators.Generator else attackers.register_attacker
        for ep in metadata.entry_points(group=group):
            try:
                obj = ep.load()
                if isinstance(obj, type) and issubclass(obj, base) and obj.name not in module.REGISTRY:
                    register(obj)
                module.SOURCES.setdefault(obj.name, f"entry point {ep.name} ({ep.value})")
            except Exception as exc:
                load_errors.append(f"entry point {ep.name} ({ep.value}): {type(exc).__name__}: {exc}")


def _load_builtin_attackers() -> None:
    for path in sorted(builtin_attackers_dir().glob("*.py")):
        if path.stem not in ("__init__", "base", "segmenter"):
            importlib.import_module(f"captchalab.attackers.{path.stem}")
            for name, cls in attackers.REGISTRY.items():
                if cls.__module__ == f"captchalab.attackers.{path.stem}":
                    attackers.SOURCES[name] = "built-in"


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
    return generators.REGISTRY, attackers.REGISTRY


def load_generators(extra_dirs: list[str | os.PathLike] | None = None) -> dict:
    return load_plugins(extra_dirs)[0]


def get_generator(name: str, extra_dirs=None) -> generators.Generator:
    registry = load_generators(extra_dirs)
    if name not in registry:
        hint = f"; broken plugins: {'; '.join(load_errors)}" if load_errors else ""
        raise CaptchalabError(f"unknown style {name!r}; known styles: {', '.join(sorted(registry))}{hint}")
    return registry[name]

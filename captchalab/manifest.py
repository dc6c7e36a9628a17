"""Manifests: what produced a dataset, model or report (seed, parameters, versions, hashes)."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata

PACKAGES = (
    "captchalab",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "captcha",
    "pillow",
    "matplotlib",
    "typer",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def make_manifest(kind: str, **fields) -> dict:
    """A manifest dict; contains no timestamps so that equal inputs give equal bytes."""
    return {"kind": kind, **fields, "versions": package_versions()}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

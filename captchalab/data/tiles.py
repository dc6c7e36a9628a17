"""Tile sets: the labelled object pictures image-selection CAPTCHAs are made of.

A tile set is a folder of class folders, `CLASS/*.png|jpg|jpeg|webp|bmp`, the way public sets of
real reCAPTCHA tiles are laid out (car/, bus/, crosswalk/, ...): a researcher points at their own
with `--param tiles=DIR`. The built-in sets are openly licensed emoji art, one archive per art
style in `captchalab/art/` (`<style>.zip` of `CLASS/*.png`, beside its licence and attribution),
pre-rendered by tools/render_tile_art.py; `--param art=noto,twemoji` picks among them.

Every picture is read through the safe decoder (with its transparency, so objects can be placed
on scenes); unreadable ones are skipped and named, and a set needs at least two classes.

Picture pools: a design that serves challenges from a fixed pool of pictures is broken by an
attacker who memorises the pool; one with fresh pictures only by one that generalises. So a set
is split by picture (`TileSet.pool`): a picture's content hash decides, the same way on every
machine and in any order of files, whether it is held out (`test`, a `held_out` share) or not
(`train`); within either part a further share is kept for validation (`fit` / `validation`), so
that an attacker's validation never reuses a picture it trained on. `pool_size` serves a design
from the first N pictures of a class (in hash order).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..errors import CaptchalabError
from .images import ImageError, ImageLimits, decode_image, read_image

ART = Path(__file__).resolve().parent.parent / "art"
TILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_TILES = 100_000  # pictures read from one folder at most (a tile set, not a photo archive)
POOLS = ("all", "train", "test")
PARTS = ("all", "fit", "validation")
VALIDATION_SHARE = 0.15  # of a pool's pictures, kept from fitting to validate on
# fewer pictures a class than this and validation is held out by challenge: a few drawings a class
# (the built-in art has one per art style) are the pool a design serves, not a sample of one
MIN_FOR_PARTS = 6


@dataclass(frozen=True)
class Tile:
    """One picture of one class: HxWx4 BGRA uint8 (opaque for photos)."""

    cls: str
    art: str  # the art style (a built-in set's name) or the folder a user's set came from
    name: str  # the file's name inside its class folder
    image: np.ndarray = field(repr=False, compare=False)

    @cached_property
    def digest(self) -> str:
        """The picture's content hash: what the split and overlap checks go by (not its name)."""
        return hashlib.sha256(np.ascontiguousarray(self.image).tobytes()).hexdigest()

    def share(self, salt: str) -> float:
        """A number in [0, 1) fixed by the picture's content and `salt`."""
        return int(hashlib.sha256(f"{salt}:{self.digest}".encode()).hexdigest()[:12], 16) / 16**12


@dataclass
class TileSet:
    """Pictures by class, and what could not be read (file -> why)."""

    tiles: dict[str, list[Tile]]
    skipped: dict[str, str]
    source: str

    @property
    def classes(self) -> list[str]:
        return sorted(self.tiles)

    @property
    def arts(self) -> list[str]:
        return sorted({t.art for tiles in self.tiles.values() for t in tiles})

    def check_class(self, cls: str, what: str = "class") -> str:
        if cls not in self.tiles:
            raise CaptchalabError(
                f"{what} {cls!r} is not in the tile set {self.source} (classes: {', '.join(self.classes)})"
            )
        return cls

    def pool(self, pool: str = "all", part: str = "all", held_out: float = 0.3, size: int = 0) -> TileSet:
        """The pictures a design serves: `pool` (all, train: not held out, test: held out), then
        `part` of it (all, fit, validation), then at most `size` a class (0: every one). A class
        left with no picture is dropped; fewer than two classes is a one-line error."""
        if pool not in POOLS or part not in PARTS:
            raise CaptchalabError(f"`pool` must be one of {', '.join(POOLS)} and `part` one of {', '.join(PARTS)}")
        if pool == part == "all" and not size:
            return self
        chosen = {}
        for cls, tiles in self.tiles.items():
            keep = tiles if pool == "all" else _split(tiles, "held_out", held_out)[pool == "train"]
            if part != "all" and len(keep) < MIN_FOR_PARTS:
                raise CaptchalabError(
                    f"{self.source}: class {cls} has {len(keep)} pictures in pool {pool}, too few to hold "
                    f"some out for validation (at least {MIN_FOR_PARTS})"
                )
            keep = keep if part == "all" else _split(keep, "validation", VALIDATION_SHARE)[part == "fit"]
            keep = sorted(keep, key=lambda t: t.share("order"))
            if keep:
                chosen[cls] = keep[:size] if size else keep
        where = f"{self.source} (pool {pool}, part {part}, held out {held_out:g}, size {size or 'all'})"
        return _checked(TileSet(chosen, self.skipped, where))

    def digests(self) -> list[str]:
        """Every picture's content hash, sorted."""
        return sorted(t.digest for tiles in self.tiles.values() for t in tiles)

    def describe(self) -> dict:
        """What a manifest records: where, which classes and art, how many pictures, a content hash."""
        digest = hashlib.sha256()
        for cls in self.classes:
            for tile in self.tiles[cls]:
                digest.update(f"{cls}/{tile.art}/{tile.name}".encode())
                digest.update(tile.image.tobytes())
        return {
            "source": self.source,
            "classes": self.classes,
            "arts": self.arts,
            "pictures": {c: len(t) for c, t in sorted(self.tiles.items())},
            "skipped": dict(sorted(self.skipped.items())),
            "sha256": digest.hexdigest(),
        }


def _split(tiles: list[Tile], salt: str, share: float) -> tuple[list[Tile], list[Tile]]:
    """`share` of the pictures (rounded), first in the order their content hashes under `salt`
    give, and the rest; a class of two or more pictures keeps at least one on each side."""
    ordered = sorted(tiles, key=lambda t: t.share(salt))
    cut = round(share * len(ordered))
    if len(ordered) >= 2:
        cut = min(max(cut, 1), len(ordered) - 1)
    return ordered[:cut], ordered[cut:]


def builtin_arts() -> list[str]:
    """The names of the built-in art styles."""
    return sorted(p.stem for p in ART.glob("*.zip"))


def _class_folders(root: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise CaptchalabError(f"cannot read the tile folder {root}: {exc.strerror or exc}") from None
    # symbolic links are not followed: a tile set reads only what lies inside its own folder
    return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]


def _read_folder(root: Path, limits: ImageLimits) -> tuple[dict, dict]:
    tiles: dict[str, list[Tile]] = {}
    skipped: dict[str, str] = {}
    read = 0
    for folder in _class_folders(root):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.name.lower().endswith(TILE_SUFFIXES):
                continue
            where = f"{folder.name}/{entry.name}"
            if not entry.is_file(follow_symlinks=False):
                skipped[where] = "not a regular file"
                continue
            read += 1
            if read > MAX_TILES:
                raise CaptchalabError(f"the tile folder {root} holds more than {MAX_TILES:,} pictures")
            try:
                image = read_image(entry.path, limits, alpha=True)
            except ImageError as exc:
                skipped[where] = str(exc)
                continue
            tiles.setdefault(folder.name, []).append(Tile(folder.name, root.name, entry.name, image))
    return tiles, skipped


def _read_art(art: str) -> dict[str, list[Tile]]:
    """One built-in art style's pictures, from its archive (ours: every member is CLASS/NAME.png)."""
    tiles: dict[str, list[Tile]] = {}
    with zipfile.ZipFile(ART / f"{art}.zip") as archive:
        for member in sorted(archive.namelist()):
            cls, _, name = member.partition("/")
            if name and name.endswith(".png"):
                image = decode_image(archive.read(member), ImageLimits(), alpha=True)
                tiles.setdefault(cls, []).append(Tile(cls, art, name, image))
    return tiles


def load_tile_folder(folder: str | os.PathLike, limits: ImageLimits | None = None) -> TileSet:
    """A user's tile set: `folder/CLASS/*.png|jpg|...`. Unreadable pictures are skipped and named;
    fewer than two classes with a readable picture is a one-line error."""
    root = Path(folder)
    if not root.is_dir():
        raise CaptchalabError(f"tile folder {root} does not exist or is not a folder")
    tiles, skipped = _read_folder(root, limits or ImageLimits.from_env())
    return _checked(TileSet(tiles, skipped, str(root)))


@lru_cache(maxsize=8)
def load_builtin(arts: tuple[str, ...]) -> TileSet:
    """The built-in art styles `arts` together (every class drawn in each); cached per process."""
    known = builtin_arts()
    unknown = [a for a in arts if a not in known]
    if unknown or not arts:
        raise CaptchalabError(
            f"unknown art style {', '.join(unknown) or '(none given)'} (built in: {', '.join(known)})"
        )
    tiles: dict[str, list[Tile]] = {}
    for art in arts:
        for cls, pictures in _read_art(art).items():
            tiles.setdefault(cls, []).extend(pictures)
    return _checked(TileSet(tiles, {}, "built-in art " + ",".join(arts)))


def _checked(tile_set: TileSet) -> TileSet:
    if len(tile_set.tiles) < 2:
        first = next(iter(tile_set.skipped.items()), None)
        why = f"; {len(tile_set.skipped)} unreadable, first {first[0]}: {first[1]}" if first else ""
        raise CaptchalabError(
            f"the tile set {tile_set.source} needs at least two classes with a readable "
            f"picture, found {len(tile_set.tiles)}{why}"
        )
    return tile_set


@lru_cache(maxsize=4)
def _folder_tiles(folder: str, stamp: float) -> TileSet:
    return load_tile_folder(folder)


def chosen_tiles(
    folder: str, art: str, pool: str = "all", part: str = "all", held_out: float = 0.3, size: int = 0
) -> TileSet:
    """What a style's `tiles=` and `art=` parameters name: a folder of pictures when `folder` is
    given, else the built-in art styles `art` ('all', or names separated by commas or +); then the
    pool of it the design serves (`TileSet.pool`). Cached per process, so worker processes read a
    folder once (and again if it changes)."""
    if folder:
        root = Path(folder)
        if not root.is_dir():
            raise CaptchalabError(f"tiles={root}: no such folder")
        return _pooled(str(root.resolve()), root.stat().st_mtime, "", pool, part, held_out, size)
    arts = builtin_arts() if art == "all" else [a.strip() for a in art.replace("+", ",").split(",") if a.strip()]
    return _pooled("", 0.0, ",".join(arts), pool, part, held_out, size)


@lru_cache(maxsize=16)
def _pooled(folder: str, stamp: float, arts: str, pool: str, part: str, held_out: float, size: int) -> TileSet:
    whole = _folder_tiles(folder, stamp) if folder else load_builtin(tuple(arts.split(",")) if arts else ())
    return whole.pool(pool, part, held_out, size)

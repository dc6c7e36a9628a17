"""Datasets: generate them from a style (reproducibly, in parallel) and read them back safely.

A dataset folder holds images, `labels.csv` (filename,text), and for generated ones
`boxes.json` and `manifest.json`. Reading never touches a file outside the folder.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .errors import CaptchalabError
from .fileio import atomic_dir, to_json
from .generator import DIGITS, Generator
from .manifest import make_manifest, sha256_bytes
from .plugins import get_generator

MAX_LENGTH = 8


@dataclass
class GenerationSpec:
    """Everything that determines a generated dataset's bytes."""
    style: str
    count: int
    min_length: int = 4
    max_length: int = 4
    charset: str = DIGITS
    seed: int = 0
    strength: float = 0.5
    params: dict = field(default_factory=dict)   # explicit overrides only
    plugin_dirs: tuple[str, ...] = ()

    def generator(self) -> Generator:
        return get_generator(self.style, list(self.plugin_dirs))

    def check(self) -> dict:
        """Validate and return the resolved generator parameters."""
        gen = self.generator()
        if self.count < 1:
            raise CaptchalabError(f"--count must be at least 1, got {self.count}")
        lo, hi = max(gen.min_length, 1), min(gen.max_length, MAX_LENGTH)
        if not (lo <= self.min_length <= self.max_length <= hi):
            raise CaptchalabError(f"--length {self.min_length}-{self.max_length} is outside what "
                                  f"style {self.style!r} supports ({lo}-{hi})")
        if not self.charset:
            raise CaptchalabError("--charset is empty")
        bad = sorted(set(self.charset) - set(gen.charset))
        if bad:
            raise CaptchalabError(f"style {self.style!r} cannot draw {''.join(bad)!r} (charset {gen.charset!r})")
        return gen.resolve(self.strength, self.params)


def parse_length(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise CaptchalabError(f"--length {text!r}: expected N or N-M") from None
    if not 1 <= low <= high <= MAX_LENGTH:
        raise CaptchalabError(f"--length {text!r}: lengths must satisfy 1 <= N <= M <= {MAX_LENGTH}")
    return low, high


def parse_charset(text: str) -> str:
    return DIGITS if text == "digits" else "".join(dict.fromkeys(text))


def render_one(spec: GenerationSpec, params: dict, index: int, gen: Generator | None = None):
    """Render image `index`: its text and pixels depend only on (seed, index)."""
    rng = np.random.default_rng([spec.seed, index])
    length = int(rng.integers(spec.min_length, spec.max_length + 1))
    chars = np.array(list(spec.charset))
    text = "".join(rng.choice(chars, length))
    gen = gen or spec.generator()
    try:
        out = gen.render(text, rng, params)
    except Exception as exc:  # plugin code can fail in any way; name it and stop
        from .generator import SOURCES
        where = SOURCES.get(spec.style, spec.style)
        raise CaptchalabError(f"style {spec.style!r} ({where}) failed on image {index}: "
                              f"{type(exc).__name__}: {exc}") from None
    image = np.ascontiguousarray(out.image, dtype=np.uint8)
    if len(out.boxes) != len(text):
        raise CaptchalabError(f"style {spec.style!r} returned {len(out.boxes)} boxes for {len(text)} characters")
    return text, image, [tuple(int(v) for v in b) for b in out.boxes]


def _render_chunk(spec: GenerationSpec, params: dict, indices: list[int], encode: bool):
    results = []
    gen = spec.generator()
    for i in indices:
        text, image, boxes = render_one(spec, params, i, gen)
        if encode:
            ok, png = cv2.imencode(".png", image)
            image = png.tobytes()
        results.append((i, text, image, boxes))
    return results


def render_many(spec: GenerationSpec, workers: int = 1, encode: bool = False,
                chunk: int = 32) -> Iterator[tuple[int, str, np.ndarray | bytes, list]]:
    """Yield (index, text, image or PNG bytes, boxes) in index order."""
    params = spec.check()
    chunks = [list(range(s, min(s + chunk, spec.count))) for s in range(0, spec.count, chunk)]
    if workers <= 1:
        for c in chunks:
            yield from _render_chunk(spec, params, c, encode)
        return
    from .workers import pool
    for results in pool(workers, spec.plugin_dirs).map(_render_chunk, [spec] * len(chunks),
                                                       [params] * len(chunks), chunks, [encode] * len(chunks)):
        yield from results


def generate_dataset(spec: GenerationSpec, out: Path, workers: int = 1, force: bool = False,
                     preview: int = 0, on_progress: Callable[[int], None] | None = None) -> dict:
    """Write a dataset folder atomically; returns its manifest."""
    params = spec.check()
    width = len(str(spec.count - 1))
    rows, boxes, hashes = [], {}, []
    previews = []
    with atomic_dir(out, force) as tmp:
        for i, text, png, bxs in render_many(spec, workers, encode=True):
            name = f"{i:0{max(width, 5)}d}.png"
            (tmp / name).write_bytes(png)
            rows.append((name, text))
            boxes[name] = bxs
            hashes.append(sha256_bytes(png))
            if len(previews) < preview:
                previews.append((cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), text))
            if on_progress:
                on_progress(1)
        write_labels(tmp / "labels.csv", rows)
        (tmp / "boxes.json").write_text(to_json(boxes))
        manifest = make_manifest(
            "dataset", generator=spec.style, source=_source(spec.style), parameters=params,
            overrides=spec.params, strength=spec.strength, seed=spec.seed, count=spec.count,
            length=[spec.min_length, spec.max_length], charset=spec.charset,
            images_sha256=sha256_bytes("".join(hashes).encode()))
        (tmp / "manifest.json").write_text(to_json(manifest))
        if previews:
            from .report import contact_sheet
            contact_sheet([im for im, _ in previews], [t for _, t in previews], tmp / "preview.png")
    return manifest


def _source(style: str) -> str:
    from .generator import SOURCES
    from .plugins import builtin_dir
    src = SOURCES.get(style, "")
    return "built-in" if src and Path(src).parent == builtin_dir().resolve() else src


def write_labels(path: Path, rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", "text"])
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


@dataclass
class Dataset:
    """A dataset folder's rows; images are read on demand with `load_image`."""
    root: Path
    filenames: list[str]
    texts: list[str]
    boxes: dict | None = None
    manifest: dict | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (filename, why) per bad row

    def __len__(self) -> int:
        return len(self.filenames)


def safe_member(root: Path, name: str, row: int) -> Path:
    """The path of `name` inside `root`, refusing anything that could lead outside it."""
    pure = Path(name)
    if not name or pure.is_absolute() or name.startswith(("/", "\\")) or ".." in pure.parts \
            or ".." in Path(name.replace("\\", "/")).parts:
        raise CaptchalabError(f"labels.csv row {row}: filename {name!r} points outside the dataset folder")
    resolved = (root / pure).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise CaptchalabError(f"labels.csv row {row}: {name!r} resolves outside the dataset folder")
    return resolved


def read_dataset(folder: str | os.PathLike, charset: str = DIGITS) -> Dataset:
    """Read `labels.csv`; rows with an empty text or characters outside `charset` are rejected
    (kept in `rejected`), a row that escapes the folder refuses the whole dataset."""
    root = Path(folder)
    labels = root / "labels.csv"
    if not root.is_dir():
        raise CaptchalabError(f"dataset folder {root} does not exist")
    if not labels.is_file():
        raise CaptchalabError(f"{root} has no labels.csv (expected header: filename,text)")
    try:
        with labels.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip().lower() for h in header] != ["filename", "text"]:
                raise CaptchalabError(f"{labels}: header must be 'filename,text', got {header}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CaptchalabError(f"{labels}: cannot parse ({exc})") from None
    filenames, texts, rejected = [], [], []
    for number, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise CaptchalabError(f"{labels} line {number}: expected 2 fields, got {len(row)}")
        name, text = row[0].strip(), row[1].strip()
        safe_member(root, name, number)
        if not text or set(text) - set(charset):
            rejected.append((name, "empty text" if not text else f"characters outside {charset!r}"))
            continue
        filenames.append(name)
        texts.append(text)
    if not filenames:
        raise CaptchalabError(f"{labels}: no usable rows")
    boxes = manifest = None
    if (root / "boxes.json").is_file():
        boxes = json.loads((root / "boxes.json").read_text())
    if (root / "manifest.json").is_file():
        manifest = json.loads((root / "manifest.json").read_text())
    return Dataset(root, filenames, texts, boxes, manifest, rejected)


def load_image(path: Path) -> np.ndarray | None:
    """Read any image OpenCV reads as BGR; None when it is missing or corrupt."""
    data = np.fromfile(path, np.uint8) if path.is_file() else None
    if data is None or data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return image

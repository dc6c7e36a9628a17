"""Generating datasets from a style, reproducibly and in parallel: a `GenerationSpec` says
everything that determines a dataset's bytes, `render_one` draws CAPTCHA `index` from (seed,
index) alone, and `generate_dataset` writes a dataset folder atomically."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import cv2
import numpy as np

from ..charset import DIGITS, charset_name, outside, parse_charset
from ..errors import CaptchalabError
from ..fileio import JsonObjectFile, PieceFile, atomic_dir, to_json, write_new
from ..kinds import get_kind
from ..manifest import make_manifest, sha256_bytes
from ..plots import contact_sheet
from ..plugins import get_generator
from ..registry import source_of
from .folders import csv_rows, part_name
from .images import ImageLimits
from .media import media_of

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
    params: dict = field(default_factory=dict)  # explicit overrides only
    plugin_dirs: tuple[str, ...] = ()

    def __post_init__(self):
        # a style that composes its own texts (math) draws its own set where none was chosen
        if self.charset in ("", DIGITS):
            try:
                gen = self.generator()
                own = gen.own_charset(gen.resolve(self.strength, self.params))
            except CaptchalabError:  # an unknown style or a bad parameter: check() says which
                own = ""
            self.charset = own or DIGITS

    def generator(self):
        return get_generator(self.style, list(self.plugin_dirs))

    def check(self) -> dict:
        """Validate and return the resolved generator parameters."""
        gen = self.generator()
        if self.count < 1:
            raise CaptchalabError(f"`count` must be at least 1, got {self.count}")
        if not get_kind(gen.kind).characters:  # no characters to choose: the style draws whole challenges
            params = gen.resolve(self.strength, self.params)
            self._style_check(gen, params)
            return params
        lo, hi = max(gen.min_length, 1), min(gen.max_length, MAX_LENGTH)
        if not (lo <= self.min_length <= self.max_length <= hi):
            raise CaptchalabError(
                f"`length` {self.min_length}-{self.max_length} is outside what "
                f"style {self.style!r} supports ({lo}-{hi})"
            )
        if not self.charset:
            raise CaptchalabError("`charset` is empty")
        params = gen.resolve(self.strength, self.params)
        self._style_check(gen, params)  # first: a style that composes its texts names a bad parameter
        bad = outside(self.charset, gen.charset)
        if bad:
            only = " (it draws digits only)" if gen.charset == DIGITS else ""
            raise CaptchalabError(f"style {self.style!r} cannot draw {bad!r}{only}")
        own = gen.own_charset(params)
        if outside(own, self.charset):
            raise CaptchalabError(
                f"style {self.style!r} draws texts of {own!r} with these parameters; "
                f"`charset` {self.charset!r} lacks {outside(own, self.charset)!r}"
            )
        if not gen.drawable(self.charset, params):
            raise CaptchalabError(f"style {self.style!r} has no characters left to draw from {self.charset!r}")
        return params

    def _style_check(self, gen, params: dict) -> None:
        try:
            gen.check(params)
        except CaptchalabError as exc:  # the style's own refusal, said as one line of ours
            raise CaptchalabError(f"style {self.style!r}: {exc}") from None

    @property
    def kind(self) -> str:
        return self.generator().kind


def make_spec(
    style: str,
    count: int,
    length: str | None,
    charset: str | None,
    seed: int,
    strength: float,
    params: list[str] | dict | None = None,
    plugin_dirs=(),
) -> GenerationSpec:
    """A checked GenerationSpec from the command line's words: `length` as "N" or "N-M" (default
    4), `charset` (default digits), both for text styles only; `params` as name=value strings
    (or a dict already typed)."""
    generator = get_generator(style, list(plugin_dirs))
    if not get_kind(generator.kind).characters:
        given = [option for option, value in (("`length`", length), ("`charset`", charset)) if value]
        if given:
            raise CaptchalabError(
                f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to text "
                f"CAPTCHAs only; style {style!r} draws {generator.kind} CAPTCHAs"
            )
    low, high = parse_length(length or "4")
    parsed = generator.parse_params(params) if isinstance(params, list) else dict(params or {})
    spec = GenerationSpec(
        style=style,
        count=count,
        min_length=low,
        max_length=high,
        charset=parse_charset(charset) if charset else "",
        seed=seed,
        strength=strength,
        params=parsed,
        plugin_dirs=tuple(str(d) for d in plugin_dirs),
    )
    spec.check()
    return spec


def parse_length(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise CaptchalabError(f"`length` {text!r}: expected N or N-M") from None
    if not 1 <= low <= high <= MAX_LENGTH:
        raise CaptchalabError(f"`length` {text!r}: lengths must satisfy 1 <= N <= M <= {MAX_LENGTH}")
    return low, high


class Drawn(NamedTuple):
    """One generated CAPTCHA: its answer in its kind's label format (the text, for text), its
    HxWx3 uint8 BGR image (or PNG bytes), the character boxes (text), the question and what the
    style drew (other kinds)."""

    label: str
    image: np.ndarray | bytes
    boxes: list | None = None
    question: Any = None
    details: dict | None = None
    parts: dict | None = None  # further images (a dynamic grid's queue), arrays or PNG bytes


def render_one(spec: GenerationSpec, params: dict, index: int, gen=None) -> Drawn:
    """Render CAPTCHA `index`: its answer and pixels depend only on (seed, index)."""
    gen = gen or spec.generator()
    rng = np.random.default_rng([spec.seed, index])
    characters = get_kind(gen.kind).characters
    try:
        text = gen.text_for(rng, spec.charset, spec.min_length, spec.max_length, params) if characters else None
        out = gen.render(text, rng, params) if characters else gen.challenge(rng, params)
    except CaptchalabError as exc:  # the style's own refusal (a parameter it cannot draw with)
        raise CaptchalabError(f"style {spec.style!r} on image {index}: {exc}") from exc
    except Exception as exc:  # plugin code can fail in any way; name it and stop
        raise CaptchalabError(
            f"style {spec.style!r} ({source_of('style', spec.style)}) failed on image {index}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc  # the chain: --verbose shows the style's traceback
    media = media_of(get_kind(gen.kind))
    image = np.ascontiguousarray(out.image, dtype=media.dtype)
    if problem := media.check(image):
        raise CaptchalabError(f"style {spec.style!r} returned {problem}")
    if not characters:
        parts = {name: np.ascontiguousarray(part, dtype=np.uint8) for name, part in (out.parts or {}).items()}
        return Drawn(out.answer, image, None, out.question, out.details, parts)
    if len(out.boxes) != len(text):
        raise CaptchalabError(f"style {spec.style!r} returned {len(out.boxes)} boxes for {len(text)} characters")
    return Drawn(text, image, [tuple(int(v) for v in b) for b in out.boxes])


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _render_chunk(spec: GenerationSpec, params: dict, indices: list[int], encode: bool):
    results = []
    gen = spec.generator()
    media = media_of(get_kind(gen.kind))
    for i in indices:
        drawn = render_one(spec, params, i, gen)
        if encode:
            drawn = drawn._replace(
                image=media.encode(drawn.image), parts={k: png_bytes(v) for k, v in (drawn.parts or {}).items()}
            )
        results.append((i, drawn))
    return results


def render_many(
    spec: GenerationSpec, workers: int = 1, encode: bool = False, chunk: int = 32
) -> Iterator[tuple[int, Drawn]]:
    """Yield (index, Drawn) in index order (images as PNG bytes with `encode`)."""
    params = spec.check()
    chunks = (list(range(s, min(s + chunk, spec.count))) for s in range(0, spec.count, chunk))
    if workers <= 1:
        for c in chunks:
            yield from _render_chunk(spec, params, c, encode)
        return
    from ..workers import ordered_map, pool

    calls = ((spec, params, c, encode) for c in chunks)
    for results in ordered_map(pool(workers, spec.plugin_dirs), _render_chunk, calls, 4 * workers):
        yield from results


def generate_dataset(
    spec: GenerationSpec,
    out: Path,
    workers: int = 1,
    force: bool = False,
    preview: int = 0,
    on_progress: Callable[[int], None] | None = None,
    transform: Callable | None = None,
) -> dict:
    """Write a dataset folder atomically; returns its manifest.

    `transform(indices, texts, images, boxes) -> (images, manifest fields)` may change the images
    in batches before they are written (the adversarial wrapper does); for kinds that ask a
    question it is also given `questions=`.
    """
    params = spec.check()
    with atomic_dir(out, force) as tmp:
        writer = _DatasetWriter(tmp, get_kind(spec.kind), max(len(str(spec.count - 1)), 5), transform, preview)
        try:
            batch = []
            # PNGs are encoded in the workers, unless a transform needs the pixels first
            for item in render_many(spec, workers, encode=transform is None):
                batch.append(item)
                if len(batch) == 256:
                    writer.write(batch, on_progress)
                    batch = []
            if batch:
                writer.write(batch, on_progress)
            return writer.finish(spec, params)
        except BaseException:
            writer.abandon()
            raise


class _DatasetWriter:
    """Writes a dataset's CAPTCHAs batch by batch into `folder`, its labels and side file as it
    goes (nothing per CAPTCHA is kept in memory), then its manifest and preview."""

    def __init__(self, folder: Path, kind, width: int, transform: Callable | None, preview: int):
        self.folder, self.kind, self.width, self.transform, self.preview = folder, kind, width, transform, preview
        self.media = media_of(kind)
        self.images_hash, self.previews, self.extra = hashlib.sha256(), [], {}
        self.labels = PieceFile(folder / "labels.csv")
        self.labels.write(csv_rows([["filename", *kind.columns]]))
        self.drawn = JsonObjectFile(folder / kind.drawn_file)  # what the style drew: boxes (text), details (others)

    def abandon(self) -> None:
        self.labels.abandon()
        self.drawn.abandon()

    def write(self, batch: list, on_progress: Callable[[int], None] | None) -> None:
        images = [drawn.image for _, drawn in batch]
        if self.transform:
            # a reader's question: what the kind asks, with the images the page shows beside it
            shown = [name for name, _ in self.kind.question_parts]
            asked = (
                {}
                if self.kind.characters
                else {
                    "questions": [
                        {**drawn.question, **{n: drawn.parts[n] for n in shown if n in (drawn.parts or {})}}
                        for _, drawn in batch
                    ]
                }
            )
            images, fields = self.transform(
                [i for i, _ in batch],
                [drawn.label for _, drawn in batch],
                images,
                [drawn.boxes for _, drawn in batch],
                **asked,
            )
            self.extra.update(fields)
        rows = []
        for (i, drawn), image in zip(batch, images):
            name = f"{i:0{self.width}d}{self.media.suffix}"
            png = self.media.encode(image) if self.transform else image
            write_new(self.folder / name, png)
            for part, data in (drawn.parts or {}).items():
                data = data if isinstance(data, bytes) else png_bytes(data)
                write_new(self.folder / part_name(name, part), data)
                self.images_hash.update(sha256_bytes(data).encode())
            rows.append([name, *self.kind.row(drawn.question, drawn.label)])
            self.drawn.add(name, drawn.boxes if self.kind.characters else drawn.details)
            self.images_hash.update(sha256_bytes(png).encode())
            if len(self.previews) < self.preview:
                self.previews.append((self.kind.picture(self.media.decode(png, ImageLimits())), drawn.label))
        self.labels.write(csv_rows(rows))
        if on_progress:
            on_progress(len(batch))

    def finish(self, spec: GenerationSpec, params: dict) -> dict:
        kind, tmp = self.kind, self.folder
        self.labels.close()
        self.drawn.close()
        text_fields = (
            dict(
                length=[spec.min_length, spec.max_length], charset=spec.charset, charset_name=charset_name(spec.charset)
            )
            if kind.characters
            else {}
        )
        generator = spec.generator()
        if generator.picture_parts:  # which pictures these challenges show: attack checks overlap with training
            pool, digests = generator.pictures(params)
            text_fields["pictures"] = {"pool": pool, "sha256": sorted(digests)}
        if resources := generator.resources(params):  # (hashing a font or a voice's files: once)
            text_fields["resources"] = resources
        manifest = make_manifest(
            "dataset",
            captcha_kind=kind.name,
            generator=spec.style,
            source=source_of("style", spec.style),
            parameters=params,
            overrides=spec.params,
            strength=spec.strength,
            seed=spec.seed,
            count=spec.count,
            **text_fields,
            **self.extra,
            images_sha256=self.images_hash.hexdigest(),
        )
        write_new(tmp / "manifest.json", to_json(manifest).encode())
        if self.previews:
            contact_sheet([im for im, _ in self.previews], [t for _, t in self.previews], path=tmp / "preview.png")
        return manifest

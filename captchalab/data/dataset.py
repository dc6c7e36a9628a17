"""Datasets: generate them from a style (reproducibly, in parallel), read them back safely, and
`Source`, the one way the rest of the house gets CAPTCHAs (generated or from a folder).

A dataset folder holds images, `labels.csv` (filename,text), and for generated ones
`boxes.json` and `manifest.json`. Reading never touches a file outside the folder; a bad row
or a bad image is skipped and named, never fatal.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import cv2
import numpy as np

from ..charset import DIGITS, NAMED, charset_name, check_covers, fold, outside
from ..errors import CaptchalabError
from ..kinds import KINDS, get_kind, kind_of_columns
from ..fileio import atomic_dir, to_json
from ..manifest import make_manifest, sha256_bytes
from ..plugins import get_generator, load_plugins
from ..registry import source_of
from .images import ImageError, ImageLimits, read_image

MAX_LENGTH = 8
MAX_LABELS_BYTES = 200 * 2 ** 20


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

    def generator(self):
        return get_generator(self.style, list(self.plugin_dirs))

    def check(self) -> dict:
        """Validate and return the resolved generator parameters."""
        gen = self.generator()
        if self.count < 1:
            raise CaptchalabError(f"--count must be at least 1, got {self.count}")
        if not get_kind(gen.kind).characters:  # no characters to choose: the style draws whole challenges
            params = gen.resolve(self.strength, self.params)
            self._style_check(gen, params)
            return params
        lo, hi = max(gen.min_length, 1), min(gen.max_length, MAX_LENGTH)
        if not (lo <= self.min_length <= self.max_length <= hi):
            raise CaptchalabError(f"--length {self.min_length}-{self.max_length} is outside what "
                                  f"style {self.style!r} supports ({lo}-{hi})")
        if not self.charset:
            raise CaptchalabError("--charset is empty")
        bad = outside(self.charset, gen.charset)
        if bad:
            only = " (it draws digits only)" if gen.charset == DIGITS else ""
            raise CaptchalabError(f"style {self.style!r} cannot draw {bad!r}{only}")
        params = gen.resolve(self.strength, self.params)
        if not gen.drawable(self.charset, params):
            raise CaptchalabError(f"style {self.style!r} has no characters left to draw from {self.charset!r}")
        self._style_check(gen, params)
        return params

    def _style_check(self, gen, params: dict) -> None:
        try:
            gen.check(params)
        except CaptchalabError as exc:  # the style's own refusal, said as one line of ours
            raise CaptchalabError(f"style {self.style!r}: {exc}") from None

    @property
    def kind(self) -> str:
        return self.generator().kind


def make_spec(style: str, count: int, length: str | None, charset: str | None, seed: int, strength: float,
              params: list[str] | dict | None = None, plugin_dirs=()) -> GenerationSpec:
    """A checked GenerationSpec from the command line's words: `length` as "N" or "N-M" (default
    4), `charset` (default digits), both for text styles only; `params` as name=value strings
    (or a dict already typed)."""
    from ..charset import parse_charset
    generator = get_generator(style, list(plugin_dirs))
    if not get_kind(generator.kind).characters:
        given = [option for option, value in (("--length", length), ("--charset", charset)) if value]
        if given:
            raise CaptchalabError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to text "
                                  f"CAPTCHAs only; style {style!r} draws {generator.kind} CAPTCHAs")
    low, high = parse_length(length or "4")
    charset = charset or DIGITS
    parsed = generator.parse_params(params) if isinstance(params, list) else dict(params or {})
    spec = GenerationSpec(style=style, count=count, min_length=low, max_length=high,
                          charset=parse_charset(charset), seed=seed, strength=strength, params=parsed,
                          plugin_dirs=tuple(str(d) for d in plugin_dirs))
    spec.check()
    return spec


def parse_length(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        low, high = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise CaptchalabError(f"--length {text!r}: expected N or N-M") from None
    if not 1 <= low <= high <= MAX_LENGTH:
        raise CaptchalabError(f"--length {text!r}: lengths must satisfy 1 <= N <= M <= {MAX_LENGTH}")
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
    parts: dict | None = None       # further images (a dynamic grid's queue), arrays or PNG bytes


def render_one(spec: GenerationSpec, params: dict, index: int, gen=None) -> Drawn:
    """Render CAPTCHA `index`: its answer and pixels depend only on (seed, index)."""
    gen = gen or spec.generator()
    rng = np.random.default_rng([spec.seed, index])
    characters = get_kind(gen.kind).characters
    if characters:
        length = int(rng.integers(spec.min_length, spec.max_length + 1))
        chars = np.array(list(gen.drawable(spec.charset, params)))
        text = "".join(rng.choice(chars, length))
    try:
        out = gen.render(text, rng, params) if characters else gen.challenge(rng, params)
    except CaptchalabError as exc:  # the style's own refusal (a parameter it cannot draw with)
        raise CaptchalabError(f"style {spec.style!r} on image {index}: {exc}") from exc
    except Exception as exc:  # plugin code can fail in any way; name it and stop
        raise CaptchalabError(f"style {spec.style!r} ({source_of('style', spec.style)}) failed on image {index}: "
                              f"{type(exc).__name__}: {exc}") from exc  # the chain: --verbose shows the style's traceback
    image = np.ascontiguousarray(out.image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise CaptchalabError(f"style {spec.style!r} returned an image of shape {image.shape}, expected HxWx3")
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
    for i in indices:
        drawn = render_one(spec, params, i, gen)
        if encode:
            drawn = drawn._replace(image=png_bytes(drawn.image),
                                   parts={k: png_bytes(v) for k, v in (drawn.parts or {}).items()})
        results.append((i, drawn))
    return results


def render_many(spec: GenerationSpec, workers: int = 1, encode: bool = False,
                chunk: int = 32) -> Iterator[tuple[int, Drawn]]:
    """Yield (index, Drawn) in index order (images as PNG bytes with `encode`)."""
    params = spec.check()
    chunks = [list(range(s, min(s + chunk, spec.count))) for s in range(0, spec.count, chunk)]
    if workers <= 1:
        for c in chunks:
            yield from _render_chunk(spec, params, c, encode)
        return
    from ..workers import pool
    for results in pool(workers, spec.plugin_dirs).map(_render_chunk, [spec] * len(chunks),
                                                       [params] * len(chunks), chunks, [encode] * len(chunks)):
        yield from results


def generate_dataset(spec: GenerationSpec, out: Path, workers: int = 1, force: bool = False,
                     preview: int = 0, on_progress: Callable[[int], None] | None = None,
                     transform: Callable | None = None) -> dict:
    """Write a dataset folder atomically; returns its manifest.

    `transform(indices, texts, images, boxes) -> (images, manifest fields)` may change the images
    in batches before they are written (the adversarial wrapper does); for kinds that ask a
    question it is also given `questions=`.
    """
    params = spec.check()
    kind = get_kind(spec.kind)
    width = max(len(str(spec.count - 1)), 5)
    rows, drawn_by_name, hashes, previews = [], {}, [], []
    extra: dict = {}

    def write(batch) -> None:
        images = [drawn.image for _, drawn in batch]
        if transform:
            asked = {} if kind.characters else {"questions": [drawn.question for _, drawn in batch]}
            images, fields = transform([i for i, _ in batch], [drawn.label for _, drawn in batch], images,
                                       [drawn.boxes for _, drawn in batch], **asked)
            extra.update(fields)
        for (i, drawn), image in zip(batch, images):
            name = f"{i:0{width}d}.png"
            png = cv2.imencode(".png", image)[1].tobytes() if transform else image
            (tmp / name).write_bytes(png)
            for part, data in (drawn.parts or {}).items():
                data = data if isinstance(data, bytes) else png_bytes(data)
                (tmp / part_name(name, part)).write_bytes(data)
                hashes.append(sha256_bytes(data))
            rows.append([name, *kind.row(drawn.question, drawn.label)])
            drawn_by_name[name] = drawn.boxes if kind.characters else drawn.details
            hashes.append(sha256_bytes(png))
            if len(previews) < preview:
                previews.append((cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), drawn.label))
        if on_progress:
            on_progress(len(batch))

    with atomic_dir(out, force) as tmp:
        batch = []
        # PNGs are encoded in the workers, unless a transform needs the pixels first
        for item in render_many(spec, workers, encode=transform is None):
            batch.append(item)
            if len(batch) == 256:
                write(batch)
                batch = []
        if batch:
            write(batch)
        write_labels(tmp / "labels.csv", rows, kind)
        # what the style drew beyond the answer: character boxes (text), per-tile details (others)
        (tmp / kind.drawn_file).write_text(to_json(drawn_by_name))
        text_fields = dict(length=[spec.min_length, spec.max_length], charset=spec.charset,
                           charset_name=charset_name(spec.charset)) if kind.characters else {}
        manifest = make_manifest(
            "dataset", captcha_kind=kind.name, generator=spec.style, source=source_of("style", spec.style),
            parameters=params, overrides=spec.params, strength=spec.strength, seed=spec.seed, count=spec.count,
            **text_fields, **extra, images_sha256=sha256_bytes("".join(hashes).encode()))
        (tmp / "manifest.json").write_text(to_json(manifest))
        if previews:
            from ..report import contact_sheet
            contact_sheet([im for im, _ in previews], [t for _, t in previews], path=tmp / "preview.png")
    return manifest


# further images a challenge may have, beyond those its kind shows with the question (a slider's
# piece): the truth the solver never sees (a dynamic grid's queue), named in its details
HIDDEN_PARTS = ("queue",)


def part_name(name: str, part: str) -> str:
    """Where a challenge's further image lies: 00000.png's queue is 00000.queue.png, beside it."""
    return str(Path(name).with_name(f"{Path(name).stem}.{part}.png"))


def write_labels(path: Path, rows, kind=None) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filename", *(kind or get_kind("text")).columns])
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


@dataclass
class Dataset:
    """A dataset folder's usable rows; images are read on demand."""
    root: Path
    filenames: list[str]
    texts: list[str]
    boxes: dict | None = None
    manifest: dict | None = None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (filename, why) per bad row
    kind: str = "text"
    questions: list | None = None  # per row, for kinds that ask one (grid: the grid size and prompt)

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def charset(self) -> str:
        """The manifest's charset, else the smallest named set that holds every label."""
        if self.manifest and isinstance(self.manifest.get("charset"), str) and self.manifest["charset"]:
            return self.manifest["charset"]
        used = "".join(sorted(set("".join(self.texts))))
        for chars in NAMED.values():
            if not outside(used, chars):
                return chars
        return used


def safe_member(root: Path, name: str, row: int, resolved_root: Path | None = None) -> Path:
    """The path of `name` inside `root`, refusing anything that could lead outside it
    (`resolved_root`: root.resolve(), once for a whole labels file)."""
    pure = Path(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or ".." in pure.parts \
            or ("\\" in name and ".." in Path(name.replace("\\", "/")).parts):
        raise CaptchalabError(f"labels.csv row {row}: filename {name!r} points outside the dataset folder")
    inside = resolved_root or root.resolve()
    probe = str(inside)
    for part in pure.parts:  # only a symbolic link among the name's own parts can lead elsewhere
        probe = os.path.join(probe, part)
        if os.path.islink(probe):
            break
    else:
        return Path(probe)
    try:
        resolved = (root / pure).resolve()
    except (RuntimeError, OSError):  # a symlink loop: not an escape, just an unreadable file
        return root / pure
    if not resolved.is_relative_to(inside):
        raise CaptchalabError(f"labels.csv row {row}: {name!r} resolves outside the dataset folder")
    return resolved


def _labels_text(labels: Path) -> str:
    try:
        size = labels.stat().st_size
        if size > MAX_LABELS_BYTES:
            raise CaptchalabError(f"{labels}: {size / 2 ** 20:.0f} MB is too large for a labels file")
        raw = labels.read_bytes()
    except OSError as exc:
        raise CaptchalabError(f"{labels}: cannot read ({exc.strerror or exc})") from None
    # undecodable bytes survive as surrogates, so one bad row is rejected, not the whole file
    return raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _parse_line(line: str) -> list[str] | None:
    try:
        return [c.strip() for c in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return None


def read_dataset(folder: str | os.PathLike, charset: str | None = None, ignore_case: bool = False) -> Dataset:
    """Read `labels.csv` (UTF-8, BOM and CRLF allowed, extra columns ignored).

    A row that is malformed, not UTF-8, has an empty text or characters outside `charset`
    (after case folding with `ignore_case`) is rejected and kept in `rejected`; a row whose
    filename leads outside the folder refuses the whole dataset.
    """
    root = Path(folder)
    labels = root / "labels.csv"
    if not root.is_dir():
        raise CaptchalabError(f"dataset folder {root} does not exist")
    if not labels.is_file():
        raise CaptchalabError(f"{root} has no labels.csv (expected header: filename,text)")
    lines = _labels_text(labels).split("\n")
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    header = _parse_line(lines[header_at]) if header_at is not None else None
    names = [h.lower() for h in header or []]
    kind = kind_of_columns(names)
    if "filename" not in names or kind is None:
        shown = (lines[header_at][:80] if header_at is not None else "nothing").encode("utf-8", "replace")
        known = " or ".join(f"filename,{','.join(k.columns)} ({k.name})" for k in KINDS.values())
        raise CaptchalabError(f"{labels}: header must name the columns {known}; got {shown.decode()!r}")
    name_col = names.index("filename")
    columns = {c: names.index(c) for c in kind.columns}
    text_col = columns.get("text", 0)
    filenames, texts, rejected, questions = [], [], [], []
    inside = root.resolve()
    for number, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        row = _parse_line(line)
        name = row[name_col] if row and len(row) > name_col else line[:80]
        why = None
        if row is None or len(row) <= max(name_col, *columns.values()):
            why = "malformed row"
        elif any("\udc80" <= c <= "\udcff" for c in line):
            why = "not UTF-8"
        elif not name or "\x00" in name:
            why = "empty or invalid filename"
        if why:
            rejected.append((name.encode("utf-8", "replace").decode(), f"line {number}: {why}"))
            continue
        safe_member(root, name, number, inside)
        if not kind.characters:
            try:
                question, answer = kind.parse_row({c: row[i] for c, i in columns.items()})
            except ValueError as exc:
                rejected.append((name, f"line {number}: {exc}"))
                continue
            filenames.append(name)
            texts.append(answer)
            questions.append(question)
            continue
        text = fold(row[text_col], ignore_case)
        if not text:
            rejected.append((name, "empty text"))
        elif charset is not None and outside(text, charset):
            rejected.append((name, f"characters {outside(text, charset)!r} outside the charset"))
        else:
            filenames.append(name)
            texts.append(text)
    if not filenames:
        raise CaptchalabError(f"{labels}: no usable rows" + (f" ({len(rejected)} rejected, first: "
                                                            f"{rejected[0][0]!r}: {rejected[0][1]})" if rejected else ""))
    return Dataset(root, filenames, texts, _optional_json(root / kind.drawn_file),
                   _optional_json(root / "manifest.json"), rejected, kind.name,
                   None if kind.characters else questions)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def read_unlabelled(folder: str | os.PathLike, labelled: str | os.PathLike | None = None) -> Dataset:
    """A folder of unlabelled CAPTCHAs (images directly in it; labels.csv, if any, is ignored) as a
    Dataset whose texts are empty. Only regular files inside the folder are taken; which of them
    decode is found when they are read (the bad ones are skipped and named then). The labelled
    folder itself is refused: its CAPTCHAs are not unlabelled ones."""
    root = Path(folder)
    if not root.is_dir():
        raise CaptchalabError(f"--unlabelled folder {root} does not exist")
    if labelled is not None and root.resolve() == Path(labelled).resolve():
        raise CaptchalabError(f"--unlabelled {root} is the labelled dataset itself: give a folder of other CAPTCHAs")
    names = sorted(p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and p.resolve().is_relative_to(root.resolve()))
    if not names:
        raise CaptchalabError(f"--unlabelled {root} holds no image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return Dataset(root, names, [""] * len(names))


def file_hashes(dataset: Dataset) -> set[str]:
    """The SHA-256 of every image file of a dataset folder (unreadable files are left out)."""
    hashes = set()
    for name in dataset.filenames:
        try:
            hashes.add(sha256_bytes((dataset.root / name).read_bytes()))
        except OSError:
            continue
    return hashes


def _optional_json(path: Path) -> dict | None:
    """A generated dataset's side file; a broken one is ignored, not fatal (it is only a hint)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class Sample(NamedTuple):
    """One CAPTCHA: its name, true answer (the text, for text CAPTCHAs), BGR image (None if
    unreadable), true boxes (text), why it is unreadable, and its question (other kinds)."""
    name: str
    text: str
    image: np.ndarray | None
    boxes: list | None
    error: str | None = None
    question: Any = None
    details: dict | None = None     # what the style drew (other kinds; challenges.json)
    parts: dict | None = None       # further images by name (a dynamic grid's queue)


class Source:
    """Where CAPTCHAs come from, the one way the rest of the house gets them: `Source(spec=...)`
    (generated), `Source(mixture=(spec, ...), count=N)` (generated, the specs taken in turn) or
    `Source(dataset=...)` (a folder). Constructing one gives a GeneratedSource or a FolderSource;
    both answer the same questions."""
    rejected: list = []  # (filename, why) of the labels rows refused (folders only)
    plugin_dirs: tuple = ()  # the plugin folders its styles come from (generated only)
    reader: str = ""  # the attacker its style declares it is best read by ('': its kind's default)

    def __new__(cls, spec=None, dataset=None, mixture=(), count=0):
        if cls is not Source:
            return super().__new__(cls)
        if sum((spec is not None, dataset is not None, bool(mixture))) != 1:
            raise ValueError("Source needs exactly one of spec, dataset and mixture")
        return super().__new__(FolderSource if dataset is not None else GeneratedSource)


class GeneratedSource(Source):
    """CAPTCHAs rendered on demand from one or more GenerationSpecs."""

    def __init__(self, spec: GenerationSpec | None = None, dataset=None, mixture: tuple = (), count: int = 0):
        self.specs = (spec,) if spec is not None else tuple(mixture)
        self.count = spec.count if spec is not None else count
        self.single = spec is not None
        self._resolved = {}

    def __len__(self) -> int:
        return self.count

    @property
    def reader(self) -> str:
        readers = {spec.generator().reader for spec in self.specs}
        return readers.pop() if len(readers) == 1 else ""  # a mixture of styles that disagree: the kind's

    def __getstate__(self):  # workers resolve the generators themselves
        return {**self.__dict__, "_resolved": {}}

    @property
    def plugin_dirs(self) -> tuple:
        return tuple(dict.fromkeys(d for spec in self.specs for d in spec.plugin_dirs))

    @property
    def charset(self) -> str:
        """The characters its text styles draw ("" for other kinds)."""
        if not get_kind(self.kind).characters:
            return ""
        return "".join(dict.fromkeys("".join(spec.charset for spec in self.specs)))

    def classes(self) -> list[str]:
        """The object classes its image-grid styles draw from (sorted)."""
        return sorted({c for spec in self.specs for c in spec.generator().classes(spec.check())})

    def describe(self) -> dict:
        described = [{"generator": s.style, "strength": s.strength, "seed": s.seed, "count": s.count,
                      "length": [s.min_length, s.max_length], "charset": charset_name(s.charset),
                      "parameters": s.check(), "overrides": s.params} for s in self.specs]
        return described[0] if self.single else {"mixture": described, "count": self.count}

    @property
    def kind(self) -> str:
        kinds = {spec.kind for spec in self.specs}
        if len(kinds) > 1:
            raise CaptchalabError(f"a mixture of styles must draw one kind of CAPTCHA, not {', '.join(sorted(kinds))}")
        return kinds.pop()

    def redrawn(self, seed: int, count: int) -> GeneratedSource:
        """`count` other CAPTCHAs of the same design, drawn with `seed` (fresh training CAPTCHAs)."""
        specs = tuple(replace(s, seed=seed + k, count=count) for k, s in enumerate(self.specs))
        return GeneratedSource(spec=specs[0]) if self.single else GeneratedSource(mixture=specs, count=count)

    def fixed_length(self) -> int | None:
        """The CAPTCHA length when every CAPTCHA has the same one (a format fact, not a label)."""
        if not get_kind(self.kind).characters:
            return None
        lengths = {n for s in self.specs for n in range(s.min_length, s.max_length + 1)}
        return lengths.pop() if len(lengths) == 1 else None

    def check_charset(self, charset: str, what: str) -> None:
        """Refuse styles whose characters `charset` cannot express (text styles)."""
        if not get_kind(self.kind).characters:
            return
        for spec in self.specs:
            check_covers(charset, spec.charset, what)

    def sample(self, index: int, limits: ImageLimits | None = None) -> Sample:
        which, at = (index % len(self.specs), index // len(self.specs))
        if which not in self._resolved:  # resolve each generator once, not per image
            spec = self.specs[which]
            self._resolved[which] = (spec.generator(), spec.check())
        gen, params = self._resolved[which]
        drawn = render_one(self.specs[which], params, at, gen)
        return Sample(f"{index:05d}", drawn.label, drawn.image, drawn.boxes, question=drawn.question,
                      details=drawn.details, parts=drawn.parts)


class FolderSource(Source):
    """CAPTCHAs read from a dataset folder (each image decoded safely when it is asked for)."""

    def __init__(self, spec=None, dataset: Dataset | None = None, mixture=(), count: int = 0):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def rejected(self) -> list:
        return self.dataset.rejected

    @property
    def kind(self) -> str:
        return self.dataset.kind

    @property
    def charset(self) -> str:
        return self.dataset.charset if get_kind(self.dataset.kind).characters else ""

    def classes(self) -> list[str]:
        """The prompt classes of its challenges (sorted; none for kinds whose question has no prompt)."""
        return sorted({q["prompt"] for q in self.dataset.questions or () if "prompt" in q})

    def describe(self) -> dict:
        return {"dataset": str(self.dataset.root), "count": len(self.dataset),
                "charset": charset_name(self.dataset.charset),
                "rejected_rows": len(self.dataset.rejected), "dataset_manifest": self.dataset.manifest}

    def fixed_length(self) -> int | None:
        if not get_kind(self.dataset.kind).characters:
            return None
        lengths = {len(t) for t in self.dataset.texts}
        return lengths.pop() if len(lengths) == 1 else None

    def check_charset(self, charset: str, what: str) -> None:
        """Nothing to refuse: a folder's rows outside the charset were rejected when it was read."""

    def sample(self, index: int, limits: ImageLimits | None = None) -> Sample:
        name = self.dataset.filenames[index]
        text = self.dataset.texts[index]
        question = self.dataset.questions[index] if self.dataset.questions else None
        drawn = self.dataset.boxes.get(name) if self.dataset.boxes else None
        kind = get_kind(self.dataset.kind)
        if kind.characters:
            boxes, details = _valid_boxes(drawn, len(text)), None
        else:
            boxes, details = None, drawn if isinstance(drawn, dict) else None
        shown = kind.question_parts
        wanted = list(shown) + [(part, False) for part in HIDDEN_PARTS if details and part in details]
        try:
            image = read_image(self.dataset.root / name, limits)
            parts = {part: read_image(safe_member(self.dataset.root, part_name(name, part), 0), limits, alpha=alpha)
                     for part, alpha in wanted}
            return Sample(name, text, image, boxes, question=question, details=details, parts=parts)
        except ImageError as exc:
            return Sample(name, text, None, boxes, str(exc), question)


def _valid_boxes(boxes, count: int) -> list | None:
    """Boxes from an imported boxes.json, if they are `count` boxes of four numbers; else None."""
    try:
        boxes = [tuple(int(v) for v in b) for b in boxes]
    except (TypeError, ValueError, OverflowError):
        return None
    return boxes if len(boxes) == count and all(len(b) == 4 for b in boxes) else None


def make_source(style: str | None, dataset: str | os.PathLike | None, count: int, length: str, seed: int,
                strength: float, params: list[str] | None, plugin_dirs, charset: str | None,
                ignore_case: bool = False) -> Source:
    """A Source from exactly one of a style and a dataset folder. `charset` (parsed) is what a
    style draws (default digits), and what a dataset's rows are checked against (None: any)."""
    if (style is None) == (dataset is None):
        raise CaptchalabError("give exactly one of --style and --dataset")
    if dataset is not None:
        if params:
            raise CaptchalabError("--param applies to --style, not to --dataset")
        load_plugins(list(plugin_dirs))  # a plugin may define the kind the folder's labels.csv holds
        return Source(dataset=read_dataset(dataset, charset, ignore_case))
    return Source(spec=make_spec(style, count, length, charset, seed, strength, params or [], plugin_dirs))

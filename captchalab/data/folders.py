"""Dataset folders: images plus `labels.csv` (`filename` and the kind's columns), with what the
style drew (boxes.json or challenges.json) and manifest.json for generated ones. Reading never
touches a file outside the folder; a bad row or a bad image is skipped and named, never fatal.
"""

from __future__ import annotations

import csv
import io
import json
import os
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice, repeat
from pathlib import Path

from ..charset import NAMED, fold, outside
from ..errors import CaptchalabError
from ..fileio import write_new
from ..kinds import KINDS, get_kind, kind_of_columns
from ..manifest import sha256_bytes
from .images import IMAGE_SUFFIXES  # noqa: F401  (imported from here by plugins)
from .media import MEDIA, all_suffixes, media_of

MAX_LABELS_BYTES = 200 * 2**20
MAX_SIDE_VALUE = 16 * 2**20  # characters of one challenge's entry in boxes.json or challenges.json

# further images a challenge may have, beyond those its kind shows with the question (a slider's
# piece): the truth the solver never sees (a dynamic grid's queue), named in its details
HIDDEN_PARTS = ("queue",)


def part_name(name: str, part: str) -> str:
    """Where a challenge's further image lies: 00000.png's queue is 00000.queue.png, beside it."""
    return str(Path(name).with_name(f"{Path(name).stem}.{part}.png"))


def csv_rows(rows) -> bytes:
    """Rows as labels.csv holds them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def write_labels(path: Path, rows, kind=None) -> None:
    write_new(path, csv_rows([["filename", *(kind or get_kind("text")).columns], *rows]))


class PackedStrings(Sequence):
    """A read-only list of strings kept as one UTF-8 buffer and where each ends: a million file names
    take about 20 MB, not the 70 MB of a list of a million Python strings (a dataset's names and
    texts)."""

    def __init__(self, strings=()):
        self._data, self._ends = bytearray(), array("q")
        for text in strings:
            self.append(text)

    def append(self, text: str) -> None:
        self._data += text.encode("utf-8", "surrogateescape")
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._ends)
        if not 0 <= index < len(self._ends):
            raise IndexError("PackedStrings index out of range")
        start = self._ends[index - 1] if index else 0
        return self._data[start : self._ends[index]].decode("utf-8", "surrogateescape")

    def __iter__(self):
        data, start = memoryview(self._data), 0
        for end in self._ends:
            yield bytes(data[start:end]).decode("utf-8", "surrogateescape")
            start = end

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # equal to a list of the same strings, which has no hash either

    def __repr__(self) -> str:
        shown = ", ".join(repr(text) for text in self[:3])
        return f"PackedStrings([{shown}{', ...' if len(self) > 3 else ''}], {len(self)} strings)"


@dataclass
class Dataset:
    """A dataset folder's usable rows; images are read on demand."""

    root: Path
    filenames: Sequence[str]  # a list, or PackedStrings for a folder read from disk
    texts: Sequence[str]
    boxes: SideFile | None = None  # what the style drew, by filename (boxes.json or challenges.json)
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
    if (
        pure.is_absolute()
        or name.startswith(("/", "\\"))
        or ".." in pure.parts
        or ("\\" in name and ".." in Path(name.replace("\\", "/")).parts)
    ):
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


def check_member(root: Path, name: str, row: int, inside: Path) -> None:
    """`safe_member`'s refusal without its path, for every row of a labels file: a plain name (the
    usual row) costs one lstat, not two Path objects (a million rows are read in a third less time)."""
    if "/" in name or "\\" in name or name in (".", "..") or os.path.islink(os.path.join(inside, name)):
        safe_member(root, name, row, inside)


def _labels_text(labels: Path) -> str:
    try:
        size = labels.stat().st_size
        if size > MAX_LABELS_BYTES:
            raise CaptchalabError(f"{labels}: {size / 2**20:.0f} MB is too large for a labels file")
        raw = labels.read_bytes()
    except OSError as exc:
        raise CaptchalabError(f"{labels}: cannot read ({exc.strerror or exc})") from None
    # undecodable bytes survive as surrogates, so one bad row is rejected, not the whole file
    return raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _lines(text: str):
    """text.split("\\n"), one line at a time: a million rows are not a million strings at once."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def _parse_line(line: str) -> list[str] | None:
    try:
        return [c.strip() for c in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return None


def _kind_of_files(kind, names: list[str], rows: list[str]):
    """The kind a header names, or, when the first file is of another medium (WAV files under
    `filename,text`), the kind of that medium with the same columns."""
    first = next((_parse_line(line) for line in rows if line.strip()), None)
    if kind is None or "filename" not in names or not first or len(first) <= names.index("filename"):
        return kind
    suffix = Path(first[names.index("filename")]).suffix.lower()
    if suffix in media_of(kind).suffixes:
        return kind
    same = [k for k in KINDS.values() if k.columns == kind.columns and suffix in MEDIA[k.media].suffixes]
    return same[0] if same else kind


def read_dataset(
    folder: str | os.PathLike, charset: str | None = None, ignore_case: bool = False, kind: str | None = None
) -> Dataset:
    """Read `labels.csv` (UTF-8, BOM and CRLF allowed, extra columns ignored) as CAPTCHAs of the
    kind its header names, or of `kind` (arithmetic for a `filename,text` folder of expressions).

    A row that is malformed, not UTF-8, has an empty text, an answer its kind refuses or characters
    outside `charset` (after case folding with `ignore_case`) is rejected and kept in `rejected`; a
    row whose filename leads outside the folder refuses the whole dataset.
    """
    root = Path(folder)
    labels = root / "labels.csv"
    if not root.is_dir():
        raise CaptchalabError(f"dataset folder {root} does not exist")
    if not labels.is_file():
        raise CaptchalabError(f"{root} has no labels.csv (expected header: filename,text)")
    text = _labels_text(labels)
    header_at, header_line = next(((i, line) for i, line in enumerate(_lines(text)) if line.strip()), (None, ""))
    header = _parse_line(header_line) if header_at is not None else None
    names = [h.lower() for h in header or []]
    the_kind = (
        get_kind(kind)
        if kind
        else _kind_of_files(kind_of_columns(names), names, islice(_lines(text), header_at + 1, None) if header else [])
    )
    present = [w for w in (the_kind.columns, *the_kind.other_columns) if all(c in names for c in w)] if the_kind else []
    if "filename" not in names or not present:
        shown = (header_line[:80] if header_at is not None else "nothing").encode("utf-8", "replace")
        known = " or ".join(
            f"filename,{','.join(k.columns)} ({k.name})" for k in ([the_kind] if kind else KINDS.values())
        )
        raise CaptchalabError(f"{labels}: header must name the columns {known}; got {shown.decode()!r}")
    kind = the_kind
    name_col = names.index("filename")
    columns = {c: names.index(c) for w in present for c in w}
    filenames, texts, rejected, questions = PackedStrings(), PackedStrings(), [], []
    inside = root.resolve()
    for number, line in enumerate(islice(_lines(text), header_at + 1, None), start=header_at + 2):
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
        check_member(root, name, number, inside)
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
        try:
            text = fold(kind.parse_row({c: row[i] for c, i in columns.items()})[1], ignore_case)
        except ValueError as exc:
            rejected.append((name, f"line {number}: {exc}"))
            continue
        if not text:
            rejected.append((name, "empty text"))
        elif charset is not None and outside(text, charset):
            rejected.append((name, f"characters {outside(text, charset)!r} outside the charset"))
        else:
            filenames.append(name)
            texts.append(text)
    if not filenames:
        raise CaptchalabError(
            f"{labels}: no usable rows"
            + (f" ({len(rejected)} rejected, first: {rejected[0][0]!r}: {rejected[0][1]})" if rejected else "")
        )
    return Dataset(
        root,
        filenames,
        texts,
        SideFile.read(root / kind.drawn_file),
        _optional_json(root / "manifest.json"),
        rejected,
        kind.name,
        None if kind.characters else questions,
    )


def read_unlabelled(folder: str | os.PathLike, labelled: str | os.PathLike | None = None) -> Dataset:
    """A folder of unlabelled CAPTCHAs (images directly in it; labels.csv, if any, is ignored) as a
    Dataset whose texts are empty. Only regular files inside the folder are taken; which of them
    decode is found when they are read (the bad ones are skipped and named then). The labelled
    folder itself is refused: its CAPTCHAs are not unlabelled ones."""
    root = Path(folder)
    if not root.is_dir():
        raise CaptchalabError(f"`unlabelled` folder {root} does not exist")
    if labelled is not None and root.resolve() == Path(labelled).resolve():
        raise CaptchalabError(f"`unlabelled` {root} is the labelled dataset itself: give a folder of other CAPTCHAs")
    suffixes = all_suffixes()
    inside = root.resolve()
    with os.scandir(root) as entries:  # names only: no Path object for each of a million files
        names = sorted(
            entry.name
            for entry in entries
            if os.path.splitext(entry.name)[1].lower() in suffixes
            and entry.is_file()
            and (not entry.is_symlink() or Path(entry.path).resolve().is_relative_to(inside))
        )
    if not names:
        raise CaptchalabError(f"`unlabelled` {root} holds no image or sound file ({', '.join(sorted(suffixes))})")
    return Dataset(root, PackedStrings(names), PackedStrings(repeat("", len(names))))


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


class SideFile(Mapping):
    """What a style drew for each challenge (boxes.json, challenges.json): a JSON object from
    filename to value, read piece by piece and each value kept as its compact JSON text, decoded
    when asked for, so a folder of a million challenges is not held as a million parsed lists."""

    def __init__(self, packed: dict[str, bytes]):
        self._packed = packed

    def __getitem__(self, name: str):
        return json.loads(self._packed[name])

    def __iter__(self):
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def subset(self, names) -> SideFile:
        """The entries of `names` (those it has), still packed: what a worker is sent."""
        return SideFile({n: self._packed[n] for n in names if n in self._packed})

    @classmethod
    def read(cls, path: Path, chunk: int = 2**20) -> SideFile | None:
        """The side file at `path`, or None if it is missing or is not a JSON object (a broken
        side file is ignored, not fatal: it is only a hint)."""
        try:
            with open(path, encoding="utf-8-sig") as file:
                return cls(dict(_object_entries(file, chunk)))
        except (OSError, ValueError):
            return None


def _object_entries(file, chunk: int):
    """(key, compact JSON of its value) for each entry of the JSON object in `file`, read `chunk`
    characters at a time (a value is complete only when a delimiter follows it, so a number cut by
    a chunk's end, "0." of "0.5", is read again whole). ValueError if it is not one JSON object,
    or if one value is larger than a side file's value can be."""
    decoder, buffer, pos, ended = json.JSONDecoder(), "", 0, False

    def more() -> None:
        nonlocal buffer, pos, ended
        if len(buffer) - pos > MAX_SIDE_VALUE:
            raise ValueError("a value of the side file is too large")
        piece = file.read(chunk)
        ended = not piece
        buffer, pos = buffer[pos:] + piece, 0

    def blank(at_end: bool = False) -> None:
        """Skip whitespace; ValueError at the end of the file (or, `at_end`, before it)."""
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) and not at_end:
                return
            if pos < len(buffer) or (ended and not at_end):
                raise ValueError("the side file ends early" if ended else "more follows the side file's object")
            if ended:
                return
            more()

    def take(*expected: str) -> str:
        nonlocal pos
        blank()
        if buffer[pos] not in expected:
            raise ValueError(f"expected one of {expected} in the side file")
        pos += 1
        return buffer[pos - 1]

    def value():
        nonlocal pos
        blank()
        while True:
            try:
                found, end = decoder.raw_decode(buffer, pos)
                if ended or (end < len(buffer) and buffer[end] in " \t\r\n,:}]"):
                    pos = end
                    return found
            except json.JSONDecodeError:
                if ended:
                    raise
            more()

    more()
    take("{")
    blank()
    closed = buffer[pos] == "}"
    pos += closed
    while not closed:
        key = value()
        if not isinstance(key, str):
            raise ValueError("a side file's keys are filenames")
        take(":")
        yield key, json.dumps(value(), separators=(",", ":")).encode()
        closed = take(",", "}") == "}"
    blank(at_end=True)

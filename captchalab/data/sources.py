"""`Source`, the one way the rest of the house gets CAPTCHAs: generated on demand from styles
(`GeneratedSource`) or read from a dataset folder (`FolderSource`), both answering the same
questions; `make_source` builds one from the command line's words."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..charset import charset_name, check_covers
from ..errors import CaptchalabError
from ..kinds import get_kind
from ..plugins import load_plugins
from .folders import HIDDEN_PARTS, Dataset, part_name, read_dataset, safe_member
from .generate import GenerationSpec, make_spec, render_one
from .images import ImageError, ImageLimits, read_image
from .media import media_of


class Sample(NamedTuple):
    """One CAPTCHA: its name, true answer (the text, for text CAPTCHAs), BGR image (None if
    unreadable), true boxes (text), why it is unreadable, and its question (other kinds)."""

    name: str
    text: str
    image: np.ndarray | None
    boxes: list | None
    error: str | None = None
    question: Any = None
    details: dict | None = None  # what the style drew (other kinds; challenges.json)
    parts: dict | None = None  # further images by name (a dynamic grid's queue)


@dataclass(frozen=True)
class FolderPart:
    """Some rows of a dataset folder, by filename (an audit's test split, or one rung of its ladder
    of label budgets): it stands where a GenerationSpec stands in the study engine's cells and
    trainings (`Source(spec=part)` reads it), and travels to another process as its names."""

    root: str
    names: tuple[str, ...]
    kind: str | None = None  # read the labels as this kind (None: the kind its header names)
    plugin_dirs: tuple[str, ...] = ()
    strength = None  # what a cell's record asks of its test, as of a generated one
    seed = None

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def style(self) -> str:
        return f"dataset:{Path(self.root).name}"

    @property
    def params(self) -> dict:
        return {}

    @property
    def charset(self) -> str:
        return _whole(self.root, self.kind).charset

    def check(self) -> dict:
        return {}

    def dataset(self) -> Dataset:
        whole = _whole(self.root, self.kind)
        index = {name: i for i, name in enumerate(whole.filenames)}
        rows = [index[n] for n in self.names if n in index]
        return replace(
            whole,
            filenames=[whole.filenames[i] for i in rows],
            texts=[whole.texts[i] for i in rows],
            questions=None if whole.questions is None else [whole.questions[i] for i in rows],
            rejected=[],
        )


@functools.lru_cache(maxsize=8)
def _whole(root: str, kind: str | None) -> Dataset:
    return read_dataset(root, None, False, kind)


class Source:
    """Where CAPTCHAs come from, the one way the rest of the house gets them: `Source(spec=...)`
    (generated), `Source(mixture=(spec, ...), count=N)` (generated, the specs taken in turn) or
    `Source(dataset=...)` (a folder). Constructing one gives a GeneratedSource or a FolderSource;
    both answer the same questions."""

    rejected: list = []  # (filename, why) of the labels rows refused (folders only)
    plugin_dirs: tuple = ()  # the plugin folders its styles come from (generated only)
    reader: str = ""  # the attacker its style declares it is best read by ('': its kind's default)

    def picture_parts(self, validation: int, seed: int):
        """(CAPTCHAs to fit on, `validation` CAPTCHAs from pictures those never show), or None
        when the source cannot be split by picture (a folder of finished CAPTCHAs cannot)."""
        return None

    def pictures(self) -> tuple[dict, set[str]]:
        """The pool of pictures its challenges show and their content hashes ({} and an empty set
        when it does not say)."""
        return {}, set()

    def from_pool(self, pool: dict) -> Source | None:
        """The same design drawn from another pool of pictures (`pool`: parameters as `pictures`
        names them), or None when it cannot be drawn (a dataset folder, a folder gone)."""
        return None

    def part(self, indices: list[int]) -> Source:
        """What a worker needs to sample the CAPTCHAs at `indices` (still asked for by those
        indices): a generated source is small as it is; a folder gives only those rows, so that
        sending work to workers costs the same per chunk however large the dataset."""
        return self

    def __new__(cls, spec=None, dataset=None, mixture=(), count=0):
        if cls is not Source:
            return super().__new__(cls)
        if sum((spec is not None, dataset is not None, bool(mixture))) != 1:
            raise ValueError("Source needs exactly one of spec, dataset and mixture")
        folder = dataset is not None or isinstance(spec, FolderPart)
        return super().__new__(FolderSource if folder else GeneratedSource)


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
        readers = {spec.generator().reader_for(spec.check()) for spec in self.specs}
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

    def picture_parts(self, validation: int, seed: int):
        """For one style that declares `picture_parts`: (the CAPTCHAs to fit on, `validation`
        CAPTCHAs drawn from pictures those never show), else None."""
        if not self.single or validation < 1 or not self.specs[0].generator().picture_parts:
            return None
        spec = self.specs[0]
        fit = replace(spec, count=spec.count - validation, params={**spec.params, "part": "fit"})
        check = replace(spec, count=validation, seed=seed, params={**spec.params, "part": "validation"})
        try:
            check.check()
            fit.check()
        except CaptchalabError:  # too few pictures a class to hold some out: validate by challenge
            return None
        return GeneratedSource(spec=fit), GeneratedSource(spec=check)

    def pictures(self) -> tuple[dict, set[str]]:
        if not self.single or not self.specs[0].generator().picture_parts:
            return {}, set()
        spec = self.specs[0]
        pool, digests = spec.generator().pictures(spec.check())
        return pool, set(digests)

    def from_pool(self, pool: dict) -> GeneratedSource | None:
        if not self.pictures()[0]:
            return None
        spec = replace(self.specs[0], params={**self.specs[0].params, **pool})
        try:
            spec.check()
        except CaptchalabError:
            return None
        return GeneratedSource(spec=spec)

    def classes(self) -> list[str]:
        """The object classes its image-grid styles draw from (sorted)."""
        return sorted({c for spec in self.specs for c in spec.generator().classes(spec.check())})

    def describe(self) -> dict:
        described = [
            {
                "generator": s.style,
                "strength": s.strength,
                "seed": s.seed,
                "count": s.count,
                "length": [s.min_length, s.max_length],
                "charset": charset_name(s.charset),
                "parameters": s.check(),
                "overrides": s.params,
            }
            for s in self.specs
        ]
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
        return Sample(
            f"{index:05d}",
            drawn.label,
            drawn.image,
            drawn.boxes,
            question=drawn.question,
            details=drawn.details,
            parts=drawn.parts,
        )


class FolderSource(Source):
    """CAPTCHAs read from a dataset folder (each image decoded safely when it is asked for)."""

    def __init__(self, spec=None, dataset: Dataset | None = None, mixture=(), count: int = 0):
        self.dataset = dataset if dataset is not None else spec.dataset()  # a FolderPart

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

    def pictures(self) -> tuple[dict, set[str]]:
        recorded = (self.dataset.manifest or {}).get("pictures") or {}
        return recorded.get("pool") or {}, set(recorded.get("sha256") or ())

    def describe(self) -> dict:
        return {
            "dataset": str(self.dataset.root),
            "count": len(self.dataset),
            "charset": charset_name(self.dataset.charset),
            "rejected_rows": len(self.dataset.rejected),
            "dataset_manifest": self.dataset.manifest,
        }

    def fixed_length(self) -> int | None:
        if not get_kind(self.dataset.kind).characters:
            return None
        lengths = {len(t) for t in self.dataset.texts}
        return lengths.pop() if len(lengths) == 1 else None

    def check_charset(self, charset: str, what: str) -> None:
        """Nothing to refuse: a folder's rows outside the charset were rejected when it was read."""

    def part(self, indices: list[int]) -> FolderSource:
        ds = self.dataset
        names = [ds.filenames[i] for i in indices]
        rows = replace(
            ds,
            filenames=names,
            texts=[ds.texts[i] for i in indices],
            boxes=ds.boxes.subset(names) if ds.boxes else None,
            manifest=None,
            rejected=[],
            questions=[ds.questions[i] for i in indices] if ds.questions else None,
        )
        return _FolderRows(rows, {index: k for k, index in enumerate(indices)})

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
            image = media_of(kind).read(self.dataset.root / name, limits)
            parts = {
                part: read_image(safe_member(self.dataset.root, part_name(name, part), 0), limits, alpha=alpha)
                for part, alpha in wanted
            }
            return Sample(name, text, image, boxes, question=question, details=details, parts=parts)
        except ImageError as exc:
            return Sample(name, text, None, boxes, str(exc), question)


class _FolderRows(FolderSource):
    """Some rows of a folder (FolderSource.part), each sampled by its index in the whole."""

    def __init__(self, dataset: Dataset, at: dict[int, int]):
        self.dataset, self.at = dataset, at

    def sample(self, index: int, limits: ImageLimits | None = None) -> Sample:
        return super().sample(self.at[index], limits)


def _valid_boxes(boxes, count: int) -> list | None:
    """Boxes from an imported boxes.json, if they are `count` boxes of four numbers; else None."""
    try:
        boxes = [tuple(int(v) for v in b) for b in boxes]
    except (TypeError, ValueError, OverflowError):
        return None
    return boxes if len(boxes) == count and all(len(b) == 4 for b in boxes) else None


def make_source(
    style: str | None,
    dataset: str | os.PathLike | None,
    count: int,
    length: str,
    seed: int,
    strength: float,
    params: list[str] | None,
    plugin_dirs,
    charset: str | None,
    ignore_case: bool = False,
    kind: str | None = None,
) -> Source:
    """A Source from exactly one of a style and a dataset folder. `charset` (parsed) is what a
    style draws (default digits), and what a dataset's rows are checked against (None: any);
    `kind`: read the folder's labels as this kind (default: the kind its header names)."""
    if (style is None) == (dataset is None):
        raise CaptchalabError("give exactly one of `style` and `dataset`")
    if dataset is not None:
        if params:
            raise CaptchalabError("`params` apply to `style`, not to `dataset`")
        load_plugins(list(plugin_dirs))  # a plugin may define the kind the folder's labels.csv holds
        return Source(dataset=read_dataset(dataset, charset, ignore_case, kind))
    if kind:
        raise CaptchalabError("`kind` applies to `dataset`; a style draws its own kind")
    return Source(spec=make_spec(style, count, length, charset, seed, strength, params or [], plugin_dirs))

"""Break CAPTCHAs: segment each image, read every crop with the network, compare with the truth.

Segmentation (and rendering or decoding) runs in worker processes while the main process runs
the network on the crops that are ready, one forward call per chunk of crops.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .dataset import Dataset, GenerationSpec, load_image, render_one
from .errors import CaptchalabError
from .segment import segment
from .workers import pool

CHUNK = 128  # CAPTCHAs per worker task: large enough to amortise IPC, small enough to overlap
BATCH = 1024  # crops per forward call


@dataclass
class Source:
    """Where CAPTCHAs come from: a generator spec or a dataset folder (exactly one)."""
    spec: GenerationSpec | None = None
    dataset: Dataset | None = None
    _resolved: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if (self.spec is None) == (self.dataset is None):
            raise ValueError("Source needs exactly one of spec and dataset")

    def __len__(self) -> int:
        return self.spec.count if self.spec else len(self.dataset)

    @property
    def plugin_dirs(self) -> tuple:
        return self.spec.plugin_dirs if self.spec else ()

    def __getstate__(self):  # workers resolve the generator themselves
        return {**self.__dict__, "_resolved": None}

    def describe(self) -> dict:
        if self.spec:
            return {"generator": self.spec.style, "strength": self.spec.strength, "seed": self.spec.seed,
                    "count": self.spec.count, "length": [self.spec.min_length, self.spec.max_length],
                    "parameters": self.spec.check()}
        return {"dataset": str(self.dataset.root), "count": len(self.dataset),
                "rejected_rows": len(self.dataset.rejected), "dataset_manifest": self.dataset.manifest}

    def fixed_length(self) -> int | None:
        """The CAPTCHA length when every CAPTCHA has the same one (a format fact, not a label)."""
        if self.spec:
            return self.spec.min_length if self.spec.min_length == self.spec.max_length else None
        lengths = {len(t) for t in self.dataset.texts}
        return lengths.pop() if len(lengths) == 1 else None

    def image(self, index: int):
        """(name, text, BGR image or None, true boxes or None) of one CAPTCHA."""
        if self.spec:
            if self._resolved is None:  # resolve the generator once, not per image
                self._resolved = (self.spec.generator(), self.spec.check())
            gen, params = self._resolved
            text, image, boxes = render_one(self.spec, params, index, gen)
            return f"{index:05d}", text, image, boxes
        name = self.dataset.filenames[index]
        boxes = self.dataset.boxes.get(name) if self.dataset.boxes else None
        return name, self.dataset.texts[index], load_image(self.dataset.root / name), boxes


@dataclass
class Item:
    """One CAPTCHA after segmentation (and, once read, the network's guess)."""
    index: int
    name: str
    text: str
    crops: np.ndarray | None            # None when the image could not be read
    boxes: list = field(default_factory=list)
    true_boxes: list | None = None
    guess: str = ""
    confidence: list = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        return self.crops is None


LABEL_LENGTH = "label"  # hint for training: each CAPTCHA's own label length


def _segment_chunk(source: Source, indices: list[int], length) -> list[Item]:
    items = []
    for i in indices:
        name, text, image, true_boxes = source.image(i)
        if image is None:
            items.append(Item(i, name, text, None, true_boxes=true_boxes))
            continue
        seg = segment(image, len(text) if length == LABEL_LENGTH else length)
        items.append(Item(i, name, text, seg.crops, seg.boxes, true_boxes))
    return items


def _uses_pool(source: Source, workers: int) -> bool:
    """Worker processes pay off only with more than one chunk of work."""
    return workers >= 1 and len(source) > CHUNK


def segment_source(source: Source, length, workers: int = 1) -> Iterator[list[Item]]:
    """Yield chunks of segmented CAPTCHAs in order, segmenting in `workers` processes.

    `length` is the expected character count, None to let the segmenter decide, or
    LABEL_LENGTH to use each CAPTCHA's label (fine for training, not for attacking).
    """
    n = len(source)
    chunks = [list(range(s, min(s + CHUNK, n))) for s in range(0, n, CHUNK)]
    if not _uses_pool(source, workers):
        for c in chunks:
            yield _segment_chunk(source, c, length)
        return
    executor = pool(workers, source.plugin_dirs)
    yield from executor.map(_segment_chunk, [source] * len(chunks), chunks, [length] * len(chunks))


class Reader:
    """The network as a crop reader: one compiled forward pass per batch of crops."""

    def __init__(self, model, batch_size: int = BATCH):
        import tensorflow as tf
        self.batch_size = batch_size
        self._forward = tf.function(lambda x: model(x, training=False),
                                    input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])

    def predict(self, crops: np.ndarray) -> np.ndarray:
        out = np.zeros((len(crops), 10), np.float32)
        for start in range(0, len(crops), self.batch_size):
            part = crops[start:start + self.batch_size]
            out[start:start + len(part)] = self._forward(part[..., None] / np.float32(255)).numpy()
        return out


def read_items(reader: Reader, items: list[Item]) -> None:
    """Fill in guesses for a chunk of segmented CAPTCHAs with one batched forward pass."""
    ready = [it for it in items if not it.skipped and len(it.crops)]
    if not ready:
        return
    probs = reader.predict(np.concatenate([it.crops for it in ready]))
    start = 0
    for it in ready:
        p = probs[start:start + len(it.crops)]
        start += len(it.crops)
        it.guess = "".join(str(d) for d in p.argmax(axis=1))
        it.confidence = [round(float(c), 4) for c in p.max(axis=1)]


def run_attack(model, source: Source, length: int | None = None, workers: int = 2,
               on_progress: Callable[[int], None] | None = None) -> tuple[list[Item], float]:
    """Segment and read every CAPTCHA of `source`; returns the items and the seconds it took."""
    reader = Reader(model)
    reader.predict(np.zeros((1, 28, 28), np.uint8))  # trace before timing
    if _uses_pool(source, workers):
        pool(workers, source.plugin_dirs)  # start the workers before timing
    items: list[Item] = []
    pending: list[Item] = []

    def read_pending() -> None:
        read_items(reader, pending)
        items.extend(pending)
        if on_progress and pending:
            on_progress(len(pending))
        pending.clear()

    start = time.perf_counter()
    for chunk in segment_source(source, length, workers):
        pending.extend(chunk)
        if sum(len(it.crops) for it in pending if not it.skipped) >= reader.batch_size:
            read_pending()
    read_pending()
    return items, time.perf_counter() - start




def attack_source(model, source: Source, expect: int | None = None, workers: int = 2,
                  on_progress: Callable[[int], None] | None = None,
                  misread_limit: int = 16) -> tuple[dict, list[tuple[np.ndarray, str]]]:
    """Attack every CAPTCHA of `source`; returns the scored result (with manifest) and up to
    `misread_limit` misread images captioned 'truth -> guess'."""
    return attack_many(model, {"": source}, expect, workers, on_progress, misread_limit)


def attack_many(model, sources: dict[str, Source], expect: int | None = None, workers: int = 2,
                on_progress: Callable[[int], None] | None = None,
                misread_limit: int = 16) -> tuple[dict, list[tuple[np.ndarray, str]]]:
    """Attack several sources (named by style); overall results plus `per_style` when more than one."""
    from .manifest import make_manifest
    from .score import score
    if expect is not None and not 1 <= expect <= 8:
        raise CaptchalabError(f"--expect must be between 1 and 8, got {expect}")
    all_items, per_style, seconds, misread, described = [], {}, 0.0, [], {}
    for name, source in sources.items():
        length = expect if expect is not None else source.fixed_length()
        items, took = run_attack(model, source, length, workers, on_progress)
        all_items += items
        seconds += took
        described[name] = {**source.describe(), "expected_length": length}
        if len(sources) > 1:
            per_style[name] = {**score(items), "captchas_per_second": round(len(items) / took, 1)}
        for it in items:
            if len(misread) < misread_limit and not it.skipped and it.guess != it.text:
                misread.append((source.image(it.index)[2], f"{it.text} -> {it.guess or '?'}"))
    result = score(all_items)
    result["seconds"] = round(seconds, 3)
    result["captchas_per_second"] = round(len(all_items) / seconds, 1) if seconds > 0 else None
    if len(sources) > 1:
        result["per_style"] = per_style
        result["sources"] = described
    else:
        result["source"] = described[next(iter(sources))]
        only = next(iter(sources.values()))
        if only.dataset is not None:
            result["rejected_rows"] = only.dataset.rejected
    result["manifest"] = make_manifest("report", command="attack", sources=described, workers=workers)
    return result, misread

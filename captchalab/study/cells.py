"""Cells, the unit of work under `sweep`, `matrix` and `run`, and the models they need
(engine.py runs them).

A cell is one (generator setting, attacker) pair: generate its test CAPTCHAs, attack, score. An
attacker is a fixed model file, a read-only attacker, or a model trained first (a `Training`,
keyed by everything that determines it, so cells that need the same model share one training).
Everything a cell needs travels with it: model files cross as bytes, so workers need no shared
file system. Each cell's seed comes from the study's seed and its coordinates, so its result
does not depend on where or in which order it ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..attack import attack_source, pool_counterpart
from ..attackers.base import TrainSettings, get_attacker, load_attacker, make_attacker
from ..data.dataset import GenerationSpec, Source
from ..errors import CaptchalabError
from ..fileio import WRITE_REFUSED, write_new
from ..train import train_attacker

RATES = ("captcha_accuracy", "char_accuracy", "segmentation_rate")  # what sweeps and matrices plot
METRICS = (
    "captcha_accuracy",
    "captcha_accuracy_ci95",
    "state",
    "char_accuracy",
    "segmentation_rate",
    "segmentation_box_rate",
    "count",
    "skipped",
    "confusion_labels",
    "confusion_matrix",
    "most_confused",
    "per_position_accuracy",
)


def derive_seed(seed: int, *coordinates) -> int:
    """A seed for one cell from the study's seed and the cell's coordinates (stable everywhere)."""
    text = json.dumps([seed, *coordinates], sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 2**31


@dataclass(frozen=True)
class Training:
    """An attacker trained before the cells that use it; equal trainings are done once."""

    attacker: str
    spec: GenerationSpec
    init_from: str = "scratch"  # a model file, or "scratch"
    hparams: tuple = ()  # (name, value) pairs
    epochs: int | None = None
    seed: int = 1
    # unlabelled CAPTCHAs to learn from too (semi-supervised): generated, or a folder of scraped ones
    unlabelled: GenerationSpec | str | None = None

    def key(self) -> str:
        fields = asdict(self)
        if fields["unlabelled"] is None:  # keeps the keys of studies made before this field existed
            del fields["unlabelled"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "attacker": self.attacker,
            "style": self.spec.style,
            "strength": self.spec.strength,
            "parameters": self.spec.params,
            "count": self.spec.count,
            "from": self.init_from,
            "epochs": self.epochs,
            "seed": self.seed,
            "unlabelled": self.unlabelled if isinstance(self.unlabelled, str) else getattr(self.unlabelled, "count", 0),
        }


@dataclass(frozen=True)
class AttackerRef:
    """Which attacker a cell uses: a model file, a read-only attacker by name (or an untrained
    one with `fresh`), or the model of a `Training`."""

    label: str
    model: str | None = None
    name: str | None = None
    training: Training | None = None
    fresh: bool = False
    charset: str = "0123456789"
    hparams: tuple = ()  # (name, value) pairs for a read-only or fresh attacker

    def needs(self) -> str | None:
        """The key under which this attacker's model bytes travel, if it needs any."""
        return self.training.key() if self.training else self.model


@dataclass
class Cell:
    """One test set (a generator setting and seed) and the attackers that read it."""

    id: str
    coords: dict
    test: GenerationSpec
    attackers: list[AttackerRef]
    expect: int | None = None
    ignore_case: bool = False
    workers: int = 0  # worker processes inside the cell (in-process backends only)
    examples: int = 0  # misread CAPTCHAs to name per attacker (index, guess)

    def needs(self) -> list[str]:
        return [k for k in dict.fromkeys(a.needs() for a in self.attackers) if k]


ModelBlob = tuple[bytes, str]  # (.keras bytes, .json text)


def read_blob(path: str | Path) -> ModelBlob:
    path = Path(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    info = path.with_suffix(".json")
    return path.read_bytes(), info.read_text() if info.is_file() else "{}"


_loaded: dict[str, object] = {}


def load_blob(blob: ModelBlob, plugin_dirs=(), name: str = "model"):
    """An attacker from model bytes (written to a private temp folder, loaded safely). The same
    bytes give the same attacker object again in this process: reloading a model for every cell
    would also retrace its compiled functions every time."""
    keras_bytes, info = blob
    key = hashlib.sha256(keras_bytes + info.encode()).hexdigest()
    if key in _loaded:
        return _loaded[key]
    with tempfile.TemporaryDirectory(prefix="captchalab-model-") as tmp:
        path = Path(tmp) / f"{name}.keras"
        write_new(path, keras_bytes)
        write_new(path.with_suffix(".json"), info.encode())
        attacker = load_attacker(path, list(plugin_dirs))
    attacker.info["path"] = name + ".keras"
    if len(_loaded) >= 8:
        _loaded.pop(next(iter(_loaded)))
    _loaded[key] = attacker
    return attacker


def materialise(ref: AttackerRef, models: dict[str, ModelBlob], plugin_dirs=()):
    if ref.needs():
        return load_blob(models[ref.needs()], plugin_dirs, Path(ref.model).stem if ref.model else ref.label)
    attacker = make_attacker(ref.name, ref.charset, list(plugin_dirs), dict(ref.hparams))
    if ref.fresh:
        attacker.model = attacker.build(0)
    return attacker


def attacker_summary(result: dict, misread: list) -> dict:
    return {
        "status": "done",
        **{k: result[k] for k in METRICS if k in result},
        "captchas_per_second": result.get("captchas_per_second"),
        "misread": [[it.index, it.reading.text] for _, it in misread],
    }


def run_cell(cell: Cell, models: dict[str, ModelBlob], loaded: dict | None = None) -> dict:
    """Generate one cell's CAPTCHAs once and let every attacker read them; the task every backend
    runs. `loaded` may hold attackers already in memory, by label (in-process runs)."""
    start = time.perf_counter()
    source = Source(spec=cell.test)
    per_attacker = {}
    for ref in cell.attackers:
        if ref.needs() and ref.needs() not in models:
            per_attacker[ref.label] = {
                "status": "failed",
                "error": "its model was not trained (see the training error)",
            }
            continue
        attacker = (loaded or {}).get(ref.label) or materialise(ref, models, cell.test.plugin_dirs)
        result, misread = attack_source(
            attacker, source, cell.expect, workers=cell.workers, example_limit=cell.examples
        )
        per_attacker[ref.label] = attacker_summary(result, misread)
        found = pool_counterpart([attacker], source)
        if found and found[2] is not None:  # a picture pool: the other pool's number beside, as its own line
            result, misread = attack_source(
                attacker, found[2], cell.expect, workers=cell.workers, example_limit=cell.examples
            )
            per_attacker[f"{ref.label} ({found[1]})"] = attacker_summary(result, misread)
    ok = all(r["status"] == "done" for r in per_attacker.values())
    return {
        "id": cell.id,
        "status": "done" if ok else "failed",
        "coords": cell.coords,
        "per_attacker": per_attacker,
        "seconds": round(time.perf_counter() - start, 3),
        "test": {
            "style": cell.test.style,
            "kind": source.kind,
            "strength": cell.test.strength,
            "seed": cell.test.seed,
            "count": cell.test.count,
            "parameters": cell.test.check(),
        },
    }


def run_training(training: Training, models: dict[str, ModelBlob], workers: int = 0) -> ModelBlob:
    """Train one model and return its bytes (the driver writes them)."""
    cls = get_attacker(training.attacker, list(training.spec.plugin_dirs))
    attacker = cls(training.spec.charset, dict(training.hparams))
    with tempfile.TemporaryDirectory(prefix="captchalab-train-") as tmp:
        init = None
        if training.init_from != "scratch":
            init = Path(tmp) / "init.keras"
            keras_bytes, info = models[training.init_from]
            init.write_bytes(keras_bytes)
            init.with_suffix(".json").write_text(info)
        unlabelled = None
        if training.unlabelled is not None:  # a scraped folder; or rendered to images, then read like one
            from ..data.dataset import generate_dataset, read_unlabelled

            folder = training.unlabelled
            if not isinstance(folder, str):
                generate_dataset(training.unlabelled, Path(tmp) / "unlabelled")
                folder = Path(tmp) / "unlabelled"
            unlabelled = read_unlabelled(folder)
        out = Path(tmp) / "model.keras"
        train_attacker(
            attacker,
            Source(spec=training.spec),
            out,
            TrainSettings(training.epochs, seed=training.seed),
            init,
            workers=workers,
            plugin_dirs=training.spec.plugin_dirs,
            unlabelled=unlabelled,
        )
        return out.read_bytes(), out.with_suffix(".json").read_text()


def failure(task_id: str, exc: BaseException) -> dict:
    failed = {
        "id": task_id,
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "trace": traceback.format_exc(limit=3).splitlines()[-1],
    }
    if isinstance(exc, OSError) and exc.errno in WRITE_REFUSED:  # the machine's fault, not the task's (engine.py)
        failed.update(errno=exc.errno, filename=exc.filename)
    return failed


def guarded(fn: Callable, task_id: str, *args) -> dict:
    """Run a task; an exception becomes a failed result instead of ending the study."""
    try:
        return {"id": task_id, "status": "done", "value": fn(*args)}
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a task may fail in any way; record it, go on
        return failure(task_id, exc)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def rows_of(results: list[dict], coords: Callable[[dict], dict]) -> list[dict]:
    """The cell table: one row per (cell, attacker), coordinates and numbers side by side."""
    rows = []
    for result in results:
        per = result.get("per_attacker") or {}
        if not per:
            rows.append({**coords(result), "attacker": "", "status": "failed", "error": result.get("error", "")})
        kind = (result.get("test") or {}).get("kind", "text")
        for label, r in per.items():
            rows.append(
                {
                    **coords(result),
                    "kind": kind,
                    "attacker": label,
                    "status": r.get("status", "failed"),
                    **{
                        k: r.get(k)
                        for k in (
                            "captcha_accuracy",
                            "char_accuracy",
                            "segmentation_box_rate",
                            "count",
                            "skipped",
                            "captchas_per_second",
                        )
                    },
                    **dict(zip(("ci95_low", "ci95_high"), r.get("captcha_accuracy_ci95") or (None, None))),
                    "converged": (r.get("state") or {}).get("converged"),
                    "lower_bound": (r.get("state") or {}).get("lower_bound"),
                    "error": r.get("error", ""),
                }
            )
    return rows

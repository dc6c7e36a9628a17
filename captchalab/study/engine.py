"""The cell engine under `sweep`, `matrix` and `run`: one loop that trains the models a grid's
cells need, runs the cells on a backend, writes each result atomically, and resumes."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CaptchalabError
from ..fileio import WRITE_REFUSED, atomic_write_bytes, atomic_write_json
from .cells import Cell, ModelBlob, Training, read_blob, run_cell, run_training


@dataclass
class Progress:
    ran: int
    left: int
    seconds: float


def run_grid(
    cells: list[Cell],
    out: Path,
    backend,
    resume: bool = False,
    cell_dir: str = "cells",
    runner: Callable[[Cell, dict], dict] = run_cell,
    on_cell: Callable[[dict, Progress], None] | None = None,
    on_training: Callable[[Training, dict], None] | None = None,
) -> list[dict]:
    """Run every unfinished cell (trainings first), writing `out/<cell_dir>/<id>.json` as each
    result arrives; returns all cells' results in the order given.

    With `resume`, cells with a result are read back, not rerun (failed ones are retried), and
    models already trained under out/models are reused.
    """
    folder = out / cell_dir
    results = _finished_cells(cells, folder) if resume else {}
    pending = [c for c in cells if c.id not in results]
    blobs, todo = _models_at_hand(pending, out / "models")
    failed_trainings = _train(todo, blobs, out / "models", backend, on_training)
    start, ran = time.perf_counter(), 0

    def finished(i: int, outcome: dict) -> None:
        nonlocal ran
        cell = pending[i]
        if outcome.get("errno") in WRITE_REFUSED:  # a full disk fails every cell alike: stop; --resume goes on
            raise OSError(outcome["errno"], os.strerror(outcome["errno"]), outcome.get("filename"))
        if outcome["status"] == "done":
            result = outcome["value"]
        else:
            result = {
                "id": cell.id,
                "status": "failed",
                "coords": cell.coords,
                "error": outcome["error"],
                "trace": outcome.get("trace", ""),
            }
        for ref in cell.attackers:
            if ref.training and ref.training.key() in failed_trainings and "per_attacker" in result:
                result["per_attacker"][ref.label]["error"] = f"training failed: {failed_trainings[ref.training.key()]}"
        ran += 1
        if on_cell:  # before saving: a front-end may add to the result
            on_cell(result, Progress(ran, len(pending) - ran, time.perf_counter() - start))
        atomic_write_json(folder / f"{cell.id}.json", result)
        results[cell.id] = result

    folder.mkdir(parents=True, exist_ok=True)
    if not getattr(backend, "in_process", False):
        for cell in pending:  # worker processes inside a remote task would fight its CPU share
            cell.workers = 0
    backend.map(
        runner, [(c, {k: blobs[k] for k in c.needs() if k in blobs}) for c in pending], finished, training=False
    )
    return [results[c.id] for c in cells]


def _finished_cells(cells: list[Cell], folder: Path) -> dict[str, dict]:
    """The results saved by an earlier run that finished (failed cells are run again)."""
    results = {}
    for cell in cells:
        path = folder / f"{cell.id}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("status") == "done":
                results[cell.id] = saved
    return results


def _models_at_hand(pending: list[Cell], models_dir: Path) -> tuple[dict[str, ModelBlob], list[Training]]:
    """The model files the pending cells name and the models already trained under `models_dir`,
    each read once; and the trainings still to run."""
    refs = [a for c in pending for a in c.attackers]
    blobs: dict[str, ModelBlob] = {}
    for ref in refs:  # fixed models and training starts
        for path in (ref.model, ref.training and ref.training.init_from):
            if path and path != "scratch" and path not in blobs:
                blobs[path] = read_blob(path)
    todo = []
    for key, training in {a.training.key(): a.training for a in refs if a.training}.items():
        saved = models_dir / f"{key}.keras"
        if saved.is_file() and saved.with_suffix(".json").is_file():
            blobs[key] = read_blob(saved)
        else:
            todo.append(training)
    return blobs, todo


def _train(
    todo: list[Training],
    blobs: dict[str, ModelBlob],
    models_dir: Path,
    backend,
    on_training: Callable[[Training, dict], None] | None,
) -> dict[str, str]:
    """Run the trainings on the backend, saving each model under `models_dir` and into `blobs`;
    returns the error of each training that failed, by key."""
    failed = {}

    def trained(i: int, outcome: dict) -> None:
        training = todo[i]
        key = training.key()
        if outcome["status"] == "done":
            keras_bytes, info = outcome["value"]
            atomic_write_bytes(models_dir / f"{key}.keras", keras_bytes)
            atomic_write_bytes(models_dir / f"{key}.json", info.encode())
            blobs[key] = outcome["value"]
        else:
            failed[key] = outcome["error"]
        if on_training:
            on_training(training, outcome)

    if todo:  # in this process, preparing training CAPTCHAs may use worker processes
        workers = 2 if getattr(backend, "in_process", False) else 0
        starts = [{t.init_from: blobs[t.init_from]} if t.init_from in blobs else {} for t in todo]
        backend.map(run_training, [(t, start, workers) for t, start in zip(todo, starts)], trained, training=True)
    return failed


def study_marker(out: Path, settings: dict, resume: bool, marker: str = "study.json") -> None:
    """Start a study folder, or check that --resume points at one started with the same settings."""
    path = out / marker
    if resume:
        if not path.is_file():
            raise CaptchalabError(f"`resume`: {out} is not a {Path(marker).stem} folder (no {marker})")
        if json.loads(path.read_text()) != json.loads(json.dumps(settings, default=str)):
            raise CaptchalabError(f"`resume`: the study in {out} was started with other settings")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaptchalabError(f"{out} is not empty; use `resume` to continue a study there, or another `out`")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {out}: {exc.strerror or exc}") from None
    atomic_write_json(path, json.loads(json.dumps(settings, default=str)))

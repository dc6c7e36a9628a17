"""Checkpoints and the training lock: every run saves its state after every epoch beside the model
it trains (`.NAME.checkpoint/`), so an interrupted run resumes (`--resume`) to the same result, and
one run at a time trains a model."""

from __future__ import annotations

import fcntl
import io
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import CaptchalabError
from ..fileio import atomic_write_bytes, atomic_write_json


def checkpoint_dir(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.checkpoint"


@contextmanager
def training_lock(out: Path):
    """Hold the training of model `out` for this run. A second run into the same model would
    delete (or resume) the checkpoint under the first, so it is refused in one line. The lock is a
    flock on a file beside the model: the system releases it however the process ends."""
    path = Path(out).parent / f".{Path(out).name}.lock"
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")
        except OSError as exc:
            raise CaptchalabError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CaptchalabError(
                f"another run is training {out}: wait for it to end, or train into another `out`"
            ) from None
        try:  # the run before may have removed the file between our open and our lock: lock the new one
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # nothing left beside the model once the run is over
        handle.close()


def check_resumable(out: Path, resume: bool) -> None:
    """Refuse --resume with no checkpoint at once, before any CAPTCHA is prepared."""
    if resume and not (checkpoint_dir(out) / "state.json").is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {checkpoint_dir(out)}")


def random_states(model) -> list:
    """The model's random-number states (its dropout layers' seed generators): variables that are
    not weights, so save_weights leaves them out, yet a resumed run must draw the same masks."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _save_arrays(path: Path, variables) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in variables])
    atomic_write_bytes(path, buffer.getvalue())


def _load_arrays(path: Path, variables) -> None:
    with np.load(path) as saved:
        for variable, key in zip(variables, sorted(saved.files, key=lambda k: int(k[4:]))):
            variable.assign(saved[key])


def save_weights(ckpt: Path, name: str, model) -> None:
    """A model's weights as `NAME.weights.npz`, built in memory and written atomically: a write
    that fails (a full disk, a file-size limit) is one error naming the file, and the last good
    copy stays (HDF5's own writer crashes the process when a write fails)."""
    _save_arrays(ckpt / f"{name}.weights.npz", model.weights)


def load_weights(ckpt: Path, name: str, model) -> None:
    """What `save_weights` wrote (or an older checkpoint's `NAME.weights.h5`)."""
    saved = ckpt / f"{name}.weights.npz"
    if saved.is_file():
        _load_arrays(saved, model.weights)
    else:
        model.load_weights(ckpt / f"{name}.weights.h5")


def save_checkpoint(ckpt: Path, model, optimizer, state: dict, teacher=None) -> None:
    save_weights(ckpt, "last", model)
    if teacher is not None:
        save_weights(ckpt, "teacher", teacher)
    _save_arrays(ckpt / "optimizer.npz", optimizer.variables)
    _save_arrays(ckpt / "random.npz", random_states(model))
    atomic_write_json(ckpt / "state.json", state)  # written last: it marks the epoch as done


def load_checkpoint(ckpt: Path, model, optimizer, config: dict, teacher=None) -> dict:
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {ckpt}")
    state = json.loads(state_file.read_text())
    if state["config"] != json.loads(json.dumps(config)):
        raise CaptchalabError(
            f"the checkpoint at {ckpt} was made with other options; rerun with the same options, or without `resume`"
        )
    load_weights(ckpt, "last", model)
    if teacher is not None:
        load_weights(ckpt, "teacher", teacher)
    _load_arrays(ckpt / "optimizer.npz", optimizer.variables)
    if (ckpt / "random.npz").is_file():  # (checkpoints made before it was saved lack it)
        _load_arrays(ckpt / "random.npz", random_states(model))
    return state

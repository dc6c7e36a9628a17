"""The epoch loop every trainable attacker and the seed's network train through: Adam, validation
after every epoch that keeps the best weights, and a checkpoint after every epoch so an
interrupted run resumes to the same result. Two entry points share it:

- `train_until_converged` (every attacker): the stopping rule of stopping.py decides when the run
  ends, and the run ends with its verdict;
- `train_recipe` (the seed's network on MNIST and rendered characters): a set number of epochs on
  a cosine schedule, ending early after `patience` epochs without gain, judged by its own test set.

What differs between them is a small policy object (`_Converging`, `_Recipe`); the loop itself is
written once.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import CaptchalabError
from .checkpoints import load_checkpoint, load_weights, save_checkpoint, save_weights
from .stopping import UNDERFIT, Stopping, convergence, decisive


@dataclass
class Run:
    """What a training run is made of: the model and its optimizer; `epoch_batches(rng)` yields
    each epoch's batches (rng seeded by (seed, epoch)) and `step(*batch) -> (loss, correct)`
    trains on one (correct None: the step does not decode its batch, so no training accuracy is
    recorded); `validate()` scores the model after each epoch. The run checkpoints into
    `checkpoint` and resumes from it with `resume` when `config` is equal. A `teacher` model
    (semi-supervised training) is checkpointed beside the model; `epoch_notes()` adds the caller's
    own numbers to each epoch's record (kept across a resume)."""

    model: object
    optimizer: object
    seed: int
    train_count: int
    epoch_batches: Callable[[np.random.Generator], Iterable[tuple]]
    step: Callable
    validate: Callable[[], float | None]
    checkpoint: Path
    config: dict
    resume: bool = False
    verbose: int = 0
    on_epoch: Callable[[int, dict], None] | None = None
    teacher: object = None
    epoch_notes: Callable[[], dict] | None = None


def train_until_converged(
    run: Run, stopping: Stopping, validation_count: int | None, train_score: Callable[[], float | None] | None = None
) -> dict:
    """Train until the validation score converges (stopping.py); returns the loop state with its
    verdict. With fewer than MIN_VALIDATION `validation_count` plateaus decide nothing: the budget
    runs whole and its last weights are kept. `train_score()` reads training CAPTCHAs with the
    kept weights (the underfitting check)."""
    stopping.check()
    return _loop(run, _Converging(stopping, run.train_count, validation_count), train_score)


def train_recipe(run: Run, epochs: int, patience: int, train_score: Callable[[], float | None] | None = None) -> dict:
    """Train for `epochs` epochs, ending early after `patience` epochs without a validation gain."""
    return _loop(run, _Recipe(epochs, patience), train_score)


class _Recipe:
    validation_count = None  # a recipe's own held-out set always decides

    def __init__(self, epochs: int, patience: int):
        self.epochs, self.patience = epochs, patience

    def resumed(self, optimizer, state: dict) -> None:
        """Nothing beyond the checkpoint: the cosine schedule follows the optimizer's step."""

    def keeps_last(self, val_accuracy) -> bool:
        return val_accuracy is None  # nothing held out: the last weights are the run's

    def better(self, val_accuracy: float, best: float) -> bool:
        return val_accuracy >= best  # the later of equal epochs: its rate is lower, its weights settled

    def still_learning(self, state: dict, record: dict) -> bool:
        return False

    def more(self, state: dict, train_score) -> bool:
        return False

    def plateau(self, optimizer, state: dict, train_score=None) -> str | None:
        return "plateau"

    def out_of_time(self, wall_start: float) -> bool:
        return False

    def verdict(self, state: dict, train_accuracy) -> dict:
        return convergence(state, None, train_accuracy, None)


class _Converging:
    def __init__(self, stopping: Stopping, train_count: int, validation_count: int | None):
        self.stopping, self.validation_count = stopping, validation_count
        self.epochs, self.patience = stopping.epochs(train_count), stopping.patience
        self.most = stopping.most_epochs(train_count)

    def resumed(self, optimizer, state: dict) -> None:
        if hasattr(optimizer, "rate_scale"):  # the cuts made before the interruption
            optimizer.rate_scale.assign(self.stopping.factor ** state["reductions"])

    def keeps_last(self, val_accuracy) -> bool:
        # nothing held out, or too few to decide when to stop, which are too few to pick weights by
        # (100 of 100 at epoch 3 kept a fine-tune that read 95.6% of its own training CAPTCHAs):
        # the last weights are kept, at the end of the budget's cosine schedule
        return val_accuracy is None or not decisive(self.validation_count)

    def better(self, val_accuracy: float, best: float) -> bool:
        return val_accuracy > best

    def still_learning(self, state: dict, record: dict) -> bool:
        # nothing read yet, but the loss still falls: CTC readers spend their first epochs so
        return state["best_val_accuracy"] <= 0 and record["loss"] < 0.98 * state["best_loss"]

    def more(self, state: dict, train_score) -> bool:
        """Whether a run its budget decides goes through its budget once more (the cosine schedule
        restarts), up to its ceiling: it still underfits and learns its training CAPTCHAs."""
        cycles = state.get("cycles", 1)
        if train_score is None or (cycles + 1) * self.epochs > self.most:
            return False
        if not still_fitting(state, train_score()):
            return False
        state["cycles"] = cycles + 1
        return True

    def plateau(self, optimizer, state: dict, train_score=None) -> str | None:
        if train_score is not None and still_fitting(state, train_score()):
            state["since_best"] = 0  # no cut yet: it is still learning its own training CAPTCHAs
            return None
        if state["reductions"] < self.stopping.reductions and state["best_val_accuracy"] < 1:
            # (a perfect validation score cannot rise: a cut could not be seen to help)
            optimizer.rate_scale.assign(optimizer.rate_scale * self.stopping.factor)  # cut the rate
            state["reductions"] += 1
            state["since_best"] = 0
            return None
        return "plateau"

    def out_of_time(self, wall_start: float) -> bool:
        return bool(self.stopping.wall_seconds) and time.perf_counter() - wall_start > self.stopping.wall_seconds

    def verdict(self, state: dict, train_accuracy) -> dict:
        return convergence(state, self.validation_count, train_accuracy, self.stopping)


def still_fitting(state: dict, train_accuracy: float | None) -> bool:
    """Whether a run whose validation score has stopped rising should go on as it is: it underfits
    (reads under UNDERFIT of its own training CAPTCHAs) and reads at least a point more of them than
    at its last plateau (at its first, underfitting is enough). A noisy validation score can stall
    for a few epochs while the reader still learns (measured: docs/results/hard-text.md, where
    it takes the default ctc from 61% to 67% of a hard corpus; eight epochs' patience, 68%)."""
    if train_accuracy is None:
        return False
    last = state.get("train_accuracy_at_plateau")
    state["train_accuracy_at_plateau"] = train_accuracy
    return train_accuracy < UNDERFIT and (last is None or train_accuracy >= last + 0.01)


def _loop(run: Run, policy, train_score) -> dict:
    """The loop both entry points run; returns its state (history, best epoch, timings, verdict)."""
    import keras

    model, optimizer, checkpoint = run.model, run.optimizer, run.checkpoint
    optimizer.build(model.trainable_variables)
    state = {
        "epoch": 0,
        "best_val_accuracy": -1.0,
        "best_epoch": 0,
        "history": [],
        "since_best": 0,
        "best_loss": float("inf"),
        "reductions": 0,
        "stopped": None,
        "train_seconds": 0.0,
        "images_seen": 0,
        "config": run.config,
    }
    if run.resume:
        state = load_checkpoint(checkpoint, model, optimizer, run.config, run.teacher)
        policy.resumed(optimizer, state)
    elif checkpoint.exists():
        shutil.rmtree(checkpoint)
    try:
        checkpoint.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {checkpoint.parent}: {exc.strerror or exc}") from None
    wall_start = time.perf_counter() - state["train_seconds"]
    while state["stopped"] is None:
        epoch = state["epoch"]
        if epoch >= policy.epochs * state.get("cycles", 1):
            if policy.more(state, train_score):
                continue
            state["stopped"] = "budget"
            break
        record = _epoch(run, state, np.random.default_rng([run.seed, epoch]), keras)
        val_accuracy = record["val_accuracy"]
        if policy.keeps_last(val_accuracy):
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            save_weights(checkpoint, "best", model)
        elif policy.better(val_accuracy, state["best_val_accuracy"]):
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            state["since_best"] = 0
            save_weights(checkpoint, "best", model)
        elif policy.still_learning(state, record):
            state["since_best"] = 0
        else:
            state["since_best"] += 1
        state["best_loss"] = min(state["best_loss"], record["loss"])
        if val_accuracy is not None and decisive(policy.validation_count) and state["since_best"] >= policy.patience:
            state["stopped"] = policy.plateau(optimizer, state, train_score)
        if state["stopped"] is None and policy.out_of_time(wall_start):
            state["stopped"] = "time limit"
        save_checkpoint(checkpoint, model, optimizer, state, run.teacher)
        if run.on_epoch:
            run.on_epoch(epoch + 1, record)
    load_weights(checkpoint, "best", model)
    state["convergence"] = policy.verdict(state, train_score() if train_score else None)
    return state


def _epoch(run: Run, state: dict, rng: np.random.Generator, keras) -> dict:
    """One pass over the epoch's batches, then validation; returns the epoch's record (also
    appended to the state's history)."""
    progress = keras.utils.Progbar(run.train_count, verbose=run.verbose, stateful_metrics=["accuracy"])
    start = time.perf_counter()
    total_loss = total_correct = 0.0
    seen = 0
    decodes = True
    for batch in run.epoch_batches(rng):
        loss, correct = run.step(*batch)
        n = len(batch[0])
        seen += n
        total_loss += float(loss) * n
        decodes = correct is not None
        total_correct += float(correct) if decodes else 0.0
        progress.update(seen, [("loss", float(loss))] + ([("accuracy", total_correct / seen)] if decodes else []))
    state["train_seconds"] += time.perf_counter() - start
    state["images_seen"] += seen
    record = {
        "epoch": state["epoch"] + 1,
        "loss": total_loss / max(seen, 1),
        **({"accuracy": total_correct / max(seen, 1)} if decodes else {}),
        "val_accuracy": run.validate(),
        "examples_seen": state["images_seen"],
        **(run.epoch_notes() if run.epoch_notes else {}),
    }
    if hasattr(run.optimizer, "rate_scale"):
        record["learning_rate_scale"] = round(float(run.optimizer.rate_scale.numpy()), 6)
    state["history"].append(record)
    state["epoch"] += 1
    return record


def run_record(state: dict) -> dict:
    """What a finished run's state gives the model's JSON: epochs run, the best epoch and its
    validation score, the history, the verdict, the training seconds and rate."""
    return {
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "val_accuracy": state["best_val_accuracy"],
        "history": state["history"],
        "convergence": state["convergence"],
        "train_seconds": round(state["train_seconds"], 2),
        "train_images_per_second": round(state["images_seen"] / max(state["train_seconds"], 1e-9), 1),
    }

"""The shared training loop: every trainable attacker and the seed's network train through it.

`fit_loop` is the loop: Adam with a linear warm-up then cosine decay, validation after every
epoch that keeps the best weights, early stopping, and a checkpoint after every epoch so an
interrupted run resumes (`--resume`) to the same result. `fit_declared` is the whole of `fit`
for an attacker that declares its model (`build`), its targets and its loss: plugins get the
loop, checkpoints, resume and epoch lines without writing any of it.
"""
from __future__ import annotations

import io
import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import CaptchalabError
from .fileio import atomic_write_bytes, atomic_write_json

def make_optimizer(learning_rate: float, warmup_epochs: float, epochs: int, steps_per_epoch: int):
    """Adam with a short linear warm-up, then cosine decay to zero at the last epoch."""
    import keras
    total = max(2, epochs * steps_per_epoch)
    warmup = min(total - 1, int(warmup_epochs * steps_per_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10 if warmup else learning_rate,
        decay_steps=total - warmup, alpha=0.0,
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    return keras.optimizers.Adam(schedule)


def checkpoint_dir(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.checkpoint"


def _save_checkpoint(ckpt: Path, model, optimizer, state: dict) -> None:
    model.save_weights(ckpt / "last.weights.h5")
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in optimizer.variables])
    atomic_write_bytes(ckpt / "optimizer.npz", buffer.getvalue())
    atomic_write_json(ckpt / "state.json", state)  # written last: it marks the epoch as done


def _load_checkpoint(ckpt: Path, model, optimizer, config: dict) -> dict:
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {ckpt}")
    state = json.loads(state_file.read_text())
    if state["config"] != json.loads(json.dumps(config)):
        raise CaptchalabError(f"the checkpoint at {ckpt} was made with other options; "
                              "rerun with the same options, or without --resume")
    model.load_weights(ckpt / "last.weights.h5")
    with np.load(ckpt / "optimizer.npz") as saved:
        for variable, key in zip(optimizer.variables, sorted(saved.files, key=lambda k: int(k[4:]))):
            variable.assign(saved[key])
    return state


def fit_loop(model, optimizer, *, epochs: int, patience: int, seed: int, train_count: int,
             epoch_batches: Callable[[np.random.Generator], Iterable[tuple]],
             step: Callable, validate: Callable[[], float], checkpoint: Path, config: dict,
             resume: bool = False, verbose: int = 0,
             on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train `model` in place; returns the loop state (history, best epoch, timings).

    Each epoch draws its batches from `epoch_batches(rng)` (rng seeded by (seed, epoch)) and calls
    `step(*batch) -> (loss, correct)`; `validate()` scores the model after each epoch and the
    best weights are restored at the end. `config` must be equal for a run to resume.
    """
    import keras
    optimizer.build(model.trainable_variables)
    state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [],
             "train_seconds": 0.0, "images_seen": 0, "config": config}
    if resume:
        state = _load_checkpoint(checkpoint, model, optimizer, config)
    elif checkpoint.exists():
        shutil.rmtree(checkpoint)
    try:
        checkpoint.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {checkpoint.parent}: {exc.strerror or exc}") from None
    for epoch in range(state["epoch"], epochs):
        if epoch - state["best_epoch"] >= patience:
            break  # early stop: validation accuracy has not improved for `patience` epochs
        rng = np.random.default_rng([seed, epoch])
        progress = keras.utils.Progbar(train_count, verbose=verbose, stateful_metrics=["accuracy"])
        start = time.perf_counter()
        total_loss = total_correct = 0.0
        seen = 0
        for batch in epoch_batches(rng):
            loss, correct = step(*batch)
            n = len(batch[0])
            seen += n
            total_loss += float(loss) * n
            total_correct += float(correct)
            progress.update(seen, [("loss", float(loss)), ("accuracy", total_correct / seen)])
        state["train_seconds"] += time.perf_counter() - start
        state["images_seen"] += seen
        val_accuracy = validate()
        record = {"epoch": epoch + 1, "loss": total_loss / max(seen, 1),
                  "accuracy": total_correct / max(seen, 1), "val_accuracy": val_accuracy}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if val_accuracy is None:  # nothing held out: the last weights are the ones kept
            state["best_val_accuracy"], state["best_epoch"] = None, epoch + 1
            model.save_weights(checkpoint / "best.weights.h5")
        elif val_accuracy >= (state["best_val_accuracy"] or -1.0):  # ties: prefer the later, better-settled weights
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            model.save_weights(checkpoint / "best.weights.h5")
        _save_checkpoint(checkpoint, model, optimizer, state)
        if on_epoch:
            on_epoch(epoch + 1, record)
    model.load_weights(checkpoint / "best.weights.h5")
    return state


def seconds_and_rate(state: dict) -> dict:
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "val_accuracy": state["best_val_accuracy"], "history": state["history"],
            "train_seconds": round(state["train_seconds"], 2),
            "train_images_per_second": round(state["images_seen"] / max(state["train_seconds"], 1e-9), 1)}


def forward(model) -> Callable:
    """The model's compiled inference pass, made once per model and kept on it: a function made
    anew for every call would be traced anew (TensorFlow's retracing warnings)."""
    import tensorflow as tf
    run = getattr(model, "_captchalab_forward", None)
    if run is None:  # one signature for every batch size: traced once
        run = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
        object.__setattr__(model, "_captchalab_forward", run)  # not a tracked Keras attribute
    return run


def held_out(count: int, hold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of `count` items split into (kept for training, `hold` held out), at random from
    `seed`: the one split of every training set here."""
    order = np.random.default_rng([seed, 7]).permutation(count)
    return order[hold:], order[:hold]


# defaults of the declared-model loop when neither the settings nor the hyper-parameters say
DECLARED_DEFAULTS = {"epochs": 10, "batch_size": 64, "learning_rate": 1e-3, "patience": 5}


def fit_declared(attacker, train: list, validation: list, settings, checkpoint: Path,
                 resume: bool = False, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train `attacker.model` in place through the shared loop, from what the attacker declares:
    `inputs(prepared) -> array` (the model's input batch), `targets(texts) -> array` (what the
    loss compares outputs with), `loss(targets, outputs) -> per-example loss` (Keras ops), and
    optionally `augment(inputs, rng)`. The validation score is CAPTCHA-level: the share of
    held-out CAPTCHAs whose `read_prepared` text equals the truth.

    Epochs, batch size, learning rate and patience come from the settings, else from the
    attacker's hyper-parameters of those names, else from DECLARED_DEFAULTS; a fine-tune halves
    the default learning rate."""
    import tensorflow as tf

    def setting(name):
        chosen = getattr(settings, name, None)
        return chosen if chosen is not None else attacker.hparams.get(name, DECLARED_DEFAULTS[name])

    epochs, batch_size, patience = setting("epochs"), setting("batch_size"), setting("patience")
    learning_rate = settings.learning_rate or setting("learning_rate") * (0.5 if settings.fine_tune else 1)
    x = np.asarray(attacker.inputs([p for p, _ in train]))
    y = np.asarray(attacker.targets([t for _, t in train]))
    if len(x) != len(y) or not len(x):
        raise CaptchalabError(f"attacker {attacker.name!r}: inputs() and targets() must give one row per "
                              f"training CAPTCHA (got {len(x)} and {len(y)})")
    model = attacker.model
    optimizer = make_optimizer(learning_rate, 0.5, epochs, math.ceil(len(x) / batch_size))
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = tf.reduce_mean(tf.cast(attacker.loss(targets, outputs), tf.float32))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, 0.0

    augment = getattr(attacker, "augment", None)

    def epoch_batches(rng):
        order = rng.permutation(len(x))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            inputs = x[batch]
            yield (augment(inputs, rng) if augment else inputs), y[batch]

    def validate():
        if not validation:
            return None
        readings = attacker.read_prepared([p for p, _ in validation])
        return float(np.mean([r.text == t for r, (_, t) in zip(readings, validation)]))

    state = fit_loop(model, optimizer, epochs=epochs, patience=patience, seed=settings.seed, train_count=len(x),
                     epoch_batches=epoch_batches, step=step, validate=validate, checkpoint=checkpoint,
                     resume=resume, on_epoch=on_epoch,
                     config={"hyperparameters": attacker.hparams, "epochs": epochs, "batch_size": batch_size,
                             "learning_rate": learning_rate, "seed": settings.seed, "count": len(x)})
    for record in state["history"]:
        record.pop("accuracy", None)  # the declared loop does not decode training batches
    return {**seconds_and_rate(state), "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate}
